"""Score a labelled data set with a model, with or without its soft prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from ..tasks.classification import ClassificationTask
from ..tasks.label_scoring import class_scores
from ..tasks.labels import encode_labels
from .metrics import accuracy, macro_f1
from .result import TaskResult

if TYPE_CHECKING:
    from peft import PeftModel


@dataclass
class ClassificationResult(TaskResult):
    """Accuracy (the headline) and macro-F1 on `n` examples."""

    accuracy: float
    macro_f1: float
    n: int

    LABELS: ClassVar[dict[str, str]] = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    UNIT: ClassVar[str] = " %"


@torch.no_grad()
def predict_scores(
    model: PreTrainedModel | PeftModel,
    tokenizer,
    task: ClassificationTask,
    texts: list[str],
    batch_size: int = 32,
    use_prompt: bool = True,
    progress: bool | str = False,
) -> np.ndarray:
    """Class scores (n, classes) for `texts`. Batches are formed by length; results keep input order."""
    if len(texts) == 0:
        raise PeftTransferError("No texts to score: the data set is empty.")
    tokenized = task.tokenized(tokenizer, masked_lm=is_masked_lm(model))
    was_training = model.training
    model.eval()
    order = np.argsort([len(t) for t in texts], kind="stable")
    scores = np.zeros((len(texts), task.num_classes), dtype=np.float32)
    starts = range(0, len(texts), batch_size)
    desc = progress if isinstance(progress, str) else f"scoring {task.name}"
    for start in tqdm(starts, desc=desc, disable=not progress, unit="batch"):
        index = order[start : start + batch_size]
        batch = tokenized.encode([texts[i] for i in index])
        scores[index] = class_scores(model, tokenized, batch["input_ids"], batch["attention_mask"],
                                     batch["label_positions"], use_prompt=use_prompt).float().cpu().numpy()
    model.train(was_training)
    return scores


def evaluate_classification(
    model: PreTrainedModel | PeftModel,
    tokenizer,
    task: ClassificationTask,
    dataset: Dataset,
    batch_size: int = 32,
    use_prompt: bool = True,
    progress: bool | str = False,
) -> ClassificationResult:
    """Accuracy and macro-F1 of `model` (with its prompt unless `use_prompt=False`) on a labelled set."""
    if len(dataset) == 0:
        raise PeftTransferError("The evaluation set is empty.")
    for column in (task.text_column, task.label_column):
        if column not in dataset.column_names:
            raise PeftTransferError(f"The evaluation set has no {column!r} column (columns: {dataset.column_names}).")
    dataset = encode_labels(dataset, task)
    labels = np.asarray(dataset[task.label_column])
    if labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() >= task.num_classes:
        raise PeftTransferError(f"Labels must be class indices 0..{task.num_classes - 1} or class names "
                                f"({', '.join(task.class_names)}) of task {task.name!r}.")
    scores = predict_scores(model, tokenizer, task, list(dataset[task.text_column]), batch_size, use_prompt, progress)
    predictions = scores.argmax(1)
    return ClassificationResult(accuracy(predictions, labels), macro_f1(predictions, labels, task.num_classes),
                                len(labels))
