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

from ..distill.recipes import DEFAULT_RECIPE
from ..errors import PeftTransferError, warn_user
from ..tasks.defaults import DEFAULT_TASKS


def _setting(default, help: str, factory=None):
    """A config field with its YAML help (shown by `peft-transfer run --help` and `--print-config`)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class StudentSettings:
    """The student: an existing folder (`path`); else the student shipped with the package for the target
    (`source: auto` or `shipped`), else one built from the target once per machine: compressed without
    training (`auto` or `compress`: `layers` of the target's layers kept, the removed block chosen on public
    `calibration` text and replaced by `method`) or distilled (`distill`: `keep_layers`, `corpus`, `recipe`)."""

    path: str | None = _setting(None, "an existing student folder; null: see source")
    source: str = _setting("auto", "with no path: auto = the student shipped with peft-transfer for the target if "
                                   "installed, else compress one here (cached); shipped = insist on it; compress "
                                   "= always compress here (minutes, no training); distill = distil here (KD)")
    keep_layers: list[int] | None = _setting(None, "target layers the student keeps; null: the paper's rule, the "
                                                   "first 2 and last 2 of the target's layers")
    corpus: str = _setting("wikipedia+movie_plots+lee_news+guardian_headlines", "public text to distil on (sets, "
                                                                                "files or folders joined by +)")
    recipe: str = _setting(DEFAULT_RECIPE, "distillation recipe (peft_transfer/distillation_recipes.py)")
    max_steps: int = _setting(130, "distillation steps")
    batch_size: int = _setting(8, "blocks per distillation step")
    block_size: int = _setting(128, "tokens per block")
    learning_rate: float = _setting(5e-4, "AdamW peak learning rate")
    layers: int | None = _setting(None, "compressed student: how many of the target's layers it keeps; null: two "
                                        "thirds (20 of 30)")
    method: str = _setting("linear-cos", "compressed student: drop, linear-ls, linear-cos or trained (what replaces "
                                         "the removed block; `peft-transfer compress --help`)")
    calibration: str = _setting("lee_news+movie_plots+guardian_headlines", "compressed student: public text the "
                                                                           "block is chosen and its replacement "
                                                                           "fitted on")
    calibration_tokens: int = _setting(20000, "compressed student: tokens of calibration text")


@dataclass
class TuneSettings:
    """Prompt tuning on private data (the data owner's stage; also FullPT on the target)."""

    num_virtual_tokens: int = _setting(4, "soft prompt length (4: the DP plan's; as good as 20 without DP, "
                                          "benchmarks/results/dp_levers.md)")
    max_steps: int = _setting(16, "tuning steps")
    batch_size: int = _setting(128, "logical batch size")
    learning_rate: float = _setting(1e-2, "Adam learning rate")
    max_length: int | None = _setting(64, "tokens per training example while tuning (longer texts are cut; "
                                          "evaluation keeps the task's own limit); null: the task's limit")
    max_grad_norm: float = _setting(1.0, "per-example clip norm under DP")
    train_examples: int | None = _setting(None, "use this many training examples (shuffled); null: all")
    budget_examples: int | None = _setting(None, "examples processed per tuning stage (steps x batch), DP or not; "
                                                 "null: max_steps x batch_size, and under the DP plan at least "
                                                 "4,096 (dp_plan.MIN_BUDGET: DP needs more examples to learn)")
    dp_plan: bool = _setting(True, "under DP, spend that budget as peft_transfer.tune.dp_plan plans it (large Poisson "
                                   "batches, fewer steps, its learning rate, micro-batches): the noise per step falls "
                                   "~1/batch; false: batch_size, max_steps and learning_rate as given")


@dataclass
class TransferSettings:
    """POST transfer on public, unlabelled text."""

    num_public: int = _setting(256, "public texts used for the transfer")
    max_public_words: int | None = _setting(48, "cut each public text to its first N words; null: whole texts")
    max_steps: int = _setting(100, "transfer steps")
    batch_size: int = _setting(8, "public texts per step")
    learning_rate: float = _setting(1e-2, "Adam learning rate")
    alpha: float = _setting(0.5, "POST's alpha in [0, 1], set without labels (Eq. 6 needs labelled data: see "
                                 "eq6_alpha_oracle)")
    prompt_init: str = _setting("source", "start p_t as a copy of p_s (source; same hidden size only) or from the "
                                          "embeddings of p_s's init text (text)")
    temperature: float = _setting(2.0, "softmax temperature of the KL terms")
    loss_over: str = _setting("vocab", "what the KL terms compare: vocab = the whole vocabulary at the label position "
                                       "(the paper), classes = the task's class scores only (single-token label "
                                       "words)")


@dataclass
class TaskSettings:
    """A task of your own (an entry of `tasks` written as a mapping): its data, the cloze that reads it, and
    the public set its prompts are transferred with."""

    name: str = _setting(None, "the task's name (its folder and row in the results)")
    data: str = _setting(None, "labelled data: a csv/jsonl/json/parquet file or a save_to_disk folder (Dataset or "
                               "DatasetDict); labels as class indices or class names")
    template: str = _setting(None, "the cloze, with a {text} slot, e.g. 'Review: {text}\\nSentiment:'")
    label_words: list[list[str] | str] = _setting(None, "label words per class in label order, each a single token "
                                                        "with its leading space, e.g. [[' no'], [' yes']]")
    public: str = _setting(None, "public unlabelled texts for the transfer: an embedded set, a file or a folder")
    class_names: list[str] | None = _setting(None, "class names in label order; null: the label words")
    text_column: str = _setting("text", "column holding the text")
    label_column: str = _setting("label", "column holding the label")
    train_split: str = _setting("train", "split of a DatasetDict used for training")
    test_split: str = _setting("test", "split of a DatasetDict used for testing (when it has one)")
    test_data: str | None = _setting(None, "separate labelled test data (file or folder); null: the test split, "
                                           "else the split rule")
    test_size: float = _setting(0.2, "split rule when there is no test set: hold out this fraction (< 1) or this "
                                     "many examples (>= 1), stratified by label, seeded with `seed`")
    max_length: int = _setting(256, "tokens per example (template included; longer texts are cut)")


EMBEDDED_TASK_NAMES = tuple(DEFAULT_TASKS)


@dataclass
class PipelineConfig:
    """Everything one run needs; defaults: 28 min on 2 cores, student build included (results/embedded_run.md)."""

    target: str = _setting("smollm2-135m", "the large model: embedded name, local folder, .gguf file or Hub id")
    tasks: list[str | TaskSettings] = _setting(None, "embedded task names (rotten_tomatoes, bbc_news; "
                                                     "bbc_titles: generation, ROUGE-L) and/or your own tasks as "
                                                     "mappings (example below)",
                                               factory=lambda: ["rotten_tomatoes"])
    public_sets: dict[str, str] = _setting(None, "public set of each embedded task", factory=lambda: {
        "rotten_tomatoes": "movie_plots", "bbc_news": "guardian_headlines", "bbc_titles": "lee_news"})
    epsilons: list[float] = _setting(None, "privacy levels ε to run (inf: no DP)", factory=lambda: [math.inf, 8.0])
    test_examples: int | None = _setting(300, "score the first N test examples; null: all")
    full_pt: bool = _setting(True, "also tune a prompt on the target (the FullPT upper bound)")
    eq6_alpha_oracle: bool = _setting(False, "evaluation-side baseline, not POST: also transfer with Eq. 6's alpha "
                                             "from ZS and CompPT on the labelled test set (which the provider does "
                                             "not hold), reported as the row POST-oracle-α")
    seed: int = _setting(0, "seed of data order, subsets and splits (never of the DP noise)")
    precision: str = _setting("auto", "training precision of tuning, transfer and FullPT: auto = bfloat16 where the "
                                      "hardware runs it fast (AVX512-BF16/AMX CPUs, bf16 GPUs), else fp32; bf16; "
                                      "fp32 (evaluation is always fp32)")
    student: StudentSettings = _setting(None, "the student", factory=StudentSettings)
    tune: TuneSettings = _setting(None, "prompt tuning", factory=TuneSettings)
    transfer: TransferSettings = _setting(None, "POST transfer", factory=TransferSettings)

    def fingerprint(self, *parts: str) -> str:
        """Hash of the settings a stage depends on (`parts` name top-level fields; none = everything)."""
        data = dataclasses.asdict(self)
        if parts:
            data = {k: data[k] for k in parts}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def task_names(self) -> list[str]:
        return [t if isinstance(t, str) else t.name for t in self.tasks]

    @classmethod
    def quick(cls) -> PipelineConfig:
        """A smoke run: tiny sizes everywhere (the student is still built at full size once), numbers not meaningful."""
        return cls(
            epsilons=[math.inf, 8.0], test_examples=48, full_pt=True,
            student=StudentSettings(max_steps=10, batch_size=4, block_size=64, calibration_tokens=4096),
            tune=TuneSettings(max_steps=8, batch_size=8, train_examples=200, budget_examples=64),
            transfer=TransferSettings(num_public=24, max_steps=8, batch_size=4),
        )


STUDENT_SOURCES = ("auto", "shipped", "distill", "compress")


def _check(value, hint, key: str):
    """Validate `value` against a type hint; returns the (converted) value or raises naming `key`."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        mapping = [o for o in options if dataclasses.is_dataclass(o)]
        if isinstance(value, dict) and mapping:  # a mapping can only mean the dataclass option: report its errors
            return _build(mapping[0], value, key)
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
    for f in dataclasses.fields(cls):  # a field defaulting to None whose type does not allow None is required
        if f.name not in kwargs and f.default is None and type(None) not in typing.get_args(hints[f.name]):
            where = f"{prefix}.{f.name}" if prefix else f.name
            raise PeftTransferError(f"config key {where!r} is required ({f.metadata.get('help', '')})")
    return cls(**kwargs)


def load_pipeline_config(path: str | Path | None = None, quick: bool = False) -> PipelineConfig:
    """Defaults (or the `--quick` preset), overridden by the YAML file at `path` if given."""
    base = PipelineConfig.quick() if quick else PipelineConfig()
    if path is None:
        return base
    try:
        values = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise PeftTransferError(f"config file {path} does not exist") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PeftTransferError(f"config file {path} is not valid YAML{where}: {problem}") from None
    if values is None or values == {}:  # an empty file (or comments only): legal, but rarely what was meant
        warn_user(f"empty run config {path}, running the defaults{' of --quick' if quick else ''} (see "
                  "`peft-transfer run --print-config` for the keys).")
        values = {}
    merged = dataclasses.asdict(base)
    if not isinstance(values, dict):
        raise PeftTransferError(f"config file {path} must hold a mapping of keys to values")
    if isinstance(values.get("transfer"), dict) and "alpha" in values["transfer"] \
            and values["transfer"]["alpha"] is None:
        raise PeftTransferError("transfer.alpha must be a number: the provider's transfer uses no labelled data, so "
                                "it cannot apply Eq. 6. Set eq6_alpha_oracle: true for Eq. 6 as an evaluation-side "
                                "baseline row.")
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
