"""Does a saved prompt fit a model? What its provenance records of the model and tokenizer it was tuned with,
checked against the model and tokenizer it now meets.

- `check_base_model`: transfer (and CompPT) need the very model a prompt was made on (p_s: the student it was
  tuned on). Refused when the weights fingerprint differs (`base_model_weights`), or, for prompts recorded
  without one, when the hidden size, the layer count or (before transfer, when the prompt records one) the
  student lineage differ.
- `warn_other_vocabulary`: a prompt scored through another tokenizer than the one it was tuned with reads its
  inputs as other token ids; legal (the hidden sizes match) but likely a mistake, so a warning.
"""

from __future__ import annotations

from ..assets.vocabulary import vocabulary_fingerprint
from ..errors import PeftTransferError, warn_user
from ..student.layers import student_lineage
from ..student.weights_hash import weights_fingerprint
from .config import TransferablePromptConfig


def _num_layers(model) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)


def base_model_difference(config: TransferablePromptConfig, model) -> str | None:
    """How `model` differs from the model the prompt was made on, in words (None: it is that model, as far as
    the prompt's record tells)."""
    if config.base_model_weights:
        return None if weights_fingerprint(model) == config.base_model_weights else "other weights"
    hidden = model.get_input_embeddings().weight.shape[1]
    if config.token_dim and config.token_dim != hidden:
        return f"hidden size {config.token_dim} vs {hidden}"
    layers = _num_layers(model)
    if config.num_layers and layers and config.num_layers != layers:
        return f"{config.num_layers} vs {layers} layers"
    lineage, recorded = student_lineage(model), config.student
    # a prompt from another tool (PEFT, TRL) records no lineage: nothing to compare beyond the sizes above
    if config.transfer is None and recorded is not None and (lineage and lineage.to_dict()) != recorded.to_dict():
        return "another student lineage"
    return None


def check_base_model(config: TransferablePromptConfig, model, prompt_name: str, model_name: str, advice: str) -> None:
    """Refuse `model` (named `model_name` to the user) when the prompt (`prompt_name`) was made on another model
    (tuned there, or transferred there); `advice` says what to do instead."""
    difference = base_model_difference(config, model)
    if difference is not None:
        made = "transferred to" if config.transfer is not None else "tuned on"
        raise PeftTransferError(f"{prompt_name} was {made} {config.base_model_name_or_path or 'another model'!r}, not "
                                f"{model_name} ({difference}): {advice}")


def warn_other_vocabulary(config, tokenizer) -> None:
    """Warn when a prompt is scored through another tokenizer than the one it was tuned with (prompts recorded
    without a `vocabulary` are not checked)."""
    recorded = getattr(config, "vocabulary", None)
    if not recorded:
        return
    now = vocabulary_fingerprint(tokenizer)
    if now != recorded:
        warn_user(f"the prompt for {config.base_model_name_or_path!r} was tuned with another vocabulary ({recorded}) "
                  f"than the tokenizer it is scored with ({now}): its inputs become other token ids, so the score "
                  "means little. Score it on a model with the tokenizer it was tuned with, or transfer it to this "
                  "model first (peft-transfer transfer).")
