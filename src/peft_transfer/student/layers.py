"""Build a student from a teacher LM by keeping some of its transformer layers (POST: first k + last k).

The student is a fresh model of the teacher's own class, built from a copy of the teacher's config with
the layer count and every per-layer config list cut down to the kept layers; every weight is then copied
from the teacher (layer `i` of the student is teacher layer `keep_layers[i]`). Building from a config (not
deleting layers in place) makes each attention module's `layer_idx` match its new position, so KV caches,
Gemma 3's per-layer attention types and Qwen2's sliding-window layers all work. The lineage (teacher id,
kept layers, teacher depth) is stored in `config.peft_transfer_lineage`, a plain JSON dict that stock
transformers saves and loads back without this package.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch
from transformers import PretrainedConfig, PreTrainedModel

from ..errors import PeftTransferError
from ..provenance import StudentLineage

LINEAGE_KEY = "peft_transfer_lineage"

# model_type -> dotted path (from the top-level model) of the ModuleList holding the transformer layers
_LAYER_LISTS = {
    "llama": "model.layers",
    "mistral": "model.layers",
    "qwen2": "model.layers",
    "gemma3_text": "model.layers",
    "gpt2": "transformer.h",
    "bert": "bert.encoder.layer",
    "roberta": "roberta.encoder.layer",
}
SUPPORTED_MODEL_TYPES = tuple(_LAYER_LISTS)
_SUPPORTED_NAMES = "Llama, Mistral, Qwen2, Gemma 3 (text, Gemma3ForCausalLM), GPT-2, BERT, RoBERTa"


def _model_type(model: PreTrainedModel) -> str:
    model_type = getattr(model.config, "model_type", None)
    if model_type not in _LAYER_LISTS:
        raise PeftTransferError(
            f"cannot cut a student from {type(model).__name__} (model_type={model_type!r}); supported "
            f"architectures: {_SUPPORTED_NAMES} (their *ForCausalLM / *LMHeadModel / *ForMaskedLM classes).")
    return model_type


def layer_list(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The ModuleList of transformer layers of a supported model (heads included in the path)."""
    path = _LAYER_LISTS[_model_type(model)]
    try:
        return model.get_submodule(path)
    except AttributeError as exc:
        raise PeftTransferError(
            f"{type(model).__name__} has no {path!r}: pass the LM-head model (e.g. LlamaForCausalLM, "
            "BertForMaskedLM), not the bare backbone.") from exc


def num_layers(config: PretrainedConfig) -> int:
    """Transformer layer count of a config (`num_hidden_layers`, aliased as `n_layer` by GPT-2)."""
    return int(config.num_hidden_layers)


def default_keep_layers(num_teacher_layers: int, num_keep: int = 2, name: str = "num_keep",
                        keep_name: str = "keep_layers") -> list[int]:
    """POST's choice: the first `num_keep` and the last `num_keep` layers. `name`, `keep_name`: what the
    messages call the two settings (a command's flags, say)."""
    if num_keep < 1:
        raise PeftTransferError(f"{name} must be at least 1, got {num_keep}.")
    if 2 * num_keep > num_teacher_layers:
        raise PeftTransferError(
            f"{name} {num_keep} keeps {2 * num_keep} layers but the teacher has only {num_teacher_layers}; "
            f"use {name} {num_teacher_layers // 2} or less, or give {keep_name} explicitly.")
    return list(range(num_keep)) + list(range(num_teacher_layers - num_keep, num_teacher_layers))


def check_keep_layers(keep_layers: Sequence[int], num_teacher_layers: int, name: str = "keep_layers") -> list[int]:
    """Validated, sorted list of kept layer indices (negative indices count from the end); `name`: what the
    messages call the setting (a command's flag, say)."""
    try:
        raw = [int(i) for i in keep_layers]
    except (TypeError, ValueError) as exc:
        raise PeftTransferError(f"{name} must be integers, got {keep_layers!r}.") from exc
    if not raw:
        raise PeftTransferError(f"{name} is empty: keep at least one layer, e.g. 0,1,28,29.")
    bad = [i for i in raw if not -num_teacher_layers <= i < num_teacher_layers]
    if bad:
        raise PeftTransferError(
            f"{name} {bad} out of range: the teacher has {num_teacher_layers} layers "
            f"(valid indices 0..{num_teacher_layers - 1}).")
    keep = [i % num_teacher_layers for i in raw]
    dupes = sorted({i for i in keep if keep.count(i) > 1})
    if dupes:
        raise PeftTransferError(f"{name} repeats layer(s) {dupes}: each teacher layer can be kept once.")
    if keep != sorted(keep):
        raise PeftTransferError(
            f"{name} must be in increasing order (the student runs them in teacher order), got {raw}.")
    return keep


def _is_per_layer_list(key: str, value, n: int) -> bool:
    return isinstance(value, list | tuple) and len(value) == n and "layer" in key


def student_config(teacher_config: PretrainedConfig, keep: list[int], teacher_id: str) -> PretrainedConfig:
    """Copy of the teacher's config for a student made of teacher layers `keep`, with lineage recorded."""
    n = num_layers(teacher_config)
    config = copy.deepcopy(teacher_config)
    # every per-layer list (Gemma 3 / Qwen2 / Mistral `layer_types`, SmolLM3-style `no_rope_layers`, ...)
    for key, value in list(vars(config).items()):
        if _is_per_layer_list(key, value, n):
            setattr(config, key, type(value)(value[i] for i in keep))
    if teacher_config.model_type == "qwen2" and getattr(config, "max_window_layers", None) is not None:
        # Qwen2: layers with index >= max_window_layers use the sliding window (kept ones stay a suffix)
        config.max_window_layers = sum(1 for i in keep if i < teacher_config.max_window_layers)
    if teacher_config.model_type == "gpt2" and (
            getattr(config, "scale_attn_by_inverse_layer_idx", False)
            or getattr(config, "reorder_and_upcast_attn", False)):
        raise PeftTransferError(
            "this GPT-2 config scales attention by the layer index (scale_attn_by_inverse_layer_idx / "
            "reorder_and_upcast_attn), so a layer moved to a new position would compute something else; "
            "students are cut from GPT-2 configs without these options only.")
    config.num_hidden_layers = len(keep)
    lineage = StudentLineage(teacher=teacher_id, kept_layers=list(keep), teacher_num_layers=n)
    setattr(config, LINEAGE_KEY, lineage.to_dict())
    return config


def teacher_id(model: PreTrainedModel) -> str:
    """Best identifier of a model: its hub id or folder, else its class name."""
    return getattr(model, "name_or_path", "") or getattr(model.config, "_name_or_path", "") or type(model).__name__


def make_student(teacher: PreTrainedModel, keep_layers: Sequence[int] | None = None,
                 num_keep: int = 2) -> PreTrainedModel:
    """A student of the teacher's class made of teacher layers `keep_layers` (default: first and last `num_keep`).

    Embeddings, position embeddings, final norm and LM head (tied or not) are copied; the student's weights
    are fresh tensors (the teacher is never modified or shared). Returned in eval mode, the teacher's dtype.
    """
    model_type = _model_type(teacher)
    n = num_layers(teacher.config)
    teacher_layers = layer_list(teacher)
    if len(teacher_layers) != n:
        raise PeftTransferError(f"teacher config says {n} layers but the model has {len(teacher_layers)}.")
    keep = default_keep_layers(n, num_keep) if keep_layers is None else check_keep_layers(keep_layers, n)
    # a student of a student records the original teacher and the original layer indices
    parent = student_lineage(teacher)
    if parent is not None:
        origin, origin_n = parent.teacher, parent.teacher_num_layers
        origin_layers = [parent.kept_layers[i] for i in keep]
    else:
        origin, origin_layers, origin_n = teacher_id(teacher), keep, n
    config = student_config(teacher.config, keep, origin)
    setattr(config, LINEAGE_KEY, StudentLineage(origin, origin_layers, origin_n).to_dict())

    student = type(teacher)(config)
    prefix = _LAYER_LISTS[model_type] + "."
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.(.*)$")
    source = teacher.state_dict()
    mapped = {}
    for key in student.state_dict():
        match = pattern.match(key)
        src = f"{prefix}{keep[int(match.group(1))]}.{match.group(2)}" if match else key
        if src not in source:
            raise PeftTransferError(f"cannot copy student weight {key!r}: the teacher has no {src!r}.")
        mapped[key] = source[src].detach().clone()
    student.load_state_dict(mapped, strict=True)
    student.to(dtype=teacher.dtype)
    if getattr(teacher, "generation_config", None) is not None and student.can_generate():
        student.generation_config = copy.deepcopy(teacher.generation_config)
    # an in-memory student must not pass for its teacher in provenance (`tuned_on`); saving and reloading
    # gives it the id of its folder or Hub repo instead
    student.name_or_path = f"{origin}:student-layers-{'-'.join(str(i) for i in origin_layers)}"
    return student.eval()


def student_lineage(model_or_config: PreTrainedModel | PretrainedConfig) -> StudentLineage | None:
    """The lineage stored by `make_student` in a model's config (after save/load too), or None."""
    config = getattr(model_or_config, "config", model_or_config)
    data = getattr(config, LINEAGE_KEY, None)
    if not data:
        return None
    return StudentLineage.from_dict(dict(data))


# --- surgery on single decoder layers (distill/compress.py): where each family keeps its MLP and projections ---

# model_type -> (attention output projection, MLP, MLP output projection, norms on the MLP branch in order)
_DECODER_PARTS = {
    "llama": ("self_attn.o_proj", "mlp", "mlp.down_proj", ("post_attention_layernorm",)),
    "mistral": ("self_attn.o_proj", "mlp", "mlp.down_proj", ("post_attention_layernorm",)),
    "qwen2": ("self_attn.o_proj", "mlp", "mlp.down_proj", ("post_attention_layernorm",)),
    "gemma3_text": ("self_attn.o_proj", "mlp", "mlp.down_proj",
                    ("pre_feedforward_layernorm", "post_feedforward_layernorm")),
    "gpt2": ("attn.c_proj", "mlp", "mlp.c_proj", ("ln_2",)),
}
DECODER_MODEL_TYPES = tuple(_DECODER_PARTS)
# the MLP's output is added to the residual stream as it is (no norm after it), so a linear map folds into it
FOLDABLE_MODEL_TYPES = ("llama", "mistral", "qwen2", "gpt2")


def decoder_model_type(model: PreTrainedModel) -> str:
    """The model type of a decoder LM whose layers the compression methods can edit (else a clear error)."""
    model_type = _model_type(model)
    if model_type not in _DECODER_PARTS:
        raise PeftTransferError(
            f"{type(model).__name__} (model_type={model_type!r}) is not a decoder LM: compression by block removal "
            "supports Llama, Mistral, Qwen2, Gemma 3 (text) and GPT-2.")
    return model_type


def mlp_module(model: PreTrainedModel, index: int) -> torch.nn.Module:
    """The MLP of layer `index`: its output is what the layer adds to the residual stream (Gemma 3: before the
    post-feed-forward norm)."""
    return layer_list(model)[index].get_submodule(_DECODER_PARTS[decoder_model_type(model)][1])


def mlp_branch(model: PreTrainedModel, layer: torch.nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """What `layer` adds to the residual stream through its MLP when its input is `hidden` (token vectors,
    any leading shape): norm(s) and MLP exactly as the layer's forward applies them."""
    _, mlp, _, norms = _DECODER_PARTS[decoder_model_type(model)]
    if len(norms) == 2:  # Gemma 3: post_norm(mlp(pre_norm(h)))
        return layer.get_submodule(norms[1])(layer.get_submodule(mlp)(layer.get_submodule(norms[0])(hidden)))
    return layer.get_submodule(mlp)(layer.get_submodule(norms[0])(hidden))


def mlp_branch_parameters(model: PreTrainedModel, layer: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of `layer`'s MLP branch: the MLP and the norm(s) around it."""
    _, mlp, _, norms = _DECODER_PARTS[decoder_model_type(model)]
    return [p for name in (mlp, *norms) for p in layer.get_submodule(name).parameters()]


def zero_attention_output(model: PreTrainedModel, layer: torch.nn.Module) -> None:
    """Set `layer`'s attention output projection (weight and bias) to zero: the layer then computes
    h + MLP branch(h), position by position, and stays a standard layer of its class."""
    proj = layer.get_submodule(_DECODER_PARTS[decoder_model_type(model)][0])
    with torch.no_grad():
        proj.weight.zero_()
        if getattr(proj, "bias", None) is not None:
            proj.bias.zero_()


def fold_output_map(model: PreTrainedModel, index: int, transform: torch.Tensor) -> None:
    """Make layer `index`'s MLP add `m @ transform` instead of `m` to the residual stream (m: its MLP output),
    by changing the MLP's output projection in place: nn.Linear (y = a Wᵀ + b): W ← Tᵀ W, b ← b T;
    GPT-2's Conv1D (y = a W + b): W ← W T, b ← b T. Refused where a norm follows the MLP (Gemma 3)."""
    model_type = decoder_model_type(model)
    if model_type not in FOLDABLE_MODEL_TYPES:
        raise PeftTransferError(
            f"a linear map cannot be folded into a {type(model).__name__} layer: its MLP output passes through "
            "post_feedforward_layernorm before it is added to the residual stream, so the map would not be exact. "
            "Use method 'drop' or 'trained' for this model.")
    proj = layer_list(model)[index].get_submodule(_DECODER_PARTS[model_type][2])
    d = model.config.hidden_size
    if tuple(transform.shape) != (d, d):
        raise PeftTransferError(f"the linear map must be {d} x {d} (the hidden size), got {tuple(transform.shape)}.")
    t = transform.detach().to(device=proj.weight.device, dtype=torch.float64)
    with torch.no_grad():
        weight = proj.weight.double()
        new = t.T @ weight if isinstance(proj, torch.nn.Linear) else weight @ t
        proj.weight.copy_(new.to(proj.weight.dtype))
        if getattr(proj, "bias", None) is not None:
            proj.bias.copy_((proj.bias.double() @ t).to(proj.bias.dtype))
