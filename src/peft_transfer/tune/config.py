"""`PrivatePromptConfig`: training arguments of the data owner's prompt tuning, with or without (ε, δ)-DP."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..errors import PeftTransferError
from .dp_plan import epsilon_problem

ACCOUNTANTS = ("prv", "rdp")



def default_delta(num_examples: int) -> float:
    """δ when none is given: 1/(10·N), well below the 1/N at which publishing one example verbatim is DP."""
    return 1.0 / (10 * num_examples)

@dataclass
class PrivatePromptConfig(TrainingArguments):
    """`TrainingArguments` plus soft-prompt and differential-privacy settings.

    DP is on when `target_epsilon` is finite (the noise multiplier is calibrated so that the planned steps
    spend exactly that budget) or when `noise_multiplier` is given (ε is then whatever the accountant says;
    `stop_at_epsilon` can cap it). Both at once is an error. `target_delta` None means δ = 1/(10·N) for N
    training examples (a δ ≥ 1/N allows a mechanism that publishes one whole example, so it is refused).
    `max_grad_norm` is the per-example clipping norm under DP (the ordinary global clip norm without DP).
    `per_device_train_batch_size` is the logical (expected, under Poisson sampling) batch size;
    `physical_batch_size` splits each logical batch into micro-batches of at most that many examples for
    memory, without changing the privacy guarantee or the update. With DP, batches are Poisson-sampled
    (each example joins each step independently with rate q = batch / N), as the accountants assume.
    The DP noise and the Poisson draws come from generators seeded with fresh OS entropy on every run, never
    from `seed` (a published or guessable seed would let anyone regenerate the noise and subtract it);
    `noise_seed` fixes them for reproducible experiments only.
    Under DP nothing is selected with private data: `load_best_model_at_end` is refused, and an
    `eval_dataset` only with `eval_data_is_public=True` (the data owner declares it not private; logged).
    With `target_epsilon`, a resumed run whose plan (more steps than the checkpoint's σ was calibrated for)
    would spend more than the target is refused unless `stop_at_epsilon` (at most the target) stops it there.
    """

    num_virtual_tokens: int = field(default=20, metadata={"help": "Length of the soft prompt."})
    prompt_init_text: str | None = field(default=None, metadata={"help": "Init text (default: task description)."})
    target_epsilon: float | None = field(default=None, metadata={"help": "Total ε (None or inf: no DP)."})
    target_delta: float | None = field(default=None, metadata={"help": "δ (default 1/(10 N))."})
    noise_multiplier: float | None = field(default=None, metadata={"help": "σ instead of a target ε."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Per-example clip norm C (DP)."})
    accountant: str = field(default="prv", metadata={"help": "Privacy accountant: 'prv' or 'rdp'."})
    poisson_sampling: bool | None = field(default=None, metadata={"help": "Poisson batches (default: with DP)."})
    stop_at_epsilon: float | None = field(default=None, metadata={"help": "Stop before ε would exceed this."})
    physical_batch_size: int | None = field(default=None, metadata={"help": "Micro-batch size (memory only)."})
    grad_sample_mode: str = field(default="hooks", metadata={"help": "Opacus per-sample mode: hooks|functorch."})
    eval_data_is_public: bool = field(default=False, metadata={
        "help": "Under DP: the eval_dataset is not private data (evaluation on private data is refused)."})
    noise_seed: int | None = field(default=None, metadata={
        "help": "Seed of the DP noise and Poisson sampling (default: fresh OS entropy). A fixed seed makes them "
                "reproducible, and anyone who knows it can remove the noise: experiments only."})

    # TrainingArguments defaults changed for prompt tuning
    output_dir: str | None = field(default="runs/prompt", metadata={"help": "Where the prompt and checkpoints go."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate for the prompt."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs (expected, under Poisson sampling)."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Logical batch size."})
    logging_steps: float = field(default=10, metadata={"help": "Log loss and ε every N steps."})
    save_steps: float = field(default=100, metadata={"help": "Checkpoint every N steps (for resuming)."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept."})
    remove_unused_columns: bool = field(default=False, metadata={"help": "Keep the text column for the collator."})
    report_to: str | list[str] | None = field(default="none", metadata={"help": "Logging integrations."})
    dataloader_pin_memory: bool = field(default=False, metadata={"help": "Pin memory (only helps on GPUs)."})

    @property
    def private(self) -> bool:
        """True when training is differentially private."""
        return self.noise_multiplier is not None or (self.target_epsilon is not None
                                                     and not math.isinf(self.target_epsilon))

    def __post_init__(self):
        eps, sigma = self.target_epsilon, self.noise_multiplier
        if eps is not None and not eps > 0:
            raise PeftTransferError(f"target_epsilon must be positive (got {eps}); use None or inf to train "
                                    "without differential privacy.")
        for name, value in (("target_epsilon", eps), ("stop_at_epsilon", self.stop_at_epsilon)):
            problem = epsilon_problem(value) if value is not None and value > 0 and value < math.inf else None
            if problem:  # a library caller's settings (the CLI and the pipeline check their flags and keys first)
                raise PeftTransferError(f"{name}: {problem}.")
        if eps is not None and math.isinf(eps) and sigma is None:
            self.target_epsilon = None
        if self.target_epsilon is not None and sigma is not None:
            raise PeftTransferError("Give either --epsilon (target_epsilon; σ is then calibrated to spend it) or "
                                    "--noise-multiplier (noise_multiplier), not both.")
        if sigma is not None and not sigma > 0:
            raise PeftTransferError(f"noise_multiplier must be positive (got {sigma}); leave it unset (and "
                                    "target_epsilon unset) to train without differential privacy.")
        if self.target_delta is not None and not 0 < self.target_delta < 1:
            raise PeftTransferError(f"--delta (target_delta) must lie in (0, 1) and be well below 1/N (got "
                                    f"{self.target_delta}).")
        if self.accountant not in ACCOUNTANTS:
            raise PeftTransferError(f"accountant must be one of {ACCOUNTANTS}, not {self.accountant!r}.")
        if self.grad_sample_mode not in ("hooks", "functorch"):
            raise PeftTransferError(f"grad_sample_mode must be 'hooks' or 'functorch', not {self.grad_sample_mode!r}.")
        if not self.max_grad_norm > 0 and self.private:
            raise PeftTransferError(f"max_grad_norm must be positive under DP (got {self.max_grad_norm}).")
        if self.num_virtual_tokens < 1:
            raise PeftTransferError(f"num_virtual_tokens must be at least 1 (got {self.num_virtual_tokens}).")
        if self.stop_at_epsilon is not None and not self.stop_at_epsilon > 0:
            raise PeftTransferError(f"stop_at_epsilon must be positive (got {self.stop_at_epsilon}).")
        if self.stop_at_epsilon is not None and self.target_epsilon is not None \
                and self.stop_at_epsilon > self.target_epsilon:
            raise PeftTransferError(f"--stop-at-epsilon (stop_at_epsilon) {self.stop_at_epsilon:g} is above --epsilon "
                                    f"(target_epsilon) {self.target_epsilon:g}: the target is the promise; stop at or "
                                    "below it.")
        if self.private and self.load_best_model_at_end:
            raise PeftTransferError("load_best_model_at_end picks a checkpoint by its evaluation metric, a choice "
                                    "outside the privacy accounting; it is refused under DP (the result is the last "
                                    "step's prompt).")
        if self.poisson_sampling is None:
            self.poisson_sampling = self.private
        if self.private and not self.poisson_sampling:
            raise PeftTransferError("DP accounting here assumes Poisson sampling; poisson_sampling=False would make "
                                    "the reported ε wrong. Leave poisson_sampling unset.")
        if self.poisson_sampling and self.gradient_accumulation_steps > 1:
            raise PeftTransferError("Gradient accumulation cannot be combined with Poisson sampling (the batch is "
                                    "random per step); set per_device_train_batch_size to the logical batch and "
                                    "physical_batch_size to what fits in memory instead.")
        if self.physical_batch_size is not None and self.physical_batch_size < 1:
            raise PeftTransferError(f"physical_batch_size must be at least 1 (got {self.physical_batch_size}).")
        if self.learning_rate <= 0:
            raise PeftTransferError(f"learning_rate must be positive (got {self.learning_rate}).")
        if self.max_steps == 0 or (self.max_steps < 0 and not self.num_train_epochs > 0):
            raise PeftTransferError(
                f"nothing to train: max_steps {self.max_steps} and num_train_epochs {self.num_train_epochs}; give a "
                "positive number of steps (--max-steps) or epochs (--epochs).")
        super().__post_init__()

    def resolved_delta(self, num_examples: int) -> float:
        """δ for `num_examples` training examples: the given one (checked < 1/N) or 1/(10·N)."""
        if self.target_delta is None:
            return default_delta(num_examples)
        if self.target_delta >= 1.0 / num_examples:
            raise PeftTransferError(
                f"--delta (target_delta) {self.target_delta:g} is not below 1/N = {1 / num_examples:g} for the "
                f"{num_examples} training examples: with δ ≥ 1/N a mechanism that publishes a random training example "
                "verbatim is (0, δ)-DP. Use δ well below 1/N (default 1/(10 N)), or omit --delta."
            )
        return self.target_delta
