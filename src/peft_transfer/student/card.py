"""Model card (README.md) of a distilled student, rendered from `model_cards/student.md`."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import transformers
from huggingface_hub import ModelCard, ModelCardData
from transformers import PreTrainedModel

from .. import __version__
from ..prompted_forward import is_masked_lm
from .layers import student_lineage

TEMPLATE = "student.md"


@dataclass
class DistillationSummary:
    """What the card reports about a distillation run."""

    corpus: str
    steps: int
    num_blocks: int
    block_size: int
    batch_size: int = 8
    learning_rate: float = 0.0
    alphas: dict[str, float] = field(default_factory=dict)
    temperature: float = 2.0
    teacher_logits: str = "full vocabulary, teacher run online"
    final_losses: dict[str, float] = field(default_factory=dict)
    perplexity: dict[str, float] = field(default_factory=dict)  # model name -> held-out perplexity
    eval_blocks: int = 0
    datasets: list[str] = field(default_factory=list)
    license: str | None = None
    hidden_loss: str = "cosine"
    train_below_cut: bool = False


def template_path() -> Path:
    return Path(str(resources.files("peft_transfer") / "model_cards" / TEMPLATE))


def _params(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e5 else f"{n:,}"


def render_student_card(student: PreTrainedModel, summary: DistillationSummary,
                        teacher_num_params: int | None = None, model_name: str | None = None,
                        build: dict[str, str] | None = None) -> ModelCard:
    """The student's model card: Hub metadata (base_model = teacher, tags, datasets, license) and the body.

    `build` adds a table of how and where it was made (hardware, minutes, the command that rebuilds it).
    """
    lineage = student_lineage(student)
    teacher = lineage.teacher if lineage else "unknown"
    teacher_is_hub_id = teacher.count("/") == 1 and not Path(teacher).exists()
    data = ModelCardData(
        base_model=teacher if teacher_is_hub_id else None, library_name="transformers",
        tags=["peft-transfer", "distillation", "post"], datasets=summary.datasets or None,
        license=summary.license, pipeline_tag="fill-mask" if is_masked_lm(student) else "text-generation",
    )
    kind = "relative MSE" if summary.hidden_loss == "mse" else "cosine"
    terms = [f"{summary.alphas[k]:g}·{label}" for k, label in
             (("kl", f"T²·KL(teacher‖student, T={summary.temperature:g})"), ("lm", "LM loss"),
              ("cos", f"{kind}(last hidden)"), ("hidden", f"{kind}(cut-point hidden)"))
             if summary.alphas.get(k, 0) > 0]
    formula = " + ".join(terms) or "none"
    if summary.train_below_cut:
        formula += " (only the layers below the cut trained; upper layers, norm and head are the teacher's)"
    return ModelCard.from_template(
        data, template_path=str(template_path()),
        model_name=model_name or f"{teacher.split('/')[-1]} student ({len(lineage.kept_layers) if lineage else '?'}"
                                 " layers)",
        teacher=teacher, teacher_link=f"https://huggingface.co/{teacher}" if teacher_is_hub_id else "",
        kept_layers=lineage.kept_layers if lineage else [], teacher_num_layers=lineage.teacher_num_layers
        if lineage else "?", teacher_params=_params(teacher_num_params) if teacher_num_params else "?",
        student_layers=student.config.num_hidden_layers, student_params=_params(student.num_parameters()),
        architecture=type(student).__name__, auto_class="AutoModelForMaskedLM" if is_masked_lm(student)
        else "AutoModelForCausalLM",
        corpus=summary.corpus, num_blocks=summary.num_blocks, block_size=summary.block_size, steps=summary.steps,
        batch_size=summary.batch_size, learning_rate=f"{summary.learning_rate:g}",
        loss_formula=formula, teacher_logits=summary.teacher_logits,
        final_losses=summary.final_losses, perplexity=summary.perplexity, eval_blocks=summary.eval_blocks,
        perplexity_kind="pseudo-perplexity on 15 % masked tokens" if is_masked_lm(student)
        else "next-token perplexity",
        teacher_sha256=lineage.teacher_sha256 if lineage else None,
        tokens_seen=lineage.tokens_seen if lineage else None, recipe=lineage.recipe if lineage else None,
        build=build or {},
        license=summary.license or "that of the teacher", peft_transfer_version=__version__,
        transformers_version=transformers.__version__,
    )


def save_student_card(student: PreTrainedModel, out_dir: str | Path, summary: DistillationSummary,
                      teacher_num_params: int | None = None, build: dict[str, str] | None = None) -> Path:
    """Render the card and write it as `out_dir/README.md`."""
    path = Path(out_dir) / "README.md"
    render_student_card(student, summary, teacher_num_params, build=build).save(str(path))
    return path


COMPRESSED_TEMPLATE = "compressed_student.md"
METHOD_DESCRIPTIONS = {
    "drop": "the blocks are simply dropped",
    "linear-ls": "each block is replaced by a least-squares linear map folded into the layer before it (ReplaceMe)",
    "linear-cos": "each block is replaced by a linear map fitted to ReplaceMe's cosine objective, folded into the "
                  "layer before it",
    "trained": "each block is replaced by one layer of the teacher's class, its attention output zeroed and its "
               "MLP trained on cached activations (LLM-Streamline)",
}


def render_compressed_card(student: PreTrainedModel, details: dict[str, str],
                           perplexity: dict[str, float] | None = None, perplexity_note: str = "",
                           teacher_num_params: int | None = None, build: dict[str, str] | None = None,
                           datasets: list[str] | None = None, license: str | None = None) -> ModelCard:
    """The card of a student made by removing layer blocks (`distill.compress`): lineage, `details` (a table of how
    it was built), held-out perplexity and the build table."""
    lineage = student_lineage(student)
    if lineage is None or lineage.method is None:
        raise ValueError("render_compressed_card needs a student whose lineage records its compression method.")
    teacher = lineage.teacher
    teacher_is_hub_id = teacher.count("/") == 1 and not Path(teacher).exists()
    data = ModelCardData(
        base_model=teacher if teacher_is_hub_id else None, library_name="transformers",
        tags=["peft-transfer", "layer-pruning", "post"], datasets=datasets or None, license=license,
        pipeline_tag="text-generation")
    blocks = ", ".join(f"{s}–{e - 1}" for s, e in lineage.removed_blocks or [])
    return ModelCard.from_template(
        data, template_path=str(template_path().with_name(COMPRESSED_TEMPLATE)),
        model_name=f"{teacher.split('/')[-1]} student ({student.config.num_hidden_layers} layers, {lineage.method})",
        teacher=teacher, teacher_link=f"https://huggingface.co/{teacher}" if teacher_is_hub_id else "",
        method=lineage.method, method_description=METHOD_DESCRIPTIONS.get(lineage.method, lineage.method),
        removed_blocks=blocks, kept_layers=lineage.kept_layers, teacher_num_layers=lineage.teacher_num_layers,
        teacher_params=_params(teacher_num_params) if teacher_num_params else "?",
        student_layers=student.config.num_hidden_layers, student_params=_params(student.num_parameters()),
        architecture=type(student).__name__, auto_class="AutoModelForCausalLM", teacher_sha256=lineage.teacher_sha256,
        details=details, perplexity=perplexity or {}, perplexity_note=perplexity_note, build=build or {},
        license=license or "that of the teacher", peft_transfer_version=__version__,
        transformers_version=transformers.__version__,
    )
