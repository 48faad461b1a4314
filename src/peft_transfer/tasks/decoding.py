"""Greedy continuations of prompted inputs: transformers' `generate` on the same [prompt, text] embeddings as
every other stage (`prompted_forward`), so a continuation does not depend on the rest of its batch.

`generate` gets the embeddings (left padding moved in front of the soft prompt) and the attention mask, from
which it derives the same position ids as the training forward; decoding is greedy and stops at EOS, at a
token whose text holds the task's stop string (those tokens are found once per tokenizer: transformers'
`stop_strings` spends seconds preparing the whole vocabulary on every first call), or after `max_new_tokens`;
the continuation is then cut where the stop string is completed. `task` and `tokenized` are a
`generation.GenerationTask` and its `TokenizedGenerationTask`, which calls this module (`public_rows`): it is not
imported here, so that the two modules do not import each other.
"""

from __future__ import annotations

import numpy as np
import torch
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import GenerationConfig, PreTrainedModel

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm, prompted_inputs

_STOP_TOKENS: dict[tuple, list[int]] = {}


def stop_token_ids(tokenizer, stop: str | None) -> list[int]:
    """EOS and every token whose decoded text contains `stop` (cached per tokenizer and stop string)."""
    key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer), stop, tokenizer.eos_token_id)
    if key not in _STOP_TOKENS:
        ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        if stop:
            texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
            ids += [i for i, text in enumerate(texts) if stop in text and i not in ids]
        _STOP_TOKENS[key] = ids
    return _STOP_TOKENS[key]


def _cut(tokenized, ids: list[int]) -> list[int]:
    """A generated row up to and including the token that ends it (EOS, or the one completing the stop string)."""
    tok, stop = tokenized.tokenizer, tokenized.task.stop
    for k, token in enumerate(ids):
        if token == tok.eos_token_id:
            return ids[: k + 1]
        if stop and stop in tok.decode(ids[: k + 1]):
            return ids[: k + 1]
    return ids


@torch.no_grad()
def generate_continuations(
    model: PreTrainedModel | PeftModel,
    tokenizer,
    task,
    texts: list[str],
    use_prompt: bool = True,
    batch_size: int = 16,
    progress: bool | str = False,
) -> list[list[int]]:
    """Greedy continuation token ids of each text (in input order), ending with the token that stopped it."""
    if not texts:
        raise PeftTransferError("No texts to continue.")
    if is_masked_lm(model):
        raise PeftTransferError("Generation needs a causal LM; this is a masked LM.")
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    was_training = model.training
    model.eval()
    config = GenerationConfig(max_new_tokens=task.max_new_tokens, do_sample=False, num_beams=1,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=stop_token_ids(tokenizer, task.stop))
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: list[list[int]] = [[] for _ in texts]
    starts = range(0, len(texts), batch_size)
    desc = progress if isinstance(progress, str) else f"generating {task.name}"
    for start in tqdm(starts, desc=desc, disable=not progress, unit="batch"):
        index = order[start : start + batch_size]
        batch = tokenized.encode([texts[i] for i in index])
        base, kwargs, _ = prompted_inputs(model, batch["input_ids"], batch["attention_mask"], use_prompt, None)
        generated = base.generate(inputs_embeds=kwargs["inputs_embeds"], attention_mask=kwargs["attention_mask"],
                                  generation_config=config)
        for row, i in zip(generated.tolist(), index):
            out[i] = _cut(tokenized, row)
    model.train(was_training)
    return out


def generate_texts(model, tokenizer, task, texts: list[str], use_prompt: bool = True,
                   batch_size: int = 16, progress: bool | str = False) -> list[str]:
    """Greedy continuations as text, cut at the stop string and stripped."""
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    ids = generate_continuations(model, tokenizer, task, texts, use_prompt, batch_size, progress)
    return [tokenized.stop_text(tokenizer.decode(row, skip_special_tokens=True)) for row in ids]
