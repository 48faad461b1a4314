#!/bin/bash
# POST's alpha on the embedded runs: re-transfer the pipeline's own p_s (runs/embedded, runs/embedded_bbc) with the
# pipeline's transfer settings and another alpha, then score p_t on the same first 300 test examples.
#   bash benchmarks/transfer_alpha_sweep.sh "rotten_tomatoes:inf:1 rotten_tomatoes:inf:0.5 ..."
# Results: runs/alpha_sweep/<task>_<eps>_a<alpha>/ (p_t) and runs/alpha_sweep/results.jsonl (one row each).
set -euo pipefail
STUDENT=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'benchmarks'); from common import cached_student; print(cached_student())")
OUT=runs/alpha_sweep
mkdir -p $OUT
for spec in $1; do
  IFS=: read -r task eps alpha <<< "$spec"
  case $task in
    rotten_tomatoes) run=runs/embedded; public=movie_plots ;;
    bbc_news) run=runs/embedded_bbc; public=guardian_headlines ;;
  esac
  name=${task}_${eps}_a${alpha}
  grep -q "\"name\": \"$name\"" $OUT/results.jsonl 2>/dev/null && continue
  start=$(date +%s)
  .venv/bin/peft-transfer transfer --prompt $run/$task/eps-$eps/student_prompt --student "$STUDENT" \
    --target smollm2-135m --public $public --public-limit 200 --max-public-words 48 --steps 50 --batch-size 8 \
    --learning-rate 0.001 --alpha "$alpha" --temperature 2 --monitor-size 32 --save-steps 25 --seed 0 --out $OUT/$name
  seconds=$(( $(date +%s) - start ))
  result=$(.venv/bin/peft-transfer evaluate --model smollm2-135m --prompt $OUT/$name --task $task --limit 300 --json)
  echo "{\"name\": \"$name\", \"task\": \"$task\", \"epsilon\": \"$eps\", \"alpha\": $alpha, \"transfer_seconds\": $seconds, \"result\": $result}" >> $OUT/results.jsonl
done
