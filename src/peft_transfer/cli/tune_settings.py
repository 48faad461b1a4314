"""How `tune` turns its flags into training settings (`peft_transfer.tune.settings`, which the pipeline uses too),
and the lines it prints before training: how many texts `--max-length` cuts, and a time estimate.

With `--epsilon`, every setting the user leaves out comes from the DP plan (`peft_transfer.tune.dp_plan`): the
logical batch, the steps (from `--budget-examples`, or `--epochs` × N, or the default budget), the learning
rate, the prompt length and the micro-batch size. Without DP (or with `--noise-multiplier`) the defaults stay
those of plain prompt tuning: batch 16, lr 1e-3, 20 virtual tokens, one epoch or `--budget-examples`.
"""

from __future__ import annotations

import argparse

from ..tune.settings import ResolvedSettings, resolve_settings


def resolve(args: argparse.Namespace, num_examples: int, hidden_size: int, max_length: int,
            delta: float | None) -> ResolvedSettings:
    """The settings `tune` trains with (`delta`: the run's δ under --epsilon, else None)."""
    return resolve_settings(num_examples, hidden_size, max_length, args.epsilon, delta, batch_size=args.batch_size,
                            max_steps=args.max_steps, epochs=args.epochs, budget_examples=args.budget_examples,
                            learning_rate=args.learning_rate, num_virtual_tokens=args.num_virtual_tokens,
                            physical_batch_size=args.physical_batch_size, accountant=args.accountant)


def truncation_line(task, tokenizer, texts: list[str], masked_lm: bool) -> str:
    """How many training texts `task.max_length` cuts (the template and label position are always kept)."""
    tokenized = task.tokenized(tokenizer, masked_lm=masked_lm)
    cut = sum(tokenized.is_truncated(t) for t in texts)
    if not cut:
        return f"no training text is longer than --max-length {task.max_length} tokens allows"
    return (f"{cut:,} of {len(texts):,} training texts are longer than --max-length {task.max_length} tokens allows: "
            "their ends are cut (the template and the label position are kept)")


def estimate_line(model, tokenizer, task, texts: list[str], settings: ResolvedSettings, examples: int,
                  bf16: bool = False) -> str:
    """A time estimate for `examples` examples from one timed micro-batch on this machine."""
    from ..tune.step_time import seconds_per_example  # heavy (torch): only when an estimate is printed

    micro = settings.physical_batch_size or settings.batch_size
    per_example = seconds_per_example(model, tokenizer, task, texts, settings.num_virtual_tokens, micro, bf16)
    minutes = per_example * examples / 60
    where = "this machine, bf16" if bf16 else "this machine"
    return (f"estimated time: ~{minutes:.0f} min for {examples:,} examples ({per_example:.3g} s per example on "
            f"{where}, timed on a micro-batch of {min(micro, len(texts))}; --budget-examples sets the compute)")
