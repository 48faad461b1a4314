"""Labels as the task's class indices: class names are accepted wherever labels are read."""

from __future__ import annotations

from datasets import ClassLabel, Dataset, Value

from ..errors import PeftTransferError


def _key(name) -> str:
    return str(name).strip().lower()


def encode_labels(data: Dataset, task) -> Dataset:
    """`data` with its label column as class indices of `task` (0 .. classes-1).

    String labels that are class names (any case, surrounding spaces ignored; " positive" and "Positive" are
    class `positive`) or digit strings map to their index. A `ClassLabel` column whose names are the task's
    classes in another order is re-mapped to the task's order. Integer labels are kept as they are.
    """
    column = task.label_column
    if column not in data.column_names or getattr(task, "kind", "classification") != "classification":
        return data  # nothing to encode (a generation task's target is free text)
    names = [_key(n) for n in task.class_names]
    feature = data.features[column]
    if isinstance(feature, ClassLabel):
        own = [_key(n) for n in feature.names]
        if own == names or sorted(own) != sorted(names):
            return data
        order = [names.index(n) for n in own]
        return data.cast_column(column, Value("int64")).map(lambda row: {column: order[row[column]]})
    if not (isinstance(feature, Value) and feature.dtype in ("string", "large_string")):
        return data
    index = {n: i for i, n in enumerate(names)} | {str(i): i for i in range(len(names))}
    unknown = sorted({v for v in data[column] if _key(v) not in index}, key=str)
    if unknown:
        raise PeftTransferError(
            f"Labels {unknown[:5]} in column {column!r} are neither class names of task {task.name!r} "
            f"({', '.join(task.class_names)}) nor class indices 0..{len(names) - 1}; relabel them with those names.")
    features = data.features.copy()
    features[column] = Value("int64")
    return data.map(lambda row: {column: index[_key(row[column])]}, features=features)
