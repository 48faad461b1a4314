"""Accuracy and macro-F1 from predictions, and a confidence interval for an accuracy.

Written by hand (a dozen lines of numpy): `evaluate.load("accuracy")` needs the Hub for its metric
scripts, and these two formulas are standard (macro-F1 as in scikit-learn: classes absent from both
labels and predictions are skipped; a class never predicted has F1 0).
"""

from __future__ import annotations

import math

import numpy as np


def accuracy(predictions, labels) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if labels.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float((predictions == labels).mean())


def macro_f1(predictions, labels, num_classes: int | None = None) -> float:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if labels.size == 0:
        raise ValueError("macro-F1 of an empty set is undefined")
    classes = range(num_classes) if num_classes is not None else np.union1d(predictions, labels)
    scores = []
    for c in classes:
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        if tp + fp + fn == 0:
            continue
        scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def wilson_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % (z = 1.96) Wilson score interval of a proportion measured on `n` examples."""
    if n <= 0:
        raise ValueError("an interval needs at least one example")
    center = (accuracy + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(accuracy * (1 - accuracy) / n + z * z / (4 * n * n))
    return max(0.0, center - half), min(1.0, center + half)
