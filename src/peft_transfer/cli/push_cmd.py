"""`peft-transfer push FOLDER ORG/NAME`: publish a saved student or prompt folder on the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import PeftTransferError
from .hub_args import add_hub_arguments, maybe_push


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="a saved prompt (adapter_config.json) or student (config.json) folder")
    parser.add_argument("repo_id", metavar="ORG/NAME", help="Hub repo to create or update")
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
    folder = Path(args.folder)
    if not folder.is_dir():
        raise PeftTransferError(f"{folder} is not a folder.")
    args.push_to_hub = args.repo_id
    maybe_push(args, folder, kind_of(folder))
    return 0
