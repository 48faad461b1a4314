"""A small student without long training: take out the layer blocks that matter least, optionally replace them.

`compress_student` (library) and `run_compression` (`peft-transfer compress`): calibrate the teacher once on
public text (`calibration`), choose the block(s) by angular distance (`block_selection`), then

- "drop": the student is the teacher without the blocks (`make_student` of the kept layers);
- "linear-ls" / "linear-cos": a linear map per block, folded into the layer before it (`linear_map`);
- "trained": one layer per block, attention output zeroed, MLP trained on cached activations
  (`trained_replacement`); it sits where the block was, copied from a teacher layer of the block.

The result is a standard model of the teacher's class. Its lineage keeps `kept_layers` = the teacher layer
copied into each student position (for a trained replacement, the layer it started from), so the shipped-student
delta format applies unchanged, and adds the method, the removed blocks, the calibration text and the positions
of trained replacements. A short `peft-transfer distill --init-student` run heals any of them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from ..assets.data_files import load_texts
from ..assets.models import load_model, resolve_model
from ..errors import PeftTransferError
from ..rerun_guard import guard_rerun
from ..student.card import render_compressed_card
from ..student.layers import (
    FOLDABLE_MODEL_TYPES,
    LINEAGE_KEY,
    check_keep_layers,
    decoder_model_type,
    fold_output_map,
    make_student,
    num_layers,
    student_lineage,
)
from ..student.weights_hash import state_dict_sha256
from .block_selection import (
    BlockSelection,
    angular_distance_table,
    blocks_from_kept,
    check_blocks,
    check_keep_count,
    select_blocks,
    selection_for_blocks,
)
from .calibration import CalibrationCache, calibrate, check_calibration_matches
from .data import perplexity, prepare_blocks
from .linear_map import LinearMapSettings, fit_linear_map
from .recipes import COMPRESS_METHODS
from .run import check_block_size, check_teacher_fits, check_tokenizer_matches
from .trained_replacement import ReplacementSettings, init_layer_index, train_replacement

SUMMARY_NAME = "compress_summary.json"


@dataclass
class CompressionResult:
    """The student and the record of how it was made (`to_dict` is `compress_summary.json`)."""

    student: PreTrainedModel
    method: str
    selection: BlockSelection
    calibration: CalibrationCache
    fits: list[dict] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        lineage = student_lineage(self.student)
        cal = self.calibration.meta
        return {
            "method": self.method, "teacher": lineage.teacher, "teacher_num_layers": lineage.teacher_num_layers,
            "num_layers": self.student.config.num_hidden_layers, "kept_layers": lineage.kept_layers,
            "replacement_layers": lineage.replacement_layers,
            "calibration": {"corpus": cal["corpus"], "fingerprint": cal["fingerprint"], "tokens": cal["tokens"],
                            "stored_tokens": cal["stored_tokens"], "block_size": cal["block_size"],
                            "cache": self.calibration.folder.name},
            **{k: v for k, v in self.selection.to_dict().items() if k != "kept_layers"}, "fits": self.fits,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _check_method(teacher: PreTrainedModel, method: str) -> str:
    model_type = decoder_model_type(teacher)
    if method not in COMPRESS_METHODS:
        raise PeftTransferError(f"unknown compression method {method!r}; choose one of {', '.join(COMPRESS_METHODS)}.")
    if method.startswith("linear") and model_type not in FOLDABLE_MODEL_TYPES:
        raise PeftTransferError(
            f"method {method!r} folds a linear map into the MLP output of the layer before each block, which is exact "
            f"only when nothing follows the MLP; {type(teacher).__name__} applies post_feedforward_layernorm after it. "
            "Use --method drop or --method trained for this model.")
    if student_lineage(teacher) is not None:
        raise PeftTransferError("the model to compress is itself a student (its config records a lineage): compress "
                                "its teacher instead, so layer indices and provenance refer to one model.")
    return model_type


def _check_keep(n: int, keep: int | Sequence[int], num_blocks: int) -> list[list[int]] | None:
    """Validate `keep` before any work; the blocks of an explicit kept-layer list (None for a count)."""
    if isinstance(keep, int):
        check_keep_count(n, keep, num_blocks)
        return None
    blocks = blocks_from_kept(n, check_keep_layers(keep, n))
    check_blocks(n, blocks)
    return blocks


def _selection(cache: CalibrationCache, n: int, keep: int | Sequence[int], num_blocks: int) -> BlockSelection:
    table = angular_distance_table(cache.chunks())
    blocks = _check_keep(n, keep, num_blocks)
    return select_blocks(table, keep, num_blocks) if blocks is None else selection_for_blocks(table, blocks)


def compress_student(teacher: PreTrainedModel, keep: int | Sequence[int], method: str = "linear-cos",
                     tokenizer: PreTrainedTokenizerBase | None = None, texts: Sequence[str] | None = None,
                     corpus_name: str = "calibration", calibration: CalibrationCache | None = None,
                     calibration_tokens: int = 40_000, block_size: int = 128, max_stored_tokens: int | None = None,
                     cache_dir: str | Path | None = None, num_blocks: int = 1,
                     linear: LinearMapSettings | None = None, replacement: ReplacementSettings | None = None,
                     teacher_sha256: str | None = None, seed: int = 0, progress: bool = True) -> CompressionResult:
    """A student of `teacher` keeping `keep` of its layers (a count: blocks chosen by angular distance; or the
    kept layer indices: the gaps are the blocks), made by `method` (see the module docstring).

    Calibration: `calibration` (a cache already built) or `texts` + `tokenizer` (the teacher is run once over
    `calibration_tokens` tokens of them and the activations are cached under `cache_dir`, reused next time).
    """
    began = time.perf_counter()
    _check_method(teacher, method)
    n = num_layers(teacher.config)
    _check_keep(n, keep, num_blocks)
    teacher_sha256 = teacher_sha256 or state_dict_sha256(teacher.state_dict())
    seconds: dict[str, float] = {}
    if calibration is None:
        if texts is None or tokenizer is None:
            raise PeftTransferError("compress_student needs a calibration cache or texts and the tokenizer.")
        calibration = calibrate(teacher, tokenizer, texts, corpus_name, tokens=calibration_tokens,
                                block_size=block_size, cache_dir=cache_dir, max_stored_tokens=max_stored_tokens,
                                seed=seed, teacher_sha256=teacher_sha256, progress=progress)
    elif calibration.meta.get("teacher_sha256") != teacher_sha256:
        raise PeftTransferError(f"the calibration cache {calibration.folder} was made from other teacher weights.")
    check_calibration_matches(calibration, teacher)
    if method.startswith("linear") and not calibration.has_mlp:
        raise PeftTransferError(f"the calibration cache {calibration.folder} holds no MLP outputs, which the linear "
                                "map needs: calibrate with store_mlp=True.")
    seconds["calibration"] = time.perf_counter() - began
    mark = time.perf_counter()
    selection = _selection(calibration, n, keep, num_blocks)
    seconds["selection"] = time.perf_counter() - mark
    mark = time.perf_counter()
    fits: list[dict] = []
    replacement_positions = None
    if method == "trained":
        replacement = replacement or ReplacementSettings(seed=seed)
        starts = {init_layer_index(block, replacement.init): block for block in selection.removed_blocks}
        layers = sorted([*selection.kept_layers, *starts])
        student = make_student(teacher, layers)
        replacement_positions = [layers.index(i) for i in sorted(starts)]
        for position, init in zip(replacement_positions, sorted(starts), strict=True):
            block = starts[init]
            fit = train_replacement(student, position, calibration.hidden(block[0]), calibration.hidden(block[1]),
                                    block, init, replacement, progress=progress)
            fits.append(fit.to_dict())
    else:
        student = make_student(teacher, selection.kept_layers)
        if method.startswith("linear"):
            linear = linear or LinearMapSettings(seed=seed)
            for block in selection.removed_blocks:
                fit = fit_linear_map(calibration, block, method.split("-")[1], linear, progress=progress)
                fold_output_map(student, selection.kept_layers.index(block[0] - 1), fit.transform)
                fits.append(fit.to_dict())
    seconds["method"] = time.perf_counter() - mark
    seconds["total"] = time.perf_counter() - began
    lineage = student_lineage(student)
    lineage.teacher_sha256 = teacher_sha256
    lineage.method = method
    lineage.removed_blocks = [list(b) for b in selection.removed_blocks]
    lineage.calibration = calibration.record()
    lineage.replacement_layers = replacement_positions
    setattr(student.config, LINEAGE_KEY, lineage.to_dict())
    student.name_or_path = f"{lineage.teacher}:compressed-{method}-{len(lineage.kept_layers)}-layers"
    return CompressionResult(student=student.eval(), method=method, selection=selection, calibration=calibration,
                             fits=fits, seconds=seconds)


@dataclass
class CompressJob:
    """Inputs of one `peft-transfer compress` run (CLI flags map one to one)."""

    teacher: str
    out: str
    keep: int | list[int]  # a count (blocks chosen by angular distance) or the kept teacher layer indices
    method: str = "linear-cos"
    calibration: str = "lee_news+movie_plots+guardian_headlines"
    calibration_tokens: int = 40_000
    block_size: int = 128
    max_stored_tokens: int | None = None
    num_blocks: int = 1
    cache_dir: str | None = None  # default: <peft-transfer cache>/calibration
    linear: LinearMapSettings = field(default_factory=LinearMapSettings)
    replacement: ReplacementSettings = field(default_factory=ReplacementSettings)
    eval_text: str | None = "wikipedia"  # text for perplexity (teacher, student, blocks dropped); None: not measured
    eval_blocks: int = 32
    seed: int = 0
    progress: bool = True
    resume: bool = True  # False: rebuild even when `out` holds this student already (other settings need it)


def compress_settings(job: CompressJob) -> dict:
    """What determines the student (`rerun_guard`): every field but where and how loudly."""
    settings = {f.name: getattr(job, f.name) for f in fields(job) if f.name not in ("out", "progress", "resume",
                                                                                       "cache_dir")}
    settings["linear"], settings["replacement"] = asdict(job.linear), asdict(job.replacement)
    return settings


def _perplexities(job: CompressJob, result: CompressionResult, teacher, tokenizer) -> dict[str, float]:
    blocks = prepare_blocks(load_texts(job.eval_text)["text"], tokenizer, job.block_size, max_blocks=job.eval_blocks)
    values = {"teacher": perplexity(teacher, tokenizer, blocks),
              "student": perplexity(result.student, tokenizer, blocks)}
    if result.method != "drop":
        values["blocks dropped (no replacement)"] = perplexity(make_student(teacher, result.selection.kept_layers),
                                                              tokenizer, blocks)
    return values


def _details(result: CompressionResult) -> dict[str, str]:
    sel, cal = result.selection, result.calibration
    details = {"Calibration text": cal.record(),
               "Block choice": "smallest mean angular distance arccos(cos(h_start, h_end))/π between the residual "
                               "streams at the block's ends (Gromov et al. 2024)",
               "Removed blocks (distance)": ", ".join(f"{s}–{e - 1} ({d:.4f})" for (s, e), d in
                                                      zip(sel.removed_blocks, sel.block_distances, strict=True))}
    for fit in result.fits:
        held = fit["metrics"].get("held_out", {})
        if "fit_cos" in held:
            details[f"Block {fit['block'][0]}–{fit['block'][1] - 1} held-out 1 − cos"] = (
                f"{held['fit_cos']:.4f} (removal alone: {held['removed_cos']:.4f})")
        elif "final" in held:
            details[f"Block {fit['block'][0]}–{fit['block'][1] - 1} held-out loss"] = (
                f"{held['final']:.4f} (removal alone: {held['removed']:.4f}; {fit['steps']} steps from teacher "
                f"layer {fit['init_layer']})")
    details["Build time"] = f"{result.seconds['total']:.0f} s (calibration {result.seconds['calibration']:.0f} s)"
    return details


def _hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU, {torch.get_num_threads()} threads of {os.cpu_count()} cores"


def run_compression(job: CompressJob) -> dict:
    """Build the student and write it to `job.out` (safetensors, tokenizer, config with lineage, README.md card,
    compress_summary.json); returns the summary. A rerun with the same settings returns the finished summary."""
    out = Path(job.out)
    texts = load_texts(job.calibration, seed=job.seed)["text"]  # a calibration file with empty cells: refused first
    try:
        teacher_config = AutoConfig.from_pretrained(resolve_model(job.teacher)[0])
    except (OSError, ValueError):
        teacher_config = None  # an unknown teacher: load_model says so below
    if teacher_config is not None:  # before the rerun record is written
        check_block_size(job.block_size, teacher_config, job.teacher)
    resumable = guard_rerun(out, compress_settings(job), job.resume, [out / SUMMARY_NAME], what="compression")
    if resumable:
        return json.loads((out / SUMMARY_NAME).read_text())
    began = time.perf_counter()
    path, _ = resolve_model(job.teacher)
    teacher_params = check_teacher_fits(path)
    teacher, tokenizer = load_model(job.teacher)
    _check_method(teacher, job.method)  # before the calibration pass
    _check_keep(num_layers(teacher.config), job.keep, job.num_blocks)
    check_tokenizer_matches(teacher, tokenizer)
    corpus_name = Path(job.calibration).name if Path(job.calibration).exists() else job.calibration
    result = compress_student(
        teacher, job.keep, job.method, tokenizer=tokenizer, texts=texts, corpus_name=corpus_name,
        calibration_tokens=job.calibration_tokens, block_size=job.block_size,
        max_stored_tokens=job.max_stored_tokens, cache_dir=job.cache_dir, num_blocks=job.num_blocks,
        linear=job.linear, replacement=job.replacement, seed=job.seed, progress=job.progress)
    summary = result.to_dict()
    summary["build_seconds"] = round(time.perf_counter() - began, 2)
    summary["settings"] = json.loads(json.dumps(compress_settings(job), default=str))
    if job.eval_text:
        summary["perplexity"] = _perplexities(job, result, teacher, tokenizer)
        summary["perplexity_text"] = f"{job.eval_text}, first {job.eval_blocks} blocks of {job.block_size} tokens"
    result.student.save_pretrained(out)
    tokenizer.save_pretrained(out)
    datasets = [p for p in job.calibration.split("+") if "/" not in p and "." not in p]
    card = render_compressed_card(
        result.student, _details(result), summary.get("perplexity"),
        f"Next-token perplexity on {summary.get('perplexity_text', '')}.", teacher_params or teacher.num_parameters(),
        build={"Seconds": f"{summary['build_seconds']:.0f}", "Hardware": _hardware()}, datasets=datasets)
    card.save(str(out / "README.md"))
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
