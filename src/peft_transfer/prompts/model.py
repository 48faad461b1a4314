"""Create, initialise and load soft prompts (`TransferablePromptConfig` adapters on any supported model)."""

from __future__ import annotations

import os

import torch
from peft import PeftModel, TaskType, get_peft_model
from safetensors import SafetensorError
from transformers import PreTrainedModel

from ..assets.vocabulary import vocabulary_fingerprint
from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from ..student.layers import student_lineage
from ..student.weights_hash import weights_fingerprint
from ..tasks.classification import ClassificationTask
from .config import TransferablePromptConfig


def model_id(model: PreTrainedModel) -> str:
    """The id recorded for a model in provenance: its name_or_path, or its class for in-memory models."""
    return getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or type(model).__name__


def hidden_size(model: PreTrainedModel) -> int:
    return model.get_input_embeddings().weight.shape[1]


def create_prompt_model(
    model: PreTrainedModel,
    tokenizer,
    task: ClassificationTask,
    num_virtual_tokens: int = 20,
    init_text: str | None = None,
    target: str | None = None,
    **provenance,
) -> PeftModel:
    """Wrap `model` with a new trainable soft prompt for `task`.

    The prompt starts from the embeddings of `init_text` (default: the task description or its template
    without the slot), repeated to fill `num_virtual_tokens` - PEFT's TEXT init, done here so the saved
    adapter loads without fetching a tokenizer. `target` names the model the prompt is for (default: the
    model itself). Extra keyword arguments fill the provenance fields of `TransferablePromptConfig`; the
    student's lineage (teacher, kept layers) is taken from the model when it is a distilled student, and the
    fingerprints of the weights and the vocabulary from `model` and `tokenizer`.
    """
    if num_virtual_tokens < 1:
        raise PeftTransferError("num_virtual_tokens must be at least 1.")
    text = init_text or task.description or task.template.replace("{text}", "").replace("{mask}", "").strip()
    name = model_id(model)
    provenance.setdefault("tuned_on", name)
    provenance.setdefault("base_model_weights", weights_fingerprint(model))
    provenance.setdefault("vocabulary", vocabulary_fingerprint(tokenizer))
    provenance.setdefault("task", task.record())
    provenance.setdefault("student", student_lineage(model))
    config = TransferablePromptConfig(
        task_type=TaskType.FEATURE_EXTRACTION if is_masked_lm(model) else TaskType.CAUSAL_LM,
        num_virtual_tokens=num_virtual_tokens,
        prompt_tuning_init="RANDOM",
        prompt_tuning_init_text=text,
        base_model_name_or_path=target or name,
        **provenance,
    )
    peft_model = get_peft_model(model, config)
    # get_peft_model overwrites this with model.name_or_path; it must name the model the prompt is for
    peft_model.peft_config[peft_model.active_adapter].base_model_name_or_path = target or name
    init_prompt_from_text(peft_model, tokenizer, text)
    return peft_model


@torch.no_grad()
def init_prompt_from_text(peft_model: PeftModel, tokenizer, text: str) -> None:
    """Set the prompt to the word embeddings of `text`, cycled/truncated to the prompt length."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise PeftTransferError("The prompt init text is empty after tokenization.")
    embedding = peft_model.prompt_encoder[peft_model.active_adapter].embedding
    n = embedding.weight.shape[0]
    ids = (ids * (n // len(ids) + 1))[:n]
    words = peft_model.get_base_model().get_input_embeddings()
    index = torch.tensor(ids, device=words.weight.device)
    embedding.weight.copy_(words(index).to(embedding.weight.dtype))


def load_prompt(model: PreTrainedModel, path: str, **hub_kwargs) -> PeftModel:
    """Load a saved prompt onto `model`, checking that it fits; returns a PeftModel (eval mode)."""
    config = TransferablePromptConfig.from_pretrained(path, **hub_kwargs)
    size = hidden_size(model)
    if config.token_dim and config.token_dim != size:
        raise PeftTransferError(
            f"The prompt at {path} has hidden size {config.token_dim} but the model {model_id(model)} has {size}: "
            f"a prompt only fits models of its own hidden size. Use it with the model it was made on "
            f"({config.base_model_name_or_path}), or move it to this model first with `peft-transfer transfer`."
        )
    weights = os.path.join(path, "adapter_model.safetensors")
    try:
        return PeftModel.from_pretrained(model, path, config=config, **hub_kwargs)
    except SafetensorError as exc:
        raise PeftTransferError(f"{weights} is corrupted or truncated ({exc}); re-download or re-export it.") from exc
    except (OSError, ValueError) as exc:
        raise PeftTransferError(f"Cannot load the prompt at {path}: {exc}") from exc
