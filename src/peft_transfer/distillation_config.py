"""`DistillationConfig`: Trainer arguments plus the distillation loss weights (paper defaults 5, 2, 1; T = 2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from .errors import PeftTransferError


@dataclass
class DistillationConfig(TrainingArguments):
    """`TrainingArguments` for `DistillationTrainer`.

    loss = alpha_ce · T² · KL(teacher ‖ student at T) + alpha_lm · LM loss + alpha_cos · (1 − cos) on the last
    hidden states + alpha_hidden · (1 − cos) on the hidden state entering each student layer that follows a gap
    in the kept layers (the "cut point"), against the teacher's hidden state at the same depth.
    """

    alpha_ce: float = field(default=5.0, metadata={"help": "weight of the temperature-scaled KL term"})
    alpha_lm: float = field(default=2.0, metadata={"help": "weight of the causal / masked LM loss"})
    alpha_cos: float = field(default=1.0, metadata={"help": "weight of the cosine loss on last hidden states"})
    alpha_hidden: float = field(default=0.0, metadata={"help": "weight of the cut-point hidden-state cosine loss"})
    temperature: float = field(default=2.0, metadata={"help": "softmax temperature of the KL term"})
    freeze_embeddings: bool = field(default=False, metadata={"help": "keep the input embeddings fixed"})
    freeze_lm_head: bool = field(default=False, metadata={"help": "keep the LM head fixed"})
    # the cached teacher columns and labels must reach compute_loss
    remove_unused_columns: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.temperature <= 0:
            raise PeftTransferError(f"temperature must be positive, got {self.temperature}.")
        weights = (self.alpha_ce, self.alpha_lm, self.alpha_cos, self.alpha_hidden)
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise PeftTransferError(f"loss weights must be >= 0 with at least one > 0, got {weights}.")
