"""Which contiguous block(s) of layers to take out: the ones whose removal changes the residual stream least.

The distance between the residual stream entering layer i and entering layer j is the angular distance
arccos(cos(h_i, h_j)) / π, averaged over calibration tokens (Gromov et al. 2024, "The Unreasonable
Ineffectiveness of the Deeper Layers"; ShortGPT's block influence is 1 - cos of the same pair). Taking out the
block [l, l+n) joins h_l directly to the layers after it, so the best block of size n has the smallest d(l, l+n).
Layer 0 and the last layer are never taken out (they move the stream most: block influence 0.997 and 0.974 on
SmolLM2-135M, against 0.02-0.07 in the middle).

Several blocks: the non-overlapping blocks (at least one kept layer between two of them, else they would be one
block) of the requested total size with the smallest sum of distances, found exactly by dynamic programming on
the distance table. All distances are the teacher's own (a block's ends are not recomputed after another block
is taken out).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch

from ..errors import PeftTransferError


def angular_distance_table(chunks: Iterable[torch.Tensor]) -> torch.Tensor:
    """(L+1) x (L+1) table of mean angular distances between hidden_states[i] and hidden_states[j] over all tokens.

    `chunks`: tensors (L+1) x tokens x d (e.g. `CalibrationCache.chunks()`), so memory stays one chunk.
    """
    total, count = None, 0
    for chunk in chunks:
        unit = torch.nn.functional.normalize(chunk.float(), dim=-1).transpose(0, 1)  # tokens x (L+1) x d
        cos = torch.bmm(unit, unit.transpose(1, 2)).clamp(-1.0, 1.0)  # tokens x (L+1) x (L+1)
        part = (torch.arccos(cos.double()) / math.pi).sum(0)
        total = part if total is None else total + part
        count += unit.shape[0]
    if total is None or count == 0:
        raise PeftTransferError("no calibration tokens: the distance table needs at least one token.")
    table = total / count
    table.fill_diagonal_(0.0)
    return table.float()


@dataclass
class BlockSelection:
    """Kept teacher layers, the removed [start, end) blocks, and the distances they were chosen by."""

    kept_layers: list[int]
    removed_blocks: list[list[int]]
    block_distances: list[float]  # d(start, end) of each removed block
    table: list[list[float]] = field(repr=False)  # the full (L+1) x (L+1) distance table

    def candidates(self, size: int) -> dict[int, float]:
        """d(l, l+size) for every start l a block of that size may have (the record of the choice)."""
        n = len(self.table) - 1
        return {start: self.table[start][start + size] for start in range(1, n - size)}

    def to_dict(self) -> dict:
        sizes = sorted({end - start for start, end in self.removed_blocks})
        return {"kept_layers": self.kept_layers, "removed_blocks": self.removed_blocks,
                "block_distances": [round(d, 6) for d in self.block_distances],
                "candidates": {str(size): {str(k): round(v, 6) for k, v in self.candidates(size).items()}
                               for size in sizes},
                "angular_distance_table": [[round(v, 6) for v in row] for row in self.table]}


def kept_from_blocks(num_teacher_layers: int, blocks: list[list[int]]) -> list[int]:
    """The teacher layers outside the removed [start, end) blocks."""
    removed = {i for start, end in blocks for i in range(start, end)}
    return [i for i in range(num_teacher_layers) if i not in removed]


def blocks_from_kept(num_teacher_layers: int, kept: list[int]) -> list[list[int]]:
    """The removed [start, end) blocks (maximal runs of dropped layers) of a kept-layer list."""
    blocks, start = [], None
    kept_set = set(kept)
    for i in range(num_teacher_layers + 1):
        if i < num_teacher_layers and i not in kept_set:
            start = i if start is None else start
        elif start is not None:
            blocks.append([start, i])
            start = None
    return blocks


def check_blocks(num_teacher_layers: int, blocks: list[list[int]]) -> None:
    """Refuse blocks that take out layer 0 or the last layer, or nothing."""
    if not blocks:
        raise PeftTransferError("nothing to remove: keep fewer layers than the teacher has.")
    for start, end in blocks:
        if start < 1 or end > num_teacher_layers - 1:
            raise PeftTransferError(
                f"the block of layers {start}..{end - 1} takes out the first or the last layer; those move the "
                f"residual stream most and are always kept (valid blocks lie within 1..{num_teacher_layers - 2}).")


def check_keep_count(n: int, keep: int, num_blocks: int = 1) -> None:
    """Refuse a kept-layer count that no choice of `num_blocks` blocks of an `n`-layer teacher can give."""
    remove = n - keep
    if num_blocks < 1:
        raise PeftTransferError(f"num_blocks must be at least 1, got {num_blocks}.")
    if keep >= n:
        raise PeftTransferError(f"keep {keep} layers of a {n}-layer teacher removes nothing: keep fewer.")
    # layers 1..n-2 may go; num_blocks blocks need num_blocks - 1 kept separators among them
    if num_blocks + 1 > n - num_blocks:
        raise PeftTransferError(
            f"a {n}-layer teacher has no room for {num_blocks} removed blocks (the first and last layers stay and "
            f"blocks need a kept layer between them): remove fewer blocks (--num-blocks).")
    if remove < num_blocks or remove + num_blocks - 1 > n - 2:
        raise PeftTransferError(
            f"cannot keep {keep} of {n} layers with {num_blocks} removed block(s): the first and last layers stay and "
            f"blocks need a kept layer between them (keep between {num_blocks + 1} and {n - num_blocks}).")


def select_blocks(table: torch.Tensor, keep: int, num_blocks: int = 1) -> BlockSelection:
    """The `num_blocks` blocks whose removal leaves `keep` of the L teacher layers with the smallest summed
    angular distance d(start, end) (never layer 0 or L-1; a kept layer between two blocks)."""
    n = table.shape[0] - 1
    check_keep_count(n, keep, num_blocks)
    remove = n - keep
    dist = table.double().tolist()

    @functools.cache
    def best(pos: int, blocks_left: int, left: int) -> tuple[float, tuple[tuple[int, int], ...]]:
        """Cheapest way to remove `left` layers in `blocks_left` blocks starting at or after layer `pos`."""
        if blocks_left == 0:
            return (0.0, ()) if left == 0 else (math.inf, ())
        result: tuple[float, tuple[tuple[int, int], ...]] = (math.inf, ())
        for start in range(pos, n - 1):
            sizes = [left] if blocks_left == 1 else range(1, left - (blocks_left - 1) + 1)
            for size in sizes:
                end = start + size
                if end > n - 1:
                    break
                cost, rest = best(end + 1, blocks_left - 1, left - size)
                cost += dist[start][end]
                if cost < result[0]:
                    result = (cost, ((start, end), *rest))
        return result

    cost, chosen = best(1, num_blocks, remove)
    if not math.isfinite(cost):
        raise PeftTransferError(f"no way to remove {remove} layers in {num_blocks} blocks.")
    blocks = [list(b) for b in chosen]
    return BlockSelection(kept_layers=kept_from_blocks(n, blocks), removed_blocks=blocks,
                          block_distances=[dist[s][e] for s, e in blocks], table=table.float().tolist())


def selection_for_blocks(table: torch.Tensor, blocks: list[list[int]]) -> BlockSelection:
    """The record of given blocks (e.g. from an explicit kept-layer list), with their distances."""
    n = table.shape[0] - 1
    check_blocks(n, blocks)
    return BlockSelection(kept_layers=kept_from_blocks(n, blocks), removed_blocks=[list(b) for b in blocks],
                          block_distances=[float(table[s, e]) for s, e in blocks], table=table.float().tolist())
