"""argparse `type=` converters whose errors name the rule, so a bad value is one clear line at parse time."""

from __future__ import annotations

import argparse
import math

from ..distill.recipes import MIN_BLOCK_SIZE
from ..tune.dp_plan import delta_problem, epsilon_problem


def _number(text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None


def positive_int(text: str) -> int:
    """An integer >= 1 (batch sizes, steps, counts)."""
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, temperatures, epochs)."""
    value = _number(text, float)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def unit_interval(text: str) -> float:
    """A number in [0, 1]."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {text}")
    return value


def open_unit_interval(text: str) -> float:
    """A number in (0, 1)."""
    value = _number(text, float)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {text}")
    return value


def epsilon(text: str) -> float:
    """A DP budget: a number the accountants can certify and that still promises something
    (`dp_plan.epsilon_problem`: 0.01 to 50), or inf (no differential privacy)."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    value = _number(text, float)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive (or inf for no differential privacy), got {text}")
    problem = epsilon_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return value


def dp_delta(text: str) -> float:
    """A DP δ: strictly between 0 and 1, and not so small that the accountants cannot work with it
    (`dp_plan.delta_problem`)."""
    problem = delta_problem(_number(text, float))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return float(text)


def block_size(text: str) -> int:
    """Tokens per distillation or calibration block: at least `recipes.MIN_BLOCK_SIZE` (a 1-token block predicts
    nothing: loss 0, perplexity nan)."""
    value = _number(text, int)
    if value < MIN_BLOCK_SIZE:
        raise argparse.ArgumentTypeError(f"a block needs at least {MIN_BLOCK_SIZE} tokens (one token predicts "
                                         f"nothing: loss 0 and perplexity nan), got {text}")
    return value


def layer_list(text: str) -> list[int]:
    """Comma-separated layer indices, e.g. 0,1,28,29 (negative indices count from the end)."""
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated layer numbers such as 0,1,28,29, got {text!r}") \
            from None
    if not layers:
        raise argparse.ArgumentTypeError("expected at least one layer number, e.g. 0,1,28,29")
    return layers


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (loss weights)."""
    value = _number(text, float)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or a positive number, got {text}")
    return value
