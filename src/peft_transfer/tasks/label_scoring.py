"""Class scores for label words of any length: the length-normalised log-likelihood of each word given the
prompt and the text (teacher-forced), averaged over a class's words.

- Causal LMs: one row per label word that splits, reading `[prompt, text, word[:-1]]`; the word's j-th
  token is scored at the j-th position from the label position. A position's logits depend only on what
  precedes it (causal attention), so words whose tokens-but-the-last are a prefix of another's share its row
  (" thumbs down" and " thumbs up" take one row; single-token words ride on the first row).
- Masked LMs: one row per distinct word length L, with L mask tokens in the label slot; the j-th mask scores
  the j-th token, all at once (as PET does for multi-token verbalisers, Schick & Schütze 2021): a masked LM
  has no left-to-right factorisation, and L masks tell it the word's length.

An example's rows share its prompt: it is embedded once per example and repeated for the rows, so autograd
sums the rows' gradients into that example and Opacus sees one example (exact per-example gradients).
A task whose label words are all single tokens keeps the classic path (the mean label-word logit at the
label position) and today's numbers exactly; there the log-likelihood differs from it only by a
per-example constant (the log-partition), which changes neither the ranking nor the cross-entropy.

`tokenized` below is a `classification.TokenizedTask`, which calls this module (its `example_outputs`,
`public_rows`): it is not imported here, so that the two modules do not import each other.
"""

from __future__ import annotations

import torch
from peft import PeftModel
from transformers import PreTrainedModel

from ..prompted_forward import label_logits, position_logits, prompt_embeddings
from .sequence_rows import SequenceRow, collate_rows, unpadded


class LabelScorer:
    """The rows and the reading plan of one tokenized task's label words."""

    def __init__(self, tokenized):
        self.tokenized = tokenized
        self.masked = tokenized.masked_lm
        words = [(c, ids) for c, class_words in enumerate(tokenized.label_word_tokens) for ids in class_words]
        if self.masked:
            self.probes: list = sorted({len(ids) for _, ids in words})  # mask counts
        else:  # tokens fed after the text: each word's all-but-last, dropping those that prefix another
            fed = list(dict.fromkeys(tuple(ids[:-1]) for _, ids in words if len(ids) > 1))
            self.probes = [list(f) for f in fed if not any(len(g) > len(f) and g[: len(f)] == f for g in fed)]
            self.probes = self.probes or [[]]
        plan: list[tuple[int, int, int]] = []  # (row, slot, token) for every token of every word
        weights = []
        counts = [len(class_words) for class_words in tokenized.label_word_tokens]
        for c, ids in words:
            if self.masked:
                row = self.probes.index(len(ids))
            else:
                row = next(r for r, f in enumerate(self.probes) if f[: len(ids) - 1] == ids[:-1])
            for j, token in enumerate(ids):
                plan.append((row, j, token))
                weight = torch.zeros(len(counts))
                weight[c] = 1.0 / (len(ids) * counts[c])
                weights.append(weight)
        self.rows_idx, self.slots, self.tokens = (torch.tensor(v) for v in zip(*plan))
        self.weights = torch.stack(weights, dim=1)  # (classes, tokens)

    @property
    def rows_per_example(self) -> int:
        return len(self.probes)

    def rows(self, prefix: list[int]) -> list[SequenceRow]:
        """The rows of one example, from its rendered tokens (`prefix`, no padding)."""
        if not self.masked:
            start = len(prefix) - 1
            return [SequenceRow(prefix + list(fed), list(range(start, start + len(fed) + 1))) for fed in self.probes]
        mask_id = self.tokenized.tokenizer.mask_token_id
        m = prefix.index(mask_id)
        return [SequenceRow(prefix[:m] + [mask_id] * n + prefix[m + 1 :], list(range(m, m + n))) for n in self.probes]

    def transfer_rows(self, prefix: list[int]) -> list[SequenceRow]:
        """`rows`, with each position counted once: a causal row skips the positions whose context an earlier row
        already has (the label position, and any fed tokens it shares with an earlier row)."""
        rows = self.rows(prefix)
        if self.masked:
            return rows
        out = []
        for r, row in enumerate(rows):
            fed = self.probes[r]
            shared = max((_common_prefix(fed, self.probes[q]) + 1 for q in range(r)), default=0)
            if row.positions[shared:]:
                out.append(SequenceRow(row.ids, row.positions[shared:]))
        return out

    def collate(self, prefixes: list[list[int]]) -> dict[str, torch.Tensor]:
        rows = [row for prefix in prefixes for row in self.rows(prefix)]
        return collate_rows(rows, self.tokenized.tokenizer.pad_token_id, "right" if self.masked else "left")

    def read(self, logits: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(batch x rows, P, vocab) logits -> (batch, classes) mean length-normalised log-likelihoods."""
        logits = logits.float().view(batch_size, self.rows_per_example, *logits.shape[1:])
        device = logits.device
        r, s, t = self.rows_idx.to(device), self.slots.to(device), self.tokens.to(device)
        token_logp = logits[:, r, s, t] - logits.logsumexp(-1)[:, r, s]  # (batch, word tokens)
        return token_logp @ self.weights.to(device).T

    def scores(self, model: PreTrainedModel | PeftModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               use_prompt: bool = True) -> torch.Tensor:
        batch_size = input_ids.shape[0]
        batch = self.collate(unpadded(input_ids, attention_mask))
        prompt = None
        if use_prompt and isinstance(model, PeftModel):
            prompt = prompt_embeddings(model, batch_size).repeat_interleave(self.rows_per_example, dim=0)
        logits = position_logits(model, batch["input_ids"], batch["attention_mask"], batch["positions"],
                                 use_prompt=use_prompt, prompt=prompt)
        return self.read(logits, batch_size)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def label_scorer(tokenized) -> LabelScorer:
    """The (cached) scorer of a tokenized task."""
    scorer = getattr(tokenized, "_label_scorer", None)
    if scorer is None:
        scorer = LabelScorer(tokenized)
        tokenized._label_scorer = scorer
    return scorer


def class_scores(model: PreTrainedModel | PeftModel, tokenized, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor, label_positions: torch.Tensor, use_prompt: bool = True) -> torch.Tensor:
    """(batch, classes) class scores of an encoded batch (`TokenizedTask.encode`), for label words of any length.

    Single-token words: the mean label-word logit at the label position (unchanged). Otherwise: the mean over
    a class's words of each word's mean token log-probability, teacher-forced (see the module docstring).
    """
    if not tokenized.multi_token:
        logits = label_logits(model, input_ids, attention_mask, label_positions, use_prompt=use_prompt)
        return tokenized.class_scores(logits.float())
    return label_scorer(tokenized).scores(model, input_ids, attention_mask, use_prompt)
