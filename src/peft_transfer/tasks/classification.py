"""Classification as text infilling: a template with a text slot, label words per class (a verbaliser).

A `ClassificationTask` is tokenizer-independent; `task.tokenized(tokenizer, masked_lm)` binds it to a
tokenizer and gives a `TokenizedTask` that encodes texts (with the label position of each example) and
turns the logits at the label position into class scores. Label words that split into several tokens
are scored by `label_scoring` (length-normalised log-likelihood, teacher-forced); `generation` holds
the other kind of task, a free-text target.

The task protocol: tuning and transfer ask the task what differs between the kinds instead of branching on
it. The task checks and prepares its training rows (`training_data`); the tokenized task gives the training
collator, the per-example outputs and losses (one example is the privacy unit), whether POST must distil at
more than the label position (`needs_sequence_transfer`, `distilled_positions`, `public_rows`) and what the
transfer monitor's agreement compares (`transfer_predictions`). `generation.TokenizedGenerationTask`
overrides each of them. Heavy libraries (torch, datasets) are imported inside the methods that use them, so
that reading tasks at CLI start-up stays light.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import PeftTransferError
from ..provenance import TaskRecord

if TYPE_CHECKING:
    import torch
    from datasets import Dataset

    from .sequence_rows import SequenceRow

TEXT_SLOT = "{text}"
MASK_SLOT = "{mask}"


@dataclass
class ClassificationTask:
    """A classification task as a cloze.

    `template` holds `{text}` and, optionally, `{mask}` where the label word goes. Without `{mask}` the
    label word follows the end of the template. Causal LMs read the label at the last input token (so a
    `{mask}` slot, if any, must end the template); masked LMs read it at the mask token. Label words
    carry their own leading space where the tokenizer needs one (" positive").
    The class score is the mean logit of the class's label words (POST's verbaliser) when every word is one
    token; when a word splits, every word is scored by its length-normalised log-likelihood instead
    (`label_scoring`), and a class by the mean over its words.
    """

    name: str
    template: str
    label_words: list[list[str]]
    class_names: list[str] | None = None
    description: str = ""
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 256

    kind = "classification"

    def __post_init__(self):
        if TEXT_SLOT not in self.template:
            raise PeftTransferError(
                f"Task {self.name!r}: the template {self.template!r} has no {TEXT_SLOT} slot; add it where the "
                "example's text goes, e.g. 'Review: {text}\\nSentiment:'."
            )
        if self.template.count(TEXT_SLOT) != 1 or self.template.count(MASK_SLOT) > 1:
            raise PeftTransferError(
                f"Task {self.name!r}: the template needs exactly one {TEXT_SLOT} and at most one {MASK_SLOT}."
            )
        self.label_words = [[w] if isinstance(w, str) else list(w) for w in self.label_words]
        if len(self.label_words) < 2:
            raise PeftTransferError(f"Task {self.name!r}: a classification task needs at least 2 classes.")
        for i, words in enumerate(self.label_words):
            if not words or any(not w.strip() for w in words):
                raise PeftTransferError(
                    f"Task {self.name!r}: class {i} has no label words (or an empty one); give each class at "
                    "least one word in --label-words (YAML: label_words), e.g. [[\" negative\"], [\" positive\"]]."
                )
        if self.class_names is None:
            self.class_names = [words[0].strip() for words in self.label_words]
        if len(self.class_names) != len(self.label_words):
            raise PeftTransferError(
                f"Task {self.name!r}: {len(self.class_names)} class names for {len(self.label_words)} classes."
            )
        _refuse_shared_words(self)

    @property
    def num_classes(self) -> int:
        return len(self.label_words)

    def answer_text(self, row: dict) -> str:
        """What the prompted model should say after the template for `row`: its class's first label word."""
        return self.label_words[row[self.label_column]][0]

    def record(self) -> TaskRecord:
        return TaskRecord(name=self.name, template=self.template, label_words=self.label_words,
                          class_names=list(self.class_names or []))

    @classmethod
    def from_record(cls, record: TaskRecord, **kwargs) -> ClassificationTask:
        return cls(name=record.name, template=record.template, label_words=record.label_words,
                   class_names=record.class_names, **kwargs)

    def tokenized(self, tokenizer, masked_lm: bool, padding_side: str | None = None) -> TokenizedTask:
        """Bind the task to a tokenizer. Causal LMs default to left padding (label at the last position)."""
        return TokenizedTask(self, tokenizer, masked_lm, padding_side or ("right" if masked_lm else "left"))

    def training_data(self, data: Dataset, batch_size: int) -> Dataset:
        """The columns tuning reads (text, label), labels as class indices (class names accepted,
        `labels.encode_labels`). Refused: missing columns, labels outside the classes, fewer rows than
        `batch_size`."""
        from .labels import encode_labels  # datasets: not at CLI start-up

        def outside(labels: list) -> str | None:
            bad = sorted({y for y in labels if not isinstance(y, int) or not 0 <= y < self.num_classes}, key=str)
            if not bad:
                return None
            return (f"Labels {bad[:5]} are outside task {self.name!r}'s classes 0..{self.num_classes - 1} "
                    f"({self.class_names}); give class indices or class names.")

        return check_training_rows(encode_labels(data, self), self, batch_size, "labels", outside)


def _first_shared(per_class: list[list]) -> tuple[int, int, int, int] | None:
    """(class a, index in a, class b, index in b) of the first entry two classes share, else None."""
    owner: dict = {}
    for c, entries in enumerate(per_class):
        for j, entry in enumerate(entries):
            a, i = owner.setdefault(tuple(entry) if isinstance(entry, list) else entry, (c, j))
            if a != c:
                return a, i, c, j
    return None


def _refuse_shared_words(task: ClassificationTask, tokens: list[list[list[int]]] | None = None) -> None:
    """Refuse a label word (or, with `tokens`, a word's token ids) that two classes share: the model could not
    tell those classes apart and every score between them would be a tie. Class names, which labels may be
    given as, must differ too."""
    words = task.label_words
    shared = _first_shared(tokens if tokens is not None else words)
    if shared:
        a, i, b, j = shared
        same = (f"the label word {words[b][j]!r}" if words[a][i] == words[b][j] else
                f"a label word: {words[a][i]!r} and {words[b][j]!r} are the same tokens")
        raise PeftTransferError(f"Task {task.name!r}: classes {a} and {b} share {same}, so the model cannot tell them "
                                "apart; give each class its own label words.")
    shared = _first_shared([[name] for name in task.class_names or []]) if tokens is None else None
    if shared:
        a, _, b, _ = shared
        raise PeftTransferError(f"Task {task.name!r}: classes {a} and {b} share the class name "
                                f"{task.class_names[b]!r}, so labels given by name would be ambiguous; give each class "
                                "its own name.")


def check_training_rows(data: Dataset, task, batch_size: int, supervision: str,
                        problem: Callable[[list], str | None]) -> Dataset:
    """`data`'s text and `supervision` (labels, targets) columns when tuning can use them; refused: a missing
    column, a `supervision` column in which `problem` finds fault (its message), fewer rows than `batch_size`."""
    missing = [c for c in (task.text_column, task.label_column) if c not in data.column_names]
    if missing:
        raise PeftTransferError(f"The training data has no {missing} column(s) (columns: {data.column_names}); "
                                f"task {task.name!r} reads its texts from {task.text_column!r} and its {supervision} "
                                f"from {task.label_column!r}.")
    message = problem(data[task.label_column])
    if message:
        raise PeftTransferError(message)
    if len(data) < batch_size:
        raise PeftTransferError(f"Only {len(data)} training examples for a batch size of {batch_size}; use a smaller "
                                "batch size (--batch-size, or tune.batch_size in a run config) or more data.")
    return data.select_columns([task.text_column, task.label_column])


@dataclass
class TokenizedTask:
    """A task bound to one tokenizer: encodes texts and scores classes from label-position logits."""

    task: ClassificationTask
    tokenizer: object
    masked_lm: bool
    padding_side: str = "left"
    label_word_tokens: list[list[list[int]]] = field(init=False)  # class -> word -> token ids
    label_token_ids: list[list[int]] | None = field(init=False)  # class -> word id; None when a word splits

    def __post_init__(self):
        tok = self.tokenizer
        if self.padding_side not in ("left", "right"):
            raise PeftTransferError(f"padding_side must be 'left' or 'right', not {self.padding_side!r}")
        if self.masked_lm and getattr(tok, "mask_token", None) is None:
            raise PeftTransferError("This tokenizer has no mask token, so it cannot serve a masked LM task.")
        if self.masked_lm and self.padding_side != "right":
            raise PeftTransferError("Masked LMs take right padding (their position ids ignore left padding).")
        if tok.pad_token_id is None:
            raise PeftTransferError("The tokenizer has no pad token; set tokenizer.pad_token (e.g. to eos) first.")
        self.label_word_tokens = [[self._word_tokens(w) for w in words] for words in self.task.label_words]
        _refuse_shared_words(self.task, self.label_word_tokens)
        self.label_token_ids = None if self.multi_token else [[ids[0] for ids in words]
                                                               for words in self.label_word_tokens]
        template = self.task.template
        if self.masked_lm:
            if MASK_SLOT not in template:
                template = template.rstrip() + " " + MASK_SLOT
            self._template = template.replace(MASK_SLOT, tok.mask_token)
        else:
            if MASK_SLOT in template:
                head, tail = template.split(MASK_SLOT)
                if tail.strip():
                    raise PeftTransferError(
                        f"Task {self.task.name!r}: for a causal LM the label slot {MASK_SLOT} must end the template "
                        f"(found {tail!r} after it)."
                    )
                template = head.rstrip(" ")
            self._template = template
        fixed = len(tok(self._template.replace(TEXT_SLOT, ""))["input_ids"])
        self._text_budget = self.task.max_length - fixed
        if self._text_budget < 1:
            raise PeftTransferError(
                f"Task {self.task.name!r}: a limit of {self.task.max_length} tokens per example leaves no room for "
                f"text (the template alone takes {fixed})."
            )

    @property
    def template_tokens(self) -> int:
        """Tokens of the rendered template without its text (special tokens and label slot included)."""
        return self.task.max_length - self._text_budget

    @property
    def tail_tokens(self) -> int:
        """Tokens a scored row holds after the text besides the template: a split label word's further tokens
        (fed teacher-forced, or as further masks)."""
        return max(len(ids) for words in self.label_word_tokens for ids in words) - 1

    @property
    def multi_token(self) -> bool:
        """True when some label word splits into several tokens (scored by `label_scoring`)."""
        return any(len(ids) > 1 for words in self.label_word_tokens for ids in words)

    def _word_tokens(self, word: str) -> list[int]:
        tok = self.tokenizer
        ids = tok(word, add_special_tokens=False)["input_ids"]
        unk = getattr(tok, "unk_token_id", None)
        if len(ids) == 0 or (unk is not None and unk in ids):
            raise PeftTransferError(
                f"Task {self.task.name!r}: label word {word!r} is not in this tokenizer's vocabulary; "
                "pick another word."
            )
        return list(ids)

    def _fit(self, text: str) -> str:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= self._text_budget:
            return text
        return self.tokenizer.decode(ids[: self._text_budget])

    def is_truncated(self, text: str) -> bool:
        """True when `render` cuts `text` so that the example fits `task.max_length` tokens."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) > self._text_budget

    def render(self, text: str) -> str:
        """The model input for one text (truncated so that the template and label slot survive)."""
        return self._template.replace(TEXT_SLOT, self._fit(text))

    def encode(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Tokenize texts into a padded batch with each example's label position (in text coordinates)."""
        import torch

        if len(texts) == 0:
            raise PeftTransferError("Nothing to encode: the batch is empty.")
        tok = self.tokenizer
        old_side = tok.padding_side
        tok.padding_side = self.padding_side
        try:
            batch = tok([self.render(t) for t in texts], padding=True, return_tensors="pt")
        finally:
            tok.padding_side = old_side
        mask = batch["attention_mask"]
        if self.masked_lm:
            is_mask = batch["input_ids"] == tok.mask_token_id
            if not torch.all(is_mask.sum(1) == 1):
                raise PeftTransferError("Each encoded example must hold exactly one mask token; do not put the "
                                        "mask token inside the text.")
            positions = is_mask.long().argmax(1)
        else:
            positions = mask.shape[1] - 1 - mask.flip(1).long().argmax(1)  # last non-pad token
        return {"input_ids": batch["input_ids"], "attention_mask": mask, "label_positions": positions}

    def class_scores(self, label_logits: torch.Tensor) -> torch.Tensor:
        """(batch, vocab) logits at the label position -> (batch, classes) mean label-word logits (single-token
        label words only; `label_scoring.class_scores` serves every task)."""
        if self.label_token_ids is None:
            raise PeftTransferError(f"Task {self.task.name!r} has label words of several tokens: one position does "
                                    "not score them; use peft_transfer.tasks.label_scoring.class_scores.")
        import torch

        flat = [i for ids in self.label_token_ids for i in ids]
        weights = torch.zeros(self.task.num_classes, len(flat), dtype=label_logits.dtype, device=label_logits.device)
        k = 0
        for c, ids in enumerate(self.label_token_ids):
            weights[c, k : k + len(ids)] = 1.0 / len(ids)
            k += len(ids)
        return label_logits[:, flat] @ weights.T

    # -- the task protocol (module docstring); `generation.TokenizedGenerationTask` overrides each ------------
    def training_collator(self) -> Callable[[list[dict]], dict[str, torch.Tensor]]:
        """Training rows -> an encoded batch with their labels."""
        return LabelledTextCollator(self)

    def example_outputs(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch, classes) class scores of an encoded batch (`label_scoring.class_scores`, label words of any
        length). The prompt is embedded once per example, so Opacus's per-example gradients are exact."""
        from .label_scoring import class_scores  # torch and peft: not at CLI start-up

        return class_scores(model, self, batch["input_ids"], batch["attention_mask"], batch["label_positions"])

    def example_losses(self, outputs: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(batch,) cross-entropy of each example's class scores (never a mean over the batch)."""
        import torch

        return torch.nn.functional.cross_entropy(outputs, batch["labels"].to(outputs.device), reduction="none")

    @property
    def needs_sequence_transfer(self) -> bool:
        """True when POST must distil at more than the label position: some label word splits."""
        return self.multi_token

    @property
    def distilled_positions(self) -> str | None:
        """Where the POST terms are taken, for the transfer record; None: the label position alone."""
        if not self.multi_token:
            return None
        if self.masked_lm:
            return "every mask of one row per label-word length (as many masks as the word has tokens)"
        return "the label position and every later token of each label word that splits (teacher-forced)"

    def prefixes(self, texts: list[str]) -> list[list[int]]:
        """The rendered texts' token ids, as `encode` tokenizes them (no padding)."""
        from .sequence_rows import unpadded  # torch: not at CLI start-up

        batch = self.encode(texts)
        return unpadded(batch["input_ids"], batch["attention_mask"])

    def public_rows(self, texts: list[str], student, batch_size: int = 16) -> list[list[SequenceRow]]:
        """The teacher-forced rows a sequence transfer distils on for each public text: every token of every
        label word, as the class scores read them (`label_scoring.LabelScorer.transfer_rows`). `student` and
        `batch_size` serve generation tasks."""
        if not texts:
            return []
        from .label_scoring import label_scorer  # torch and peft: not at CLI start-up

        scorer = label_scorer(self)
        return [scorer.transfer_rows(p) for p in self.prefixes(texts)]

    def transfer_predictions(self, model, texts: list[str], logits: torch.Tensor | None,
                             batch_size: int = 16) -> torch.Tensor:
        """What the transfer monitor's agreement compares: the class `model` predicts for each of `texts` (the
        rows' `logits` serve generation tasks)."""
        import torch  # not at CLI start-up (tasks are read there), like label_scoring

        from .label_scoring import class_scores

        out = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                batch = self.encode(texts[start : start + batch_size])
                out.append(class_scores(model, self, **batch).argmax(-1).cpu())
        return torch.cat(out)


class LabelledTextCollator:
    """Rows {text, label} -> {input_ids, attention_mask, label_positions, labels} (the task's columns); an empty
    list gives an empty batch (Poisson sampling draws those)."""

    def __init__(self, tokenized: TokenizedTask):
        self.tokenized = tokenized

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        import torch

        task = self.tokenized.task
        labels = torch.tensor([int(f[task.label_column]) for f in features], dtype=torch.long)
        if not features:
            empty = torch.zeros(0, 1, dtype=torch.long)
            return {"input_ids": empty, "attention_mask": empty.clone(),
                    "label_positions": torch.zeros(0, dtype=torch.long), "labels": labels}
        return {**self.tokenized.encode([f[task.text_column] for f in features]), "labels": labels}
