"""Provenance records carried by a transferable prompt: where it was tuned, how private it is, how it moved.

Each record is a small dataclass with `to_dict` / `from_dict` so it round-trips exactly through JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_TRACKED_LIBRARIES = (
    "peft-transfer", "torch", "transformers", "peft", "trl", "opacus", "datasets", "accelerate",
    "huggingface-hub", "safetensors",
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape a prompt's numbers (those installed)."""
    versions = {}
    for name in _TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def text_fingerprint(texts: Iterable[str]) -> str:
    """Content fingerprint of an ordered collection of texts (sha256 over length-prefixed UTF-8)."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return "sha256:" + digest.hexdigest()


class _Record:
    """JSON round trip for flat dataclasses; `inf` floats are stored as the string "inf". Fields named in
    `_omit_default` are left out while they hold their default (records written before they existed stay
    byte-identical)."""

    _omit_default: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)  # type: ignore[call-overload]
        defaults = {f.name: f.default for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in out.items()
                if not (k in self._omit_default and v == defaults[k])}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None):
        if data is None:
            return None
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown provenance keys {sorted(unknown)}")
        values = {k: (math.inf if v == "inf" else v) for k, v in data.items()}
        for key in ("kept_layers", "replacement_layers"):
            if key in values and values[key] is not None:
                values[key] = list(values[key])
        if values.get("removed_blocks") is not None:
            values["removed_blocks"] = [list(block) for block in values["removed_blocks"]]
        return cls(**values)


@dataclass
class StudentLineage(_Record):
    """How a student model was derived from its teacher."""

    teacher: str
    kept_layers: list[int]
    teacher_num_layers: int | None = None
    distillation_steps: int | None = None
    teacher_sha256: str | None = None  # weights_hash.state_dict_sha256 of the teacher (float32 state dict)
    corpus: str | None = None  # the public distillation corpus and its content fingerprint
    tokens_seen: int | None = None
    recipe: str | None = None  # distillation_recipes name, when one was used unchanged
    # compression without long training (distill/compress.py); None for students made by make_student alone
    method: str | None = None  # "drop", "linear-ls", "linear-cos" or "trained"
    removed_blocks: list[list[int]] | None = None  # [start, end) teacher layer ranges taken out
    calibration: str | None = None  # the public calibration text, its fingerprint and token count
    replacement_layers: list[int] | None = None  # student positions holding a trained replacement layer
    init_student: str | None = None  # the student folder a distillation (healing) started from

    _omit_default = ("method", "removed_blocks", "calibration", "replacement_layers", "init_student")


@dataclass
class TaskRecord(_Record):
    """The task a prompt was tuned for: template with a `{text}` slot and label words per class, or, for a
    generation task (`kind="generation"`, no label words), the target's length limit and stop string."""

    name: str
    template: str
    label_words: list[list[str]]
    class_names: list[str]
    kind: str = "classification"
    max_new_tokens: int | None = None
    stop: str | None = None

    _omit_default = ("kind", "max_new_tokens", "stop")


@dataclass
class DPRecord(_Record):
    """The differential-privacy guarantee of the prompt (post-processing keeps it through transfer)."""

    private: bool = False
    epsilon: float = math.inf
    delta: float = 0.0
    accountant: str | None = None
    noise_multiplier: float | None = None
    max_grad_norm: float | None = None
    sample_rate: float | None = None
    steps: int | None = None
    num_train_examples: int | None = None
    recorded: bool = True  # False: the prompt came without a DP record (tuned elsewhere); no guarantee is claimed

    _omit_default = ("recorded",)

    @classmethod
    def not_private(cls, num_train_examples: int | None = None) -> DPRecord:
        return cls(private=False, num_train_examples=num_train_examples)

    @classmethod
    def unrecorded(cls) -> DPRecord:
        """A prompt from another tool (no provenance): treated as not private, and marked as such."""
        return cls(private=False, recorded=False)


@dataclass
class TransferRecord(_Record):
    """How a prompt was transferred (POST) from the model it was tuned on to the target."""

    source_model: str
    public_dataset: str
    public_fingerprint: str
    num_public_examples: int
    alpha: float
    temperature: float
    steps: int
    learning_rate: float
    seed: int
    final_loss: float | None = None
    public_agreement: float | None = None
    alpha_source: str | None = None  # None: set by the provider without labels; else how α was chosen
    distilled_positions: str | None = None  # where the POST terms were taken, when not the label position alone
    loss_over: str = "vocab"  # what the KL terms compared: the whole vocabulary, or the class scores only

    _omit_default = ("distilled_positions", "loss_over")
