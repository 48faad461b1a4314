"""Teacher-forced rows: token ids plus the positions whose logits are read, padded into a batch.

A row is what the model reads for one example and one target sequence (a multi-token label word, a
generation target, a student's continuation): the rendered prompt text, then the target's tokens but its
last, and the positions that predict each target token. Causal rows are left-padded (their positions are
then the last columns, so the LM head runs on those only); masked-LM rows are right-padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SequenceRow:
    """One row: `ids` (no padding), `positions` (indices into `ids` whose logits are read) and, optionally,
    `targets` (the token each position should predict)."""

    ids: list[int]
    positions: list[int]
    targets: list[int] | None = None


def teacher_forced(prefix: list[int], target: list[int]) -> SequenceRow:
    """Causal row predicting `target` after `prefix`: reads prefix + target[:-1], scores len(target) positions."""
    start = len(prefix) - 1
    return SequenceRow(list(prefix) + list(target[:-1]), list(range(start, start + len(target))), list(target))


def unpadded(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[list[int]]:
    """The real tokens of each row of a padded batch (either side)."""
    return [ids[mask.bool()].tolist() for ids, mask in zip(input_ids.cpu(), attention_mask.cpu())]


def collate_rows(rows: list[SequenceRow], pad_id: int, padding_side: str = "left") -> dict[str, torch.Tensor]:
    """Pad rows into `input_ids`, `attention_mask`, `positions` (n, P), `position_mask` (n, P) and, when every
    row has targets, `targets` (n, P; -100 where a row has fewer than P positions). Unused position slots
    repeat the row's first position, so they never widen what a causal forward must compute."""
    length = max(len(r.ids) for r in rows)
    width = max(len(r.positions) for r in rows)
    n = len(rows)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n, length), dtype=torch.long)
    positions = torch.zeros((n, width), dtype=torch.long)
    position_mask = torch.zeros((n, width), dtype=torch.bool)
    with_targets = all(r.targets is not None for r in rows)
    targets = torch.full((n, width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        shift = length - len(row.ids) if padding_side == "left" else 0
        input_ids[i, shift : shift + len(row.ids)] = torch.tensor(row.ids, dtype=torch.long)
        attention_mask[i, shift : shift + len(row.ids)] = 1
        k = len(row.positions)
        positions[i, :k] = torch.tensor(row.positions, dtype=torch.long) + shift
        positions[i, k:] = row.positions[0] + shift
        position_mask[i, :k] = True
        if with_targets:
            targets[i, :k] = torch.tensor(row.targets, dtype=torch.long)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "positions": positions,
             "position_mask": position_mask}
    if with_targets:
        batch["targets"] = targets
    return batch
