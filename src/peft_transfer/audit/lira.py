"""LiRA statistics (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022, online).

Written by hand (numpy): no maintained library implements LiRA for a model we train ourselves, and the
statistics are a few lines. A shadow model's *score* for an example is its logit-scaled confidence on the
true label, phi = log(p / (1 - p)) with p the softmax probability of the true class over the task's class
scores; phi is close to Gaussian across shadow models. For every example we fit one Gaussian to the scores
of the shadows that trained on it (IN) and one to those that did not (OUT); the attack's membership score
for a target model is the log likelihood ratio log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PeftTransferError

MIN_SHADOWS = 4
GLOBAL_VARIANCE_BELOW = 16  # Carlini et al. use one global variance when there are fewer than ~64 shadows


def logit_confidence(class_scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """phi = log(p_y / (1 - p_y)) of softmax(class_scores), computed stably as s_y - logsumexp_{c != y} s_c."""
    scores = np.asarray(class_scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise PeftTransferError(f"class scores {scores.shape} do not match {labels.shape[0]} labels")
    if scores.shape[1] < 2:
        raise PeftTransferError("LiRA needs a task with at least two classes.")
    true = scores[np.arange(len(labels)), labels]
    others = scores.copy()
    others[np.arange(len(labels)), labels] = -np.inf
    top = others.max(1, keepdims=True)
    rest = top[:, 0] + np.log(np.exp(others - top).sum(1))
    return true - rest


def balanced_membership(num_examples: int, num_shadows: int, seed: int = 0) -> np.ndarray:
    """(num_shadows, num_examples) boolean IN matrix: every example is IN for exactly half of the shadows
    (rounded down for odd K), chosen at random per example, so each shadow trains on about half the pool."""
    rng = np.random.default_rng(seed)
    keep = np.zeros((num_shadows, num_examples), dtype=bool)
    half = num_shadows // 2
    for i in range(num_examples):
        keep[rng.permutation(num_shadows)[:half], i] = True
    return keep


@dataclass
class GaussianFit:
    """Per-example IN/OUT Gaussians (arrays of length n) and whether the global variance was used."""

    mean_in: np.ndarray
    std_in: np.ndarray
    mean_out: np.ndarray
    std_out: np.ndarray
    global_variance: bool


def fit_gaussians(scores: np.ndarray, keep: np.ndarray, global_variance: bool | None = None) -> GaussianFit:
    """Fit IN/OUT Gaussians per example from shadow scores (K, n) and the IN matrix keep (K, n).

    With few shadows per side the per-example variance is noise, so (by default when there are fewer than
    GLOBAL_VARIANCE_BELOW shadows) one pooled variance per side is used for all examples, as in the paper.
    An example with no IN (or OUT) shadow cannot be scored: that is an error.
    """
    scores, keep = np.asarray(scores, dtype=np.float64), np.asarray(keep, dtype=bool)
    if scores.shape != keep.shape:
        raise PeftTransferError(f"shadow scores {scores.shape} and membership {keep.shape} differ in shape")
    n_in, n_out = keep.sum(0), (~keep).sum(0)
    if (n_in == 0).any() or (n_out == 0).any():
        raise PeftTransferError("Some examples have no IN or no OUT shadow: use more shadows (balanced halves).")
    if global_variance is None:
        global_variance = scores.shape[0] < GLOBAL_VARIANCE_BELOW
    mean_in = np.where(keep, scores, 0).sum(0) / n_in
    mean_out = np.where(~keep, scores, 0).sum(0) / n_out
    sq_in = np.where(keep, (scores - mean_in) ** 2, 0).sum(0)
    sq_out = np.where(~keep, (scores - mean_out) ** 2, 0).sum(0)
    if global_variance:
        # pooled within-example variance over all degrees of freedom; a side without any (one shadow per
        # example) borrows the other side's
        df_in, df_out = (n_in - 1).sum(), (n_out - 1).sum()
        if df_in + df_out == 0:
            raise PeftTransferError("Too few shadows to estimate a score variance: use more shadows.")
        pooled_in = sq_in.sum() / df_in if df_in else sq_out.sum() / df_out
        pooled_out = sq_out.sum() / df_out if df_out else pooled_in
        var_in, var_out = np.full(scores.shape[1], pooled_in), np.full(scores.shape[1], pooled_out)
    else:
        var_in = sq_in / np.maximum(n_in - 1, 1)
        var_out = sq_out / np.maximum(n_out - 1, 1)
    floor = 1e-6
    return GaussianFit(mean_in, np.sqrt(np.maximum(var_in, floor)), mean_out, np.sqrt(np.maximum(var_out, floor)),
                       bool(global_variance))


def _log_normal(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


def likelihood_ratio(target_scores: np.ndarray, fit: GaussianFit) -> np.ndarray:
    """Membership score log p(phi | IN) - log p(phi | OUT) per example; larger means 'member'."""
    x = np.asarray(target_scores, dtype=np.float64)
    return _log_normal(x, fit.mean_in, fit.std_in) - _log_normal(x, fit.mean_out, fit.std_out)


def balanced_means(scores: np.ndarray, keep: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-example IN and OUT means over equally many IN and OUT shadows (a random subset of the larger side).

    Needed for leave-one-out: with every example IN for exactly half of the shadows, the remaining shadows
    hold one fewer of the target's own side, and a mean over fewer shadows is noisier, which alone moves the
    likelihood ratio against members (measured AUC 0.47 on pure noise). Equal counts remove that bias.
    """
    n_in, n_out = keep.sum(0), (~keep).sum(0)
    m = np.minimum(n_in, n_out)
    priority = rng.random(scores.shape)
    means = []
    for side in (keep, ~keep):
        rank = np.argsort(np.argsort(np.where(side, priority, np.inf), axis=0), axis=0)
        use = side & (rank < m)
        means.append(np.where(use, scores, 0).sum(0) / m)
    return means[0], means[1]


def leave_one_out_scores(scores: np.ndarray, keep: np.ndarray, global_variance: bool | None = None, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Each shadow in turn is the target, attacked with Gaussians fitted on the other K - 1 shadows.

    Returns (attack scores, membership labels), both (K, n): K * n guesses from K trained prompts, which
    is what makes an audit with few shadows possible (the paper's K + 1 models with one target would give
    only n guesses). Means come from equally many IN and OUT shadows (`balanced_means`), variances from
    all of them. Needs K >= MIN_SHADOWS so that every example keeps an IN and an OUT shadow.
    """
    scores, keep = np.asarray(scores, dtype=np.float64), np.asarray(keep, dtype=bool)
    k = scores.shape[0]
    if k < MIN_SHADOWS:
        raise PeftTransferError(f"LiRA needs at least {MIN_SHADOWS} shadow prompts (got {k}).")
    if global_variance is None:
        global_variance = k - 1 < GLOBAL_VARIANCE_BELOW
    rng = np.random.default_rng(seed)
    attack = np.zeros_like(scores)
    for t in range(k):
        others = np.arange(k) != t
        fit = fit_gaussians(scores[others], keep[others], global_variance)
        fit.mean_in, fit.mean_out = balanced_means(scores[others], keep[others], rng)
        attack[t] = likelihood_ratio(scores[t], fit)
    return attack, keep.copy()
