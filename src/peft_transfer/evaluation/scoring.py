"""`evaluate`: the one entry that scores any task, classification or generation, on a labelled set.

The task's type picks its `Scoring` (functools.singledispatch, so `tasks/` knows nothing of evaluation):
the function that scores it, the type of result it returns, its default batch size and its chance level.
The comparison table and the pipeline go through here instead of asking a task's kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import PeftTransferError
from ..prompts.fit import warn_other_vocabulary
from ..tasks.classification import ClassificationTask
from ..tasks.generation import GenerationTask
from ..tasks.position_limits import fit_to_model, prompt_length
from .classification import ClassificationResult, evaluate_classification
from .generation import GenerationResult, evaluate_generation
from .result import TaskResult


@dataclass(frozen=True)
class Scoring:
    """How one type of task is scored."""

    evaluate: Callable[..., TaskResult]  # (model, tokenizer, task, dataset, batch_size=, use_prompt=, progress=)
    result: type[TaskResult]
    batch_size: int  # examples per forward pass (per generation batch) unless the caller says otherwise
    chance: Callable[[object], float] | None = None  # the headline of random guessing (Eq. 6's RG); None: none


@functools.singledispatch
def scoring(task) -> Scoring:
    """The `Scoring` of `task`."""
    raise PeftTransferError(f"No evaluation for a task of type {type(task).__name__}: use a ClassificationTask or "
                            "a GenerationTask.")


@scoring.register
def _(task: ClassificationTask) -> Scoring:
    return Scoring(evaluate_classification, ClassificationResult, 32, lambda t: 1.0 / t.num_classes)


@scoring.register
def _(task: GenerationTask) -> Scoring:
    return Scoring(evaluate_generation, GenerationResult, 16)


def evaluate(model, tokenizer, task: ClassificationTask | GenerationTask, dataset, batch_size: int | None = None,
             use_prompt: bool = True, progress: bool | str = False) -> TaskResult:
    """Score `model` (with its prompt unless `use_prompt=False`) on a labelled `dataset` as `task` says:
    accuracy and macro-F1 for a classification task, ROUGE for a generation task. `result.headline` is the
    number the tables compare (accuracy, ROUGE-L); `result.metrics()` holds all of them. A prompt scored
    through another tokenizer than the one it was tuned with is scored, with a warning; texts that would not fit
    beside the prompt in the model's positions are cut shorter, with a warning (`position_limits`)."""
    spec = scoring(task)
    if use_prompt and hasattr(model, "peft_config"):
        warn_other_vocabulary(model.peft_config[model.active_adapter], tokenizer)
    n_virtual = prompt_length(model) if use_prompt else 0
    task = fit_to_model(task, tokenizer, model, n_virtual, f"the prompt's {n_virtual} virtual tokens")
    return spec.evaluate(model, tokenizer, task, dataset, batch_size=batch_size or spec.batch_size,
                         use_prompt=use_prompt, progress=progress)
