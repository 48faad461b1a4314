"""Generation as prompted continuation: a template with a text slot, and a free-text target after it.

`GenerationTask` is the generation counterpart of `ClassificationTask`: `task.tokenized(tokenizer, masked_lm)`
binds it to a tokenizer (causal LMs only) and gives a `TokenizedGenerationTask`, which renders and encodes
inputs exactly as a classification task does (the label position is the last input token) and turns a
target string into the token ids that follow it: the target with a leading space, then the stop string
(default a newline; the end-of-sequence token when `stop` is None), cut to `max_new_tokens`.

Its side of the task protocol (`classification`'s docstring): one training example is its text followed by its
target, teacher-forced, and its loss the mean negative log-likelihood of its own target tokens (the privacy unit
is one example, never a token mean over the batch); POST distils at every token of the continuation that
student+p_s writes for each public input, and the transfer monitor compares next-token predictions there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PeftTransferError
from ..provenance import TaskRecord
from .classification import MASK_SLOT, TEXT_SLOT, TokenizedTask, check_training_rows

if TYPE_CHECKING:  # sequence_rows imports torch: not at CLI start-up (`--help` loads no heavy library)
    import torch
    from datasets import Dataset

    from .sequence_rows import SequenceRow


@dataclass
class GenerationTask:
    """A text-to-text task: `template` holds `{text}`; the model continues after the template's end."""

    name: str
    template: str
    description: str = ""
    text_column: str = "text"
    target_column: str = "target"
    max_length: int = 256
    max_new_tokens: int = 16
    stop: str | None = "\n"

    kind = "generation"

    def __post_init__(self):
        if self.template.count(TEXT_SLOT) != 1 or MASK_SLOT in self.template:
            raise PeftTransferError(
                f"Task {self.name!r}: a generation template needs exactly one {TEXT_SLOT} slot and no {MASK_SLOT} "
                "(the target follows the end of the template), e.g. 'Article: {text}\\nTitle:'."
            )
        if self.max_new_tokens < 1:
            raise PeftTransferError(f"Task {self.name!r}: max_new_tokens must be at least 1.")
        if self.stop is not None and not self.stop:
            raise PeftTransferError(f"Task {self.name!r}: stop must be a non-empty string or None (end of sequence).")

    @property
    def label_column(self) -> str:  # what the trainers read as the supervision column
        return self.target_column

    @property
    def label_words(self) -> list:
        return []

    def answer_text(self, row: dict) -> str:
        """What the prompted model should say after the template for `row`: its target, then the stop string."""
        return " " + row[self.target_column].strip() + (self.stop or "")

    def record(self) -> TaskRecord:
        return TaskRecord(name=self.name, template=self.template, label_words=[], class_names=[], kind=self.kind,
                          max_new_tokens=self.max_new_tokens, stop=self.stop)

    @classmethod
    def from_record(cls, record: TaskRecord, **kwargs) -> GenerationTask:
        return cls(name=record.name, template=record.template, max_new_tokens=record.max_new_tokens or 16,
                   stop=record.stop, **kwargs)

    def tokenized(self, tokenizer, masked_lm: bool, padding_side: str | None = None) -> TokenizedGenerationTask:
        if masked_lm:
            raise PeftTransferError(f"Task {self.name!r} is a generation task: it needs a causal LM, not a masked LM.")
        return TokenizedGenerationTask(self, tokenizer, False, padding_side or "left")

    def training_data(self, data: Dataset, batch_size: int) -> Dataset:
        """The columns tuning reads (text, target). Refused: missing columns, empty targets, fewer rows than
        `batch_size`."""
        def empty(targets: list) -> str | None:
            if any(not isinstance(y, str) or not y.strip() for y in targets):
                return f"Some targets in column {self.target_column!r} are empty or not text."
            return None

        return check_training_rows(data, self, batch_size, "targets", empty)


@dataclass
class TokenizedGenerationTask(TokenizedTask):
    """A generation task bound to one tokenizer: inputs as `TokenizedTask`, plus target token ids and rows."""

    @property
    def tail_tokens(self) -> int:
        """Tokens after the input: the target, teacher-forced or generated (at most max_new_tokens)."""
        return self.task.max_new_tokens

    def target_ids(self, target: str) -> list[int]:
        """Token ids of the continuation `target` (leading space, stop string or EOS), at most max_new_tokens."""
        tok, task = self.tokenizer, self.task
        joiner = "" if task.template[-1:].isspace() else " "
        text = joiner + target.strip() + (task.stop or "")
        ids = tok(text, add_special_tokens=False)["input_ids"]
        if task.stop is None:
            if tok.eos_token_id is None:
                raise PeftTransferError("The tokenizer has no EOS token; give the task a stop string.")
            ids = ids + [tok.eos_token_id]
        return list(ids[: task.max_new_tokens])

    def prefix_ids(self, text: str) -> list[int]:
        """The rendered input's token ids (no padding), as `encode` tokenizes them."""
        return list(self.tokenizer(self.render(text))["input_ids"])

    def rows(self, texts: list[str], targets: list[list[int]]) -> list[SequenceRow]:
        """Teacher-forced rows: each input followed by its target token ids, scored at every target position."""
        from .sequence_rows import teacher_forced  # torch: not at CLI start-up

        return [teacher_forced(self.prefix_ids(t), y) for t, y in zip(texts, targets)]

    def encode_targets(self, texts: list[str], targets: list[str]) -> dict:
        """A padded batch predicting each text's target string (see `sequence_rows.collate_rows`)."""
        if not texts:
            raise PeftTransferError("Nothing to encode: the batch is empty.")
        from .sequence_rows import collate_rows  # torch: not at CLI start-up

        rows = self.rows(texts, [self.target_ids(y) for y in targets])
        return collate_rows(rows, self.tokenizer.pad_token_id, "left")

    def stop_text(self, text: str) -> str:
        """A decoded continuation cut at the stop string, stripped."""
        if self.task.stop and self.task.stop in text:
            text = text[: text.index(self.task.stop)]
        return text.strip()

    # -- the task protocol (`classification`'s docstring) ----------------------------------------------------
    def training_collator(self) -> TargetTextCollator:
        """Training rows -> a teacher-forced batch of their targets."""
        return TargetTextCollator(self)

    def example_outputs(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, P, vocab) logits at each example's target positions; the prompt is embedded once per example,
        so Opacus's per-example gradients are exact."""
        from ..prompted_forward import position_logits  # torch: not at CLI start-up

        return position_logits(model, batch["input_ids"], batch["attention_mask"], batch["positions"])

    def example_losses(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch,) mean negative log-likelihood of each example's own target tokens."""
        return mean_token_nll(outputs, batch["labels"])

    @property
    def needs_sequence_transfer(self) -> bool:
        """Always: the answer is a sequence."""
        return True

    @property
    def distilled_positions(self) -> str:
        """Where the POST terms are taken, for the transfer record."""
        return (f"every token of the student+p_s greedy continuation of each public input (at most "
                f"{self.task.max_new_tokens} tokens, stop included)")

    def public_rows(self, texts: list[str], student, batch_size: int = 16) -> list[list[SequenceRow]]:
        """The rows a sequence transfer distils on: each public input followed by the continuation that
        `student` (student+p_s) writes for it (greedy, `decoding.generate_continuations`); an input whose
        continuation is empty gives none."""
        if not texts:
            return []
        from .decoding import generate_continuations  # torch and transformers: not at CLI start-up
        from .sequence_rows import teacher_forced

        continuations = generate_continuations(student, self.tokenizer, self.task, texts, use_prompt=True,
                                               batch_size=batch_size, progress="student+p_s continuations")
        return [[teacher_forced(p, y)] for p, y in zip(self.prefixes(texts), continuations) if y]

    def transfer_predictions(self, model, texts: list[str], logits: torch.Tensor | None,
                             batch_size: int = 16) -> torch.Tensor:
        """What the transfer monitor's agreement compares: the next token at every position of the rows
        (`logits`, (positions, vocab)); `model` and `texts` serve classification tasks."""
        return logits.argmax(-1)


class TargetTextCollator:
    """Rows {text, target} -> teacher-forced batch {input_ids, attention_mask, positions, labels (-100 = none)}
    (the task's columns); an empty list gives an empty batch (Poisson sampling draws those)."""

    def __init__(self, tokenized: TokenizedGenerationTask):
        self.tokenized = tokenized

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        import torch

        task = self.tokenized.task
        if not features:
            empty = torch.zeros(0, 1, dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty.clone(), "positions": empty.clone(),
                    "labels": empty.clone()}
        batch = self.tokenized.encode_targets([f[task.text_column] for f in features],
                                              [f[task.target_column] for f in features])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
                "positions": batch["positions"], "labels": batch["targets"]}


def mean_token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(batch,) mean negative log-likelihood of each example's own target tokens (labels -100 are skipped)."""
    import torch

    labels = labels.to(logits.device)
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), labels, ignore_index=-100,
                                            reduction="none")
    valid = (labels != -100).float()
    return (nll * valid).sum(1) / valid.sum(1).clamp(min=1.0)
