"""Content hashes of model weights: which teacher a student was distilled from, checked before reassembly."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import torch


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    t = tensor.detach().to("cpu").contiguous()
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def tensor_sha256(tensor: torch.Tensor) -> str:
    """sha256 of one tensor's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{tensor.dtype}|{tuple(tensor.shape)}|".encode())
    digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """"sha256:<hex>" over every (name, dtype, shape, bytes) in name order: the same weights give the same hash."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        digest.update(name.encode() + b"|")
        digest.update(tensor_sha256(state_dict[name]).encode())
    return "sha256:" + digest.hexdigest()
