"""`peft-transfer assets`: convert the embedded model once and list what is embedded."""

from __future__ import annotations

import argparse

from ..assets.embedded import EMBEDDED_MODELS


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["prepare", "list"], nargs="?", default="list",
                        help="list: name the embedded model and data sets; prepare: convert the embedded model to "
                             "safetensors once (otherwise done on first use) (default: list)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # heavy (datasets, torch, transformers): imported when the command runs, so `--help` stays fast
    from ..assets.data import PRIVATE_DATASETS, PUBLIC_TEXT_SETS
    from ..assets.models import embedded_model_path

    if args.action == "prepare":
        for name in EMBEDDED_MODELS:
            print(f"{name}: {embedded_model_path(name)}")
        return 0
    for name, spec in EMBEDDED_MODELS.items():
        print(f"model  {name:20s} {spec.description}")
    for name in PRIVATE_DATASETS:
        print(f"task   {name}")
    for name in PUBLIC_TEXT_SETS:
        print(f"public {name}")
    return 0
