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


def weights_fingerprint(model: torch.nn.Module, samples: int = 64) -> str:
    """"sample-sha256:<16 hex>": a cheap fingerprint of a model's weights (a fraction of a second: its cost grows
    with the number of tensors, not their size), to tell which model a prompt was made on. Hashes each tensor's
    name, shape and `samples` evenly spaced values rounded to bfloat16 (so float32 and bfloat16 loads of one
    checkpoint agree); any fine-tune, another student or another model changes it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // samples)
        # rounded on the CPU, whatever device holds the weights: the same checkpoint gives the same fingerprint
        sample = flat[::step][:samples].to("cpu", torch.float32).to(torch.bfloat16).view(torch.int16)
        digest.update(f"{name}|{tuple(tensor.shape)}|".encode())
        digest.update(sample.numpy().tobytes())
    return "sample-sha256:" + digest.hexdigest()[:16]
