#!/usr/bin/env bash
# Rehearse the shipped student's GPU build on this CPU with the same packaging and the same device steps.
#
#   bash scripts/rehearse_student_build.sh tiny   # a tiny Llama teacher, 3 teacher parts = 3 calls (~1 min)
#   bash scripts/rehearse_student_build.sh real   # the real pack (teacher wheel, corpus, wheels), 0.5 min of KD
#
# Each "call" runs in a copy of the working tree that holds only that call's .gpu_carry/callN folder, as the
# device tool sends it, with OUT and a stage folder of its own. PYTHON picks the interpreter that plays the
# device's (default .venv/bin/python; a venv with only torch/transformers/peft/accelerate is the faithful one).
# Ends by reassembling the built student from its shipped files and its teacher.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-tiny}
PY=${PYTHON:-.venv/bin/python}
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"  # absolute, without resolving a venv's symlink
WORK=${REHEARSAL_DIR:-$(mktemp -d /tmp/student-rehearsal-XXXX)}
mkdir -p "$WORK"
pyver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

if [ "$MODE" = tiny ]; then
  .venv/bin/python - "$WORK" <<'PY'
import json, sys
sys.path.insert(0, "tests")
from tiny_models import CORPUS, make_model, make_tokenizer
work = sys.argv[1]
model = make_model("llama", num_layers=4)
model.save_pretrained(f"{work}/teacher")
make_tokenizer().save_pretrained(f"{work}/teacher")
with open(f"{work}/corpus.jsonl", "w") as f:
    for text in CORPUS:
        f.write(json.dumps({"text": text, "source": "tiny"}) + "\n")
PY
  .venv/bin/python scripts/pack_student_build.py --out "$WORK/pack" --teacher-folder "$WORK/teacher" \
      --corpus "$WORK/corpus.jsonl" --no-wheels --max-part-mib 0.07 \
      --set keep_layers=0,3 --set batch_size=4 --set block_size=32 --set eval_blocks=4 --set minutes=0.05 \
      --set save_steps=5 --set student_name=tiny-student
  TEACHER_FOR_CHECK="$WORK/teacher"
else
  "$PY" -m pip --version >/dev/null
  .venv/bin/python scripts/pack_student_build.py --out "$WORK/pack" --python-version "$pyver" \
      --set minutes="${MINUTES:-0.5}" --set batch_size=4 --set block_size=128 --set eval_blocks=8 --set save_steps=20
  TEACHER_FOR_CHECK=smollm2-135m
fi

calls=$(ls -d "$WORK"/pack/call* | sort -V)
for call in $calls; do
  tree="$WORK/device_tree"
  rm -rf "$tree" "$WORK/out"
  mkdir -p "$tree/.gpu_carry" "$WORK/out"
  git ls-files -co --exclude-standard -z | xargs -0 -I{} cp --parents {} "$tree/" 2>/dev/null || true
  cp -r "$call" "$tree/.gpu_carry/"
  echo "=== call $(basename "$call") ==="
  (cd "$tree" && OUT="$WORK/out" STUDENT_BUILD_STAGE="$WORK/stage" STUDENT_BUILD_ALLOW_CPU=1 \
      PYTHON="$PY" bash scripts/build_student_gpu.sh) || { echo "call failed"; exit 1; }
done
ls -la "$WORK/out"
.venv/bin/python - "$WORK/out" "$TEACHER_FOR_CHECK" <<'PY'
import sys, torch
from peft_transfer.assets.models import load_model
from peft_transfer.student.shipped import reassemble_student
teacher, tok = load_model(sys.argv[2])
student = reassemble_student(sys.argv[1], teacher)
ids = tok("The film was a quiet triumph.", return_tensors="pt")["input_ids"]
with torch.no_grad():
    print("reassembled student:", type(student).__name__, student.config.num_hidden_layers, "layers; logits",
          tuple(student(ids).logits.shape))
PY
echo "rehearsal OK: $WORK"
