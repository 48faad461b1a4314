"""Argument helpers shared by subcommands: the task (or the prompt's own) and the output folder."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from ..errors import PeftTransferError
from ..precision import PRECISIONS
from ..tasks.classification import ClassificationTask  # light: no torch until a task is tokenized
from ..tasks.defaults import DEFAULT_TASKS, get_task, task_from_record
from ..tasks.template_escapes import typed_template

DEFAULT_TASK = "rotten_tomatoes"
EMBEDDED_TASKS = ", ".join(DEFAULT_TASKS)


def add_task_arguments(parser: argparse.ArgumentParser, prompt_flags: str | None = None, data: bool = True) -> None:
    """--task, --template, --label-words; with `prompt_flags` (the flags naming prompts) the default task is
    the one recorded in those prompts, and --force-task lets a differing --task through with a warning.
    `data`: the command has a --data flag whose embedded set names the default task."""
    default = f"the task of an embedded --data, else {DEFAULT_TASK}"
    if prompt_flags:
        default = f"the task recorded in {prompt_flags}" + (f", else {default}" if data else "")
    parser.add_argument("--task", default=None,
                        help=f"an embedded task ({EMBEDDED_TASKS}), or the name of your own task given with "
                             f"--template and --label-words (default: {default})")
    parser.add_argument("--template", help="your own task's template, with a {text} slot, e.g. "
                                           "'Review: {text}\\nSentiment:' (\\n and \\t in it are a newline and "
                                           "a tab, as in the pipeline's YAML; \\\\ is one backslash)")
    parser.add_argument("--label-words", help='your own task\'s label words as JSON, one list per class in label '
                                              'order, e.g. \'[[" no"], [" yes"]]\'')
    if prompt_flags:
        parser.add_argument("--force-task", action="store_true",
                            help=f"score with --task even when {prompt_flags} was tuned for another task "
                                 "(prints a warning)")


def add_precision_argument(parser: argparse.ArgumentParser) -> None:
    """--precision, for the commands that train (tune, transfer): `peft_transfer.precision`."""
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="training precision: auto = bfloat16 where the hardware runs it fast (AVX512-BF16/AMX "
                             "CPUs, bf16 GPUs), else fp32 (default: auto)")


def add_column_arguments(parser: argparse.ArgumentParser) -> None:
    """--text-column and --label-column: the columns of --data that `data_files.load_labelled` reads."""
    parser.add_argument("--text-column", default="text", help="column of --data holding the texts")
    parser.add_argument("--label-column", default=None, help="column of --data holding the labels (class indices or "
                                                             "class names; a generation task's target texts) "
                                                             "(default: label, or target for a generation task)")


def column_options(args: argparse.Namespace) -> dict[str, str | None]:
    """The `load_labelled` keywords that --text-column and --label-column give."""
    return {"text_column": args.text_column, "label_column": args.label_column}


def explicit_task(args: argparse.Namespace):
    """The task the flags name, or None when no task flag was given."""
    if args.template is None and args.label_words is None:
        return None if args.task is None else get_task(args.task)
    if args.template is None or args.label_words is None:
        raise PeftTransferError("A custom task needs both --template and --label-words.")
    try:
        words = json.loads(args.label_words)
    except json.JSONDecodeError as exc:
        raise PeftTransferError(f"--label-words is not valid JSON ({exc}); e.g. '[[\" no\"], [\" yes\"]]'") from exc
    if not isinstance(words, list):
        raise PeftTransferError("--label-words must be a JSON list with one entry per class, e.g. "
                                "'[[\" no\"], [\" yes\"]]'")
    return ClassificationTask(name=args.task or "custom", template=typed_template(args.template), label_words=words)


def task_from_args(args: argparse.Namespace, prompts: list[str | None] = (), default: str | None = None):
    """The task to use: the flags' task, else the task recorded in `prompts`, else `default` (an embedded task
    name; when it is no task name, e.g. a data file, the default task).

    A flags' task whose template or label words differ from a prompt's recorded task is refused (scoring a
    prompt through another task's template gives a plausible, meaningless number) unless --force-task.
    """
    given = explicit_task(args)
    recorded = []
    for path in (p for p in prompts if p):
        from ..prompts.config import TransferablePromptConfig  # heavy (peft): only when a prompt is named

        record = TransferablePromptConfig.from_pretrained(path).task
        if record is not None:
            recorded.append((path, record))
    if given is None:
        if not recorded:
            return get_task(default if default in DEFAULT_TASKS else DEFAULT_TASK)
        first_path, first = recorded[0]
        for path, record in recorded[1:]:
            if not _same(first, record):
                raise PeftTransferError(f"the prompts were tuned for different tasks: {first_path} for "
                                        f"{_describe(first)}, {path} for {_describe(record)}; score them separately.")
        return task_from_record(first)
    for path, record in recorded:
        if not _same(given.record(), record):
            message = (f"the prompt {path} was tuned for task {_describe(record)}, not {_describe(given.record())}")
            if not getattr(args, "force_task", False):
                raise PeftTransferError(f"{message}. Omit --task/--template/--label-words to use the prompt's own "
                                        "task, or add --force-task to score it this way anyway.")
            print(f"WARNING: {message}; scoring it with --task anyway (--force-task).", file=sys.stderr)
    return given


def _same(a, b) -> bool:
    return a.template == b.template and [list(w) for w in a.label_words] == [list(w) for w in b.label_words]


def _describe(record) -> str:
    return f"{record.name!r} (template {record.template!r}, label words {record.label_words})"


def check_out_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Refuse, before any work, an output folder that is an existing file or cannot be created or written.

    Writes and removes a probe file (permission bits say nothing for root); folders created for the probe
    are removed again, so a command refused later leaves nothing behind.
    """
    if not str(path).strip():
        raise PeftTransferError(f"{flag} is empty: give the folder to write, e.g. {flag} runs/out.")
    out = Path(path).expanduser()
    if out.exists() and not out.is_dir():
        raise PeftTransferError(f"{flag} {path} is an existing file, not a folder; choose a folder path.")
    missing = []
    folder = out.absolute()
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    if not folder.is_dir():
        raise PeftTransferError(f"{flag} {path}: {folder} is a file, so the folder cannot be created there.")
    try:
        for new in reversed(missing):
            new.mkdir()
        fd, probe = tempfile.mkstemp(prefix=".peft-transfer-probe-", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PeftTransferError(f"{flag} {path}: cannot write there ({exc.strerror or exc}); choose another "
                                "folder.") from None
    finally:
        for new in missing:
            with contextlib.suppress(OSError):
                new.rmdir()
    return out
