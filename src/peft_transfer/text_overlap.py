"""Which public texts overlap private ones: shared long word n-grams (or whole short texts), as check-leaks reads.

Used to keep a public corpus (distillation, transfer) disjoint from the private task data by content, not by
trusting where a file came from. The matching is `audit.leakage`'s: lower-cased `\\w+` word n-grams, texts
shorter than n words matched whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .audit.leakage import _Index


def overlapping_texts(candidates: Sequence[str], private: Iterable[str], ngram: int = 8,
                      min_chars: int = 20) -> list[int]:
    """Indices of `candidates` that contain a private text or one of its `ngram`-word n-grams."""
    index = _Index(list(private), ngram, min_chars)
    return [i for i, text in enumerate(candidates) if next(index.matches(text), None) is not None]
