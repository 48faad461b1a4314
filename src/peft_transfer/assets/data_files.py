"""Load user data for the CLI: an embedded set name, a csv / jsonl / json file, or a `save_to_disk` folder."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from datasets.exceptions import DatasetGenerationError

from ..errors import PeftTransferError, warn_user
from ..tasks.labels import encode_labels, rows_phrase
from .data import PRIVATE_DATASETS, PUBLIC_TEXT_SETS, load_labelled_dataset, load_public_texts

_FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
_DELIMITERS = (",", "\t", ";", "|")  # tried in this order on a csv file's header line
LABEL_COLUMNS = ("label", "labels", "target", "class", "sentiment")  # a public file with one is likely labelled


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


def csv_delimiter(source: str) -> str:
    """The delimiter of a csv file, read off its header line: the first of , tab ; | that splits it into
    several columns (a `;`- or tab-separated file named .csv is read right); a one-column file: ','."""
    with open(source, encoding="utf-8", errors="replace", newline="") as f:
        header = f.readline(65536).rstrip("\r\n")
    for delimiter in _DELIMITERS:
        if len(next(csv.reader([header], delimiter=delimiter), [])) > 1:
            return delimiter
    return ","


def _refuse_single_object(source: str) -> None:
    """A .json file holding one object (not a list of rows) would be read as a single example."""
    with open(source, encoding="utf-8", errors="replace") as f:
        head = f.read(1 << 16).lstrip()
    if not head.startswith("{"):
        return
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # one object per line (JSON lines under a .json name), or broken: the reader says which
    if isinstance(data, dict):
        raise PeftTransferError(f"{source} holds one JSON object, not rows: write a list of rows "
                                '[{"text": "...", "label": 0}, ...], or one object per line in a .jsonl file.')


def _read_file(source: str) -> Dataset:
    ext = os.path.splitext(source)[1].lower()
    if ext not in _FILE_FORMATS:
        raise PeftTransferError(f"{source}: unsupported file type {ext!r}; use csv (or tsv), jsonl, json or parquet.")
    if os.path.getsize(source) == 0:
        raise PeftTransferError(f"{source} is empty.")
    fmt = _FILE_FORMATS[ext]
    if ext == ".json":
        _refuse_single_object(source)
    options = {"sep": csv_delimiter(source)} if fmt == "csv" else {}
    quiet = logging.getLogger("datasets")  # its readers log the parse error too; ours is the one line shown
    level, quiet.level = quiet.level, logging.CRITICAL
    try:
        return load_dataset(fmt, data_files=source, split="train", **options)
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


def require_columns(data: Dataset, source: str, columns: list[tuple[str, str]]) -> None:
    """Refuse a missing column: `columns` lists (column, what it holds and the flag or config key naming it,
    e.g. "text column with --text-column"); the message lists the columns present."""
    present = data.column_names
    for column, role in columns:
        if column not in present:
            raise PeftTransferError(f"{source} has no {column!r} column (its columns: {', '.join(present)}); name "
                                    f"its {role}.")


def check_text_cells(data: Dataset, column: str, source: str, setting: str | None = None) -> None:
    """Refuse a text column that holds no strings (the wrong column named, `setting` names the right one) or
    empty cells, with their rows."""
    feature = data.features[column]
    if getattr(feature, "dtype", None) not in ("string", "large_string", "null"):
        kind = getattr(feature, "dtype", type(feature).__name__)
        fix = f"; name the text column with {setting}" if setting else ""
        raise PeftTransferError(f"{source}: column {column!r} holds {kind} values, not text{fix}.")
    empty = [i for i, text in enumerate(data[column]) if not isinstance(text, str) or not text.strip()]
    if empty:
        raise PeftTransferError(f"{source}: column {column!r} has no text at {rows_phrase(empty)} (the first data row "
                                "is row 1); fill in the text there or remove those rows.")


def load_labelled(source: str, split: str | None = None, limit: int | None = None, default_split: str = "train",
                  task=None, text_column: str = "text", label_column: str | None = None,
                  settings: tuple[str, str] = ("--text-column", "--label-column")) -> Dataset:
    """A labelled split from an embedded set name, a file or a folder, with its text column renamed to the
    task's (`text`) and its label column (default: the task's; none without a task) to the task's.

    `split` None means `default_split` (a single file is one split: all its rows). Refused, with the rows to
    fix: empty text cells; with `task`, labels that are no class (class names become class indices,
    `labels.encode_labels`). `settings`: the flags (or config keys) naming the text and label columns.
    """
    if source in PRIVATE_DATASETS:
        data = _pick_split(load_labelled_dataset(source), source, split or default_split)
    else:
        data = _from_file_or_folder(source, split, default_split)
    if len(data) == 0:
        raise PeftTransferError(f"The data set {source!r} ({describe_split(source, split, default_split)}) is empty.")
    data = data.select(range(min(limit, len(data)))) if limit else data
    label_column = label_column or (task.label_column if task is not None else None)
    task_columns = (task.text_column, task.label_column) if task is not None else ("text", "label")
    wanted = [(text_column, task_columns[0], settings[0])]
    if label_column is not None:
        wanted.append((label_column, task_columns[1], settings[1]))
    require_columns(data, source, [(c, f"{ours} column with {flag}") for c, ours, flag in wanted])
    check_text_cells(data, text_column, source, settings[0])
    if task is not None:
        try:
            data = encode_labels(data, task, column=label_column)
        except PeftTransferError as exc:
            raise PeftTransferError(f"{source}: {exc}") from None
    renames = {theirs: ours for theirs, ours, _ in wanted if theirs != ours}
    clashing = [c for c in data.column_names if c in renames.values() and c not in renames]
    return data.remove_columns(clashing).rename_columns(renames) if renames else data


def warn_if_labelled(source: str, columns: list[str], setting: str) -> None:
    """Warn when public text (`setting`) comes from a file with a label column: likely private, labelled data."""
    labels = [c for c in columns if c.lower() in LABEL_COLUMNS]
    if labels:
        warn_user(f"{setting} {source} has a {labels[0]!r} column, so it looks like labelled (private) data; public "
                  "text should be unlabelled text anyone may see. Only its texts are used.")


def load_texts(source: str, limit: int | None = None, seed: int = 0, text_column: str = "text",
               max_words: int | None = None, setting: str = "public text") -> Dataset:
    """Unlabelled public texts (one column `text`); any other column is dropped.

    `source` is an embedded set name, a file or folder, or several of them joined by `+` (a mixture, shuffled).
    `max_words` cuts each text to its first N whitespace-separated words (transfer cost grows with length).
    A file's empty text cells are refused with their rows; a file with a label column is warned about.
    `setting`: the flag or config key that named `source`, for those messages.
    """
    if max_words is not None:
        if max_words < 1:
            raise PeftTransferError(f"max_words must be at least 1, got {max_words}.")
        data = load_texts(source, limit=limit, seed=seed, text_column=text_column, setting=setting)
        return data.map(first_words, fn_kwargs={"n": max_words})
    if "+" in source:
        from datasets import concatenate_datasets

        parts = [load_texts(part, limit=limit, seed=seed, text_column=text_column, setting=setting)
                 for part in source.split("+")]
        data = concatenate_datasets(parts).shuffle(seed=seed)
        return data.select(range(limit)) if limit is not None and limit < len(data) else data
    if source in PUBLIC_TEXT_SETS:
        data = load_public_texts(source, limit=limit, seed=seed)
    else:
        data = _from_file_or_folder(source, None, "train")
        if text_column not in data.column_names:
            raise PeftTransferError(f"{setting} {source} has no {text_column!r} column (its columns: "
                                    f"{', '.join(data.column_names)}); name the column of its texts "
                                    f"{text_column!r}.")
        warn_if_labelled(source, [c for c in data.column_names if c != text_column], setting)
        check_text_cells(data, text_column, f"{setting} {source}")
        data = data.select_columns([text_column]).rename_column(text_column, "text") if text_column != "text" \
            else data.select_columns(["text"])
        if limit is not None and limit < len(data):
            data = data.shuffle(seed=seed).select(range(limit))
    if len(data) == 0:
        raise PeftTransferError(f"The public text set {source!r} is empty.")
    return data
