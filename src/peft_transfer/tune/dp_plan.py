"""Batch size, steps and learning rate for DP prompt tuning, from the data size, ε and a compute budget.

Why DP wants large batches: DP-SGD adds Gaussian noise of standard deviation σ·C to the *sum* of a logical
batch's clipped per-example gradients (clip norm C), so the mean gradient that the optimizer sees carries noise
σ·C/B per coordinate, a vector of norm ≈ σ·C·√d/B over the prompt's d = virtual tokens × hidden size
coordinates, against a signal of norm at most C. At a fixed ε, σ grows only slowly with the sampling rate
q = B/N and the number of steps, so at a fixed compute budget (examples processed = B × steps) fewer, larger
steps carry far less noise per update: at ε = 8 on 10,752 reviews, batch 16 gives a noise norm of 2.8·C over a
20-token prompt, batch 128 with a 4-token prompt 0.16·C. The batch stops growing when the budget would leave
fewer than `MIN_STEPS` steps (the prompt has to move) or q would pass `MAX_SAMPLE_RATE`.

`plan_dp` takes the smallest batch whose noise norm is at most `NOISE_TARGET`·C (more steps while the noise
allows), else the largest batch allowed. σ is estimated with the RDP accountant (fast, and never below PRV's);
the trainer then calibrates the σ it uses with the accountant it is given, so ε is spent exactly as before.
The constants come from `benchmarks/results/dp_levers.md` (Rotten Tomatoes and BBC News on SmolLM2-135M):
they are fitted to those two tasks, not tuned on your data (which would need privacy budget of its own).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from ..errors import PeftTransferError

BATCHES = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
MIN_STEPS = 16
MAX_SAMPLE_RATE = 0.1
NOISE_TARGET = 0.2
DP_VIRTUAL_TOKENS = 4
DP_LEARNING_RATE = 1e-2
DP_PHYSICAL_TOKENS = 2048
MIN_BUDGET = 4096  # BBC News (1,625 articles) at ε = 8: 78.7 % after 2,048 examples, 83.7 % after 4,096
MAX_DEFAULT_BUDGET = 8192
MIN_EPSILON = 0.01  # the PRV accountant's resolution (its eps_error): a smaller ε cannot be certified
MAX_EPSILON = 50.0  # above it (ε, δ)-DP bounds nothing, and calibrating σ with PRV takes minutes
MAX_SIGMA = 2.0**16 * 20  # where Opacus's σ search gives up ("The privacy budget is too low.")
MIN_DELTA = 1e-10  # below it the PRV accountant's floating-point error dominates (Opacus refuses to account)


def epsilon_problem(value: float) -> str | None:
    """Why `value` cannot be a target ε (or a stop at ε), None when it can; inf means no DP. The CLI's --epsilon
    flags and the pipeline's `epsilons` both ask this (each names its flag or key)."""
    if math.isinf(value) and value > 0:
        return None
    if not value > 0:
        return f"must be positive (or inf for no differential privacy), got {value:g}"
    if value < MIN_EPSILON:
        return (f"{value:g} is below {MIN_EPSILON:g}, the smallest ε the privacy accountants here can certify; use "
                f"an ε of at least {MIN_EPSILON:g}")
    if value > MAX_EPSILON:
        return (f"{value:g} is above {MAX_EPSILON:g}: at such an ε the DP guarantee bounds nothing (likelihood "
                f"ratios up to e^{value:g}) and the accountants would take minutes on it; use inf to train without "
                f"DP, or an ε of at most {MAX_EPSILON:g}")
    return None


def delta_problem(value: float) -> str | None:
    """Why `value` cannot be a δ, None when it can (the CLI's --delta flags ask this)."""
    if not 0.0 < value < 1.0:
        return f"must lie strictly between 0 and 1 (and well below 1/N), got {value:g}"
    if value < MIN_DELTA:
        return (f"{value:g} is below {MIN_DELTA:g}, where the privacy accountants' floating-point error dominates; use "
                f"a δ of at least {MIN_DELTA:g} (default: 1/(10 N) for N training examples)")
    return None


def check_dp_flags(epsilon: float | None, delta: float | None, noise_multiplier: float | None = None,
                   stop_at_epsilon: float | None = None, noise_flag: bool = True) -> None:
    """Refuse --delta or --stop-at-epsilon when nothing turns DP on (no finite --epsilon, no --noise-multiplier
    where the command has that flag, `noise_flag`): the run would silently train without differential privacy."""
    if noise_multiplier is not None or (epsilon is not None and not math.isinf(epsilon)):
        return
    for flag, value in (("--delta", delta), ("--stop-at-epsilon", stop_at_epsilon)):
        if value is not None:
            without = "--epsilon inf means no DP" if epsilon is not None else "without --epsilon"
            turn_on = "--epsilon (e.g. --epsilon 8)" + (" or --noise-multiplier" if noise_flag else "")
            raise PeftTransferError(f"{flag} {value:g} is a differential-privacy setting, but {without}: the run "
                                    f"would train without DP. Add {turn_on} for DP, or drop {flag}.")


def check_noise_multiplier(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                           flag: str = "--noise-multiplier") -> None:
    """Refuse a given σ that spends more than `MAX_EPSILON` over the run (by the RDP bound: fast, and PRV's ε is
    at most it and measured within ~10 % of it there): its guarantee bounds nothing, and at such a σ the PRV
    accountant overflows (ε = inf), fails, or takes minutes."""
    from opacus.accountants import create_accountant  # heavy (opacus, torch): only when a DP run is planned

    counter = create_accountant("rdp")
    counter.history = [(noise_multiplier, min(sample_rate, 1.0), steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bound = float(counter.get_epsilon(delta=delta))
    if bound > MAX_EPSILON:
        raise PeftTransferError(
            f"{flag} {noise_multiplier:g} spends ε up to {bound:.3g} over {steps:,} step{'s' if steps != 1 else ''} "
            f"at sampling rate {sample_rate:.3g} (δ = {delta:.2g}); above {MAX_EPSILON:g} the DP guarantee bounds "
            f"nothing: raise {flag} (about 1 is usual), give --epsilon to calibrate σ, or stop early with "
            "--stop-at-epsilon.")


def epsilon_floor(delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    """The smallest ε `accountant` certifies for `steps` steps at `sample_rate` and `delta`: ε at `MAX_SIGMA`
    (below it, Opacus's σ search fails with "The privacy budget is too low")."""
    from opacus.accountants import create_accountant  # heavy (opacus, torch): only when a DP run is planned

    counter = create_accountant(accountant)
    counter.history = [(MAX_SIGMA, sample_rate, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(counter.get_epsilon(delta=delta))


def check_reachable(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str,
                    key: str = "--epsilon") -> None:
    """Refuse a target ε below what `accountant` can certify for this run (`epsilon_floor`), naming `key`."""
    floor = epsilon_floor(delta, sample_rate, steps, accountant)
    if epsilon > floor:
        return
    need = float(f"{floor * 1.05:.2g}")
    need = need if need > floor else floor * 1.1
    run = f"{steps:,} step{'s' if steps != 1 else ''} at sampling rate {sample_rate:.3g} and δ = {delta:.2g}"
    raise PeftTransferError(
        f"{key} {epsilon:g} cannot be reached: for {run}, the {accountant} accountant certifies no ε below "
        f"{floor:.2g}, however much noise is added; use an ε of at least {need:g}"
        + (" (or the prv accountant)" if accountant == "rdp" else "") + ".")


def default_budget(num_examples: int) -> int:
    """Examples processed when the user sets no budget: one epoch, at least `MIN_BUDGET` and at most
    `MAX_DEFAULT_BUDGET` (about an hour of a 135M-parameter target on 2 CPU cores for short texts)."""
    return min(max(num_examples, MIN_BUDGET), MAX_DEFAULT_BUDGET)


@dataclass(frozen=True)
class DPPlan:
    """The chosen logical batch, steps and learning rate, with the noise they imply."""

    num_examples: int
    budget_examples: int
    batch_size: int
    steps: int
    learning_rate: float
    noise_multiplier: float  # RDP estimate; the trainer calibrates the one it uses
    prompt_dims: int

    @property
    def sample_rate(self) -> float:
        return self.batch_size / self.num_examples

    @property
    def examples(self) -> int:
        """Examples processed (expected, under Poisson sampling)."""
        return self.batch_size * self.steps

    @property
    def epochs(self) -> float:
        return self.examples / self.num_examples

    @property
    def noise_ratio(self) -> float:
        """Norm of the noise on the mean clipped gradient, in units of the clip norm C: σ·√d / B."""
        return noise_ratio(self.noise_multiplier, self.batch_size, self.prompt_dims)

    def describe(self, epsilon: float) -> str:
        return (f"DP plan for {self.num_examples:,} examples at ε = {epsilon:g}: logical batch {self.batch_size} "
                f"(Poisson, q = {self.sample_rate:.4g}), {self.steps} steps = {self.examples:,} examples "
                f"({self.epochs:.2g} epochs of a {self.budget_examples:,}-example budget), lr {self.learning_rate:g}; "
                f"noise on the mean clipped gradient ≈ {self.noise_ratio:.2g}·C over {self.prompt_dims:,} prompt "
                f"coordinates (σ ≈ {self.noise_multiplier:.3g})")


def noise_warning(plan: DPPlan) -> str | None:
    """A warning when the noise norm reaches the clip norm (measured: then the DP prompt ends below its init)."""
    if plan.noise_ratio < 1.0:
        return None
    return (f"WARNING: the noise on each step ({plan.noise_ratio:.2g}·C) outweighs the clipped gradient (at most C): "
            "expect the prompt to learn little or get worse; raise --budget-examples (larger batches), ε, or use "
            "fewer virtual tokens.")


def noise_ratio(noise_multiplier: float, batch_size: int, prompt_dims: int) -> float:
    """σ·√d / B: the noise norm on a logical batch's mean clipped gradient, relative to C."""
    return noise_multiplier * math.sqrt(prompt_dims) / batch_size


def candidate_batches(num_examples: int, budget_examples: int) -> list[int]:
    """Batch sizes that leave at least `MIN_STEPS` steps and a sampling rate of at most `MAX_SAMPLE_RATE`;
    when none does, the largest batch that leaves one step at that rate (at least 1)."""
    fits = [b for b in BATCHES if b <= num_examples * MAX_SAMPLE_RATE and budget_examples // b >= MIN_STEPS]
    if fits:
        return fits
    return [max(1, min(budget_examples // MIN_STEPS, int(num_examples * MAX_SAMPLE_RATE)))]


def plan_dp(num_examples: int, epsilon: float, delta: float, prompt_dims: int, budget_examples: int | None = None,
            batch_size: int | None = None, steps: int | None = None, learning_rate: float | None = None) -> DPPlan:
    """The smallest candidate batch whose noise ratio is at most `NOISE_TARGET`, else the largest candidate,
    with steps = budget // batch. A given `batch_size` or `steps` is kept as it is (the plan then only
    reports its noise); the budget defaults to batch × steps when both are given, else `default_budget`.
    `delta` is the δ the run will use (below 1/N)."""
    from opacus.accountants.utils import get_noise_multiplier

    if batch_size is not None and batch_size > num_examples:
        raise PeftTransferError(f"batch size {batch_size} is larger than the {num_examples} training examples.")
    budget = budget_examples or (batch_size * steps if batch_size and steps else default_budget(num_examples))
    chosen = None
    for batch in [batch_size] if batch_size else candidate_batches(num_examples, budget):
        n_steps = steps or max(1, budget // batch)
        with warnings.catch_warnings():  # "optimal order is the largest alpha": an estimate, RDP errs high
            warnings.simplefilter("ignore", UserWarning)
            try:
                sigma = float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta,
                                                   sample_rate=batch / num_examples, steps=n_steps,
                                                   accountant="rdp", epsilon_tolerance=0.05))
            except ValueError:  # below RDP's floor (PRV may still certify it: `check_reachable` decides)
                sigma = MAX_SIGMA
        chosen = DPPlan(num_examples, budget, batch, n_steps, learning_rate or DP_LEARNING_RATE, sigma, prompt_dims)
        if chosen.noise_ratio <= NOISE_TARGET:
            break
    return chosen


def physical_batch(batch_size: int, max_length: int) -> int:
    """Default micro-batch: at most `DP_PHYSICAL_TOKENS` tokens at the task's length limit (memory only)."""
    return max(1, min(batch_size, DP_PHYSICAL_TOKENS // max_length))
