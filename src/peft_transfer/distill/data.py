"""Distillation data: text corpus -> fixed-length token blocks, collators, and held-out perplexity."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import DataCollatorForLanguageModeling, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from .loss import lm_loss


def split_held_out(blocks: Dataset, eval_blocks: int) -> tuple[Dataset, Dataset | None]:
    """(training blocks, the last `eval_blocks` blocks held out for perplexity, or None); one block always trains."""
    n_eval = min(eval_blocks, len(blocks) - 1) if len(blocks) > 1 else 0
    train = blocks.select(range(len(blocks) - n_eval))
    return train, blocks.select(range(len(blocks) - n_eval, len(blocks))) if n_eval else None


def prepare_blocks(texts: Sequence[str], tokenizer: PreTrainedTokenizerBase, block_size: int = 128,
                   max_blocks: int | None = None) -> Dataset:
    """Tokenize `texts`, join them with the EOS (causal) / SEP token, cut into `block_size`-token blocks.

    The remainder shorter than one block is dropped; a corpus shorter than one block is an error.
    """
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise PeftTransferError("the corpus is empty (no non-blank texts): give a file or set with text.")
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    ids: list[int] = []
    cls = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None and tokenizer.mask_token_id is not None \
        and tokenizer.cls_token_id != sep else []
    body = block_size - len(cls)
    blocks: list[list[int]] = []
    for start in tqdm(range(0, len(texts), 1000), desc="tokenizing", disable=len(texts) < 5000):
        for row in tokenizer(texts[start:start + 1000], add_special_tokens=False)["input_ids"]:
            ids.extend(row + ([sep] if sep is not None else []))
        while len(ids) >= body:
            blocks.append(cls + ids[:body])
            ids = ids[body:]
        if max_blocks is not None and len(blocks) >= max_blocks:
            break
    if not blocks:
        raise PeftTransferError(
            f"the corpus has {len(ids)} tokens, shorter than one block of {block_size}: give more text or a "
            "smaller --block-size.")
    blocks = blocks[:max_blocks] if max_blocks is not None else blocks
    return Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * block_size for _ in blocks]})


class CausalBlockCollator:
    """Stacks every column of fixed-length examples; `labels` = input_ids where attended, else -100.

    Hand-written because `DataCollatorForLanguageModeling(mlm=False)` also masks every token equal to the pad
    token, which for tokenizers with pad == eos (SmolLM2) would drop the document separators from the loss,
    and it does not pass the cached teacher columns through.
    """

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        batch = {key: torch.tensor([ex[key] for ex in examples]) for key in examples[0]}
        if "labels" not in batch:
            batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        return batch


class MaskedBlockCollator:
    """MLM masking via `DataCollatorForLanguageModeling`; cached teacher columns are stacked alongside."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, mlm_probability: float = 0.15, seed: int | None = None):
        self.mlm = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability, seed=seed)

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        if "labels" in examples[0]:  # already masked (a teacher cache fixes the masking)
            return {key: torch.tensor([ex[key] for ex in examples]) for key in examples[0]}
        return self.mlm([{"input_ids": ex["input_ids"], "attention_mask": ex["attention_mask"]} for ex in examples])


def collator_for(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, seed: int | None = None):
    """The right collator for a causal or masked LM."""
    return MaskedBlockCollator(tokenizer, seed=seed) if is_masked_lm(model) else CausalBlockCollator()


@torch.no_grad()
def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, blocks: Dataset, batch_size: int = 8,
               progress: bool = False, seed: int = 0) -> float:
    """exp(token-mean cross-entropy) on `blocks`; for masked LMs on a fixed 15 % masking (pseudo-perplexity)."""
    model.eval()
    collate = MaskedBlockCollator(tokenizer, seed=seed) if is_masked_lm(model) else CausalBlockCollator()
    causal = not is_masked_lm(model)
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(blocks), batch_size), desc="perplexity", disable=not progress):
        batch = collate([blocks[i] for i in range(start, min(start + batch_size, len(blocks)))])
        labels = batch["labels"].to(device)
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits
        n = int((labels[:, 1:] if causal else labels).ne(-100).sum())
        total += float(lm_loss(logits, labels, causal)) * n
        count += n
    return math.exp(total / max(count, 1))
