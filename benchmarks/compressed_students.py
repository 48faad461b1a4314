"""Issue #23's curve: students compressed without long training, judged by what POST makes of them.

    .venv/bin/python benchmarks/compressed_students.py --student 20:linear-cos --epsilon inf 8
    .venv/bin/python benchmarks/compressed_students.py --report      # results file + plot from the rows so far

Each row runs the CLI as a user would (one `peft-transfer` process per stage, so the numbers are the product's):
1. `peft-transfer compress --teacher smollm2-135m --keep-layers N --method M` (cached per spec; its build
   seconds, chosen block and held-out perplexity come from the student's compress_summary.json);
2. `peft-transfer tune` on the student with the BBC training split (4 virtual tokens, batch 128 x 16 steps,
   lr 1e-2, --max-length 64: the settings of dp_levers' BBC rows; at ε = 8 the same batch and steps with DP);
3. `peft-transfer transfer` to the target (the task's public set, as in the pipeline: Guardian headlines for
   BBC, movie plots for RT, cut to 48 words; batch 8, lr 1e-2, α 0.5,
   --prompt-init source; --transfer-steps, default 100);
4. `peft-transfer compare --limit 300` (first 300 test examples; --limit 2000: all of RT's): ZS, CompPT,
   Direct, POST, and FullPT: a prompt tuned on the target itself with the same tuning command (done once per ε, cached).
G = (POST - ZS) / (FullPT - ZS). Rows append to benchmarks/results/compressed_students.jsonl (a rerun skips
rows that are there); --report writes compressed_students.md/.json/.png. Work folders: runs/compressed_students/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, pyplot, run_header, write_results  # noqa: E402

from peft_transfer.evaluation.metrics import wilson_interval  # noqa: E402
from peft_transfer.precision import use_bf16  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "runs" / "compressed_students"
ROWS = RESULTS / "compressed_students.jsonl"
CLI = [str(ROOT / ".venv" / "bin" / "peft-transfer")]
TARGET = "smollm2-135m"
CALIBRATION = "lee_news+movie_plots+guardian_headlines"
PUBLIC = {"bbc_news": "guardian_headlines", "rotten_tomatoes": "movie_plots"}  # the pipeline's public_sets
TUNE = ["--num-virtual-tokens", "4", "--batch-size", "128", "--max-steps", "16", "--learning-rate", "1e-2",
        "--max-length", "64", "--seed", "0"]


def sh(args: list[str], log: Path) -> float:
    """Run one CLI command (output to `log`); its wall seconds. A failure stops the benchmark with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(args)}\n")
        f.flush()
        done = subprocess.run(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(args)}\n" + log.read_text()[-3000:])
    return time.perf_counter() - start


def eps_tag(epsilon: float) -> str:
    return "inf" if math.isinf(epsilon) else f"{epsilon:g}"


def tune(model: str, epsilon: float, out: Path, task: str, precision: str) -> float:
    if (out / "adapter_model.safetensors").is_file():
        return float("nan")  # cached (its time is in the row that made it)
    dp = [] if math.isinf(epsilon) else ["--epsilon", f"{epsilon:g}"]
    return sh(CLI + ["tune", "--model", model, "--data", task, "--out", str(out), *TUNE, *dp, "--precision", precision],
              out.parent / "log.txt")


def build_student(spec: str, calibration_tokens: int) -> tuple[Path, dict]:
    layers, method, *blocks = spec.split(":")  # LAYERS:METHOD or LAYERS:METHOD:BLOCKS (separate blocks taken out)
    name = spec.replace(":", "-")
    folder = WORK / "students" / name
    if not (folder / "config.json").is_file():
        sh(CLI + ["compress", "--teacher", TARGET, "--keep-layers", layers, "--method", method,
                  *(["--num-blocks", blocks[0]] if blocks else []),
                  "--calibration", CALIBRATION, "--calibration-tokens", str(calibration_tokens), "--out", str(folder)],
           WORK / "students" / f"{name}.log")
    summary = json.loads((folder / "compress_summary.json").read_text())
    return folder, summary


def run_row(spec: str, epsilon: float, task: str, limit: int, transfer_steps: int, calibration_tokens: int,
            precision: str) -> dict:
    student, summary = build_student(spec, calibration_tokens)
    tag = "" if precision == "fp32" else f"-{precision}"  # fp32: the folders of the rows made before --precision
    stage = WORK / task / spec.replace(":", "-") / f"eps-{eps_tag(epsilon)}-steps{transfer_steps}{tag}"
    full = WORK / task / "fullpt" / f"eps-{eps_tag(epsilon)}{tag}" / "prompt"
    timings = {"fullpt_tune_s": tune(TARGET, epsilon, full, task, precision),
               "student_tune_s": tune(str(student), epsilon, stage / "student_prompt", task, precision)}
    post = stage / "post_prompt"
    if not (post / "adapter_model.safetensors").is_file():
        timings["transfer_s"] = sh(CLI + [
            "transfer", "--prompt", str(stage / "student_prompt"), "--student", str(student), "--target", TARGET,
            "--public", PUBLIC[task], "--max-public-words", "48", "--steps", str(transfer_steps),
            "--batch-size", "8", "--learning-rate", "1e-2", "--alpha", "0.5", "--prompt-init", "source",
            "--precision", precision, "--out", str(post)], stage / "log.txt")
    if not (stage / "comparison" / "comparison.json").is_file():
        timings["compare_s"] = sh(CLI + [
            "compare", "--target", TARGET, "--student", str(student), "--source-prompt",
            str(stage / "student_prompt"), "--transferred-prompt", str(post), "--full-prompt", str(full), "--task",
            task, "--limit", str(limit),
            "--out", str(stage / "comparison")], stage / "log.txt")
    rows = json.loads((stage / "comparison" / "comparison.json").read_text())["rows"]
    acc = {r["method"].split(" ")[0]: r["accuracy"] for r in rows}
    monitor = post.parent / "post_prompt-work" / "transfer_monitor.json"
    points = json.loads(monitor.read_text()).get("monitor", []) if monitor.is_file() else []
    agreement = points[-1]["monitor_agreement"] if points else None  # public agreement at the last step
    zs, full_pt = acc.get("ZS"), acc.get("FullPT")
    g = (acc["POST"] - zs) / (full_pt - zs) if None not in (zs, full_pt, acc.get("POST")) and full_pt != zs else None
    return {"student": spec, "layers": summary.get("num_layers"), "method": summary.get("method"),
            "removed_blocks": summary.get("removed_blocks"), "build_s": summary.get("build_seconds"),
            "student_ppl": (summary.get("perplexity") or {}).get("student"),
            "drop_ppl": (summary.get("perplexity") or {}).get("blocks dropped (no replacement)"), "task": task,
            "epsilon": eps_tag(epsilon), "test_examples": limit, "precision": precision,
            "transfer_steps": transfer_steps, **{k: acc.get(k) for k in ("ZS", "FullPT", "CompPT", "Direct", "POST")},
            "G": g, "public_agreement": agreement, **timings, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def load_rows() -> list[dict]:
    return [json.loads(line) for line in ROWS.read_text().splitlines()] if ROWS.is_file() else []


def pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def report() -> None:
    rows = load_rows()
    cols = ["student", "removed_blocks", "task", "epsilon", "precision", "transfer_steps", "build_s", "student_ppl",
            "ZS", "FullPT", "CompPT", "Direct", "POST", "G", "public_agreement", "student_tune_s", "transfer_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "fp32" if c == "precision" else None)  # rows made before --precision ran in fp32
            if c in ("ZS", "FullPT", "CompPT", "Direct", "POST"):
                low, high = wilson_interval(v, r["test_examples"]) if v is not None \
                    else (None, None)
                cells.append(pct(v) + (f" [{pct(low)}, {pct(high)}]" if c in ("ZS", "POST") and v is not None else ""))
            elif isinstance(v, float):
                cells.append("" if math.isnan(v) else f"{v:.3g}")
            else:
                cells.append("" if v is None else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    body = ("Accuracy % on the first `test_examples` test examples of each task (ZS and POST with their 95 % "
            "Wilson intervals); G = (POST - ZS) / (FullPT - ZS); FullPT: the same tuning command on the target. "
            "removed_blocks: [start, end) teacher layer ranges taken out; student_ppl: next-token perplexity on "
            "held-out wikipedia blocks (the teacher's: 39.9); build_s: the compress command's own seconds (a "
            "cached calibration pass: add ~240 s for a fresh one); times in seconds on 2 CPU cores shared with "
            "other jobs (see each row's loadavg in the .jsonl). Each row was made by "
            "`python benchmarks/compressed_students.py --student LAYERS:METHOD --epsilon EPS` (defaults otherwise). "
            "Rows: " + str(ROWS.relative_to(ROOT)) + ".\n\n" + "\n".join(lines))
    notes = [f"- {r['student']}, ε = {r['epsilon']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        body += "\n\nNotes:\n\n" + "\n".join(notes)
    write_results("compressed_students", run_header(), rows, body)
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for (method, eps), marker in zip(sorted({(r["method"], r["epsilon"]) for r in rows if r.get("G") is not None}),
                                     "osv^D<>p*"):
        pts = sorted((r["layers"], r["G"]) for r in rows if (r["method"], r["epsilon"]) == (method, eps)
                     and r.get("G") is not None and r.get("layers"))
        if pts:
            ax.plot(*zip(*pts), marker=marker, label=f"{method}, ε={eps}")
    ax.axhline(0.6, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("student layers (of 30)")
    ax.set_ylabel("G = (POST − ZS) / (FullPT − ZS)")
    ax.set_title("POST with compressed students of SmolLM2-135M (BBC)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "compressed_students.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", nargs="*", default=[],
                        help="LAYERS:METHOD[:BLOCKS], e.g. 20:linear-cos or 12:linear-cos:2")
    parser.add_argument("--epsilon", nargs="+", type=float, default=[math.inf])
    parser.add_argument("--task", default="bbc_news")
    parser.add_argument("--limit", type=int, default=300, help="first N test examples")
    parser.add_argument("--transfer-steps", type=int, default=100)
    parser.add_argument("--calibration-tokens", type=int, default=20000)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                        help="training precision of tune and transfer (auto: bf16 where fast; rows record it)")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    precision = "bf16" if use_bf16(args.precision) else "fp32"
    done = {(r["student"], r["epsilon"], r["task"], r["transfer_steps"], r["test_examples"],
             r.get("precision", "fp32")) for r in load_rows()}  # rows without one predate --precision: fp32
    for spec in args.student:
        for epsilon in args.epsilon:
            key = (spec, eps_tag(epsilon), args.task, args.transfer_steps, args.limit, precision)
            if key in done:
                print(f"[curve] {key}: already measured")
                continue
            row = run_row(spec, epsilon, args.task, args.limit, args.transfer_steps, args.calibration_tokens,
                          precision)
            RESULTS.mkdir(parents=True, exist_ok=True)
            with open(ROWS, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"[curve] {json.dumps(row)}")
    if args.report or args.student:
        report()


if __name__ == "__main__":
    main()
