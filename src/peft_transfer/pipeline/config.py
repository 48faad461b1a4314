"""`PipelineConfig`: what `peft-transfer run` does, from defaults, a YAML file and `--quick`.

Unknown keys and wrong types in the YAML file are errors that name the key (a typo must not silently
fall back to a default).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..distillation_recipes import DEFAULT_RECIPE
from ..errors import PeftTransferError


@dataclass
class StudentSettings:
    """The student: an existing folder (`path`); else the student shipped with the package for the target
    (`source: auto` or `shipped`), else one distilled from the target once per machine (`auto` or `distill`)."""

    path: str | None = None
    source: str = "auto"  # auto | shipped | distill
    keep_layers: list[int] = field(default_factory=lambda: [0, 1, 28, 29])
    corpus: str = "wikipedia+movie_plots+lee_news+guardian_headlines"
    recipe: str = DEFAULT_RECIPE  # distillation_recipes.RECIPES
    max_steps: int = 130
    batch_size: int = 8
    block_size: int = 128
    learning_rate: float = 5e-4


@dataclass
class TuneSettings:
    """Prompt tuning on private data (the data owner's stage; also FullPT on the target)."""

    num_virtual_tokens: int = 20
    max_steps: int = 50
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_grad_norm: float = 1.0
    train_examples: int | None = 2000


@dataclass
class TransferSettings:
    """POST transfer on public, unlabelled text."""

    num_public: int = 200
    max_public_words: int | None = 48  # cut each public text to its first N words (cost grows with length)
    max_steps: int = 50
    batch_size: int = 8
    learning_rate: float = 1e-3
    alpha: float | None = 0.5  # None: the paper's heuristic (Eq. 6) from ZS and CompPT accuracy
    temperature: float = 2.0


@dataclass
class PipelineConfig:
    """Everything one run needs; defaults: 22 min on 2 cores once the student exists (results/embedded_run.md)."""

    target: str = "smollm2-135m"
    tasks: list[str] = field(default_factory=lambda: ["rotten_tomatoes"])
    public_sets: dict[str, str] = field(default_factory=lambda: {
        "rotten_tomatoes": "movie_plots", "bbc_news": "guardian_headlines", "bbc_titles": "lee_news"})
    epsilons: list[float] = field(default_factory=lambda: [math.inf, 8.0])
    test_examples: int | None = 300
    full_pt: bool = True
    seed: int = 0
    student: StudentSettings = field(default_factory=StudentSettings)
    tune: TuneSettings = field(default_factory=TuneSettings)
    transfer: TransferSettings = field(default_factory=TransferSettings)

    def fingerprint(self, *parts: str) -> str:
        """Hash of the settings a stage depends on (`parts` name top-level fields; none = everything)."""
        data = dataclasses.asdict(self)
        if parts:
            data = {k: data[k] for k in parts}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def quick(cls) -> PipelineConfig:
        """A smoke run of a few minutes: tiny sizes everywhere, numbers not meaningful."""
        return cls(
            epsilons=[math.inf, 8.0], test_examples=48, full_pt=True,
            student=StudentSettings(max_steps=10, batch_size=4, block_size=64),
            tune=TuneSettings(max_steps=8, batch_size=8, train_examples=200),
            transfer=TransferSettings(num_public=24, max_steps=8, batch_size=4),
        )


STUDENT_SOURCES = ("auto", "shipped", "distill")


def _check(value, hint, key: str):
    """Validate `value` against a type hint; returns the (converted) value or raises naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check(value, option, key)
            except PeftTransferError as exc:
                errors.append(str(exc))
        raise PeftTransferError(errors[0])
    if origin is list:
        if not isinstance(value, list):
            raise PeftTransferError(f"config key {key!r} must be a list, got {value!r}")
        (inner,) = typing.get_args(hint)
        return [_check(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise PeftTransferError(f"config key {key!r} must be a mapping, got {value!r}")
        _, inner = typing.get_args(hint)
        return {str(k): _check(v, inner, f"{key}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, str) and value.lower() in ("inf", "infinity", ".inf"):
            return math.inf
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PeftTransferError(f"config key {key!r} must be a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PeftTransferError(f"config key {key!r} must be an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise PeftTransferError(f"config key {key!r} must be true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise PeftTransferError(f"config key {key!r} must be a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    raise TypeError(hint)


def _build(cls, values, prefix: str = ""):
    if not isinstance(values, dict):
        raise PeftTransferError(f"config section {prefix or 'top level'!r} must be a mapping, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        where = f" in section {prefix!r}" if prefix else ""
        raise PeftTransferError(f"unknown config key {unknown[0]!r}{where}; known keys: {sorted(names)}")
    kwargs = {k: _check(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in values.items()}
    return cls(**kwargs)


def load_pipeline_config(path: str | Path | None = None, quick: bool = False) -> PipelineConfig:
    """Defaults (or the `--quick` preset), overridden by the YAML file at `path` if given."""
    base = PipelineConfig.quick() if quick else PipelineConfig()
    if path is None:
        return base
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise PeftTransferError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise PeftTransferError(f"config file {path} is not valid YAML: {exc}") from exc
    merged = dataclasses.asdict(base)
    if not isinstance(values, dict):
        raise PeftTransferError(f"config file {path} must hold a mapping of keys to values")
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and key != "public_sets":
            unknown = sorted(set(value) - set(merged[key]))
            if unknown:
                raise PeftTransferError(f"unknown config key {unknown[0]!r} in section {key!r}; "
                                        f"known keys: {sorted(merged[key])}")
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    config = _build(PipelineConfig, merged)
    if config.student.source not in STUDENT_SOURCES:
        raise PeftTransferError(f"config key 'student.source' must be one of {list(STUDENT_SOURCES)}, got "
                                f"{config.student.source!r}")
    return config
