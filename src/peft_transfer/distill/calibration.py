"""Calibration activations: run the teacher once over public text and keep what the compression methods need.

The teacher's forward pass is the cost of building a compressed student (38.5 k tokens took ~5 min on two cores
for a 135 M model), so it runs once per (teacher weights, token blocks, settings) and is cached on disk under a
key of those: every method and every student size reuses it. Stored per token (valid, non-pad positions only,
optionally a seeded subsample of them): the residual stream entering each layer (`hidden(i)` = the model's
`hidden_states[i]`, i = 0..L; `hidden(L)` is after the final norm) and, where a linear map can be folded, what
each layer's MLP adds to it (`mlp(i)`). float16 (a tensor outside its range is kept in float32).

Layout: `<cache_dir>/<key>/chunk-00000.safetensors ...` (one file per `chunk_blocks` blocks, keys `h.<i>` and
`mlp.<i>`, written atomically) and `calibration.json` (settings, counts; written last). A killed run resumes
from its last complete chunk; loading one layer reads only that layer's tensors.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..assets.cache import cache_root
from ..errors import PeftTransferError
from ..provenance import text_fingerprint
from ..student.layers import FOLDABLE_MODEL_TYPES, decoder_model_type, layer_list, mlp_module, num_layers, teacher_id
from ..student.weights_hash import state_dict_sha256
from .data import prepare_blocks

FORMAT_VERSION = 1
META_NAME = "calibration.json"
FP16_MAX = 65504.0


def default_cache_dir() -> Path:
    """`<peft-transfer cache>/calibration` (shared by every compression run on this machine)."""
    return cache_root() / "calibration"


@dataclass
class CalibrationCache:
    """A finished calibration folder: per-layer activations at the stored tokens, loaded on demand."""

    folder: Path
    meta: dict

    @property
    def num_tokens(self) -> int:
        return int(self.meta["stored_tokens"])

    @property
    def num_layers(self) -> int:
        return int(self.meta["num_layers"])

    @property
    def has_mlp(self) -> bool:
        return bool(self.meta["mlp"])

    def record(self) -> str:
        """One line for the lineage: corpus, its fingerprint and the token count."""
        m = self.meta
        sub = f", {m['stored_tokens']:,} stored" if m["stored_tokens"] != m["tokens"] else ""
        return f"{m['corpus']} ({m['fingerprint']}, {m['tokens']:,} tokens in blocks of {m['block_size']}{sub})"

    def _files(self) -> list[Path]:
        return [self.folder / name for name in self.meta["chunks"]]

    def _load(self, key: str) -> torch.Tensor:
        parts = []
        for path in self._files():
            with safe_open(str(path), framework="pt") as f:
                parts.append(f.get_tensor(key).float())
        return torch.cat(parts)

    def hidden(self, index: int) -> torch.Tensor:
        """hidden_states[index] at every stored token (tokens x d, float32): the input of layer `index`."""
        if not 0 <= index <= self.num_layers:
            raise PeftTransferError(f"hidden state {index} out of range 0..{self.num_layers}.")
        return self._load(f"h.{index}")

    def mlp(self, index: int) -> torch.Tensor:
        """What layer `index`'s MLP adds to the residual stream, at every stored token (float32)."""
        if not self.has_mlp:
            raise PeftTransferError(f"the calibration cache {self.folder} holds no MLP outputs (its model cannot "
                                    "take a folded linear map, or it was built without them).")
        if not 0 <= index < self.num_layers:
            raise PeftTransferError(f"MLP output {index} out of range 0..{self.num_layers - 1}.")
        return self._load(f"mlp.{index}")

    def chunks(self) -> Iterator[torch.Tensor]:
        """The hidden states chunk by chunk, each (L+1) x tokens x d float32 (bounded memory)."""
        for path in self._files():
            with safe_open(str(path), framework="pt") as f:
                yield torch.stack([f.get_tensor(f"h.{i}").float() for i in range(self.num_layers + 1)])


def load_calibration(folder: str | Path) -> CalibrationCache:
    """A finished calibration folder (refuses a half-built one)."""
    folder = Path(folder)
    meta_path = folder / META_NAME
    if not meta_path.is_file():
        raise PeftTransferError(f"{folder} is not a finished calibration cache (no {META_NAME}).")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT_VERSION:
        raise PeftTransferError(f"{folder} was written by another version of the calibration format; delete it.")
    return CalibrationCache(folder, meta)


def _token_blocks(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, tokens: int,
                  block_size: int) -> torch.Tensor:
    if tokens < block_size:
        raise PeftTransferError(f"calibration needs at least one block: {tokens} tokens < block size {block_size}.")
    blocks = prepare_blocks(texts, tokenizer, block_size, max_blocks=math.ceil(tokens / block_size))
    return torch.tensor(blocks["input_ids"], dtype=torch.long)


def _positions(block: int, length: int, keep: int, seed: int) -> torch.Tensor:
    """The stored positions of one block: all, or a seeded sorted subsample (the same on every rerun)."""
    if keep >= length:
        return torch.arange(length)
    gen = torch.Generator().manual_seed(seed * 1_000_003 + block)
    return torch.randperm(length, generator=gen)[:keep].sort().values


def _half(tensor: torch.Tensor) -> torch.Tensor:
    if tensor.numel() and float(tensor.abs().max()) > FP16_MAX:
        return tensor.float().contiguous()  # out of float16 range: keep this one in float32
    return tensor.to(torch.float16).contiguous()


@torch.no_grad()
def calibrate(teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: Sequence[str],
              corpus_name: str, tokens: int = 40_000, block_size: int = 128, cache_dir: str | Path | None = None,
              store_mlp: bool | None = None, max_stored_tokens: int | None = None, batch_size: int = 8,
              chunk_blocks: int = 32, seed: int = 0, teacher_sha256: str | None = None,
              progress: bool = True) -> CalibrationCache:
    """Run the teacher over `tokens` tokens of `texts` (blocks of `block_size`) once and cache its activations.

    `store_mlp` (default: where a linear map can be folded, i.e. not Gemma 3) also keeps each layer's MLP
    output. `max_stored_tokens` keeps a seeded subsample of positions per block so the cache stays within
    about max_stored_tokens x (2L+1) x d x 2 bytes. A finished cache with the same key is returned as it is;
    a half-built one is resumed.
    """
    model_type = decoder_model_type(teacher)
    foldable = model_type in FOLDABLE_MODEL_TYPES
    store_mlp = foldable if store_mlp is None else store_mlp
    if store_mlp and not foldable:
        raise PeftTransferError(f"{type(teacher).__name__}: MLP outputs are only cached for models that can take a "
                                "folded linear map (not Gemma 3).")
    if max_stored_tokens is not None and max_stored_tokens < 1:
        raise PeftTransferError(f"max_stored_tokens must be at least 1, got {max_stored_tokens}.")
    texts = list(texts)
    ids = _token_blocks(texts, tokenizer, tokens, block_size)
    n_layers = num_layers(teacher.config)
    total = ids.numel()
    per_block = block_size if max_stored_tokens is None else max(1, min(block_size, max_stored_tokens // len(ids)))
    teacher_sha256 = teacher_sha256 or state_dict_sha256(teacher.state_dict())
    settings = {
        "format": FORMAT_VERSION, "teacher_sha256": teacher_sha256,
        "blocks_sha256": hashlib.sha256(ids.numpy().tobytes()).hexdigest(), "block_size": block_size,
        "per_block": per_block, "seed": seed, "chunk_blocks": chunk_blocks,
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / key
    if (folder / META_NAME).is_file():
        cache = load_calibration(folder)
        if cache.has_mlp or not store_mlp:
            return cache
        (folder / META_NAME).unlink()  # built without MLP outputs: rebuild with them
        for old in folder.glob("chunk-*.safetensors"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / "building.json"
    if partial.is_file() and json.loads(partial.read_text()).get("mlp") != store_mlp:
        for old in folder.glob("chunk-*.safetensors"):
            old.unlink()
    partial.write_text(json.dumps({**settings, "mlp": store_mlp}, indent=2))

    teacher.eval()
    base = teacher.base_model  # hidden states without the LM head (the vocabulary projection is a large cost)
    device = next(teacher.parameters()).device
    captured: list[torch.Tensor] = []
    hooks = [mlp_module(teacher, i).register_forward_hook(lambda _m, _a, out: captured.append(out))
             for i in range(n_layers)] if store_mlp else []
    names, stored = [], 0
    n_chunks = math.ceil(len(ids) / chunk_blocks)
    bar = tqdm(total=len(ids), desc="calibration (teacher forward)", unit="block", disable=not progress)
    try:
        for c in range(n_chunks):
            name = f"chunk-{c:05d}.safetensors"
            lo, hi = c * chunk_blocks, min((c + 1) * chunk_blocks, len(ids))
            names.append(name)
            if (folder / name).is_file():  # finished by an earlier, interrupted run
                with safe_open(str(folder / name), framework="pt") as f:
                    stored += f.get_slice("h.0").get_shape()[0]
                bar.update(hi - lo)
                continue
            hidden: list[list[torch.Tensor]] = [[] for _ in range(n_layers + 1)]
            mlps: list[list[torch.Tensor]] = [[] for _ in range(n_layers)]
            for start in range(lo, hi, batch_size):
                batch = ids[start:min(start + batch_size, hi)]
                mask = torch.ones_like(batch)
                captured.clear()
                out = base(input_ids=batch.to(device), attention_mask=mask.to(device), output_hidden_states=True)
                for row in range(len(batch)):
                    valid = mask[row].nonzero().squeeze(-1)
                    pos = valid[_positions(start + row, len(valid), per_block, seed)].to(device)
                    for i, h in enumerate(out.hidden_states):
                        hidden[i].append(h[row, pos].cpu())
                    for i, m in enumerate(captured):
                        mlps[i].append(m[row, pos].cpu())
                bar.update(len(batch))
            tensors = {f"h.{i}": _half(torch.cat(h)) for i, h in enumerate(hidden)}
            if store_mlp:
                tensors.update({f"mlp.{i}": _half(torch.cat(m)) for i, m in enumerate(mlps)})
            stored += tensors["h.0"].shape[0]
            tmp = folder / f".{name}.tmp"
            save_file(tensors, str(tmp))
            os.replace(tmp, folder / name)
    finally:
        bar.close()
        for hook in hooks:
            hook.remove()
    meta = {**settings, "mlp": store_mlp, "teacher": teacher_id(teacher), "corpus": corpus_name,
            "fingerprint": text_fingerprint(texts), "tokens": total, "stored_tokens": stored,
            "num_layers": n_layers, "hidden_size": int(teacher.config.hidden_size), "chunks": names}
    (folder / META_NAME).write_text(json.dumps(meta, indent=2) + "\n")
    partial.unlink(missing_ok=True)
    return CalibrationCache(folder, meta)


def check_calibration_matches(cache: CalibrationCache, teacher: PreTrainedModel) -> None:
    """Refuse a cache made from another teacher shape (layer count, hidden size)."""
    n, d = num_layers(teacher.config), int(teacher.config.hidden_size)
    if cache.num_layers != n or int(cache.meta["hidden_size"]) != d or len(layer_list(teacher)) != n:
        raise PeftTransferError(f"the calibration cache {cache.folder} is for a teacher with {cache.num_layers} "
                                f"layers of width {cache.meta['hidden_size']}, not {n} x {d}.")
