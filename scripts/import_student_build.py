"""Ship a student built on the device: copy its files into the package and check that it reassembles here.

    python scripts/import_student_build.py FILES_DIR [--name smollm2-135m-student]

FILES_DIR is where the device call's $OUT files landed (the tool's `files_at`). The files go to
`src/peft_transfer/assets/students/<name>/` (the shipped form: fp16 tensors that are not the teacher's, config,
build record, card, loss log, build log); then the student is reassembled from the embedded teacher here, which
also checks the teacher's weights hash, and its held-out-free sanity facts are printed. Commit the folder once.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

MAX_SHIPPED_MB = 40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files_dir")
    parser.add_argument("--name", default="smollm2-135m-student")
    args = parser.parse_args()

    from peft_transfer.assets.models import load_model
    from peft_transfer.assets.shipped_students import shipped_student
    from peft_transfer.student.layers import student_lineage
    from peft_transfer.student.shipped import BUILD_NAME

    spec = shipped_student(args.name)
    if spec is None:
        raise SystemExit(f"{args.name} is not registered in peft_transfer/assets/shipped_students.py")
    src = Path(args.files_dir)
    files = [p for p in src.iterdir() if p.is_file()]
    if not (src / "config.json").is_file() or not (src / BUILD_NAME).is_file():
        raise SystemExit(f"{src} does not hold a built student (config.json, {BUILD_NAME}): see build.log there")
    weights = sum(p.stat().st_size for p in files if p.suffix == ".safetensors") / 1e6
    if weights > MAX_SHIPPED_MB:
        raise SystemExit(f"the shipped weights are {weights:.1f} MB, over the {MAX_SHIPPED_MB} MB the repo takes")
    if spec.folder.exists():
        shutil.rmtree(spec.folder)
    spec.folder.mkdir(parents=True)
    for p in files:
        shutil.copy(p, spec.folder / p.name)
    student, _ = load_model(args.name)  # reassembles from the embedded teacher, checking its hash
    build = json.loads((spec.folder / BUILD_NAME).read_text())
    lineage = student_lineage(student)
    print(f"shipped {args.name}: {weights:.1f} MB of fp16 weights in {spec.folder}")
    print(f"  kept layers {lineage.kept_layers}, {lineage.distillation_steps} steps, {lineage.tokens_seen:,} tokens, "
          f"recipe {lineage.recipe}")
    print(f"  held-out perplexity: {build['distillation_summary'].get('perplexity')}")
    print(f"  built on {build['build'].get('hardware')} in {build['build'].get('distillation wall time')}")


if __name__ == "__main__":
    main()
