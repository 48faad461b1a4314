"""A GGUF file as a model (`--target model.gguf`, `--teacher`, `target:` in a run YAML).

transformers de-quantises a GGUF checkpoint to float32 on load but cannot `save_pretrained` it, so the file
is converted once into a plain safetensors folder under the peft-transfer cache (keyed by the file's
path, size and modification time; written atomically), exactly like the embedded model; later loads take
about a second. Architectures transformers cannot read from GGUF are refused by name before any work.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..atomic_folder import atomic_folder
from ..errors import PeftTransferError
from .cache import cache_root


def is_gguf_file(name: str | os.PathLike) -> bool:
    return str(name).lower().endswith(".gguf") and os.path.isfile(name)


def gguf_architecture(path: str | os.PathLike) -> str:
    """`general.architecture` of a GGUF file (read from its header; the tensors are memory-mapped, not read)."""
    from gguf import GGUFReader

    try:
        field = GGUFReader(str(path)).fields["general.architecture"]
    except (KeyError, ValueError, OSError) as exc:
        raise PeftTransferError(f"{path} is not a readable GGUF model file ({exc}).") from None
    return bytes(field.parts[field.data[0]]).decode("utf-8")


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return [a for a in GGUF_SUPPORTED_ARCHITECTURES if a not in ("general", "tokenizer")]


def check_supported(path: str | os.PathLike) -> str:
    """The file's architecture, or a clear error when transformers cannot de-quantise it."""
    arch = gguf_architecture(path)
    supported = supported_architectures()
    if arch.replace("-", "_") not in supported and arch not in supported:
        raise PeftTransferError(
            f"{path}: transformers cannot load GGUF models of architecture {arch!r} (it reads {', '.join(supported)}"
            "). Use the model's transformers (safetensors) folder or Hub id instead.")
    return arch


def gguf_cache_folder(path: str | os.PathLike) -> Path:
    """Cache folder of the converted file: its name plus a key of its absolute path, size and mtime."""
    file = Path(path).resolve()
    stat = file.stat()
    key = hashlib.sha256(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "models" / "gguf" / f"{file.stem}-{key}"


def gguf_model_path(path: str | os.PathLike, verbose: bool = True) -> Path:
    """Folder of the converted GGUF model `path` (converting it on first use)."""
    target = gguf_cache_folder(path)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    check_supported(path)
    if verbose:
        print(f"[peft-transfer] converting {path} to safetensors under {target} (once per file)")
    convert_gguf(Path(path), target, note=f"source: {Path(path).resolve()}")
    return target


def convert_gguf(gguf: Path, target: Path, record_id: str | None = None, note: str = "",
                 special_tokens: tuple[tuple[str, str], ...] = (), source_file: str = "GGUF_SOURCE.txt") -> None:
    """De-quantise `gguf` to float32 and save model + tokenizer as a safetensors folder at `target` (atomic).

    `special_tokens` (attribute, token) pairs are set on the tokenizer: transformers versions read a GGUF's
    special tokens differently, so a model whose own choice is known states it."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    except (ValueError, KeyError, NotImplementedError, OSError) as exc:
        raise PeftTransferError(f"cannot convert {gguf} with transformers: {exc}") from None
    for key, token in special_tokens:
        setattr(tokenizer, key, token)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = record_id or str(gguf)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    with atomic_folder(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / source_file).write_text(f"de-quantised to float32 from {gguf.name}\n{note}\n")
