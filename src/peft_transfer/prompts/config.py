"""`TransferablePromptConfig`: a stock PROMPT_TUNING adapter config that also carries the prompt's provenance.

PEFT's `PeftType` is a closed enum, so a new adapter *type* cannot be registered; and unknown keys in
`adapter_config.json` make stock PEFT warn. The config therefore saves as a plain PROMPT_TUNING adapter
(`adapter_config.json` + `adapter_model.safetensors`, loadable by stock `PeftModel.from_pretrained`
without this plugin and without warnings) and writes the provenance to a sidecar file,
`prompt_provenance.json`, which `TransferablePromptConfig.from_pretrained` reads back exactly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from huggingface_hub import hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
from peft import PromptTuningConfig
from peft.utils import CONFIG_NAME

from ..errors import PeftTransferError
from ..provenance import DPRecord, StudentLineage, TaskRecord, TransferRecord, library_versions

PROVENANCE_NAME = "prompt_provenance.json"
PROVENANCE_FORMAT = 1
_PROVENANCE_FIELDS = ("tuned_on", "base_model_weights", "vocabulary", "student", "task", "dp", "transfer",
                      "library_versions")
_RECORD_TYPES = {"student": StudentLineage, "task": TaskRecord, "dp": DPRecord, "transfer": TransferRecord}


@dataclass
class TransferablePromptConfig(PromptTuningConfig):
    """A `PromptTuningConfig` with provenance.

    `base_model_name_or_path` names the model the prompt is *for*; `tuned_on` the model it was tuned on
    (the student for a prompt before transfer, or the same model). `base_model_weights` is a fingerprint of the
    weights of the model the prompt was made on, the one it is for (`weights_hash.weights_fingerprint`: transfer
    refuses another student) and `vocabulary` one of that model's tokenizer (`vocabulary.vocabulary_fingerprint`:
    scoring the prompt through another tokenizer warns). `student` is the lineage of the model it was tuned on
    when that is a distilled student; `dp` its privacy guarantee; `transfer` how it was moved to its current
    target (None before transfer).
    """

    tuned_on: str | None = field(default=None, metadata={"help": "Model the prompt was tuned on."})
    base_model_weights: str | None = field(default=None, metadata={"help": "Fingerprint of the base model."})
    vocabulary: str | None = field(default=None, metadata={"help": "Fingerprint of the prompt's tokenizer."})
    student: StudentLineage | None = field(default=None, metadata={"help": "Lineage of the tuning model."})
    task: TaskRecord | None = field(default=None, metadata={"help": "Task template and label words."})
    dp: DPRecord = field(default_factory=DPRecord, metadata={"help": "Differential-privacy record."})
    transfer: TransferRecord | None = field(default=None, metadata={"help": "POST transfer record."})
    library_versions: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        super().__post_init__()
        for name, record_type in _RECORD_TYPES.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, record_type.from_dict(value))

    # -- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The stock `PromptTuningConfig` fields only (what goes into adapter_config.json)."""
        stock = {f.name for f in dataclasses.fields(PromptTuningConfig)}
        return {k: v for k, v in super().to_dict().items() if k in stock}

    def provenance_dict(self) -> dict[str, Any]:
        """Provenance fields as plain JSON-able data."""
        out: dict[str, Any] = {"format": PROVENANCE_FORMAT}
        for name in _PROVENANCE_FIELDS:
            value = getattr(self, name)
            out[name] = value.to_dict() if hasattr(value, "to_dict") else value
        return out

    def save_pretrained(self, save_directory: str, **kwargs) -> None:
        """Write stock adapter_config.json plus the provenance sidecar."""
        if not self.library_versions:
            self.library_versions = library_versions()
        super().save_pretrained(save_directory, **kwargs)
        with open(os.path.join(save_directory, PROVENANCE_NAME), "w") as f:
            json.dump(self.provenance_dict(), f, indent=2, sort_keys=True)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, subfolder: str | None = None, **kwargs):
        """Load a prompt's config and provenance from a folder or a Hub repo.

        A stock prompt-tuning adapter without a sidecar loads too, with empty provenance and a DP record that
        says so (`dp.recorded` False: not private as far as anyone can tell).
        """
        stock = _read_json(pretrained_model_name_or_path, CONFIG_NAME, subfolder, required=True, **kwargs)
        if stock.get("peft_type") != "PROMPT_TUNING":
            raise PeftTransferError(
                f"{pretrained_model_name_or_path} holds a {stock.get('peft_type')} adapter, not a prompt-tuning "
                "(PROMPT_TUNING) adapter; peft-transfer only handles soft prompts."
            )
        provenance = _read_json(pretrained_model_name_or_path, PROVENANCE_NAME, subfolder, required=False, **kwargs)
        provenance.pop("format", None)
        if not provenance:  # a stock adapter (e.g. from TRL's SFTTrainer): say that no guarantee was recorded
            provenance["dp"] = DPRecord.unrecorded()
        stock.pop("peft_type", None)
        stock_fields = {f.name for f in dataclasses.fields(PromptTuningConfig)}
        stock = {k: v for k, v in stock.items() if k in stock_fields}
        try:
            return cls(**stock, **provenance)
        except (TypeError, ValueError) as exc:
            raise PeftTransferError(
                f"The prompt config at {pretrained_model_name_or_path} is malformed ({exc}); re-export the prompt."
            ) from exc

    @classmethod
    def from_prompt_config(cls, config: PromptTuningConfig, **provenance: Any) -> TransferablePromptConfig:
        """Wrap a stock `PromptTuningConfig` (e.g. from a plain PEFT adapter) and attach provenance (without a
        `dp` record, the DP record says that none was recorded)."""
        stock_fields = {f.name for f in dataclasses.fields(PromptTuningConfig)}
        values = {k: v for k, v in dataclasses.asdict(config).items() if k in stock_fields and k != "peft_type"}
        provenance.setdefault("dp", DPRecord.unrecorded())
        return cls(**values, **provenance)


def _read_json(repo: str, filename: str, subfolder: str | None, required: bool, **hub_kwargs) -> dict:
    folder = os.path.join(repo, subfolder) if subfolder else repo
    local = os.path.join(folder, filename)
    if os.path.isdir(folder):
        if not os.path.isfile(local):
            if required:
                raise PeftTransferError(
                    f"{folder} has no {filename}: it is not a saved prompt. Pass the folder that "
                    "save_pretrained wrote (adapter_config.json + adapter_model.safetensors)."
                )
            return {}
        path = local
    else:
        allowed = {"revision", "token", "cache_dir", "local_files_only"}
        try:
            path = hf_hub_download(repo, filename, subfolder=subfolder,
                                   **{k: v for k, v in hub_kwargs.items() if k in allowed})
        except LocalEntryNotFoundError:  # offline (HF_HUB_OFFLINE, or the Hub unreachable) and not cached
            if required:
                raise PeftTransferError(f"{repo} is no local folder, and no prompt of that Hub id is in the local "
                                        "Hugging Face cache (the Hub is offline). Check the path.") from None
            return {}
        except EntryNotFoundError:
            if required:
                raise PeftTransferError(f"Hub repo {repo} has no {filename}: it is not a saved prompt.") from None
            return {}
        except Exception as exc:  # network, auth, missing repo: one clear message (never silently no provenance)
            raise PeftTransferError(
                f"Cannot load {filename} of a prompt from {repo!r}: it is not a local folder and the Hub "
                f"answered: {exc}"
            ) from exc
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise PeftTransferError(f"{path} is not valid JSON ({exc}); the prompt is corrupted, re-export it.") from exc
