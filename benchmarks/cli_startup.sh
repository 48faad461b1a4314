#!/bin/bash
# Start-up cost of the CLI (issue #17): `--help`, a bad argument, and one real command (zero-shot evaluate of a
# tiny 4-layer Llama on 24 rows), each in a fresh process, interleaved BEFORE / AFTER so both see the same load.
#   BEFORE=/path/to/old/checkout/src bash benchmarks/cli_startup.sh [rounds]
# BEFORE unset: only this checkout is measured. Prints "<side> <command> <seconds>" lines.
set -euo pipefail
ROUNDS=${1:-5}
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d)
$PY - "$WORK" <<'PY'
import sys
sys.path.insert(0, "tests")
from datasets import Dataset
from tiny_models import make_model, make_tokenizer
model, tok = make_model("llama", num_layers=4), make_tokenizer()
model.save_pretrained(sys.argv[1] + "/tiny")
tok.save_pretrained(sys.argv[1] + "/tiny")
Dataset.from_dict({"text": ["a wonderful moving film", "a dull boring mess"] * 12, "label": [1, 0] * 12}).to_csv(
    sys.argv[1] + "/test.csv")
PY
sides="after"
[ -n "${BEFORE:-}" ] && sides="before after"
timed() { local s e; s=$(date +%s.%N); "${@:3}" >/dev/null 2>&1 || true; e=$(date +%s.%N); echo "$1 $2 $(echo "$e - $s" | bc)"; }
for _ in $(seq "$ROUNDS"); do
  for side in $sides; do
    if [ "$side" = before ]; then export PYTHONPATH=$BEFORE; else export PYTHONPATH=$PWD/src; fi
    timed $side help $PY -m peft_transfer.cli --help
    timed $side bad-argument $PY -m peft_transfer.cli tune --model x --data y --out z --batch-size 0
    timed $side evaluate $PY -m peft_transfer.cli evaluate --model "$WORK/tiny" --data "$WORK/test.csv"
  done
done
rm -rf "$WORK"
