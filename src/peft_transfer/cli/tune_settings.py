"""How `tune` turns its flags into training settings.

With `--epsilon`, every setting the user leaves out comes from the DP plan (`peft_transfer.tune.dp_plan`): the
logical batch, the steps (from `--budget-examples`, or `--epochs` × N, or the default budget), the learning
rate, the prompt length and the micro-batch size. Without DP (or with `--noise-multiplier`) the defaults stay
those of plain prompt tuning: batch 16, lr 1e-3, 20 virtual tokens, one epoch or `--budget-examples`.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

NON_DP_BATCH, NON_DP_LR, NON_DP_VIRTUAL = 16, 1e-3, 20


@dataclass
class Resolved:
    batch_size: int
    max_steps: int  # -1: num_train_epochs decides
    num_train_epochs: float
    learning_rate: float
    num_virtual_tokens: int
    physical_batch_size: int | None
    plan: object | None = None  # dp_defaults.DPPlan under --epsilon


def resolve(args: argparse.Namespace, num_examples: int, hidden_size: int, max_length: int,
            delta: float | None) -> Resolved:
    """The settings `tune` trains with (`delta`: the run's δ under --epsilon, else None)."""
    from ..tune.dp_plan import DP_VIRTUAL_TOKENS, physical_batch, plan_dp

    eps = args.epsilon
    if eps is not None and not math.isinf(eps):
        virtual = args.num_virtual_tokens or DP_VIRTUAL_TOKENS
        budget = args.budget_examples or (math.ceil(args.epochs * num_examples) if args.epochs else None)
        plan = plan_dp(num_examples, eps, delta, virtual * hidden_size, budget_examples=budget,
                       batch_size=args.batch_size, steps=args.max_steps, learning_rate=args.learning_rate)
        physical = args.physical_batch_size or physical_batch(plan.batch_size, max_length)
        return Resolved(plan.batch_size, plan.steps, 1.0, plan.learning_rate, virtual, physical, plan)
    batch = args.batch_size or NON_DP_BATCH
    steps = args.max_steps or (math.ceil(args.budget_examples / batch) if args.budget_examples else -1)
    return Resolved(batch, steps, args.epochs or 1.0, args.learning_rate or NON_DP_LR,
                    args.num_virtual_tokens or NON_DP_VIRTUAL, args.physical_batch_size)


def truncation_line(task, tokenizer, texts: list[str], masked_lm: bool) -> str:
    """How many training texts `task.max_length` cuts (the template and label position are always kept)."""
    tokenized = task.tokenized(tokenizer, masked_lm=masked_lm)
    cut = sum(tokenized.is_truncated(t) for t in texts)
    if not cut:
        return f"no training text is longer than --max-length {task.max_length} tokens allows"
    return (f"{cut:,} of {len(texts):,} training texts are longer than --max-length {task.max_length} tokens allows: "
            "their ends are cut (the template and the label position are kept)")


def estimate_line(model, tokenizer, task, texts: list[str], settings: Resolved, examples: int) -> str:
    """A time estimate for `examples` examples from one timed micro-batch on this machine."""
    from ..tune.step_time import seconds_per_example

    micro = settings.physical_batch_size or settings.batch_size
    per_example = seconds_per_example(model, tokenizer, task, texts, settings.num_virtual_tokens, micro)
    minutes = per_example * examples / 60
    return (f"estimated time: ~{minutes:.0f} min for {examples:,} examples ({per_example:.3g} s per example on this "
            f"machine, timed on a micro-batch of {min(micro, len(texts))}; --budget-examples sets the compute)")
