"""`peft-transfer evaluate`: score a model (optionally with a prompt) on a labelled data set."""

from __future__ import annotations

import argparse
import json

from .arg_types import positive_int
from .common import add_column_arguments, add_task_arguments, column_options, task_from_args
from .references import check_model_ref, check_prompt_ref


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="embedded model name, local folder, .gguf file or "
                                                                "Hub id")
    parser.add_argument("--prompt", help="folder or Hub id of a saved prompt (default: none, zero-shot)")
    add_task_arguments(parser, prompt_flags="--prompt")
    parser.add_argument("--data", help="labelled data: an embedded set name, a csv/jsonl/json/parquet file or a saved "
                                       "datasets folder; labels as class indices or class names (default: the "
                                       "task's embedded set)")
    add_column_arguments(parser)
    parser.add_argument("--split", default=None, help="split of an embedded set or DatasetDict folder (default: "
                                                      "test; a single file is scored whole)")
    parser.add_argument("--limit", type=positive_int, help="score only the first N examples (default: all)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="examples per forward pass")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_model_ref(args.model, "--model")
    if args.prompt:
        check_prompt_ref(args.prompt, "--prompt")
    # heavy (torch, transformers, datasets): imported when the command runs
    from ..assets import load_model
    from ..assets.data_files import describe_split, load_labelled
    from ..evaluation.scoring import evaluate

    task = task_from_args(args, prompts=[args.prompt], default=args.data)
    source = args.data or task.name
    data = load_labelled(source, split=args.split, limit=args.limit, default_split="test", task=task,
                        **column_options(args))
    model, tokenizer = load_model(args.model)
    if args.prompt:
        from ..prompts.model import load_prompt  # peft: only when a prompt is used (seconds of start-up)

        model = load_prompt(model, args.prompt)
    result = evaluate(model, tokenizer, task, data, batch_size=args.batch_size, progress=f"evaluating {task.name}")
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{task.name} ({describe_split(source, args.split, 'test')}, n={result.n}): {result.describe()}")
    return 0
