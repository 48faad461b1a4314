"""The one forward pass every stage uses: [soft prompt, text] embeddings -> logits at the label position.

Why not `PeftModel.forward`: PEFT drops `position_ids` for prompt tuning, so with left padding an
example's positions (and predictions) depend on the rest of its batch; it embeds a single prompt and
`repeat`s it, which hides the batch dimension from Opacus (wrong per-example gradients); and it returns
logits for every position, including the virtual tokens. Here the prompt is embedded from a
(batch, n_virtual) index matrix, positions are explicit, and only the label position is read - the
virtual-token offset is handled in this module and nowhere else. With the default right padding the
logits equal stock PEFT's at the same position (tested).
"""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING

import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, PreTrainedModel

if TYPE_CHECKING:
    from peft import PeftModel


def is_peft_model(model) -> bool:
    """True for a PeftModel, without importing peft (seconds) when nothing has: then no model can be one."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def is_masked_config(config) -> bool:
    """True for the config of a masked LM (its architectures end in ForMaskedLM)."""
    return any(a.endswith("ForMaskedLM") for a in (getattr(config, "architectures", None) or []))


def auto_model_class(config) -> type:
    """The transformers auto class that loads this config's LM head: masked or causal."""
    return AutoModelForMaskedLM if is_masked_config(config) else AutoModelForCausalLM


def base_model_of(model: PreTrainedModel | PeftModel) -> PreTrainedModel:
    """The transformers model under a PeftModel (or the model itself)."""
    return model.get_base_model() if is_peft_model(model) else model


def is_masked_lm(model: PreTrainedModel | PeftModel) -> bool:
    """True for masked LMs (BERT, RoBERTa, ...), which read the label at the mask token."""
    return "ForMaskedLM" in type(base_model_of(model)).__name__


# position ids start after the padding index (RoBERTa's embeddings): two of 514 positions go unused
_PADDING_OFFSET_TYPES = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "roberta-prelayernorm",
                         "data2vec-text", "xmod")


def position_limit(config) -> int | None:
    """The most tokens one input may hold, soft prompt included: `max_position_embeddings` (GPT-2's n_positions),
    less RoBERTa's padding offset; None when the config names none.

    For learned absolute positions (GPT-2, BERT, RoBERTa) a longer input fails with an IndexError; for rotary
    positions (Llama, Qwen, Gemma, Mistral) it runs, but past the length the model was trained on, where its
    outputs are not to be trusted: both are held to the same limit.
    """
    config = getattr(config, "config", config)  # a model (or PeftModel) or its config
    limit = getattr(config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit < 1:
        return None
    if getattr(config, "model_type", None) in _PADDING_OFFSET_TYPES:
        limit -= (getattr(config, "pad_token_id", None) or 0) + 1
    return limit


def rotary_positions(config) -> bool:
    """True when the model encodes positions by rotation (RoPE: Llama, Qwen, Gemma, Mistral), so that a longer
    input runs (past the trained length) instead of failing."""
    config = getattr(config, "config", config)
    return any(getattr(config, name, None) is not None for name in ("rope_parameters", "rope_scaling", "rope_theta"))


def prompt_embeddings(model: PeftModel, batch_size: int) -> torch.Tensor:
    """The active soft prompt as (batch, n_virtual, hidden), embedded per example (Opacus sees the batch)."""
    adapter = model.active_adapter
    encoder = model.prompt_encoder[adapter]
    tokens = model.prompt_tokens[adapter].to(encoder.embedding.weight.device)
    index = tokens.unsqueeze(0).expand(batch_size, -1).contiguous()
    return encoder(index)


def _accepts(model: torch.nn.Module, name: str) -> bool:
    return name in inspect.signature(model.forward).parameters


def _prepend(prompt: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[prompt, text] per row, with any left padding moved in front of the prompt.

    Prompt and text must be contiguous: sliding-window attention (Gemma 3, Mistral) counts sequence slots,
    so padding between them would change what a token sees. Rows without left padding are unchanged, and
    text tokens keep their index + n_virtual either way.
    """
    batch, n = prompt.shape[:2]
    length = embeds.shape[1]
    left_pads = (mask.cumsum(-1) == 0).sum(-1, keepdim=True)  # leading pad count per row
    j = torch.arange(n + length, device=mask.device).expand(batch, -1)
    index = torch.where(j < left_pads, j + n, torch.where(j < left_pads + n, j - left_pads, j))
    full = torch.cat([prompt, embeds], dim=1)
    full_mask = torch.cat([mask.new_ones(batch, n), mask], dim=1)
    full = full.gather(1, index.unsqueeze(-1).expand(-1, -1, full.shape[-1]))
    return full, full_mask.gather(1, index)


def prompted_inputs(
    model: PreTrainedModel | PeftModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    use_prompt: bool,
    prompt: torch.Tensor | None,
) -> tuple[PreTrainedModel, dict, int]:
    """(base model, forward kwargs with [prompt, text] embeddings and explicit positions, prompt length)."""
    base = base_model_of(model)
    device = base.get_input_embeddings().weight.device
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    embeds = base.get_input_embeddings()(input_ids)
    if prompt is None and use_prompt and is_peft_model(model):
        prompt = prompt_embeddings(model, input_ids.shape[0])
    offset = 0
    if prompt is not None:
        offset = prompt.shape[1]
        embeds, attention_mask = _prepend(prompt.to(embeds.dtype), embeds, attention_mask)
    kwargs: dict = {"inputs_embeds": embeds, "attention_mask": attention_mask}
    if not is_masked_lm(base):
        kwargs["position_ids"] = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        kwargs["use_cache"] = False
    return base, kwargs, offset


def label_logits(
    model: PreTrainedModel | PeftModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    label_positions: torch.Tensor,
    use_prompt: bool = True,
    prompt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Full-vocabulary logits (batch, vocab) at each example's label position.

    `model` is a PeftModel (its active prompt is prepended unless `use_prompt=False`) or a plain model.
    `prompt` overrides the prompt embeddings (batch, n_virtual, hidden). `label_positions` index the
    text tokens (as `TokenizedTask.encode` returns them), not counting virtual tokens.
    """
    base, kwargs, offset = prompted_inputs(model, input_ids, attention_mask, use_prompt, prompt)
    device = kwargs["inputs_embeds"].device
    batch = input_ids.shape[0]
    positions = label_positions.to(device) + offset
    if is_masked_lm(base):
        return base(**kwargs).logits[torch.arange(batch, device=device), positions]
    last = kwargs["inputs_embeds"].shape[1] - 1
    if bool((positions == last).all()) and _accepts(base, "logits_to_keep"):
        return base(**kwargs, logits_to_keep=1).logits[:, -1]
    return base(**kwargs).logits[torch.arange(batch, device=device), positions]


def position_logits(
    model: PreTrainedModel | PeftModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    positions: torch.Tensor,
    use_prompt: bool = True,
    prompt: torch.Tensor | None = None,
) -> torch.Tensor:
    """Full-vocabulary logits (batch, P, vocab) at several positions per example (batch, P) - a teacher-forced
    sequence after the label position, or several mask tokens. Same forward as `label_logits`; a causal LM
    computes its head only over the columns from the first requested position on."""
    base, kwargs, offset = prompted_inputs(model, input_ids, attention_mask, use_prompt, prompt)
    device = kwargs["inputs_embeds"].device
    rows = torch.arange(input_ids.shape[0], device=device).unsqueeze(1)
    positions = positions.to(device) + offset
    length = kwargs["inputs_embeds"].shape[1]
    keep = length - int(positions.min())
    if not is_masked_lm(base) and keep < length and _accepts(base, "logits_to_keep"):
        return base(**kwargs, logits_to_keep=keep).logits[rows, positions - (length - keep)]
    return base(**kwargs).logits[rows, positions]
