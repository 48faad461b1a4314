#!/usr/bin/env bash
# The shipped student's GPU build: the same command in every device call (see scripts/build_student_gpu.py).
#   python scripts/pack_student_build.py        # here, once: writes .gpu_carry/call1, call2, ...
#   device run: bash scripts/build_student_gpu.sh   carry=[".gpu_carry/call1"], then call2 at once
#   python scripts/import_student_build.py <files_at>   # here: ship it, check it reassembles
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" scripts/build_student_gpu.py "$@"
