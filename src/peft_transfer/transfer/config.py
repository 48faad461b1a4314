"""`TransferConfig`: training arguments of POST's stage 3 (transfer a soft prompt with public data only)."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..errors import PeftTransferError
from .loss_over import LOSS_OVER
from .prompt_init import PROMPT_INITS


@dataclass
class TransferConfig(TrainingArguments):
    """`TrainingArguments` plus the POST transfer settings.

    Defaults follow the paper: alpha 0.5, temperature 2, Adam at lr 1e-3 with a constant schedule, a fixed
    number of steps (the result is the last step's prompt - no checkpoint is picked with private data).
    `num_virtual_tokens` None keeps the source prompt's length. `prompt_init="text"` starts p_t from the
    embeddings of the source prompt's init text (as p_s started); `"source"` copies p_s (same hidden size
    only). `monitor_size` public examples are held out of training to log the loss and the agreement of
    target+p_t with student+p_s every `monitor_steps` steps. `cache_constants=False` recomputes the three
    constant logit sets at every step (as the reference code does; for benchmarks only).
    """

    alpha: float = field(default=0.5, metadata={"help": "Weight of the prompt-induced-shift loss L2 (0..1)."})
    temperature: float = field(default=2.0, metadata={"help": "Softmax temperature T of both KL terms."})
    num_virtual_tokens: int | None = field(default=None, metadata={"help": "Length of p_t (default: p_s's)."})
    prompt_init: str = field(default="text", metadata={"help": "'text' (like p_s) or 'source' (copy p_s)."})
    loss_over: str = field(default="vocab", metadata={
        "help": "'vocab': both KL terms over the whole vocabulary at the label position (the paper); 'classes': "
                "over the task's class scores only (single-token label words)."})
    monitor_size: int = field(default=32, metadata={"help": "Public examples held out for the monitor."})
    monitor_steps: int = field(default=50, metadata={"help": "Monitor every N steps (and at the first/last)."})
    cache_constants: bool = field(default=True, metadata={"help": "Cache the three constant logit sets."})
    cache_batch_size: int = field(default=16, metadata={"help": "Batch size for computing the cache."})
    public_dataset_name: str | None = field(default=None, metadata={"help": "Name of the public set (record)."})
    alpha_source: str | None = field(default=None, metadata={
        "help": "How alpha was chosen, for the record (None: set without labels, as POST does)."})

    # TrainingArguments defaults changed for transfer
    output_dir: str | None = field(default="runs/transfer", metadata={"help": "Where p_t and checkpoints go."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate (paper: 1e-3)."})
    lr_scheduler_type: str = field(default="constant", metadata={"help": "Learning-rate schedule."})
    max_steps: int = field(default=1000, metadata={"help": "Number of transfer steps."})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "Public examples per step."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    save_steps: float = field(default=200, metadata={"help": "Checkpoint every N steps (for resuming)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the cached logit columns."})
    report_to: str | list[str] | None = field(default="none", metadata={"help": "Logging integrations."})
    dataloader_pin_memory: bool = field(default=False, metadata={"help": "Pin memory (only helps on GPUs)."})
    ddp_find_unused_parameters: bool | None = field(default=False, metadata={"help": "Only p_t trains; all used."})

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise PeftTransferError(f"alpha (--alpha) must lie in [0, 1], got {self.alpha}: 0 = copy the prompted "
                                    "output, 1 = copy only the prompt-induced shift (the paper's default: 0.5).")
        if not self.temperature > 0:
            raise PeftTransferError(f"temperature must be positive (got {self.temperature}); the paper uses 2.")
        if self.num_virtual_tokens is not None and self.num_virtual_tokens < 1:
            raise PeftTransferError(f"num_virtual_tokens must be at least 1 or None (got {self.num_virtual_tokens}).")
        if self.prompt_init not in PROMPT_INITS:
            raise PeftTransferError(f"prompt_init must be one of {PROMPT_INITS}, not {self.prompt_init!r}.")
        if self.loss_over not in LOSS_OVER:
            raise PeftTransferError(f"loss_over must be one of {LOSS_OVER}, not {self.loss_over!r}.")
        if self.monitor_size < 0 or self.monitor_steps < 1:
            raise PeftTransferError("monitor_size must be >= 0 and monitor_steps >= 1.")
        if self.cache_batch_size < 1:
            raise PeftTransferError("cache_batch_size must be at least 1.")
        if self.max_steps is None or self.max_steps < 1:
            raise PeftTransferError(f"the number of transfer steps (--steps, max_steps) must be at least 1, got "
                                    f"{self.max_steps}: POST reports the prompt after a fixed number of steps.")
        if self.learning_rate <= 0:
            raise PeftTransferError(f"learning_rate must be positive (got {self.learning_rate}).")
        super().__post_init__()
