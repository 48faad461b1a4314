"""Model card (README.md) of a soft prompt, rendered from `model_cards/prompt.md`.

The card sees only the prompt's config (provenance records) and numbers passed in: never training text,
never a token. It replaces the generic README.md that PEFT's own `save_pretrained` writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import peft
from huggingface_hub import ModelCard, ModelCardData
from peft import PeftModel, PromptTuningConfig

from .. import __version__
from ..errors import PeftTransferError
from .config import TransferablePromptConfig

TEMPLATE = "prompt.md"
Results = Mapping[str, Any] | Sequence[Any] | None


def template_path() -> Path:
    return Path(str(resources.files("peft_transfer") / "model_cards" / TEMPLATE))


def is_hub_id(name: str | None) -> bool:
    """True for an `org/name` Hub id (not an existing local path)."""
    return bool(name) and name.count("/") == 1 and not name.startswith((".", "/")) and not Path(name).exists()


def prompt_config_of(prompt: PeftModel | PromptTuningConfig) -> TransferablePromptConfig:
    """The `TransferablePromptConfig` of a PeftModel's active adapter (stock configs get empty provenance)."""
    config = prompt.peft_config[prompt.active_adapter] if isinstance(prompt, PeftModel) else prompt
    if isinstance(config, TransferablePromptConfig):
        return config
    if isinstance(config, PromptTuningConfig):
        return TransferablePromptConfig.from_prompt_config(config)
    raise PeftTransferError(f"Expected a prompt-tuning adapter, got a {type(config).__name__}.")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.4g}"
    return "–" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def results_markdown(results: Results) -> str:
    """A markdown table from `{row: {metric: value}}`, `{metric: value}`, or a list of dicts / dataclasses."""
    if not results:
        return ""
    if isinstance(results, Mapping):
        if all(isinstance(v, Mapping) for v in results.values()):
            rows = [{"": name, **dict(values)} for name, values in results.items()]
        else:
            rows = [{"metric": k, "value": v} for k, v in results.items()]
    else:
        rows = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r) for r in results]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def render_prompt_card(prompt: PeftModel | PromptTuningConfig, results: Results = None, license: str | None = None,
                       model_name: str | None = None) -> ModelCard:
    """The prompt's model card: Hub metadata (base_model = the target, library peft, tags, public data set,
    licence) and the provenance (student lineage, task, DP guarantee, transfer record, measured results)."""
    config = prompt_config_of(prompt)
    target = config.base_model_name_or_path or "unknown"
    masked = str(config.task_type) in ("FEATURE_EXTRACTION", "TaskType.FEATURE_EXTRACTION")
    tags = ["peft-transfer", "prompt-tuning", "post", "peft"]
    if config.dp.private:
        tags.append("differential-privacy")
    if config.transfer is not None:
        tags.append("knowledge-distillation")
    # Only the PUBLIC transfer set is named as a data set; the private tuning data never is.
    datasets = [config.transfer.public_dataset] if config.transfer and config.transfer.public_dataset else None
    data = ModelCardData(
        base_model=target if is_hub_id(target) else None, library_name="peft", tags=tags, datasets=datasets,
        license=license, pipeline_tag="fill-mask" if masked else "text-generation",
    )
    task = config.task
    task_classes = []
    if task is not None:
        task_classes = [(name, ", ".join(f"`{w}`" for w in words)) for name, words in
                        zip(task.class_names, task.label_words)]
    return ModelCard.from_template(
        data, template_path=str(template_path()),
        model_name=model_name or f"Soft prompt for {target.split('/')[-1]}"
                                 + (f" ({task.name})" if task is not None else ""),
        target=target, target_link=f"https://huggingface.co/{target}" if is_hub_id(target) else "",
        num_virtual_tokens=config.num_virtual_tokens, token_dim=config.token_dim,
        auto_class="AutoModelForMaskedLM" if masked else "AutoModelForCausalLM",
        task=task, task_classes=task_classes,
        task_template=_cell(json.dumps(task.template, ensure_ascii=False)) if task is not None else "",
        tuned_on=config.tuned_on or target, student=config.student,
        dp=config.dp, dp_epsilon=_cell(float(config.dp.epsilon)), transfer=config.transfer,
        results_table=results_markdown(results), license=license,
        peft_transfer_version=__version__, peft_version=peft.__version__,
    )


def save_prompt_card(prompt: PeftModel | PromptTuningConfig, save_directory: str | Path, results: Results = None,
                     license: str | None = None) -> Path:
    """Render the card and write it as `save_directory/README.md` (replacing PEFT's generic one)."""
    path = Path(save_directory) / "README.md"
    render_prompt_card(prompt, results=results, license=license).save(str(path))
    return path


def is_peft_generic_card(readme: Path) -> bool:
    """PEFT's `save_pretrained` writes a placeholder card; ours (or a hand-written one) is kept."""
    text = readme.read_text(errors="replace")
    return "[More Information Needed]" in text and "peft-transfer" not in text
