"""ROC curve, AUC with a bootstrap confidence interval, TPR at fixed FPR, and the log-log ROC plot.

Written by hand (numpy + matplotlib) to keep scikit-learn out of the dependencies; the formulas are the
standard ones (AUC as the Mann-Whitney statistic with ties counted one half).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PeftTransferError


def _check(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    scores, labels = np.asarray(scores, dtype=np.float64).ravel(), np.asarray(labels, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise PeftTransferError(f"{scores.size} attack scores but {labels.size} membership labels")
    if labels.all() or not labels.any():
        raise PeftTransferError("The audit needs both members and non-members.")
    return scores, labels


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): guessing 'member' when score >= threshold, one point per distinct score,
    starting at (0, 0) with threshold +inf."""
    scores, labels = _check(scores, labels)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each run of equal scores
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr = np.r_[0.0, tp / labels.sum()]
    fpr = np.r_[0.0, fp / (~labels).sum()]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_counts(scores, labels) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(true positives, false positives, members, non-members) at every threshold of `roc_curve`."""
    fpr, tpr, _ = roc_curve(scores, labels)
    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    return np.rint(tpr * n_pos).astype(int), np.rint(fpr * n_neg).astype(int), n_pos, n_neg


def auc(scores, labels) -> float:
    """Area under the ROC curve = P(member score > non-member score) + P(tie) / 2 (rank formula)."""
    scores, labels = _check(scores, labels)
    return _auc_ranks(_average_ranks(scores), labels)


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    starts = np.r_[0, np.nonzero(np.diff(sorted_x))[0] + 1]
    ends = np.r_[starts[1:], x.size]
    ranks = np.empty(x.size)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def _auc_ranks(ranks: np.ndarray, labels: np.ndarray) -> float:
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(scores, labels, max_fpr: float) -> float:
    """Largest TPR over thresholds whose FPR is at most `max_fpr` (0 when no threshold qualifies)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(tpr[fpr <= max_fpr].max())


def bootstrap_auc_ci(scores, labels, num_resamples: int = 1000, confidence: float = 0.95, seed: int = 0,
                     groups=None) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC. `groups` (same shape as scores, e.g. the example index) resamples
    whole groups, since guesses about the same example from different targets are not independent."""
    scores, labels = _check(scores, labels)
    rng = np.random.default_rng(seed)
    if groups is None:
        groups = np.arange(scores.size)
    groups = np.asarray(groups).ravel()
    unique, inverse = np.unique(groups, return_inverse=True)
    members = [np.nonzero(inverse == g)[0] for g in range(unique.size)]
    values = []
    for _ in range(num_resamples):
        pick = np.concatenate([members[g] for g in rng.integers(0, unique.size, unique.size)])
        y = labels[pick]
        if y.all() or not y.any():
            continue
        values.append(_auc_ranks(_average_ranks(scores[pick]), y))
    if not values:
        raise PeftTransferError("Bootstrap failed: every resample had only one class.")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


@dataclass
class RocSeries:
    """One labelled ROC curve for `plot_roc`."""

    label: str
    fpr: np.ndarray
    tpr: np.ndarray


def plot_roc(series: list[RocSeries], path: str, title: str = "LiRA membership inference") -> None:
    """Write a log-log ROC plot (as in Carlini et al.) with the chance diagonal to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    floor = 1e-4
    for s in series:
        ax.plot(np.maximum(s.fpr, floor), np.maximum(s.tpr, floor), label=s.label, linewidth=1.5)
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, "k--", linewidth=0.8, label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(floor, 1)
    ax.set_ylim(floor, 1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
