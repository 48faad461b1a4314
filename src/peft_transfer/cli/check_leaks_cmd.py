"""`peft-transfer check-leaks`: fail when a saved artifact, log or model card contains private training text."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import PeftTransferError
from .arg_types import positive_int

DESCRIPTION = ("Fail when a saved artifact, log or model card contains private training text: every file under "
               "the paths, also inside zip, tar, .gz, .bz2 and .xz files. Exit status: 0 no leak, 1 a leak found "
               "(listed), 2 the check could not run (bad input, or a file it cannot read), with one line saying why.")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="artifact folders, log files or model cards to scan")
    parser.add_argument("--data", required=True, help="the private training data: an embedded set name, a "
                                                      "csv/jsonl file or a saved datasets folder")
    parser.add_argument("--split", default=None, help="split of an embedded set or DatasetDict folder (default: train; "
                                                      "a single file is used whole)")
    parser.add_argument("--text-column", default="text", help="column of --data holding the private texts")
    parser.add_argument("--limit", type=positive_int, help="check only the first N training texts (default: all)")
    parser.add_argument("--ngram", type=positive_int, default=8,
                        help="flag any run of this many words of a training text")
    parser.add_argument("--min-chars", type=positive_int, default=20,
                        help="training texts shorter than NGRAM words are matched whole when at least this long")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        raise PeftTransferError(f"no such file or folder to scan: {', '.join(missing)}")
    # heavy (torch, transformers, datasets): imported when the command runs, so `--help` stays fast
    from ..assets.data_files import load_labelled
    from ..audit.leakage import find_leaks

    try:
        data = load_labelled(args.data, split=args.split, limit=args.limit, text_column=args.text_column)
        leaks = find_leaks(args.paths, data["text"], ngram=args.ngram, min_chars=args.min_chars)
    except PeftTransferError:
        raise
    except Exception as exc:  # noqa: BLE001 - exit status 1 means a leak: the check's own failure is 2, one line
        raise PeftTransferError(f"the scan could not finish ({type(exc).__name__}: {exc}); nothing was "
                                "checked.") from exc
    if not leaks:
        print(f"no leak: none of {len(data)} training texts (nor any {args.ngram}-word run of one) appears under "
              f"{', '.join(args.paths)}")
        return 0
    files = sorted({leak.path for leak in leaks})
    print(f"LEAK: {len(leaks)} training text(s) found in {len(files)} file(s):", file=sys.stderr)
    for leak in leaks:
        what = "whole text" if leak.kind == "string" else f"{args.ngram}-word run"
        print(f"  {leak.path}: text #{leak.text_index} sha256:{leak.text_hash} \"{leak.excerpt}\" ({what}, "
              f"{leak.view})", file=sys.stderr)
    return 1
