"""A wall-clock training budget: stop when it is spent and anneal the learning rate over it.

A GPU lease (or any fixed slot of machine time) fixes the minutes, not the step count, and the step time of a
new machine is unknown until it runs. Annealing over a step count then either stops before the learning rate
has decayed or leaves minutes unused. `TrainingClock` measures the seconds spent in training (kept across
resumes through the Trainer's stateful-callback mechanism) and `budget_lr_factor` turns the spent fraction into
a learning-rate factor: a linear warm-up over the first 5 % of the budget, then a cosine to zero at the end,
the budget-indexed schedule of Geiping & Goldstein, "Cramming" (2022). The Trainer's `max_steps` stays an
upper bound.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

WARMUP_FRACTION = 0.05


def budget_lr_factor(fraction: float, warmup: float = WARMUP_FRACTION) -> float:
    """Learning-rate multiplier when `fraction` of the time budget is spent (warm-up, then cosine to 0)."""
    fraction = min(max(fraction, 0.0), 1.0)
    if fraction < warmup:
        return max(fraction / warmup, 1e-3)
    return 0.5 * (1.0 + math.cos(math.pi * (fraction - warmup) / (1.0 - warmup)))


class TrainingClock(TrainerCallback, ExportableState):
    """Seconds spent training (this run plus resumed ones); asks the Trainer to save and stop at the budget."""

    def __init__(self, budget_seconds: float, elapsed_before: float = 0.0):
        if budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be positive, got {budget_seconds}")
        self.budget_seconds = float(budget_seconds)
        self.elapsed_before = float(elapsed_before)
        self._start: float | None = None

    def elapsed(self) -> float:
        running = time.perf_counter() - self._start if self._start is not None else 0.0
        return self.elapsed_before + running

    def fraction(self) -> float:
        return min(1.0, self.elapsed() / self.budget_seconds)

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.elapsed() >= self.budget_seconds:
            control.should_training_stop = True
            control.should_save = True

    def state(self) -> dict:
        return {"args": {"budget_seconds": self.budget_seconds, "elapsed_before": round(self.elapsed(), 3)},
                "attributes": {}}


def spent_seconds(checkpoint: str | Path | None) -> float | None:
    """Training seconds a checkpoint's `TrainingClock` had counted (None without a clock or a checkpoint)."""
    state = Path(checkpoint) / "trainer_state.json" if checkpoint else None
    if state is None or not state.is_file():
        return None
    clocks = json.loads(state.read_text()).get("stateful_callbacks", {}).get(TrainingClock.__name__)
    if not clocks:
        return None
    clock = clocks[0] if isinstance(clocks, list) else clocks
    return float(clock["args"]["elapsed_before"])
