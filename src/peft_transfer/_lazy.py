"""Lazy package exports: a name is imported from its module on first use, so importing a package is free.

Used by `peft_transfer`, `peft_transfer.assets` and `peft_transfer.audit`, whose public names live in modules
that load torch and transformers: `peft-transfer --help` and the CLI's argument checks import these packages
without paying for that.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, namespace: dict, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """(`__getattr__`, `__dir__`) for a package whose `exports` map each public name to its submodule."""

    def __getattr__(name: str):
        if name in exports:
            value = getattr(importlib.import_module(f".{exports[name]}", package), name)
            namespace[name] = value  # later look-ups skip __getattr__
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
