"""`--push-to-hub org/name` for subcommands that save a student or a prompt.

A subcommand calls `add_hub_arguments(parser)` in `register` and `maybe_push(args, folder, kind)` after
saving. The token comes from HF_TOKEN or `hf auth login` (never a command-line flag: it would show in
the process list and shell history).
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ..errors import PeftTransferError
from ..hub_ids import hub_id_problem

if TYPE_CHECKING:
    from ..prompts.hub import PushResult

KINDS = ("prompt", "student")


def hub_repo_id(text: str) -> str:
    """An argparse type: 'org/name', checked when the command line is read (not after the work it pushes)."""
    problem = hub_id_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def add_hub_arguments(parser: argparse.ArgumentParser, push_flag: bool = True) -> None:
    """--push-to-hub (unless `push_flag` is False: `peft-transfer push` takes the repo as an argument),
    --hub-public and --hub-commit-message."""
    group = parser.add_argument_group("Hugging Face Hub")
    if push_flag:
        group.add_argument("--push-to-hub", metavar="ORG/NAME", type=hub_repo_id,
                           help="after saving, upload the result to this Hub repo (token: HF_TOKEN or `hf auth login`)")
    group.add_argument("--hub-public", action="store_true",
                       help="make a newly created Hub repo public (default: private)")
    group.add_argument("--hub-commit-message", help="commit message of the upload")


def maybe_push(args: argparse.Namespace, folder: str | os.PathLike, kind: str) -> PushResult | None:
    """Push `folder` (a saved `kind`: "prompt" or "student") when --push-to-hub was given; print where."""
    repo_id = getattr(args, "push_to_hub", None)
    if not repo_id or int(os.environ.get("RANK", "0")) != 0:  # under accelerate/torchrun only rank 0 pushes
        return None
    if kind not in KINDS:
        raise PeftTransferError(f"Cannot push a {kind!r}: only {' and '.join(KINDS)} folders go to the Hub.")
    from ..prompts.hub import push_prompt_to_hub, push_student_to_hub  # heavy (huggingface_hub, peft)

    push = push_prompt_to_hub if kind == "prompt" else push_student_to_hub
    result = push(folder, repo_id, private=not getattr(args, "hub_public", False),
                  commit_message=getattr(args, "hub_commit_message", None))
    print(f"Pushed the {kind} to {result.repo_url} ({len(result.files)} files)")
    if result.refused:
        print(f"Kept local (not part of a {kind} export): {', '.join(result.refused)}")
    return result
