"""LiRA membership-inference audit of private prompt tuning on the embedded model's student, ε = ∞ and ε = 8.

    .venv/bin/python benchmarks/privacy_audit.py [--shadows 6] [--pool-size 32] [--max-steps 8]

The student is the pipeline's cached distilled student when this machine has built it (else `--student`,
else `make_student(SmolLM2-135M, keep_layers=[0, 1, 28, 29])` without distillation); the pool is drawn from
the Rotten Tomatoes train split. Each shadow prompt is tuned with `tune_prompt` on its random half of the pool and
scored on the whole pool; every shadow is attacked once with the other K - 1 (leave-one-out). Shadows are
kept under runs/privacy_audit/ so a killed run resumes. The defaults are a ~15-minute smoke size; the results file
says which sizes made it.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, load_student, run_header, write_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shadows", type=int, default=6)
    parser.add_argument("--pool-size", type=int, default=32)
    parser.add_argument("--max-steps", type=int, default=8, help="optimizer steps per shadow prompt")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--num-virtual-tokens", type=int, default=10)
    parser.add_argument("--epsilons", default="inf,8")
    parser.add_argument("--keep-layers", default="0,1,28,29", help="layers kept when no distilled student exists")
    parser.add_argument("--student", default=None, help="student folder (default: the pipeline's cached student)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/privacy_audit")
    args = parser.parse_args()
    header = run_header()

    from peft_transfer.assets.data_files import load_labelled
    from peft_transfer.audit import plot_roc, run_lira_audit
    from peft_transfer.audit.roc import RocSeries
    from peft_transfer.cli.audit_cmd import build_tune_args
    from peft_transfer.tasks.defaults import get_task

    student, tokenizer, folder = load_student(args.student, [int(x) for x in args.keep_layers.split(",")])
    student_text = (f"distilled student `{folder}` (SmolLM2-135M layers 0,1,28,29, the pipeline's)" if folder
                    else f"SmolLM2-135M layers [{args.keep_layers}] without distillation")
    task = get_task("rotten_tomatoes")
    pool = load_labelled("rotten_tomatoes", split="train")

    rows, curves = [], []
    for eps_text in args.epsilons.split(","):
        epsilon = math.inf if eps_text == "inf" else float(eps_text)
        out = os.path.join(args.out, f"eps_{eps_text}")
        tune_args = build_tune_args(epsilon, os.path.join(out, "trainer"), args.seed, max_steps=args.max_steps,
                                    learning_rate=args.learning_rate, batch_size=args.batch_size,
                                    num_virtual_tokens=args.num_virtual_tokens)
        start = time.perf_counter()
        result = run_lira_audit(student, tokenizer, task, pool, num_shadows=args.shadows, tune_args=tune_args,
                                seed=args.seed, out_dir=out, pool_size=args.pool_size)
        row = result.to_dict()
        row.update(setting=f"ε = {eps_text}", wall_seconds=round(time.perf_counter() - start, 1),
                   max_steps=args.max_steps, batch_size=args.batch_size,
                   learning_rate=args.learning_rate, num_virtual_tokens=args.num_virtual_tokens)
        rows.append(row)
        curves.append(RocSeries(f"ε = {eps_text} (AUC {result.auc:.3f})", result.fpr, result.tpr))
        print(result.markdown())

    RESULTS.mkdir(parents=True, exist_ok=True)
    plot_roc(curves, str(RESULTS / "privacy_audit_roc.png"), title="LiRA on RT, SmolLM2 student")
    table = ["| setting | accountant ε | K | pool | guesses | shadow acc train / held-out | AUC [95 % CI] | "
             "TPR@0.1 % FPR | TPR@1 % FPR | ε_lb (max thr.) | ε_lb (held-out thr.) | δ | wall s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        acc_eps = r["accountant_epsilon"]
        table.append(
            f"| {r['setting']} | {acc_eps if acc_eps == 'inf' else f'{acc_eps:.2f}'} | {r['num_shadows']} | "
            f"{r['pool_size']} | {r['num_guesses']} | {r['shadow_train_accuracy']:.3f} / "
            f"{r['shadow_heldout_accuracy']:.3f} | {r['auc']:.3f} [{r['auc_ci'][0]:.3f}, {r['auc_ci'][1]:.3f}] | "
            f"{r['tpr_at_0_1pct_fpr']:.4f} | {r['tpr_at_1pct_fpr']:.4f} | {r['epsilon_lower_bound']:.3f} | "
            f"{r['epsilon_lower_bound_holdout']:.3f} | {r['delta']:.2g} | {r['wall_seconds']} |")
    notes = (
        f"\nStudent: {student_text}; {args.max_steps} optimizer steps of batch "
        f"{args.batch_size}, learning rate {args.learning_rate}, {args.num_virtual_tokens} virtual tokens per "
        "shadow prompt (tune_prompt defaults otherwise: Adam, clip norm 1, PRV accountant, δ = 1/(10 N)); "
        f"pool = {args.pool_size} Rotten Tomatoes train sentences, each IN for exactly half of the shadows; "
        "leave-one-out LiRA (online, global variance). The AUC CI is a percentile bootstrap over pool "
        "examples; the ε lower bounds use Clopper-Pearson 95 % bounds on TPR/FPR and treat the pooled "
        "guesses as independent, which they are only approximately. With this few guesses, TPR at 0.1 % "
        "FPR is resolved only to 1 / (non-members). The machine is a shared 2-core CPU (see loadavg): wall "
        "times are indicative only. ROC curves: privacy_audit_roc.png.\n"
    )
    path = write_results("privacy_audit", header, rows, "\n".join(table) + "\n" + notes)
    print(path.read_text())


if __name__ == "__main__":
    main()
