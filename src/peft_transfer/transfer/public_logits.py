"""Public texts for transfer (texts only) and the constant label-position logits computed once per text."""

from __future__ import annotations

import warnings

import torch
from datasets import Dataset
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..prompted_forward import base_model_of, label_logits
from ..tasks.classification import TokenizedTask


def public_text_list(public: Dataset | list[str], text_column: str = "text") -> list[str]:
    """The texts of a public set. Any other column (a label, say) is ignored, with a warning."""
    if isinstance(public, Dataset):
        if text_column not in public.column_names:
            raise PeftTransferError(f"The public set has no {text_column!r} column (columns: {public.column_names}).")
        others = [c for c in public.column_names if c != text_column]
        if others:
            warnings.warn(f"The public set has columns {others} besides {text_column!r}; transfer uses texts only, "
                          "so they (labels included) are ignored.", UserWarning, stacklevel=3)
        texts = list(public[text_column])
    elif isinstance(public, (list, tuple)) and all(isinstance(t, str) for t in public):
        texts = list(public)
    else:
        raise PeftTransferError("The public set must be a list of strings or a datasets.Dataset with a text column; "
                                "transfer takes unlabelled texts only.")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise PeftTransferError("The public set is empty (no non-blank texts); transfer needs public unlabelled text.")
    return texts


def output_vocab_size(model: PreTrainedModel | PeftModel) -> int:
    """Number of logits the model's LM head produces."""
    base = base_model_of(model)
    head = base.get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return int(head.weight.shape[0])
    return int(base.config.get_text_config().vocab_size)


@torch.no_grad()
def compute_label_logits(
    model: PreTrainedModel | PeftModel,
    tokenized: TokenizedTask,
    texts: list[str],
    use_prompt: bool = True,
    batch_size: int = 16,
    desc: str | None = None,
) -> torch.Tensor:
    """Full-vocabulary label-position logits (n, vocab) as float32 on the CPU, in eval mode, in input order."""
    was_training = model.training
    model.eval()
    out = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc=desc, disable=desc is None, unit="batch"):
        batch = tokenized.encode(texts[start : start + batch_size])
        out.append(label_logits(model, batch["input_ids"], batch["attention_mask"], batch["label_positions"],
                                use_prompt=use_prompt).float().cpu())
    model.train(was_training)
    return torch.cat(out)


class PublicTextDataset(torch.utils.data.Dataset):
    """Public texts, each with its cached constant logits (3, vocab) when given: student+p_s, student, target."""

    def __init__(self, texts: list[str], constants: torch.Tensor | None = None):
        if constants is not None and constants.shape[0] != len(texts):
            raise ValueError("one row of constants per text")
        self.texts, self.constants = texts, constants

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        item = {"text": self.texts[i]}
        if self.constants is not None:
            item["constants"] = self.constants[i]
        return item


class PublicTextCollator:
    """Encode a batch of public texts for the task (label positions included) and stack their constants."""

    def __init__(self, tokenized: TokenizedTask):
        self.tokenized = tokenized

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = self.tokenized.encode([f["text"] for f in features])
        if "constants" in features[0]:
            batch["constants"] = torch.stack([f["constants"] for f in features])
        return batch
