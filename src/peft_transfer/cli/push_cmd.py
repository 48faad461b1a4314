"""`peft-transfer push FOLDER ORG/NAME`: publish a saved student or prompt folder on the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..assets.shipped_students import shipped_student
from ..errors import PeftTransferError
from .hub_args import add_hub_arguments, hub_repo_id, maybe_push


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a saved prompt (adapter_config.json) or student (config.json) folder, or "
                                       "the name of a shipped student (smollm2-135m-student: its reassembled folder)")
    parser.add_argument("repo_id", metavar="ORG/NAME", type=hub_repo_id, help="Hub repo to create or update")
    add_hub_arguments(parser, push_flag=False)
    parser.set_defaults(func=run)


def kind_of(folder: Path) -> str:
    if (folder / "adapter_config.json").is_file():
        return "prompt"
    if (folder / "config.json").is_file():
        return "student"
    raise PeftTransferError(f"{folder} holds neither a saved prompt (adapter_config.json) nor a saved model "
                            "(config.json): pass the folder that `tune`, `transfer` or `distill` wrote.")


def run(args: argparse.Namespace) -> int:
    from ..assets.models import shipped_student_path  # heavy (torch, transformers): only when it runs

    folder = Path(args.folder)
    if not folder.exists() and shipped_student(args.folder) is not None:
        folder = shipped_student_path(args.folder)  # the standard folder: weights, tokenizer, card
    if not folder.is_dir():
        raise PeftTransferError(f"{folder} is not a folder.")
    args.push_to_hub = args.repo_id
    maybe_push(args, folder, kind_of(folder))
    return 0
