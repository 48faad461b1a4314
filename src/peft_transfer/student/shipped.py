"""A distilled student shipped as only what is not its teacher's, and reassembled from it and the teacher.

A student made by `make_student` copies its teacher's embeddings, LM head and the kept layers, and distillation
with a frozen embedding / head (recipe `kd-frozen-head`) changes only the kept layers and the final norm. So the
student can travel as those tensors alone (fp16 safetensors, sharded below the size a transfer allows) plus
its config, and be rebuilt anywhere the teacher is: `make_student(teacher, kept_layers)`, then the shipped
tensors on top. The teacher's weights hash (`weights_hash.state_dict_sha256`, recorded in the lineage at
distillation time) must match, so a student is never glued onto another teacher's embeddings.

Folder layout (`export_shipped_student`):

    config.json                               the student's config, lineage under `peft_transfer_lineage`
    student_delta-0000k-of-0000n.safetensors  the tensors that differ from the teacher (fp16), sharded
    student_delta.safetensors.index.json      (when sharded) tensor -> shard, huggingface_hub's format
    student_build.json                        build record: hardware, minutes, command, distillation summary,
                                              the delta's hash and the hash of every teacher tensor reused
    README.md                                 the model card of the reassembled student
    distillation_log.jsonl                    the loss log
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from huggingface_hub import load_torch_model, save_torch_state_dict
from transformers import AutoConfig, PreTrainedModel

from ..errors import PeftTransferError
from ..prompted_forward import auto_model_class
from .card import DistillationSummary, save_student_card
from .layers import _LAYER_LISTS, LINEAGE_KEY, make_student, student_lineage
from .weights_hash import state_dict_sha256, tensor_sha256

DELTA_PATTERN = "student_delta{suffix}.safetensors"
BUILD_NAME = "student_build.json"
LOG_NAME = "distillation_log.jsonl"
FP16_MAX = 65504.0


def _teacher_key(student: PreTrainedModel, key: str, kept: list[int]) -> str:
    """The teacher tensor a student tensor was copied from by `make_student`."""
    prefix = _LAYER_LISTS[student.config.model_type] + "."
    match = re.match(rf"^{re.escape(prefix)}(\d+)\.(.*)$", key)
    return f"{prefix}{kept[int(match.group(1))]}.{match.group(2)}" if match else key


def student_delta(student: PreTrainedModel, teacher: PreTrainedModel) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(student tensors that differ from the teacher tensors they were built from, names of those that do not)."""
    lineage = student_lineage(student)
    if lineage is None:
        raise PeftTransferError("the student has no lineage (it was not made by make_student / peft-transfer "
                                "distill), so which teacher tensors it reuses is unknown.")
    teacher_state = teacher.state_dict()
    delta, reused = {}, []
    for key, value in student.state_dict().items():
        source = teacher_state.get(_teacher_key(student, key, lineage.kept_layers))
        if source is not None and source.shape == value.shape and torch.equal(source.float(), value.float()):
            reused.append(key)
        else:
            delta[key] = value
    return delta, reused


def export_shipped_student(student_dir: str | Path, teacher: PreTrainedModel, out_dir: str | Path,
                           build: dict[str, str] | None = None, max_shard_size: str = "15MB") -> list[Path]:
    """Write the shipped form of the distilled student in `student_dir` (a `peft-transfer distill` folder)."""
    student_dir, out = Path(student_dir), Path(out_dir)
    student = auto_model_class(AutoConfig.from_pretrained(student_dir)).from_pretrained(student_dir,
                                                                                         dtype=torch.float32)
    lineage = student_lineage(student)
    if lineage is None or lineage.teacher_sha256 is None:
        raise PeftTransferError(f"{student_dir} records no teacher weights hash: distil it with this version of "
                                "peft-transfer so the shipped form can be checked against its teacher.")
    _check_teacher(teacher, lineage.teacher_sha256, student_dir)
    delta, reused = student_delta(student, teacher)
    half = {}
    for key, value in delta.items():
        if value.is_floating_point() and float(value.abs().max()) > FP16_MAX:
            raise PeftTransferError(f"{key} exceeds the float16 range ({float(value.abs().max()):.3g}); it cannot "
                                    "be shipped in fp16.")
        half[key] = value.detach().to(torch.float16 if value.is_floating_point() else value.dtype).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("student_delta*"):
        old.unlink()
    save_torch_state_dict(half, out, filename_pattern=DELTA_PATTERN, max_shard_size=max_shard_size)
    student.config.to_json_file(out / "config.json")
    summary_file = student_dir / "distillation_summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    teacher_state = teacher.state_dict()
    record = {
        "build": build or {}, "distillation_summary": summary, "lineage": lineage.to_dict(),
        "delta_sha256": state_dict_sha256(half), "delta_tensors": sorted(half),
        "teacher_tensors_reused_sha256": {k: tensor_sha256(teacher_state[_teacher_key(student, k, lineage.kept_layers)])
                                          for k in reused},
    }
    (out / BUILD_NAME).write_text(json.dumps(record, indent=2) + "\n")
    if summary:
        save_student_card(student, out, DistillationSummary(**summary), teacher.num_parameters(), build=build)
    if (student_dir / LOG_NAME).is_file():
        shutil.copy(student_dir / LOG_NAME, out / LOG_NAME)
    return sorted(p for p in out.iterdir() if p.is_file())


def _check_teacher(teacher: PreTrainedModel, expected: str, where) -> None:
    got = state_dict_sha256(teacher.state_dict())
    if got != expected:
        raise PeftTransferError(
            f"the teacher's weights hash {got[:19]}… differs from the one {where} was distilled from "
            f"({expected[:19]}…): this student belongs to another teacher (or another conversion of it).")


def reassemble_student(shipped_dir: str | Path, teacher: PreTrainedModel) -> PreTrainedModel:
    """The standard transformers student rebuilt from its shipped form and its teacher (refuses another teacher)."""
    folder = Path(shipped_dir)
    if not (folder / "config.json").is_file() or not any(folder.glob("student_delta*.safetensors")):
        raise PeftTransferError(f"{folder} is not a shipped student: it needs config.json and "
                                "student_delta*.safetensors.")
    config = AutoConfig.from_pretrained(folder)
    lineage = student_lineage(config)
    if lineage is None or lineage.teacher_sha256 is None:
        raise PeftTransferError(f"{folder}/config.json records no lineage with a teacher weights hash.")
    _check_teacher(teacher, lineage.teacher_sha256, folder)
    student = make_student(teacher, lineage.kept_layers)
    result = load_torch_model(student, folder, strict=False, filename_pattern=DELTA_PATTERN)
    if result.unexpected_keys:
        raise PeftTransferError(f"{folder} ships tensors the student does not have: "
                                f"{sorted(result.unexpected_keys)[:5]}")
    setattr(student.config, LINEAGE_KEY, lineage.to_dict())
    return student.eval()
