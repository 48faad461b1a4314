"""Leakage check: does any training string, or any long word n-gram of one, appear in saved files?

Scans every file under the given paths (artifact folders, Trainer output dirs, logs, model cards): text and
binary files are read as UTF-8 (undecodable bytes become separators), JSON files also by their decoded strings
(so escapes such as \\u00e9 or \\n do not hide a match), pickles also by their opcodes' string arguments, zip
containers (torch .pt/.bin, .zip) member by member, gzip, bzip2 and xz files (.gz, .bz2, .xz: compressed logs)
by their content, tar archives member by member, and safetensors files by their JSON header only (the rest is
numbers). A file that cannot be read (a broken link, a pipe, a corrupt archive) is an error, never skipped: a
scan that missed it would report no leak. Text is compared as lower-cased word sequences (`\\w+`), so
punctuation and whitespace changes do not hide a leak. Limits: text stored in other binary formats may run
into neighbouring letters and be missed; token ids (not text) are not decoded. Written by hand: no library
does this; it is a set lookup over word n-grams.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickletools
import re
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

from ..assets.overlap import NgramIndex
from ..errors import PeftTransferError

MAX_FILE_BYTES = 512 * 1024 * 1024
# compressed streams by their magic bytes: (magic, how to open, what it is)
_COMPRESSED = ((re.compile(rb"\x1f\x8b\x08"), lambda stream: gzip.GzipFile(fileobj=stream), "gzip"),
               (re.compile(rb"BZh[1-9]1AY&SY"), bz2.BZ2File, "bzip2"),
               (re.compile(rb"\xfd7zXZ\x00"), lzma.LZMAFile, "xz"))


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


def _decompressed(data: bytes, opener, kind: str, name: str) -> bytes:
    """The content of a compressed stream, at most `MAX_FILE_BYTES` (a bigger one is no artifact of a prompt)."""
    try:
        with opener(io.BytesIO(data)) as stream:
            content = stream.read(MAX_FILE_BYTES + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise PeftTransferError(f"{name} looks {kind}-compressed but cannot be decompressed ({exc}); repair or "
                                "remove it, then scan again.") from None
    if len(content) > MAX_FILE_BYTES:
        raise PeftTransferError(f"{name} decompresses to more than {MAX_FILE_BYTES >> 20} MiB; scan artifact "
                                "folders only.")
    return content


def _tar_members(data: bytes) -> list[tuple[str, bytes]] | None:
    """(name, content) of each regular member of a tar archive, or None when `data` is no tar archive."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            return [(m.name, archive.extractfile(m).read()) for m in archive.getmembers() if m.isfile()]
    except tarfile.TarError:
        return None


def _views(data: bytes, name: str) -> Iterator[tuple[str, str]]:
    """(view name, text) pairs to scan for one file's bytes."""
    for magic, opener, kind in _COMPRESSED:
        if magic.match(data):
            inner = os.path.splitext(name)[0]
            for view, text in _views(_decompressed(data, opener, kind, name), inner):
                yield f"{kind} ({view})", text
            return
    if len(data) >= 512 and (name.endswith(".tar") or data[257:262] == b"ustar"):
        members = _tar_members(data)
        if members is not None:
            for member, content in members:
                for view, text in _views(content, member):
                    yield f"tar member {member} ({view})", text
            return
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
                    yield _regular(os.path.join(root, name))
        else:
            raise PeftTransferError(f"{path} does not exist: pass artifact folders, log files or model cards.")


def _regular(path: str) -> str:
    """`path` when it is a regular file (or a link to one); a broken link, a pipe or a device is refused (a
    pipe would block the scan, and skipping it would report no leak for what it holds)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise PeftTransferError(f"{path} cannot be read ({exc.strerror or exc}): a broken link? Fix or remove it, "
                                "then scan again.") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        raise PeftTransferError(f"{path} is not a regular file (a pipe, socket or device), so it cannot be "
                                "scanned; move it out of the folder, then scan again.")
    return path


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
    paths = [paths] if isinstance(paths, str) else list(paths)
    files = list(_files(paths))
    if not files:  # "no leak" over nothing would pass a check that never ran
        raise PeftTransferError(f"no file to scan under {', '.join(paths)}: pass the folders that hold the artifacts "
                                "(prompt exports, logs, model cards).")
    for path in files:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise PeftTransferError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB; scan artifact folders only.")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise PeftTransferError(f"{path} cannot be read ({exc.strerror or exc}); check its permissions, then "
                                    "scan again.") from None
        for view, text in _views(data, os.path.basename(path)):
            for kind, i in index.matches(text):
                key = (path, i)
                if key not in leaks or (kind == "string" and leaks[key].kind == "ngram"):
                    leaks[key] = Leak(path, kind, i, text_hash(texts[i]), short_form(texts[i]), view)
    return sorted(leaks.values(), key=lambda leak: (leak.path, leak.text_index))
