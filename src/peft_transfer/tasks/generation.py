"""Generation as prompted continuation: a template with a text slot, and a free-text target after it.

`GenerationTask` is the generation counterpart of `ClassificationTask`: `task.tokenized(tokenizer, masked_lm)`
binds it to a tokenizer (causal LMs only) and gives a `TokenizedGenerationTask`, which renders and encodes
inputs exactly as a classification task does (the label position is the last input token) and turns a
target string into the token ids that follow it: the target with a leading space, then the stop string
(default a newline; the end-of-sequence token when `stop` is None), cut to `max_new_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PeftTransferError
from ..provenance import TaskRecord
from .classification import MASK_SLOT, TEXT_SLOT, TokenizedTask

if TYPE_CHECKING:  # sequence_rows imports torch: not at CLI start-up (`--help` loads no heavy library)
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


@dataclass
class TokenizedGenerationTask(TokenizedTask):
    """A generation task bound to one tokenizer: inputs as `TokenizedTask`, plus target token ids and rows."""

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
        from .sequence_rows import teacher_forced

        return [teacher_forced(self.prefix_ids(t), y) for t, y in zip(texts, targets)]

    def encode_targets(self, texts: list[str], targets: list[str]) -> dict:
        """A padded batch predicting each text's target string (see `sequence_rows.collate_rows`)."""
        if not texts:
            raise PeftTransferError("Nothing to encode: the batch is empty.")
        from .sequence_rows import collate_rows

        rows = self.rows(texts, [self.target_ids(y) for y in targets])
        return collate_rows(rows, self.tokenizer.pad_token_id, "left")

    def stop_text(self, text: str) -> str:
        """A decoded continuation cut at the stop string, stripped."""
        if self.task.stop and self.task.stop in text:
            text = text[: text.index(self.task.stop)]
        return text.strip()
