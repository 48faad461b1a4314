"""Score a generation task: greedy continuations against the reference targets, by ROUGE.

ROUGE comes from `rouge_score` (Google's implementation, the library behind `evaluate.load("rouge")`,
which needs the Hub for its metric script): F-measure per example with the Porter stemmer, averaged over
the set (what `evaluate`'s rouge reports with `use_aggregator=False`, then the mean). ROUGE-L is the
headline number of the comparison tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from datasets import Dataset
from peft import PeftModel
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..tasks.decoding import generate_texts
from ..tasks.generation import GenerationTask
from .result import TaskResult

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


@dataclass
class GenerationResult(TaskResult):
    """Mean ROUGE-L (the headline), ROUGE-1 and ROUGE-2 F-measures on `n` examples."""

    rouge_l: float
    rouge_1: float
    rouge_2: float
    n: int

    LABELS: ClassVar[dict[str, str]] = {"rouge_l": "ROUGE-L", "rouge_1": "ROUGE-1", "rouge_2": "ROUGE-2"}
    METRIC: ClassVar[str | None] = "ROUGE-L"


def rouge(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures of `predictions` against `references` (rouge_score, stemmed)."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references) or not references:
        raise PeftTransferError("ROUGE needs one prediction per reference and at least one pair.")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, reference in zip(predictions, references):
        for name, score in scorer.score(reference, prediction).items():
            totals[name] += score.fmeasure
    return {name: total / len(references) for name, total in totals.items()}


def evaluate_generation(
    model: PreTrainedModel | PeftModel,
    tokenizer,
    task: GenerationTask,
    dataset: Dataset,
    batch_size: int = 16,
    use_prompt: bool = True,
    progress: bool | str = False,
) -> GenerationResult:
    """ROUGE of `model`'s greedy continuations (with its prompt unless `use_prompt=False`) on a set with
    `task.text_column` inputs and `task.target_column` references. Only the scores leave this function."""
    if len(dataset) == 0:
        raise PeftTransferError("The evaluation set is empty.")
    for column in (task.text_column, task.target_column):
        if column not in dataset.column_names:
            raise PeftTransferError(f"The evaluation set has no {column!r} column (columns: {dataset.column_names}).")
    predictions = generate_texts(model, tokenizer, task, list(dataset[task.text_column]), use_prompt=use_prompt,
                                 batch_size=batch_size, progress=progress)
    scores = rouge(predictions, list(dataset[task.target_column]))
    return GenerationResult(scores["rougeL"], scores["rouge1"], scores["rouge2"], len(predictions))
