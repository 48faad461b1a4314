"""Load user data for the CLI: an embedded set name, a csv / jsonl / json file, or a `save_to_disk` folder."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError

from ..errors import PeftTransferError
from ..tasks.labels import encode_labels
from .data import PRIVATE_DATASETS, PUBLIC_TEXT_SETS, load_labelled_dataset, load_public_texts

_FILE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def _root_cause(exc: BaseException) -> BaseException:
    while (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__
    return exc


def _unreadable(source: str, fmt: str, exc: Exception) -> PeftTransferError:
    """One line saying why `source` cannot be read, with the line to fix where it can be found."""
    raw = Path(source).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = raw[: bad.start].count(b"\n") + 1
        return PeftTransferError(f"{source} is not UTF-8 text (byte 0x{raw[bad.start]:02x} on line {line}); save it "
                                 "as UTF-8.")
    if fmt == "json" and source.lower().endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), 1):
            try:
                line.strip() and json.loads(line)
            except json.JSONDecodeError as bad:
                return PeftTransferError(f"{source} line {number} is not valid JSON ({bad.msg}); each line must be "
                                         'one object such as {"text": "...", "label": 0}.')
    cause = str(_root_cause(exc)).strip().splitlines()
    return PeftTransferError(f"cannot read {source} as {fmt}: {cause[0] if cause else type(exc).__name__}")


def _read_file(source: str) -> Dataset:
    ext = os.path.splitext(source)[1].lower()
    if ext not in _FILE_FORMATS:
        raise PeftTransferError(f"{source}: unsupported file type {ext!r}; use csv, jsonl, json or parquet.")
    if os.path.getsize(source) == 0:
        raise PeftTransferError(f"{source} is empty.")
    fmt = _FILE_FORMATS[ext]
    quiet = logging.getLogger("datasets")  # its readers log the parse error too; ours is the one line shown
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        return load_dataset(fmt, data_files=source, split="train")
    except ValueError as exc:
        if "corresponds to no data" in str(exc):
            raise PeftTransferError(f"{source} has no rows (only a header?).") from None
        raise _unreadable(source, fmt, exc) from None
    except (DatasetGenerationError, OSError) as exc:
        raise _unreadable(source, fmt, exc) from None
    finally:
        quiet.setLevel(level)


def read_data(source: str) -> Dataset | DatasetDict:
    """A csv/jsonl/json/parquet file (one Dataset) or a `save_to_disk` folder (Dataset or DatasetDict)."""
    if os.path.isdir(source):
        try:
            return load_from_disk(source)
        except FileNotFoundError:
            raise PeftTransferError(f"{source} is a folder but not a saved data set (datasets' save_to_disk); pass a "
                                    "csv/jsonl/json/parquet file or such a folder.") from None
    if os.path.isfile(source):
        return _read_file(source)
    raise PeftTransferError(f"{source!r} is neither an embedded data set nor an existing file or folder.")


def _from_file_or_folder(source: str, split: str | None, default_split: str) -> Dataset:
    """A split of a file (one split: the whole file) or of a `save_to_disk` folder."""
    if os.path.isfile(source) and split not in (None, "train"):
        raise PeftTransferError(f"{source} is a single file, so it has no {split!r} split: omit --split (all its "
                                "rows are used), or pass a saved DatasetDict folder.")
    loaded = read_data(source)
    if isinstance(loaded, DatasetDict):
        return _pick_split(loaded, source, split or default_split)
    if split not in (None, "train"):
        raise PeftTransferError(f"{source} holds one data set without splits, so it has no {split!r} split: omit "
                                "--split.")
    return loaded


def _pick_split(data: DatasetDict, source: str, split: str) -> Dataset:
    if split not in data:
        raise PeftTransferError(f"{source} has no {split!r} split; its splits: {', '.join(data)} (choose with "
                                "--split).")
    return data[split]


def describe_split(source: str, split: str | None, default_split: str) -> str:
    """What `load_labelled` read, for reports: the split's name, or the file's name for a single file."""
    one_split = os.path.isfile(source) or (os.path.isdir(source)
                                           and not os.path.isfile(os.path.join(source, "dataset_dict.json")))
    return f"all rows of {os.path.basename(os.path.normpath(source))}" if one_split else split or default_split


def first_words(row: dict, n: int) -> dict:
    """`datasets.map` function: the row's text cut to its first `n` words."""
    return {"text": " ".join(row["text"].split()[:n])}


def load_labelled(source: str, split: str | None = None, limit: int | None = None, default_split: str = "train",
                  task=None) -> Dataset:
    """A labelled split (columns `text`, `label`) from an embedded set name, a file or a folder.

    `split` None means `default_split` (a single file is one split: all its rows). With `task`, labels given
    as class names become class indices (`labels.encode_labels`).
    """
    if source in PRIVATE_DATASETS:
        data = _pick_split(load_labelled_dataset(source), source, split or default_split)
    else:
        data = _from_file_or_folder(source, split, default_split)
    if len(data) == 0:
        raise PeftTransferError(f"The data set {source!r} ({describe_split(source, split, default_split)}) is empty.")
    data = data.select(range(min(limit, len(data)))) if limit else data
    if task is not None:
        data = encode_labels(data, task)
    return data


def load_texts(source: str, limit: int | None = None, seed: int = 0, text_column: str = "text",
               max_words: int | None = None) -> Dataset:
    """Unlabelled public texts (one column `text`); any other column is dropped.

    `source` is an embedded set name, a file or folder, or several of them joined by `+` (a mixture, shuffled).
    `max_words` cuts each text to its first N whitespace-separated words (transfer cost grows with length).
    """
    if max_words is not None:
        if max_words < 1:
            raise PeftTransferError(f"max_words must be at least 1, got {max_words}.")
        data = load_texts(source, limit=limit, seed=seed, text_column=text_column)
        return data.map(first_words, fn_kwargs={"n": max_words})
    if "+" in source:
        from datasets import concatenate_datasets

        parts = [load_texts(part, limit=limit, seed=seed, text_column=text_column) for part in source.split("+")]
        data = concatenate_datasets(parts).shuffle(seed=seed)
        return data.select(range(limit)) if limit is not None and limit < len(data) else data
    if source in PUBLIC_TEXT_SETS:
        data = load_public_texts(source, limit=limit, seed=seed)
    else:
        data = _from_file_or_folder(source, None, "train")
        if text_column not in data.column_names:
            raise PeftTransferError(f"{source} has no {text_column!r} column (columns: {data.column_names}).")
        data = data.select_columns([text_column]).rename_column(text_column, "text") if text_column != "text" \
            else data.select_columns(["text"])
        if limit is not None and limit < len(data):
            data = data.shuffle(seed=seed).select(range(limit))
    if len(data) == 0:
        raise PeftTransferError(f"The public text set {source!r} is empty.")
    return data
