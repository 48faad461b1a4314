"""A `PipelineConfig` as commented YAML (`peft-transfer run --print-config`) and the list of its keys
(`peft-transfer run --help`), both from the fields' help texts."""

from __future__ import annotations

import dataclasses
import json
import math

import yaml

from .config import PipelineConfig, TaskSettings

_EXAMPLE_TASK = TaskSettings(name="my_reviews", data="my_reviews.csv", template="Review: {text}\nSentiment:",
                             label_words=[[" negative"], [" positive"]], public="movie_plots")


def _value(value) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    text = text.removesuffix("...").strip()
    return json.dumps(value, ensure_ascii=False) if "\n" in text else text  # JSON is YAML, on one line


def _lines(obj, indent: str = "") -> list[str]:
    out = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        comment = f"  # {f.metadata['help']}" if f.metadata.get("help") else ""
        if dataclasses.is_dataclass(value):
            out.append(f"{indent}{f.name}:{comment}")
            out.extend(_lines(value, indent + "  "))
        elif f.name == "tasks":
            out.append(f"{indent}{f.name}:{comment}")
            out.extend(f"{indent}  - {_value(t)}" for t in value)
        elif f.name == "epsilons":
            out.append(f"{indent}{f.name}: [{', '.join(_value(e) for e in value)}]{comment}")
        else:
            out.append(f"{indent}{f.name}: {_value(value)}{comment}")
    return out


def config_yaml(config: PipelineConfig | None = None) -> str:
    """Every setting of `config` (default: the defaults) as YAML that `load_pipeline_config` reads back."""
    config = config or PipelineConfig()
    task = ["# A task of your own is a mapping in `tasks` (the same fields as the `tune` flags), e.g.:",
            "#   tasks:", "#     - rotten_tomatoes"]
    for i, f in enumerate(dataclasses.fields(TaskSettings)):
        value = getattr(_EXAMPLE_TASK, f.name)
        task.append(f"#     {'- ' if i == 0 else '  '}{f.name}: {_value(value)}  # {f.metadata['help']}")
    head = ["# peft-transfer run config: every key is optional; unknown keys are errors."]
    return "\n".join(head + _lines(config) + task) + "\n"


def keys_help() -> str:
    """The YAML keys with their defaults, for `run --help`."""
    return "YAML keys and defaults (write them all with --print-config):\n" + "\n".join(
        "  " + line for line in config_yaml().splitlines()[1:])
