"""Check model and prompt arguments before anything loads: a path that does not exist is "no such folder" at
once (never tried as a Hub repo id), and a Hub id with the Hub out of reach is looked up in the local cache
only (no minute of retries)."""

from __future__ import annotations

import functools
import os
import socket
import sys
from urllib.parse import urlparse

from ..assets.model_refs import is_local_model, looks_like_path
from ..errors import PeftTransferError


def check_model_ref(name: str, flag: str) -> None:
    """`name` is an embedded model, a shipped student, an existing folder or GGUF file, or a Hub id (`use_hub`)."""
    if not is_local_model(name, flag):
        use_hub(name, flag)


def check_prompt_ref(name: str, flag: str) -> None:
    """`name` is an existing prompt folder or a Hub id (see `use_hub`)."""
    if os.path.isdir(name):
        return
    if os.path.isfile(name):
        raise PeftTransferError(f"{flag} {name} is a file; give the prompt's folder (adapter_config.json ...).")
    if looks_like_path(name):
        raise PeftTransferError(f"{flag} {name}: no such folder.")
    use_hub(name, flag)


def use_hub(repo_id: str, flag: str) -> None:
    """Before `repo_id` is fetched: when the Hub cannot be reached, switch huggingface_hub (and so transformers
    and peft) to offline mode, so a cached copy loads and a missing one fails at once and quietly."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or hub_reachable(constants.ENDPOINT):
        return
    constants.HF_HUB_OFFLINE = True
    print(f"[peft-transfer] the Hub ({constants.ENDPOINT}) cannot be reached: {flag} {repo_id} is looked up in "
          "the local Hugging Face cache only", file=sys.stderr)


@functools.lru_cache(maxsize=4)
def hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """One TCP connection to the Hub endpoint (DNS included) within `timeout` seconds."""
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False
