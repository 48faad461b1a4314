"""Physical micro-batches of a logical batch, grouped by length and cut to their own longest example.

A Poisson-sampled logical batch of a few hundred examples is padded to its longest text; run as it is, every
micro-batch pays for that length. Sorting the examples by length before splitting and cutting each
micro-batch's padding columns lets the short examples skip the long ones' padding (on Rotten Tomatoes a mean
of 25 tokens against a maximum near 78; the step time it saves: benchmarks/results/micro_batch_sorting.md).
Each example's forward pass does not depend on the rest of its micro-batch (explicit positions,
`prompted_forward`), so per-example gradients, their clipped sum and the update are those of the unsorted
batch; the privacy accounting does not change.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def micro_batches(inputs: dict[str, torch.Tensor], size: int | None,
                  padding_side: str) -> Iterator[dict[str, torch.Tensor]]:
    """Split `inputs` (`input_ids`, `attention_mask`, `label_positions`, per-example extras such as `labels`)
    into micro-batches of at most `size` examples (None: one), shortest first, each without padding columns
    that none of its examples uses. `padding_side` is the side the batch was padded on. A batch without
    `label_positions` (a generation task's) is split in order, as it is."""
    total = inputs["input_ids"].shape[0]
    if not size or size >= total:
        yield inputs
        return
    if "label_positions" not in inputs:  # other batches (generation targets) keep their order and padding
        for start in range(0, total, size):
            yield {key: value[start:start + size] for key, value in inputs.items()}
        return
    order = torch.argsort(inputs["attention_mask"].sum(1), stable=True)
    for start in range(0, total, size):
        index = order[start:start + size]
        part = {key: value[index.to(value.device)] for key, value in inputs.items()}
        yield trim_padding(part, padding_side)


def trim_padding(batch: dict[str, torch.Tensor], padding_side: str) -> dict[str, torch.Tensor]:
    """Drop the padding columns no example of `batch` uses; label positions follow a left cut."""
    mask = batch["attention_mask"]
    length = mask.shape[1]
    width = max(int(mask.sum(1).max()), 1)
    if width == length:
        return batch
    out = dict(batch)
    if padding_side == "left":
        cut = length - width
        out["input_ids"], out["attention_mask"] = batch["input_ids"][:, cut:], mask[:, cut:]
        out["label_positions"] = batch["label_positions"] - cut
    else:
        out["input_ids"], out["attention_mask"] = batch["input_ids"][:, :width], mask[:, :width]
    return out
