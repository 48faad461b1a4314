"""`peft-transfer run [config.yaml]`: the whole POST pipeline (the main job).

Defaults: the embedded SmolLM2-135M target, its student (the shipped one if installed, else compressed here
once per machine), Rotten Tomatoes as the private task, movie plot summaries as the public transfer set,
ε ∈ {∞, 8}. A YAML file overrides any setting and adds tasks of your own (`--print-config` writes every
key with its default).
"""

from __future__ import annotations

import argparse

from ..pipeline.config import load_pipeline_config
from ..pipeline.config_yaml import config_yaml, keys_help
from ..pipeline.validation import validate_config
from .out_folders import check_folders
from .references import check_model_ref

DESCRIPTION = ("The whole POST pipeline: make a student of the target (compressed, cached per machine), "
               "tune prompts on it with each task's private data at each ε, transfer them to the target with "
               "public text, and score ZS / FullPT / CompPT / Direct / POST. Resumable by stage; all settings are "
               "checked before any work.")


def register(parser: argparse.ArgumentParser) -> None:
    parser.epilog = keys_help()
    parser.add_argument("config", nargs="?", help="YAML file overriding the defaults (every key optional; see "
                                                  "--print-config)")
    parser.add_argument("--quick", action="store_true", help="smoke run at tiny sizes (numbers not meaningful)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/embedded, or runs/quick)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the full YAML config (defaults, --quick and the config file applied) and exit")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_pipeline_config(args.config, quick=args.quick)
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    validate_config(config)  # every setting, before the stages' libraries load (run_pipeline checks again)
    for key, name in (("target", config.target), ("student.path", config.student.path)):
        if name is not None:  # as the commands' model flags: no such path is refused at once, the Hub tried once
            check_model_ref(name, f"config key {key!r}:")
    out = args.out or ("runs/quick" if args.quick else "runs/embedded")
    check_folders(out, "run", pipeline_inputs(args.config, config))
    from ..pipeline.runner import run_pipeline  # heavy (every stage): imported when the pipeline runs

    paths = run_pipeline(config, out)  # validates every setting before anything loads
    print(paths["md"].read_text())
    print("results: " + ", ".join(str(p) for p in paths.values() if p.exists()))
    return 0


def pipeline_inputs(path: str | None, config) -> list[tuple[str, object]]:
    """The files and folders a run reads (the config file and the YAML's paths), which its --out must keep
    apart from."""
    inputs: list[tuple[str, object]] = [("the config file", path), ("config key 'target'", config.target),
                                        ("config key 'student.path'", config.student.path)]
    for i, task in enumerate(config.tasks):
        for key in ("data", "test_data", "public"):
            inputs.append((f"config key 'tasks[{i}].{key}'", getattr(task, key, None)))
    return inputs
