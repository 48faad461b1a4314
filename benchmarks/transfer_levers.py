"""Transfer levers on one fixed student prompt: which transfer settings keep what a compressed student learnt.

    .venv/bin/python benchmarks/transfer_levers.py --task rotten_tomatoes --variant "" "loss-over=classes" \
        "loss-over=classes,alpha=1" --limit 500
    .venv/bin/python benchmarks/transfer_levers.py --report

The student is the curve's (`compressed_students.py`: `peft-transfer compress` 20:linear-cos unless --student);
p_s is tuned on it once per task with the curve's command (4 virtual tokens, 16 x 128, lr 1e-2, --max-length 64,
no DP). Each variant is one `peft-transfer transfer` from that p_s with the pipeline's settings (the task's
public set, 256 texts cut to 48 words, 100 steps x 8, lr 1e-2, alpha 0.5, --prompt-init source) changed by
KEY=VALUE pairs (transfer flags without their dashes). POST is scored on the first --limit test examples, with
ZS, CompPT and FullPT (a prompt tuned on the target with the same command) beside it. The public agreement is
the transfer monitor's at the last step: the label-free number a provider can read, compared here with POST
to see whether it could pick the settings. Rows: results/transfer_levers.jsonl; --report: .md/.json/.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, pyplot, run_header, write_results  # noqa: E402

from peft_transfer.evaluation.metrics import wilson_interval  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "runs" / "transfer_levers"
ROWS = RESULTS / "transfer_levers.jsonl"
CLI = str(ROOT / ".venv" / "bin" / "peft-transfer")
TARGET = "smollm2-135m"
PUBLIC = {"bbc_news": "guardian_headlines", "rotten_tomatoes": "movie_plots"}
TUNE = ["--num-virtual-tokens", "4", "--batch-size", "128", "--learning-rate", "1e-2",
        "--max-length", "64", "--seed", "0"]
BASE = {"public-limit": "256", "max-public-words": "48", "steps": "100", "batch-size": "8", "learning-rate": "1e-2",
        "alpha": "0.5", "prompt-init": "source"}


def sh(args: list[str], log: Path) -> tuple[float, str]:
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True, cwd=ROOT)
    log.open("a").write(f"$ peft-transfer {' '.join(args)}\n{done.stdout}{done.stderr[-4000:]}\n")
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stdout


def accuracy(model: str, prompt: Path | None, task: str, limit: int, log: Path) -> float:
    """Accuracy on the first `limit` test examples (cached next to the prompt, or per model for zero-shot)."""
    # beside the prompt, not in it (a prompt export holds only its own files)
    cache = prompt.parent / f"{prompt.name}-accuracy-{limit}.json" if prompt else \
        WORK / task / f"zs-{Path(model).name}-{limit}.json"
    if not cache.is_file():
        _, out = sh(["evaluate", "--model", model, *(["--prompt", str(prompt)] if prompt else []), "--task", task,
                     "--limit", str(limit), "--json"], log)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(out)
    return json.loads(cache.read_text())["accuracy"]


def tuned(model: str, out: Path, task: str, log: Path, steps: int = 16) -> Path:
    if not (out / "adapter_model.safetensors").is_file():
        sh(["tune", "--model", model, "--data", task, "--out", str(out), *TUNE, "--max-steps", str(steps)], log)
    return out


def run_variant(variant: str, student: Path, task: str, limit: int, tune_steps: int) -> dict:
    stage = WORK / task / student.name / f"p_s-steps{tune_steps}"
    log = stage / "log.txt"
    p_s = tuned(str(student), stage / "p_s", task, log, tune_steps)
    full = tuned(TARGET, WORK / task / "fullpt", task, log)
    changes = dict(pair.split("=", 1) for pair in variant.split(",") if pair)
    settings = {**BASE, **changes}
    post = stage / ("post-" + (variant.replace("=", "-").replace(",", "_") or "base"))
    seconds = None
    if not (post / "adapter_model.safetensors").is_file():
        flags = [x for k, v in settings.items() for x in (f"--{k}", v)]
        seconds, _ = sh(["transfer", "--prompt", str(p_s), "--student", str(student), "--target", TARGET,
                         "--public", PUBLIC[task], *flags, "--out", str(post)], log)
    monitor = Path(f"{post}-work") / "transfer_monitor.json"
    points = json.loads(monitor.read_text()).get("monitor", []) if monitor.is_file() else []
    acc = {"ZS": accuracy(TARGET, None, task, limit, log), "FullPT": accuracy(TARGET, full, task, limit, log),
           "CompPT": accuracy(str(student), p_s, task, limit, log), "POST": accuracy(TARGET, post, task, limit, log)}
    gain = acc["FullPT"] - acc["ZS"]
    return {"task": task, "student": student.name, "tune_steps": tune_steps, "variant": variant or "base",
            "settings": settings,
            "test_examples": limit, **acc, "G": (acc["POST"] - acc["ZS"]) / gain if gain else None,
            "public_agreement": points[-1]["monitor_agreement"] if points else None,
            "agreement_curve": [(p["step"], p["monitor_agreement"]) for p in points], "transfer_s": seconds,
            "loadavg": [round(x, 2) for x in os.getloadavg()],
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}


def load_rows() -> list[dict]:
    return [json.loads(line) for line in ROWS.read_text().splitlines()] if ROWS.is_file() else []


def report() -> None:
    rows = load_rows()
    lines = ["| task | student | p_s steps | variant | ZS | CompPT | FullPT | POST [95 % CI] | G | public agreement "
             "| transfer s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = wilson_interval(r["POST"], r["test_examples"])
        lines.append(f"| {r['task']} | {r['student']} | {r['tune_steps']} | {r['variant']} | {100 * r['ZS']:.1f} | "
                     f"{100 * r['CompPT']:.1f} | {100 * r['FullPT']:.1f} | "
                     f"{100 * r['POST']:.1f} [{100 * low:.1f}, {100 * high:.1f}] | "
                     f"{r['G']:.2f} | {r['public_agreement']} | {r['transfer_s'] and round(r['transfer_s'])} |")
    body = ("Accuracy % on the first `test_examples` test examples; G = (POST - ZS) / (FullPT - ZS). Every row of a "
            "task shares its p_s and FullPT prompt; variants change only the transfer (KEY=VALUE: transfer flags). "
            "Rows: " + str(ROWS.relative_to(ROOT)) + " (commands and settings in each row).\n\n" + "\n".join(lines))
    notes = sorted({r["note"] for r in rows if r.get("note")})
    if notes:
        body += "\n\nNotes:\n\n" + "\n".join(f"- {n}" for n in notes)
    write_results("transfer_levers", run_header(), rows, body)
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(5, 4))
    for task, marker in zip(sorted({r["task"] for r in rows}), "os^"):
        pts = [(r["public_agreement"], r["POST"]) for r in rows
               if r["task"] == task and r["public_agreement"] is not None]
        if pts:
            ax.scatter(*zip(*pts), marker=marker, label=task)
    ax.set_xlabel("public agreement at the last transfer step (no labels)")
    ax.set_ylabel("POST accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / "transfer_levers.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="rotten_tomatoes", choices=sorted(PUBLIC))
    parser.add_argument("--student", default=str(ROOT / "runs" / "compressed_students" / "students" / "20-linear-cos"))
    parser.add_argument("--variant", nargs="*", default=[""], help="KEY=VALUE,... transfer flags ('': the base)")
    parser.add_argument("--limit", type=int, default=500)
    parser.add_argument("--tune-steps", type=int, default=16, help="steps of 128 tuning p_s on the student")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        done = {(r["task"], r["student"], r["tune_steps"], r["variant"], r["test_examples"]) for r in load_rows()}
        for variant in args.variant:
            if (args.task, Path(args.student).name, args.tune_steps, variant or "base", args.limit) in done:
                continue
            row = run_variant(variant, Path(args.student), args.task, args.limit, args.tune_steps)
            print({k: v for k, v in row.items() if k != "agreement_curve"}, flush=True)
            with ROWS.open("a") as f:
                f.write(json.dumps(row) + "\n")
    report()


if __name__ == "__main__":
    main()
