"""Model references checked before anything loads, the same for the commands' flags and the run config: a name
that can only be a local path and names nothing here is refused at once (never tried as a Hub repo id)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import PeftTransferError
from .embedded import EMBEDDED_MODELS, embedded_spec
from .shipped_students import shipped_student

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(name: str) -> bool:
    """True when `name` can only be a local path: absolute, ./ ../ ~, a file extension, more than one slash,
    or a first component that exists here (runs/p_s when runs/ exists)."""
    if os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.endswith("/"):
        return True
    if not _HUB_ID.match(name) or name.count("/") > 1 or name.lower().endswith((".gguf", ".safetensors")):
        return True
    return "/" in name and Path(name.split("/")[0]).is_dir()


def is_local_model(name: str, setting: str) -> bool:
    """True when `name` is a model here (embedded, shipped student, folder, .gguf file); False when it is a Hub
    id; refused when it is another file or can only be a path that does not exist. `setting`: the flag or
    config key that gave `name`, for the message."""
    if os.path.isdir(name):
        folder = Path(name)
        if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
            raise PeftTransferError(f"{setting} {name} is a saved prompt (adapter_config.json), not a model: give the "
                                    "model folder or name here, and the prompt where a prompt is asked (--prompt).")
        if not (folder / "config.json").is_file() and not any(folder.glob("*.gguf")):
            raise PeftTransferError(f"{setting} {name} is a folder but not a model (no config.json): give the folder "
                                    "that save_pretrained, `peft-transfer compress` or `distill` wrote.")
        return True
    if embedded_spec(name) is not None or shipped_student(name) is not None or (
            os.path.isfile(name) and name.endswith(".gguf")):
        return True
    if os.path.isfile(name):
        raise PeftTransferError(f"{setting} {name} is a file; give a model folder, a .gguf file, an embedded model "
                                f"({', '.join(EMBEDDED_MODELS)}) or a Hub id.")
    if looks_like_path(name):
        raise PeftTransferError(f"{setting} {name}: no such folder or file.")
    return False
