"""Public/private overlap: a transfer or distillation corpus must not hold the private task's data.

Two checks. By source: the embedded sets record where their texts come from (`assets.data.DATA_SOURCES`),
so `bbc_articles` (the BBC News corpus) is refused as the public set of the private task `bbc_news`. By
content: each text is reduced to a fingerprint of its first words (lower-cased), and a public set in which
any text shares a fingerprint with a private text is refused. Errors give counts, never the texts.

A stricter filter for building a corpus, `overlapping_texts`, finds every public text that shares any long word
run with a private text (check-leaks' n-gram matching), so a corpus builder can drop them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from ..errors import PeftTransferError
from .data import DATA_SOURCES

_WORD = re.compile(r"\w+")
PREFIX_WORDS = 8  # texts cut to their first N >= 8 words (max_public_words) still match their source


def source_parts(name: str) -> list[str]:
    """The parts of a `+`-joined corpus name."""
    return [part for part in name.split("+") if part]


def check_source_overlap(public: str | None, private_task: str | None, role: str = "public set") -> None:
    """Refuse a public set (or any `+` part of it) that comes from the same source as the private task."""
    if not public or private_task not in DATA_SOURCES:
        return
    for part in source_parts(public):
        if DATA_SOURCES.get(part) == DATA_SOURCES[private_task]:
            raise PeftTransferError(
                f"The {role} {part!r} comes from the same source as the private task {private_task!r} "
                f"({DATA_SOURCES[part]}), so it holds private (and test) data; it cannot be public for that task. "
                "Pick a public set from another source.")


def text_fingerprints(texts: Iterable[str], words: int = PREFIX_WORDS) -> set[str]:
    """sha256 of each text's first `words` lower-cased words (texts with fewer words: all of them)."""
    keys = set()
    for text in texts:
        head = " ".join(str(text).lower().split()[:words])
        if head:
            keys.add(hashlib.sha256(head.encode("utf-8")).hexdigest())
    return keys


def check_content_overlap(public_texts: Iterable[str], private_texts: Iterable[str], public: str,
                          private_task: str, role: str = "public set") -> None:
    """Refuse public texts of which any shares its fingerprint with a private text (counts only in the error)."""
    private = text_fingerprints(private_texts)
    public_list = list(public_texts)
    shared = sum(1 for key in (text_fingerprints([t]) for t in public_list) if key & private)
    if shared:
        raise PeftTransferError(
            f"{shared} of the {len(public_list)} texts of the {role} {public!r} also occur in the private task "
            f"{private_task!r}'s data (same first {PREFIX_WORDS} words): a public set must not contain private "
            "data. Remove them or pick another public set.")


def overlapping_texts(candidates: list[str], private: Iterable[str], ngram: int = 8, min_chars: int = 20) -> list[int]:
    """Indices of `candidates` that contain a private text or one of its `ngram`-word runs (lower-cased words)."""
    index = NgramIndex(list(private), ngram, min_chars)
    return [i for i, text in enumerate(candidates) if next(index.matches(text), None) is not None]


def word_list(text: str) -> list[str]:
    """The lower-cased words (`\\w+` runs) of a text: punctuation and spacing never hide a match."""
    return _WORD.findall(text.lower())


class NgramIndex:
    """Word n-grams of the training texts (texts shorter than n words: the whole text, if long enough)."""

    def __init__(self, texts: list[str], ngram: int, min_chars: int):
        self.ngram = ngram
        self.grams: dict[tuple[str, ...], int] = {}
        self.short: dict[int, dict[tuple[str, ...], int]] = {}
        for i, text in enumerate(texts):
            words = word_list(text)
            if len(words) >= ngram:
                for j in range(len(words) - ngram + 1):
                    self.grams.setdefault(tuple(words[j : j + ngram]), i)
            elif words and len(text.strip()) >= min_chars:
                self.short.setdefault(len(words), {}).setdefault(tuple(words), i)

    def matches(self, text: str) -> Iterator[tuple[str, int]]:
        words = word_list(text)
        for j in range(len(words) - self.ngram + 1):
            i = self.grams.get(tuple(words[j : j + self.ngram]))
            if i is not None:
                yield "ngram", i
        for length, table in self.short.items():
            for j in range(len(words) - length + 1):
                i = table.get(tuple(words[j : j + length]))
                if i is not None:
                    yield "string", i
