"""Teacher top-k logit cache: run the teacher over a corpus once, store its top-k log-probabilities per token.

Stored as a `datasets` dataset (`save_to_disk`) with the batch columns (`input_ids`, `attention_mask`, `labels`;
for masked LMs the masking is drawn once, here, and fixed) plus `teacher_topk_ids` (int32, seq × k) and
`teacher_topk_logprobs` (float32, seq × k: log softmax(teacher logits / T) on those ids) and, optionally,
`teacher_last_hidden` (float16) for the cosine term. A sidecar `peft_transfer_cache.json` records T, k and
the teacher. `DistillationTrainer` then trains with `distillation_loss.kl_topk` (see there for the
approximation of the tail) without running the teacher.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..errors import PeftTransferError
from ..student.layers import teacher_id
from .data import collator_for

META_NAME = "peft_transfer_cache.json"


@torch.no_grad()
def build_teacher_cache(teacher: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, blocks: Dataset,
                        out_dir: str | Path, top_k: int = 64, temperature: float = 2.0, batch_size: int = 8,
                        store_last_hidden: bool = False, seed: int = 0, progress: bool = True) -> Dataset:
    """Cache the teacher's top-k log-probabilities at temperature T for every token of `blocks`; returns it."""
    if top_k < 1 or top_k > teacher.get_output_embeddings().weight.shape[0]:
        raise PeftTransferError(f"--top-k (top_k) must be between 1 and the teacher's vocabulary size "
                                f"({teacher.get_output_embeddings().weight.shape[0]}), got {top_k}.")
    teacher.eval()
    collate = collator_for(teacher, tokenizer, seed=seed)
    device = next(teacher.parameters()).device
    parts = []
    for start in tqdm(range(0, len(blocks), batch_size), desc="teacher cache", disable=not progress):
        batch = collate([blocks[i] for i in range(start, min(start + batch_size, len(blocks)))])
        out = teacher(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                      output_hidden_states=store_last_hidden)
        logp = F.log_softmax(out.logits.float() / temperature, dim=-1)
        values, ids = logp.topk(top_k, dim=-1)
        cols = {key: batch[key].numpy() for key in ("input_ids", "attention_mask", "labels")}
        cols["teacher_topk_ids"] = ids.to(torch.int32).cpu().numpy()
        cols["teacher_topk_logprobs"] = values.cpu().numpy().astype(np.float32)
        if store_last_hidden:
            cols["teacher_last_hidden"] = out.hidden_states[-1].to(torch.float16).cpu().numpy()
        parts.append(Dataset.from_dict({k: list(v) for k, v in cols.items()}))
    cache = concatenate_datasets(parts)
    out_dir = Path(out_dir)
    cache.save_to_disk(str(out_dir))
    meta = {"teacher": teacher_id(teacher), "temperature": temperature, "top_k": top_k,
            "num_blocks": len(cache), "block_size": len(blocks[0]["input_ids"]),
            "last_hidden": store_last_hidden, "seed": seed}
    (out_dir / META_NAME).write_text(json.dumps(meta, indent=2))
    return load_from_disk(str(out_dir))


def load_teacher_cache(path: str | Path) -> tuple[Dataset, dict]:
    """(cached dataset, metadata) saved by `build_teacher_cache`."""
    path = Path(path)
    if not (path / META_NAME).is_file():
        raise PeftTransferError(f"{path} is not a teacher cache (no {META_NAME}); build one with build_teacher_cache.")
    return load_from_disk(str(path)), json.loads((path / META_NAME).read_text())
