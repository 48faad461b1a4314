"""Write the shipped form of a distilled student (only what is not its teacher's, fp16) into a folder.

    python scripts/export_student.py STUDENT_DIR --teacher smollm2-135m --out FOLDER [--build JSON]

`--build` is a JSON object of how it was built (hardware, minutes, command), shown in the card. See
`peft_transfer.student.shipped` for the format.
"""

from __future__ import annotations

import argparse
import json

from peft_transfer.assets.models import load_model
from peft_transfer.student.shipped import export_shipped_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("student_dir")
    parser.add_argument("--teacher", required=True, help="the teacher it was distilled from")
    parser.add_argument("--out", required=True)
    parser.add_argument("--build", default="{}", help="JSON object: build facts for the card")
    args = parser.parse_args()
    teacher, _ = load_model(args.teacher)
    for path in export_shipped_student(args.student_dir, teacher, args.out, build=json.loads(args.build)):
        print(f"{path} ({path.stat().st_size / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
