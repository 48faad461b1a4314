"""Leakage check: does any training string, or any long word n-gram of one, appear in saved files?

Scans every file under the given paths (artifact folders, Trainer output dirs, logs, model cards):
text and binary files are read as UTF-8 (undecodable bytes become separators), JSON files also by their
decoded strings (so escapes such as \\u00e9 or \\n do not hide a match), pickles also by their opcodes'
string arguments, zip containers (torch .pt/.bin) member by member, and safetensors files by their JSON
header only (the rest is numbers). Text is compared as lower-cased word sequences (`\\w+`), so punctuation
and whitespace changes do not hide a leak. Limits: text stored in other binary formats may run into
neighbouring letters and be missed; token ids (not text) are not decoded. Written by hand: no library does
this; it is a set lookup over word n-grams.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickletools
import struct
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from ..assets.overlap import NgramIndex
from ..errors import PeftTransferError

MAX_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Leak:
    """One training text found in one file. `excerpt` is a short truncated form, never the whole text."""

    path: str
    kind: str  # "string": a whole (short) training text; "ngram": a long n-gram of one
    text_index: int
    text_hash: str
    excerpt: str
    view: str  # how the file was read: "text", "json strings", "zip member NAME", "safetensors header"

    def to_dict(self) -> dict:
        return asdict(self)


def text_hash(text: str) -> str:
    """Short, stable id of a private text that does not reveal it (sha256 prefix)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def short_form(text: str, max_chars: int = 16) -> str:
    """At most `max_chars` characters of the text's start, with an ellipsis: enough to recognise, not to read."""
    text = " ".join(text.split())
    return text[:max_chars] + "…" if len(text) > max_chars else text


def _json_strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _json_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _json_strings(v)


def _pickle_strings(data: bytes) -> str:
    """The string arguments of a pickle's opcodes (read with pickletools: nothing is executed). In raw bytes
    a string runs into the next opcode letter ('harbour' + BINPUT 'q' reads 'harbourq'); this does not."""
    strings = []
    try:
        for _, arg, _ in pickletools.genops(data):
            if isinstance(arg, str):
                strings.append(arg)
            elif isinstance(arg, bytes):
                strings.append(arg.decode("utf-8", errors="replace"))
    except Exception:  # noqa: BLE001 - a truncated or foreign stream: keep what was read
        pass
    return "\n".join(strings)


def _views(data: bytes, name: str) -> Iterator[tuple[str, str]]:
    """(view name, text) pairs to scan for one file's bytes."""
    if name.endswith(".safetensors"):
        if len(data) >= 8:
            (size,) = struct.unpack("<Q", data[:8])
            header = data[8 : 8 + size].decode("utf-8", errors="replace")
            yield "safetensors header", header
            try:
                strings = "\n".join(_json_strings(json.loads(header)))
            except json.JSONDecodeError:
                strings = ""
            yield "safetensors header strings", strings
        return
    text = data.decode("utf-8", errors="replace")
    yield "text", text
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            yield "json strings", "\n".join(_json_strings(json.loads(text)))
        except json.JSONDecodeError:
            lines = []
            for line in text.splitlines():  # jsonl
                try:
                    lines.extend(_json_strings(json.loads(line)))
                except json.JSONDecodeError:
                    continue
            if lines:
                yield "json strings", "\n".join(lines)
    if data[:1] == b"\x80" or name.endswith(".pkl"):
        yield "pickle strings", _pickle_strings(data)
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for member in archive.namelist():
                    for view, member_text in _views(archive.read(member), member):
                        yield f"zip member {member} ({view})", member_text
        except zipfile.BadZipFile:
            pass


def _files(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        if os.path.isfile(path):
            yield path
        elif os.path.isdir(path):
            for root, dirs, names in os.walk(path):
                dirs.sort()
                for name in sorted(names):
                    yield os.path.join(root, name)
        else:
            raise PeftTransferError(f"{path} does not exist: pass artifact folders, log files or model cards.")


def find_leaks(paths: Iterable[str] | str, training_texts: Iterable[str], ngram: int = 8,
               min_chars: int = 20) -> list[Leak]:
    """Every (file, training text) pair where the file contains the text or one of its `ngram`-word n-grams.

    Training texts with fewer than `ngram` words are matched whole, unless shorter than `min_chars`
    characters (a two-word text such as "great film" would match everywhere). Files above 512 MiB are
    an error (they are not artifacts of a soft prompt).
    """
    if ngram < 2:
        raise PeftTransferError("ngram must be at least 2 words.")
    texts = [t for t in training_texts]
    if not texts:
        raise PeftTransferError("No training texts given: pass the private data the prompt was tuned on.")
    index = NgramIndex(texts, ngram, min_chars)
    leaks: dict[tuple[str, int], Leak] = {}
    for path in _files([paths] if isinstance(paths, str) else paths):
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise PeftTransferError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB; scan artifact folders only.")
        with open(path, "rb") as f:
            data = f.read()
        for view, text in _views(data, os.path.basename(path)):
            for kind, i in index.matches(text):
                key = (path, i)
                if key not in leaks or (kind == "string" and leaks[key].kind == "ngram"):
                    leaks[key] = Leak(path, kind, i, text_hash(texts[i]), short_form(texts[i]), view)
    return sorted(leaks.values(), key=lambda leak: (leak.path, leak.text_index))
