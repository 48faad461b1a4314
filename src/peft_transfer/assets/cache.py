"""Where assets are kept once converted or rebuilt: one per-machine cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Per-machine cache: $PEFT_TRANSFER_CACHE, else ~/.cache/peft_transfer."""
    return Path(os.environ.get("PEFT_TRANSFER_CACHE", Path.home() / ".cache" / "peft_transfer"))
