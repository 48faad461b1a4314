"""Empirical lower bound on epsilon from an attack's (TPR, FPR) pairs (Jagielski et al. 2020; Nasr et al. 2021).

An (epsilon, delta)-DP mechanism forces every membership test to satisfy TPR <= e^eps * FPR + delta and
1 - FPR <= e^eps * (1 - TPR) + delta, so each threshold of the attack implies
eps >= max(log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR))). Point estimates of the rates
would overstate it; Clopper-Pearson bounds (TPR from below, FPR from above, each at (1 - confidence) / 2)
make it a lower bound that holds with the stated confidence *for one threshold fixed in advance*.
Taking the maximum over all thresholds on the same guesses is optimistic (multiple comparisons), so
`empirical_epsilon` also offers `selection="holdout"`: pick the threshold on one half of the guesses and
bound epsilon on the other half. Both assume independent guesses; guesses pooled over prompts and
examples are only approximately so (see the audit report).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import beta  # scipy comes with opacus

from ..errors import PeftTransferError
from .roc import roc_counts


def clopper_pearson(successes, trials, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided exact binomial interval (lower, upper) for each (successes, trials)."""
    k, n = np.asarray(successes, dtype=np.float64), np.asarray(trials, dtype=np.float64)
    alpha = 1 - confidence
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        upper = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(lower), np.nan_to_num(upper, nan=1.0)


def epsilon_from_rates(tpr, fpr, delta: float) -> np.ndarray:
    """max(log((TPR - delta)/FPR), log((1 - FPR - delta)/(1 - TPR)), 0) elementwise (0 where undefined)."""
    tpr, fpr = np.asarray(tpr, dtype=np.float64), np.asarray(fpr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where((tpr - delta > 0) & (fpr > 0), np.log((tpr - delta) / fpr), 0.0)
        first = np.where((tpr - delta > 0) & (fpr == 0), np.inf, first)
        second = np.where((1 - fpr - delta > 0) & (tpr < 1), np.log((1 - fpr - delta) / (1 - tpr)), 0.0)
        second = np.where((1 - fpr - delta > 0) & (tpr == 1), np.inf, second)
    return np.maximum(np.maximum(first, second), 0.0)


@dataclass
class EpsilonBound:
    """The empirical epsilon lower bound and the rates at the threshold that gave it."""

    epsilon_lower_bound: float
    delta: float
    confidence: float
    selection: str
    tpr_lower: float
    fpr_upper: float
    threshold_index: int
    num_guesses: int

    def to_dict(self) -> dict:
        return asdict(self)


def _bounds_at_all_thresholds(scores, labels, delta, confidence):
    tp, fp, n_pos, n_neg = roc_counts(scores, labels)
    tpr_lo, _ = clopper_pearson(tp, n_pos, confidence)
    _, fpr_hi = clopper_pearson(fp, n_neg, confidence)
    return epsilon_from_rates(tpr_lo, fpr_hi, delta), tpr_lo, fpr_hi


def empirical_epsilon(scores, labels, delta: float, confidence: float = 0.95, selection: str = "max",
                      seed: int = 0) -> EpsilonBound:
    """Lower bound on epsilon implied by the attack at `delta`.

    selection="max": the maximum over thresholds of the Clopper-Pearson bound (the usual report; optimistic
    through threshold choice). selection="holdout": threshold chosen by that rule on a random half of the
    guesses, bound computed on the other half at that threshold (a valid bound for that one test).
    """
    if not 0 <= delta < 1:
        raise PeftTransferError(f"delta must be in [0, 1) (got {delta}).")
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels, dtype=bool).ravel()
    if selection == "max":
        eps, tpr_lo, fpr_hi = _bounds_at_all_thresholds(scores, labels, delta, confidence)
        i = int(np.argmax(eps))
        return EpsilonBound(float(eps[i]), delta, confidence, selection, float(tpr_lo[i]), float(fpr_hi[i]), i,
                            scores.size)
    if selection != "holdout":
        raise PeftTransferError(f"selection must be 'max' or 'holdout' (got {selection!r}).")
    rng = np.random.default_rng(seed)
    half = rng.permutation(scores.size) < scores.size // 2
    eps, _, _ = _bounds_at_all_thresholds(scores[half], labels[half], delta, confidence)
    sorted_scores = np.sort(np.unique(scores[half]))[::-1]
    i = int(np.argmax(eps))
    threshold = np.inf if i == 0 else sorted_scores[i - 1]
    test_scores, test_labels = scores[~half], labels[~half]
    guess = test_scores >= threshold
    tp, fp = int((guess & test_labels).sum()), int((guess & ~test_labels).sum())
    tpr_lo, _ = clopper_pearson(tp, int(test_labels.sum()), confidence)
    _, fpr_hi = clopper_pearson(fp, int((~test_labels).sum()), confidence)
    value = float(epsilon_from_rates(tpr_lo, fpr_hi, delta))
    return EpsilonBound(value, delta, confidence, selection, float(tpr_lo), float(fpr_hi), i, int(test_scores.size))
