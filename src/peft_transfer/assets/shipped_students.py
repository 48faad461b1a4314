"""The registry of students that ship with the package (distilled once on a GPU), reassembled on first use.

A shipped student lives in `peft_transfer/assets/students/<name>/` in its shipped form (`student.shipped`: the
tensors that are not its teacher's, fp16). `models.shipped_student_path` rebuilds the standard transformers
folder from it and the embedded teacher once per machine (cached under the peft-transfer cache, keyed by the shipped
weights' hash) so that `load_model("<name>")`, `AutoModelForCausalLM.from_pretrained(<that folder>)` and
`peft-transfer push <name> org/repo` all see a plain model folder with tokenizer and card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .embedded import embedded_spec

STUDENTS_DIR = Path(__file__).parent / "students"
REBUILD_HINT = "README section 'The shipped student' (scripts/build_student_gpu.sh on a GPU)"


@dataclass(frozen=True)
class ShippedStudent:
    name: str
    teacher: str  # embedded model name

    @property
    def folder(self) -> Path:
        return STUDENTS_DIR / self.name

    def available(self) -> bool:
        return (self.folder / "config.json").is_file() and any(self.folder.glob("student_delta*.safetensors"))


SHIPPED_STUDENTS = {"smollm2-135m-student": ShippedStudent("smollm2-135m-student", teacher="smollm2-135m")}


def shipped_student(name: str) -> ShippedStudent | None:
    return SHIPPED_STUDENTS.get(name.lower())


def shipped_student_for(target: str) -> ShippedStudent | None:
    """The available shipped student of `target` (an embedded name or its Hub id), if any."""
    spec = embedded_spec(target)
    for student in SHIPPED_STUDENTS.values():
        if spec is not None and student.teacher == spec.name and student.available():
            return student
    return None
