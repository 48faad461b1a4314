"""`DistillationConfig`: Trainer arguments plus the distillation loss weights (paper defaults 5, 2, 1; T = 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..errors import PeftTransferError


@dataclass
class DistillationConfig(TrainingArguments):
    """`TrainingArguments` for `DistillationTrainer`.

    loss = alpha_ce · T² · KL(teacher ‖ student at T) + alpha_lm · LM loss + alpha_cos · (1 − cos) on the last
    hidden states + alpha_hidden · (1 − cos) on the hidden state entering each student layer that follows a gap
    in the kept layers (the "cut point"), against the teacher's hidden state at the same depth.

    `hidden_loss="mse"` makes both hidden-state terms a squared error relative to the teacher's per-token
    squared norm (direction and scale) instead of 1 − cos, and `train_below_cut=True` trains only the
    student layers below the first cut: the upper layers, final norm, embeddings and LM head stay the teacher's
    own, which expect exactly the teacher's hidden state at the cut. With only hidden-state terms weighted (no KL,
    no LM loss), the LM head is skipped in the forward pass (a causal student computes one position's logits):
    the last hidden state (after the final norm, free of the residual stream's massive activations) is a dense
    576-number target per token that costs a fraction of the full-vocabulary softmax (issue #4).
    """

    alpha_ce: float = field(default=5.0, metadata={"help": "weight of the temperature-scaled KL term"})
    alpha_lm: float = field(default=2.0, metadata={"help": "weight of the causal / masked LM loss"})
    alpha_cos: float = field(default=1.0, metadata={"help": "weight of the cosine loss on last hidden states"})
    alpha_hidden: float = field(default=0.0, metadata={"help": "weight of the cut-point hidden-state cosine loss"})
    hidden_loss: str = field(default="cosine", metadata={"help": "hidden-state terms: 'cosine' or 'mse' (relative)"})
    train_below_cut: bool = field(default=False, metadata={"help": "train only the layers below the first cut"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature of the KL term"})
    freeze_embeddings: bool = field(default=False, metadata={"help": "keep the input embeddings fixed"})
    freeze_lm_head: bool = field(default=False, metadata={"help": "keep the LM head fixed"})
    max_train_minutes: float | None = field(default=None, metadata={
        "help": "wall-clock budget: stop after this many minutes of training and anneal the learning rate over "
                "them (warm-up 5 %, then cosine); max_steps stays an upper bound"})
    # the cached teacher columns and labels must reach compute_loss
    remove_unused_columns: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise PeftTransferError(f"temperature must be positive, got {self.temperature}.")
        if self.hidden_loss not in ("cosine", "mse"):
            raise PeftTransferError(f"hidden_loss must be 'cosine' or 'mse', got {self.hidden_loss!r}.")
        if self.max_train_minutes is not None and self.max_train_minutes <= 0:
            raise PeftTransferError(f"max_train_minutes must be positive, got {self.max_train_minutes}.")
        weights = (self.alpha_ce, self.alpha_lm, self.alpha_cos, self.alpha_hidden)
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise PeftTransferError(f"loss weights must be >= 0 with at least one > 0, got {weights}.")
