"""Labels as the task's class indices: class names are accepted wherever labels are read, and every bad label
is reported with its row numbers."""

from __future__ import annotations

import math

from datasets import ClassLabel, Dataset, Value

from ..errors import PeftTransferError, warn_user


def rows_phrase(indices: list[int], shown: int = 5) -> str:
    """'row 4' or 'rows 4, 9, 12 and 3 more' for 0-based `indices` (reported from 1: the first data row is row 1,
    a csv header not counted)."""
    numbers = ", ".join(str(i + 1) for i in indices[:shown])
    more = f" and {len(indices) - shown} more" if len(indices) > shown else ""
    return f"row{'s' if len(indices) > 1 else ''} {numbers}{more}"


def _key(name) -> str:
    return str(name).strip().lower()


def _whole(value) -> int | None:
    """`value` as an integer when it is one (1, 1.0, "1", "1.0"), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and number.is_integer() else None


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip())


def encode_labels(data: Dataset, task, column: str | None = None) -> Dataset:
    """`data` with its label column (`column`, default the task's) as class indices of `task` (0 .. classes-1).

    String labels that are class names (any case, surrounding spaces ignored; " positive" and "Positive" are
    class `positive`) or whole numbers ("1", "1.0", 1.0) map to their index. A `ClassLabel` column whose names
    are the task's classes in another order is re-mapped to the task's order. Refused, with row numbers: empty
    cells (NaN, null, blank), unknown names, numbers that are not class indices.
    """
    column = column or task.label_column
    if column not in data.column_names or getattr(task, "kind", "classification") != "classification":
        return data  # nothing to encode (a generation task's target is free text)
    names = [_key(n) for n in task.class_names]
    feature = data.features[column]
    if isinstance(feature, ClassLabel):
        own = [_key(n) for n in feature.names]
        if own == names:
            return data
        if sorted(own) == sorted(names):
            order = [names.index(n) for n in own]
            return data.cast_column(column, Value("int64")).map(lambda row: {column: order[row[column]]})
        # other class names: its indices are read as the task's class indices (checked below)
    values = data[column]
    empty = [i for i, v in enumerate(values) if _missing(v)]
    if empty:
        raise PeftTransferError(f"Labels missing in column {column!r} at {rows_phrase(empty)} (the first data row is "
                                "row 1); fill in a class name or index there, or remove those rows.")
    index = {n: i for i, n in enumerate(names)}
    codes = [index.get(_key(v)) if isinstance(v, str) and _key(v) in index else _whole(v) for v in values]
    unknown = sorted({v if isinstance(v, (str, int, float)) else str(v) for v, c in zip(values, codes) if c is None},
                     key=str)
    if unknown:
        rows = [i for i, c in enumerate(codes) if c is None]
        raise PeftTransferError(
            f"Labels {unknown[:5]} in column {column!r} are neither class names of task {task.name!r} "
            f"({', '.join(task.class_names)}) nor class indices 0..{len(names) - 1} ({rows_phrase(rows)}); relabel "
            "them with those names.")
    outside = [i for i, c in enumerate(codes) if not 0 <= c < len(names)]
    if outside:
        bad = sorted({codes[i] for i in outside})
        raise PeftTransferError(
            f"Labels {bad[:5]} in column {column!r} ({rows_phrase(outside)}) are outside the classes of task "
            f"{task.name!r}: give class indices 0..{len(names) - 1} or class names ({', '.join(task.class_names)}).")
    if isinstance(feature, Value) and feature.dtype in ("int64", "int32", "int16", "int8"):
        return data
    features = data.features.copy()
    features[column] = Value("int64")
    return data.map(lambda _, i: {column: codes[i]}, with_indices=True, features=features)


def warn_if_one_class(data: Dataset, task, source: str) -> None:
    """Warn when every training row of `data` (labels encoded) has the same class: a prompt tuned on one class
    learns to answer it always."""
    if getattr(task, "kind", "classification") != "classification" or task.label_column not in data.column_names:
        return
    classes = set(data[task.label_column])
    if len(classes) == 1 and task.num_classes > 1:
        (label,) = classes
        warn_user(f"{source}: every training example has label {label} ({task.class_names[label]}), so the prompt "
                  "learns to answer that class always; check the labels (and the label column), or mix in the "
                  "other classes.")
