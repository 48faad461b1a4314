"""`peft-transfer compare`: the paper's rows (ZS, FullPT, CompPT, Direct, POST) on one labelled set."""

from __future__ import annotations

import argparse

from .common import add_task_arguments, task_from_args


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default="smollm2-135m", help="target model (embedded name, folder or Hub id)")
    parser.add_argument("--student", help="the student p_s was tuned on (for CompPT)")
    parser.add_argument("--source-prompt", help="p_s (for CompPT and Direct)")
    parser.add_argument("--transferred-prompt", help="p_t from `peft-transfer transfer` (POST)")
    parser.add_argument("--full-prompt", action="append", default=[],
                        help="a prompt tuned on the target with the private data (FullPT); repeat for DP/non-DP")
    add_task_arguments(parser)
    parser.add_argument("--data", help="labelled test data (default: the task's embedded set)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="score only the first N examples")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", help="folder for comparison.md and comparison.json")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..assets import load_model
    from ..comparison import compare_prompts, comparison_markdown, write_comparison
    from ..data_files import load_labelled

    task = task_from_args(args)
    data = load_labelled(args.data or task.name, split=args.split, limit=args.limit)
    target, tokenizer = load_model(args.target)
    student = load_model(args.student)[0] if args.student else None
    if task.kind == "generation":  # the same rows, scored by ROUGE
        from ..generation_compare import compare_generation_prompts, generation_markdown, write_generation_comparison

        compare, comparison_markdown, write_comparison = (compare_generation_prompts, generation_markdown,
                                                          write_generation_comparison)
    else:
        compare = compare_prompts
    rows = compare(target, tokenizer, task, data, student=student, source_prompt=args.source_prompt,
                   transferred_prompt=args.transferred_prompt, full_prompts=args.full_prompt,
                   batch_size=args.batch_size, progress=True)
    print(comparison_markdown(rows))
    if args.out:
        md, js = write_comparison(rows, args.out, {"task": task.name, "data": args.data or task.name,
                                                   "split": args.split, "n": len(data)})
        print(f"written: {md} and {js}")
    return 0
