"""`PrivateGenerationTrainer`: the data owner tunes a soft prompt for a generation task, optionally with DP-SGD.

Everything private (Poisson sampling, per-example clipping in micro-batches, noise, accounting, resuming)
is `PrivatePromptTrainer`'s; this subclass changes what one example is: its text followed by its target,
teacher-forced, and its loss the mean negative log-likelihood of its own target tokens (the privacy unit is
one example, never a token mean over the batch). The prompt is embedded once per example, so Opacus's
per-example gradients are exact (tested against a one-example loop).
"""

from __future__ import annotations

import torch
from datasets import Dataset

from ..errors import PeftTransferError
from ..prompted_forward import position_logits
from ..tasks.generation import GenerationTask, TokenizedGenerationTask
from .trainer import PrivatePromptTrainer, PromptClassifier


def check_generation_data(data: Dataset, task: GenerationTask, batch_size: int) -> None:
    """Refuse data the tuning cannot use: missing columns, empty targets, too few rows."""
    if not isinstance(task, GenerationTask):
        raise PeftTransferError(f"PrivateGenerationTrainer tunes generation tasks; {task.name!r} is not one.")
    missing = [c for c in (task.text_column, task.target_column) if c not in data.column_names]
    if missing:
        raise PeftTransferError(f"The training data has no {missing} column(s) (columns: {data.column_names}); "
                                f"task {task.name!r} reads inputs from {task.text_column!r} and targets from "
                                f"{task.target_column!r}.")
    if any(not isinstance(y, str) or not y.strip() for y in data[task.target_column]):
        raise PeftTransferError(f"Some targets in column {task.target_column!r} are empty or not text.")
    if len(data) < batch_size:
        raise PeftTransferError(f"Only {len(data)} training examples for a batch size of {batch_size}; use a smaller "
                                "per_device_train_batch_size or more data.")


class TargetTextCollator:
    """Rows {text, target} -> teacher-forced batch {input_ids, attention_mask, positions, labels (-100 = none)};
    an empty list gives an empty batch (Poisson sampling draws those)."""

    def __init__(self, tokenized: TokenizedGenerationTask, text_column: str = "text", target_column: str = "target"):
        self.tokenized, self.text_column, self.target_column = tokenized, text_column, target_column

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if not features:
            empty = torch.zeros(0, 1, dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty.clone(), "positions": empty.clone(),
                    "labels": empty.clone()}
        batch = self.tokenized.encode_targets([f[self.text_column] for f in features],
                                              [f[self.target_column] for f in features])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "positions": batch["positions"], "labels": batch["targets"]}


class PromptedSequenceModel(PromptClassifier):
    """A prompted model seen as `batch -> logits at the target positions (batch, P, vocab)`."""

    def forward(self, input_ids, attention_mask, positions, labels=None, **_) -> torch.Tensor:
        return position_logits(self.prompt_model, input_ids, attention_mask, positions)


def mean_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch,) mean negative log-likelihood of each example's own target tokens (labels -100 are skipped)."""
    labels = labels.to(logits.device)
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                                            reduction="none")
    valid = (labels != -100).float()
    return (nll * valid).sum(1) / valid.sum(1).clamp(min=1.0)


class PrivateGenerationTrainer(PrivatePromptTrainer):
    """Tune a soft prompt for a `GenerationTask` on `train_dataset` (columns `task.text_column`,
    `task.target_column`), with (ε, δ)-DP when `args` asks for it; see `PrivatePromptTrainer`."""

    check_data = staticmethod(check_generation_data)
    wrapper_class = PromptedSequenceModel
    collator_class = TargetTextCollator

    def example_losses(self, model, inputs) -> torch.Tensor:
        """Mean token loss of each example's target (batch,)."""
        logits = model(inputs["input_ids"], inputs["attention_mask"], inputs["positions"])
        return mean_token_nll(logits, inputs["labels"])

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        logits = model(inputs["input_ids"], inputs["attention_mask"], inputs["positions"])
        loss = mean_token_nll(logits, inputs["labels"]).mean()
        return (loss, {"logits": logits}) if return_outputs else loss
