"""`peft-transfer` command line: one subcommand per role, plus the whole pipeline.

Each subcommand lives in its own module with `register(subparsers)`; errors the user can fix
(`PeftTransferError`) print one line, without a traceback, and exit with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import PeftTransferError

# module name -> help; each module defines register(subparsers) and sets `func` on its parser
COMMANDS = {
    "run": "the whole POST pipeline on the embedded model and data (the main job)",
    "evaluate": "accuracy and macro-F1 of a model, with or without a prompt, on a labelled set",
    "assets": "prepare or list the embedded model and data sets",
    "distill": "distil a small student from a teacher LM on public text (provider stage 1, resumable)",
    "audit": "LiRA membership-inference audit of the private prompt-tuning recipe (AUC, TPR, empirical ε)",
    "check-leaks": "fail when saved artifacts, logs or model cards contain private training text",
    "transfer": "transfer a soft prompt from the student to the target with public texts only (POST stage 3)",
    "compare": "the paper's comparison rows (ZS, FullPT, CompPT, Direct, POST) as a markdown + JSON table",
    "tune": "tune a soft prompt on private labelled data, optionally with (epsilon, delta)-DP (data owner, resumable)",
    "push": "publish a saved student or prompt folder on the Hugging Face Hub (model card included)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peft-transfer", description="Private, portable soft prompts (POST).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f".{name.replace('-', '_')}_cmd", __name__)
        module.register(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except PeftTransferError as exc:
        print(f"peft-transfer {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"peft-transfer {args.command}: interrupted; finished stages are kept, run again to resume.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
