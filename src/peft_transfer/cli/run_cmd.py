"""`peft-transfer run [config.yaml]`: the whole POST pipeline (the main job).

Defaults: the embedded SmolLM2-135M target, its distilled student (built once per machine), Rotten
Tomatoes as the private task, movie plot summaries as the public transfer set, ε ∈ {∞, 8}.
"""

from __future__ import annotations

import argparse


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="YAML file overriding the defaults (see examples/pipeline.yaml)")
    parser.add_argument("--quick", action="store_true", help="smoke run of a few minutes (numbers not meaningful)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/embedded, or runs/quick)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..pipeline.config import load_pipeline_config
    from ..pipeline.runner import run_pipeline

    config = load_pipeline_config(args.config, quick=args.quick)
    out = args.out or ("runs/quick" if args.quick else "runs/embedded")
    paths = run_pipeline(config, out)
    print(paths["md"].read_text())
    print("results: " + ", ".join(str(p) for p in paths.values() if p.exists()))
    return 0
