"""Students that ship with the package (distilled once on a GPU), reassembled on first use.

A shipped student lives in `peft_transfer/assets/students/<name>/` in its shipped form (`shipped_student.py`:
the tensors that are not its teacher's, fp16). `shipped_student_path` rebuilds the standard transformers folder
from it and the embedded teacher once per machine (cached under the peft-transfer cache, keyed by the shipped
weights' hash) so that `load_model("<name>")`, `AutoModelForCausalLM.from_pretrained(<that folder>)` and
`peft-transfer push <name> org/repo` all see a plain model folder with tokenizer and card.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..atomic_folder import atomic_folder
from ..errors import PeftTransferError

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
    from .models import _embedded

    spec = _embedded(target)
    for student in SHIPPED_STUDENTS.values():
        if spec is not None and student.teacher == spec.name and student.available():
            return student
    return None


def shipped_student_path(name: str, verbose: bool = True) -> Path:
    """Folder of the reassembled shipped student `name` (rebuilt from its teacher once per machine)."""
    from ..shipped_student import BUILD_NAME, reassemble_student
    from .models import cache_root, load_model

    spec = shipped_student(name)
    if spec is None:
        raise PeftTransferError(f"{name!r} is not a shipped student; shipped: {sorted(SHIPPED_STUDENTS)}")
    if not spec.available():
        raise PeftTransferError(f"the shipped student {name!r} has not been built yet ({spec.folder} holds no "
                                f"weights); it is distilled once on a GPU: see the {REBUILD_HINT}.")
    build = json.loads((spec.folder / BUILD_NAME).read_text())
    target = cache_root() / "models" / f"{spec.name}-{build['delta_sha256'].split(':')[-1][:12]}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    if verbose:
        print(f"[peft-transfer] reassembling the shipped student {name} from {spec.teacher} (once per machine)")
    teacher, tokenizer = load_model(spec.teacher)
    student = reassemble_student(spec.folder, teacher)
    student.name_or_path = spec.name
    with atomic_folder(target) as tmp:
        student.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for extra in ("README.md", BUILD_NAME):
            if (spec.folder / extra).is_file():
                shutil.copy(spec.folder / extra, tmp / extra)
    return target
