"""`peft-transfer evaluate`: score a model (optionally with a prompt) on a labelled data set."""

from __future__ import annotations

import argparse
import json

from .common import add_task_arguments, task_from_args


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m", help="embedded model name, local folder or Hub id")
    parser.add_argument("--prompt", help="folder or Hub id of a saved prompt (omit for zero-shot)")
    add_task_arguments(parser)
    parser.add_argument("--data", help="labelled data: an embedded set name, a csv/jsonl file or a saved datasets "
                                       "folder (default: the task's embedded set)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="score only the first N examples")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..assets import load_model
    from ..data_files import load_labelled
    from ..evaluation import evaluate_classification
    from ..prompt_model import load_prompt

    task = task_from_args(args)
    data = load_labelled(args.data or task.name, split=args.split, limit=args.limit)
    model, tokenizer = load_model(args.model)
    if args.prompt:
        model = load_prompt(model, args.prompt)
    if task.kind == "generation":
        from ..generation_eval import evaluate_generation

        scores = evaluate_generation(model, tokenizer, task, data, batch_size=args.batch_size,
                                     progress=f"generating {task.name}")
        print(json.dumps(scores.to_dict()) if args.json else f"{task.name} ({args.split}, n={scores.n}): ROUGE-L "
              f"{scores.rouge_l:.4f}, ROUGE-1 {scores.rouge_1:.4f}, ROUGE-2 {scores.rouge_2:.4f}")
        return 0
    result = evaluate_classification(model, tokenizer, task, data, batch_size=args.batch_size,
                                     progress=f"evaluating {task.name}")
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{task.name} ({args.split}, n={result.n}): accuracy {result.accuracy:.4f}, "
              f"macro-F1 {result.macro_f1:.4f}")
    return 0
