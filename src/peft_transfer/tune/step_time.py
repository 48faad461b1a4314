"""A time estimate before prompt tuning: one timed forward and backward pass of a micro-batch on this machine."""

from __future__ import annotations

import time

import torch

from ..prompted_forward import is_masked_lm, label_logits


def seconds_per_example(model, tokenizer, task, texts: list[str], num_virtual_tokens: int,
                        micro_batch: int, bf16: bool = False) -> float:
    """Seconds per example of a prompt-tuning step on `model`: a micro-batch of up to `micro_batch` of `texts`
    (spread over them) through the model with a prompt of `num_virtual_tokens`, forward and backward to the
    prompt only (under bfloat16 autocast when `bf16`, as the trainer runs it), timed on its second run (the first
    warms up). Nothing is trained or kept. For a generation task the target tokens are not included (an
    underestimate by their share of the tokens)."""
    tokenized = task.tokenized(tokenizer, masked_lm=is_masked_lm(model))
    n = max(1, min(micro_batch, len(texts)))
    sample = [texts[i * len(texts) // n] for i in range(n)]
    batch = tokenized.encode(sample)
    hidden = model.get_input_embeddings().weight
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        elapsed = 0.0
        for _ in range(2):
            prompt = torch.zeros(n, num_virtual_tokens, hidden.shape[1], dtype=hidden.dtype, device=hidden.device,
                                 requires_grad=True)
            start = time.perf_counter()
            with torch.autocast(hidden.device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = label_logits(model, batch["input_ids"], batch["attention_mask"], batch["label_positions"],
                                      prompt=prompt)
            logits.float().sum().backward()
            elapsed = time.perf_counter() - start
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return elapsed / n
