"""Issue #14, item 5: the embedded table with the shipped (GPU-distilled) student, measured on this CPU.

    python benchmarks/shipped_student_table.py [--out runs/shipped_table]

Runs `peft-transfer run` on Rotten Tomatoes (all 2,000 test reviews) and BBC News (all 500 test articles) at
ε ∞ and 8 with the pipeline's defaults and `student.source: shipped` (refused if no shipped student is
installed), then writes benchmarks/results/shipped_student_table.{md,json}: ZS / FullPT / CompPT / Direct / POST
with 95 % Wilson intervals, G = (POST − ZS) / (FullPT − ZS), the student's perplexity next to the teacher's (on
the build's held-out public blocks, from its build record, and on the test texts here), and
R = FullPT time ÷ (student tuning + transfer time) from timings.json (same steps and batch: equal epochs).
The run folder is resumable; rerunning only rewrites the results file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from common import run_header, write_results  # noqa: E402

STUDENT = "smollm2-135m-student"


def _perplexity(model, tokenizer, texts: list[str]) -> float:
    from peft_transfer.distill.data import perplexity, prepare_blocks

    return perplexity(model, tokenizer, prepare_blocks(texts, tokenizer, block_size=128, max_blocks=64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/shipped_table")
    parser.add_argument("--student", default=STUDENT, help="the shipped student's name")
    parser.add_argument("--smoke", action="store_true",
                        help="a minutes-long check of this script (tiny sizes); prints the table, writes no results")
    args = parser.parse_args()

    from peft_transfer.assets import load_bbc_news, load_model, load_rotten_tomatoes
    from peft_transfer.assets.shipped_students import shipped_student
    from peft_transfer.evaluation.metrics import wilson_interval
    from peft_transfer.pipeline.config import load_pipeline_config
    from peft_transfer.pipeline.runner import run_pipeline

    spec = shipped_student(args.student)
    if spec is None or not spec.available():
        raise SystemExit(f"no shipped student {args.student!r} is installed: build it first (README, 'The shipped "
                         "student'); this table is not made with a CPU-distilled student.")
    header = run_header()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"tasks": ["rotten_tomatoes", "bbc_news"], "epsilons": ["inf", 8], "test_examples": None,
                "student": {"source": "shipped"}}
    if args.smoke:
        settings.update(test_examples=16, tune={"max_steps": 2, "batch_size": 4, "train_examples": 32},
                        transfer={"num_public": 16, "max_steps": 2, "batch_size": 4})
    (out / "config.yaml").write_text(yaml.safe_dump(settings))
    run_pipeline(load_pipeline_config(out / "config.yaml"), out / "run")

    table = json.loads((out / "run" / "results.json").read_text())["table"]
    timings = json.loads((out / "run" / "timings.json").read_text())
    rows = []
    for row in table:
        tag = "eps-inf" if row["epsilon"] == "inf" else f"eps-{float(row['epsilon']):g}"
        key = f"{row['task']}/{tag}"
        fullpt, tune, transfer = (timings.get(f"{key}/{s}") for s in ("fullpt_prompt", "student_prompt",
                                                                      "post_prompt"))
        intervals = {m: wilson_interval(row[m], row["n"]) for m in ("ZS", "FullPT", "CompPT", "Direct", "POST")
                     if row.get(m) is not None}
        rows.append({**row, "ci95": intervals, "R": fullpt / (tune + transfer) if fullpt and tune and transfer
                     else None, "seconds": {"fullpt": fullpt, "student_tuning": tune, "transfer": transfer}})

    teacher, tokenizer = load_model("smollm2-135m")
    student, _ = load_model(args.student)
    build = json.loads((spec.folder / "student_build.json").read_text())
    texts = {"rotten_tomatoes test": list(load_rotten_tomatoes()["test"]["text"]),
             "bbc_news test": list(load_bbc_news()["test"]["text"])}
    if args.smoke:
        texts = {name: t[:20] for name, t in texts.items()}
    ppl = {name: {"teacher": _perplexity(teacher, tokenizer, t), "student": _perplexity(student, tokenizer, t)}
           for name, t in texts.items()}
    ppl["build held-out public blocks"] = build["distillation_summary"].get("perplexity", {})

    lines = ["| task | ε | n | ZS | FullPT | CompPT | Direct | POST | G | R |", "|" + "---|" * 10]
    for r in rows:
        cells = [f"{100 * r[m]:.1f} [{100 * r['ci95'][m][0]:.1f}, {100 * r['ci95'][m][1]:.1f}]"
                 if r.get(m) is not None else "–" for m in ("ZS", "FullPT", "CompPT", "Direct", "POST")]
        g = f"{r['gap_closure']:.2f}" if r.get("gap_closure") is not None else "–"
        eps = "∞" if r["epsilon"] == "inf" else f"{float(r['epsilon']):g}"
        lines.append(f"| {r['task']} | {eps} | {r['n']} | " + " | ".join(cells) + f" | {g} | "
                     + (f"{r['R']:.2f}" if r["R"] else "–") + " |")
    lines += ["", "Perplexity (student vs teacher):", "", "| text | teacher | student |", "|---|---|---|"]
    for name, values in ppl.items():
        t = values.get("teacher")
        s = values.get("student", values.get("distilled student"))
        lines.append(f"| {name} | {t:.1f} | {s:.1f} |" if t and s and not math.isnan(s) else f"| {name} | – | – |")
    lines += ["", f"Student: {args.student} ({build['build'].get('hardware')}, "
              f"{build['build'].get('distillation wall time')}); run folder {out / 'run'}; accuracies with 95 % "
              "Wilson intervals over the test examples (one training seed)."]
    header["student_build"] = build["build"]
    if args.smoke:
        print("\n".join(lines))
        return
    print(write_results("shipped_student_table", header, rows + [{"perplexity": ppl}], "\n".join(lines)))


if __name__ == "__main__":
    main()
