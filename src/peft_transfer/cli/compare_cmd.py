"""`peft-transfer compare`: the paper's rows (ZS, FullPT, CompPT, Direct, POST) on one labelled set."""

from __future__ import annotations

import argparse

from .arg_types import positive_int
from .common import add_column_arguments, add_task_arguments, column_options, task_from_args
from .out_folders import check_folders
from .references import check_model_ref, check_prompt_ref

_PROMPTS = (("source_prompt", "--source-prompt"), ("transferred_prompt", "--transferred-prompt"))


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="smollm2-135m", help="target model (embedded name, folder, .gguf file or "
                                                                 "Hub id)")
    parser.add_argument("--student", help="the student p_s was tuned on (for CompPT; default: no CompPT row)")
    parser.add_argument("--source-prompt", help="p_s (for CompPT and Direct; default: no such rows)")
    parser.add_argument("--transferred-prompt", help="p_t from `peft-transfer transfer` (POST; default: no POST row)")
    parser.add_argument("--full-prompt", action="append", default=[],
                        help="a prompt tuned on the target with the private data (FullPT); repeat for DP/non-DP")
    add_task_arguments(parser, prompt_flags="the prompts")
    parser.add_argument("--data", help="labelled test data; labels as class indices or class names (default: the "
                                       "task's embedded set)")
    add_column_arguments(parser)
    parser.add_argument("--split", default=None, help="split of an embedded set or DatasetDict folder (default: "
                                                      "test; a single file is scored whole)")
    parser.add_argument("--limit", type=positive_int, help="score only the first N examples (default: all)")
    parser.add_argument("--batch-size", type=positive_int, default=32, help="examples per forward pass")
    parser.add_argument("--out", help="folder for comparison.md and comparison.json (default: print only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out:
        check_folders(args.out, "comparison", [("--target", args.target), ("--student", args.student),
                                               ("--source-prompt", args.source_prompt),
                                               ("--transferred-prompt", args.transferred_prompt),
                                               ("--full-prompt", args.full_prompt), ("--data", args.data)])
    check_model_ref(args.target, "--target")
    if args.student:
        check_model_ref(args.student, "--student")
    prompts = [(getattr(args, key), flag) for key, flag in _PROMPTS] + [(p, "--full-prompt") for p in args.full_prompt]
    for path, flag in prompts:
        if path:
            check_prompt_ref(path, flag)
    # heavy (torch, transformers, datasets): imported when the command runs
    from ..assets import load_model
    from ..assets.data_files import describe_split, load_labelled
    from ..assets.vocabulary import check_same_tokenizer
    from ..evaluation.comparison import compare_prompts, comparison_markdown, write_comparison

    task = task_from_args(args, prompts=[path for path, _ in prompts], default=args.data)
    source = args.data or task.name
    data = load_labelled(source, split=args.split, limit=args.limit, default_split="test", task=task,
                        **column_options(args))
    target, tokenizer = load_model(args.target)
    student = None
    if args.student:
        student, student_tokenizer = load_model(args.student)
        check_same_tokenizer(tokenizer, student_tokenizer, f"--target {args.target}", f"--student {args.student}",
                             "CompPT scores the student through the target's tokenizer, so give a student made "
                             "from the target.")
    rows = compare_prompts(target, tokenizer, task, data, student=student, source_prompt=args.source_prompt,
                           transferred_prompt=args.transferred_prompt, full_prompts=args.full_prompt,
                           batch_size=args.batch_size, progress=True)  # scored as the task says (accuracy, ROUGE)
    print(comparison_markdown(rows))
    if args.out:
        md, js = write_comparison(rows, args.out, {"task": task.name, "data": source,
                                                   "split": describe_split(source, args.split, "test"),
                                                   "n": len(data)})
        print(f"written: {md} and {js}")
    return 0
