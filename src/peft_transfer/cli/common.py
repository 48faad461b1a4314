"""Argument helpers shared by subcommands."""

from __future__ import annotations

import argparse
import json

from ..errors import PeftTransferError
from ..task import ClassificationTask
from ..tasks import DEFAULT_TASKS, get_task


def add_task_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="rotten_tomatoes",
                        help=f"a default task ({', '.join(DEFAULT_TASKS)}) or a name for a custom task")
    parser.add_argument("--template", help="custom template with a {text} slot (and optionally {mask})")
    parser.add_argument("--label-words", help='custom label words as JSON, one list per class: \'[[" no"], [" yes"]]\'')


def task_from_args(args: argparse.Namespace) -> ClassificationTask:
    if args.template is None and args.label_words is None:
        return get_task(args.task)
    if args.template is None or args.label_words is None:
        raise PeftTransferError("A custom task needs both --template and --label-words.")
    try:
        words = json.loads(args.label_words)
    except json.JSONDecodeError as exc:
        raise PeftTransferError(f"--label-words is not valid JSON ({exc}); e.g. '[[\" no\"], [\" yes\"]]'") from exc
    return ClassificationTask(name=args.task, template=args.template, label_words=words)
