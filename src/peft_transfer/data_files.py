"""Load user data for the CLI: an embedded set name, a csv / jsonl / json file, or a `save_to_disk` folder."""

from __future__ import annotations

import os

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from .assets.data import PRIVATE_DATASETS, PUBLIC_TEXT_SETS, load_labelled_dataset, load_public_texts
from .errors import PeftTransferError

_FILE_FORMATS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def _from_file_or_folder(source: str, split: str) -> Dataset:
    if os.path.isdir(source):
        loaded = load_from_disk(source)
    elif os.path.isfile(source):
        ext = os.path.splitext(source)[1].lower()
        if ext not in _FILE_FORMATS:
            raise PeftTransferError(f"{source}: unsupported file type {ext!r}; use csv, jsonl, json or parquet.")
        loaded = load_dataset(_FILE_FORMATS[ext], data_files=source, split="train")
    else:
        raise PeftTransferError(f"{source!r} is neither an embedded data set nor an existing file or folder.")
    if isinstance(loaded, DatasetDict):
        if split not in loaded:
            raise PeftTransferError(f"{source} has splits {list(loaded)}, not {split!r}; pick one with --split.")
        loaded = loaded[split]
    return loaded


def first_words(row: dict, n: int) -> dict:
    """`datasets.map` function: the row's text cut to its first `n` words."""
    return {"text": " ".join(row["text"].split()[:n])}


def load_labelled(source: str, split: str = "train", limit: int | None = None) -> Dataset:
    """A labelled split (columns `text`, `label`) from an embedded set name, a file or a folder."""
    known = source in PRIVATE_DATASETS
    data = load_labelled_dataset(source)[split] if known else _from_file_or_folder(source, split)
    if len(data) == 0:
        raise PeftTransferError(f"The data set {source!r} ({split}) is empty.")
    return data.select(range(min(limit, len(data)))) if limit else data


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
        data = _from_file_or_folder(source, "train")
        if text_column not in data.column_names:
            raise PeftTransferError(f"{source} has no {text_column!r} column (columns: {data.column_names}).")
        data = data.select_columns([text_column]).rename_column(text_column, "text") if text_column != "text" \
            else data.select_columns(["text"])
        if limit is not None and limit < len(data):
            data = data.shuffle(seed=seed).select(range(limit))
    if len(data) == 0:
        raise PeftTransferError(f"The public text set {source!r} is empty.")
    return data
