"""The settings prompt tuning trains with: the one place where the DP plan (`dp_plan.plan_dp`) and what the
caller gives turn into the logical batch, steps, learning rate, prompt length and micro-batch. `peft-transfer
tune` (`cli.tune_settings`, from its flags) and `peft-transfer run` (`pipeline.runner`, from its YAML) both call
`resolve_settings`.

Under DP (a finite ε) with the plan on, every setting left out (None) comes from the plan: the logical batch,
the steps (from the budget, or epochs × N, or the default budget), the learning rate, a 4-token prompt and
micro-batches of at most 2,048 tokens at the task's length limit; a setting given wins. Otherwise (no DP, σ
given instead of ε, or the plan off) the defaults are those of plain prompt tuning: batch 16, lr 1e-3, 20
virtual tokens, one epoch or the budget's steps, micro-batches of at most 2,048 tokens (memory only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import default_delta
from .dp_plan import DP_VIRTUAL_TOKENS, DPPlan, check_reachable, physical_batch, plan_dp

NON_DP_BATCH, NON_DP_LR, NON_DP_VIRTUAL = 16, 1e-3, 20


@dataclass(frozen=True)
class ResolvedSettings:
    """What `PrivatePromptConfig` gets (`per_device_train_batch_size` = `batch_size`), and the plan if any."""

    batch_size: int
    max_steps: int  # -1: num_train_epochs decides
    num_train_epochs: float
    learning_rate: float
    num_virtual_tokens: int
    physical_batch_size: int | None
    plan: DPPlan | None = None


def resolve_settings(num_examples: int, hidden_size: int, max_length: int, epsilon: float | None = None,
                     delta: float | None = None, *, batch_size: int | None = None, max_steps: int | None = None,
                     epochs: float | None = None, budget_examples: int | None = None,
                     learning_rate: float | None = None, num_virtual_tokens: int | None = None,
                     physical_batch_size: int | None = None, dp_plan: bool = True,
                     round_steps_up: bool = True, accountant: str = "prv",
                     epsilon_key: str = "--epsilon") -> ResolvedSettings:
    """The settings of a tuning run on `num_examples` examples of a model with `hidden_size` (the prompt's
    width) and a task of `max_length` tokens (see the module docstring). `epsilon` None or inf: no DP plan;
    `delta` None: `config.default_delta` (the trainer's own rule). Without the plan, a budget gives
    ⌈budget / batch⌉ steps when `round_steps_up` (the CLI's rule: at least the budget), else ⌊budget / batch⌋,
    at least 1 (the pipeline's: at most the budget, as the plan counts). A finite `epsilon` that `accountant`
    cannot certify for the resolved steps is refused here, before anything trains, naming `epsilon_key`."""
    private = epsilon is not None and not math.isinf(epsilon)
    delta = delta or default_delta(num_examples)
    if dp_plan and private:
        virtual = num_virtual_tokens or DP_VIRTUAL_TOKENS
        budget = budget_examples or (math.ceil(epochs * num_examples) if epochs else None)
        plan = plan_dp(num_examples, epsilon, delta, virtual * hidden_size,
                       budget_examples=budget, batch_size=batch_size, steps=max_steps, learning_rate=learning_rate)
        check_reachable(epsilon, delta, plan.sample_rate, plan.steps, accountant, epsilon_key)
        physical = physical_batch_size or physical_batch(plan.batch_size, max_length)
        return ResolvedSettings(plan.batch_size, plan.steps, 1.0, plan.learning_rate, virtual, physical, plan)
    batch = batch_size or NON_DP_BATCH
    steps = max_steps or -1
    if not max_steps and budget_examples:
        steps = math.ceil(budget_examples / batch) if round_steps_up else max(1, budget_examples // batch)
    if private and batch <= num_examples:  # the trainer's step count under Poisson sampling (`planned_steps`)
        planned = steps if steps > 0 else math.ceil((epochs or 1.0) * max(1, num_examples // batch))
        check_reachable(epsilon, delta, batch / num_examples, planned, accountant, epsilon_key)
    # micro-batches of at most 2,048 tokens without DP too: the same update, a third of the memory (a batch of 128
    # at 64 tokens through SmolLM2-135M: 11.3 GiB peak whole, 3.9 GiB in micro-batches of 32; benchmarks/results/
    # tune_memory.md)
    physical = physical_batch_size or physical_batch(batch, max_length)
    return ResolvedSettings(batch, steps, epochs or 1.0, learning_rate or NON_DP_LR,
                            num_virtual_tokens or NON_DP_VIRTUAL, physical)
