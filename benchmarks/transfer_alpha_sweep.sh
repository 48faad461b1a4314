#!/bin/bash
# POST's alpha on the embedded runs: re-transfer the pipeline's own p_s (runs/embedded, runs/embedded_bbc) with the
# transfer settings of that run (its run_config.json) and another alpha, then score p_t on the same test examples.
#   bash benchmarks/transfer_alpha_sweep.sh "rotten_tomatoes:inf:1 rotten_tomatoes:inf:0.5 ..."
# Results under $OUT (default runs/alpha_sweep): <task>_<eps>_a<alpha>/ (p_t) and results.jsonl (one row each).
set -euo pipefail
STUDENT=$(.venv/bin/python -c "import sys; sys.path.insert(0, 'benchmarks'); from common import cached_student; print(cached_student())")
OUT=${OUT:-runs/alpha_sweep}
mkdir -p $OUT
for spec in $1; do
  IFS=: read -r task eps alpha <<< "$spec"
  case $task in
    rotten_tomatoes) run=runs/embedded ;;
    bbc_news) run=runs/embedded_bbc ;;
  esac
  name=${task}_${eps}_a${alpha}
  grep -q "\"name\": \"$name\"" $OUT/results.jsonl 2>/dev/null && continue
  # the run's own settings: public set, sizes, steps, learning rate, temperature, seed, test size
  settings=$(.venv/bin/python -c "import json; c = json.load(open('$run/run_config.json')); t = c['transfer']
print(c['public_sets']['$task'], t['num_public'], t['max_public_words'], t['max_steps'], t['batch_size'],
      t['learning_rate'], t['temperature'], c['seed'], c['test_examples'])")
  read -r public num_public words steps batch lr temperature seed n_test <<< "$settings"
  # --monitor-size 32 and --save-steps 25: what the pipeline uses for 200 public texts
  start=$(date +%s)
  .venv/bin/peft-transfer transfer --prompt $run/$task/eps-$eps/student_prompt --student "$STUDENT" \
    --target smollm2-135m --public $public --public-limit $num_public --max-public-words $words --steps $steps \
    --batch-size $batch --learning-rate $lr --alpha "$alpha" --temperature $temperature --monitor-size 32 \
    --save-steps 25 --seed $seed --out $OUT/$name
  seconds=$(( $(date +%s) - start ))
  result=$(.venv/bin/peft-transfer evaluate --model smollm2-135m --prompt $OUT/$name --task $task --limit $n_test --json)
  echo "{\"name\": \"$name\", \"task\": \"$task\", \"epsilon\": \"$eps\", \"alpha\": $alpha, \"transfer_seconds\": $seconds, \"result\": $result}" >> $OUT/results.jsonl
done
