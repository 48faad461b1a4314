"""`peft-transfer` command line: one subcommand per role, plus the whole pipeline.

Each subcommand lives in its own module with `register(parser)`; those modules import only the standard
library at load time (torch, transformers and peft are imported inside the command that runs), so
`--help` and argument errors answer at once. Every error the user can fix prints one line and exits with
status 2: argument errors (`_Parser.error`) and `PeftTransferError`s alike, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
import warnings

from ..errors import PeftTransferError, PeftTransferWarning
from .warning_filters import quiet_library_warnings

# module name -> help; each module defines register(parser) and sets `func` on it
COMMANDS = {
    "run": "the whole POST pipeline on the embedded model and data, or on your own tasks (the main job)",
    "evaluate": "accuracy and macro-F1 of a model, with or without a prompt, on a labelled set",
    "assets": "prepare or list the embedded model and data sets",
    "distill": "distil a small student from a teacher LM on public text (provider stage 1, resumable)",
    "compress": "a student in minutes: take out the layer blocks that matter least, drop or replace them (stage 1)",
    "audit": "LiRA membership-inference audit of the private prompt-tuning recipe (AUC, TPR, empirical ε)",
    "check-leaks": "fail when saved artifacts, logs or model cards contain private training text",
    "transfer": "transfer a soft prompt from the student to the target with public texts only (POST stage 3)",
    "compare": "the paper's comparison rows (ZS, FullPT, CompPT, Direct, POST) as a markdown + JSON table",
    "tune": "tune a soft prompt on private labelled data, optionally with (epsilon, delta)-DP (data owner, resumable)",
    "push": "publish a saved student or prompt folder on the Hugging Face Hub (model card included)",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks and appends each option's default (unless None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        hidden = default is None or default is False or default == argparse.SUPPRESS or default == []
        if "%(default)" in text or hidden or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> list[str]:
        """argparse's wrapping, except that a hyphenated value (a default such as linear-cos) stays whole."""
        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="peft-transfer", description="Private, portable soft prompts (POST).",
                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f".{name.replace('-', '_')}_cmd", __name__)
        description = textwrap.fill(getattr(module, "DESCRIPTION", help_text), 100)
        command = sub.add_parser(name, help=help_text, description=description, formatter_class=HelpFormatter)
        module.register(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argument error (2), already printed
        return int(exc.code or 0)
    quiet_library_warnings(getattr(args, "accountant", "prv"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", PeftTransferWarning)
            show = warnings.showwarning

            def one_line(message, category, *rest, **kw):  # the user's own input: one line, no source location
                if issubclass(category, PeftTransferWarning):
                    print(f"peft-transfer {args.command}: warning: {message}", file=sys.stderr)
                else:
                    show(message, category, *rest, **kw)

            warnings.showwarning = one_line
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
