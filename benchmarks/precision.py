"""bfloat16 autocast vs float32 for prompt tuning on this CPU: seconds per tuning step and the accuracy reached.

    .venv/bin/python benchmarks/precision.py [--model smollm2-135m] [--task rotten_tomatoes] [--limit 300]

For each precision, the CLI tunes a prompt on the embedded SmolLM2-135M as the pipeline's FullPT stage does
(4 virtual tokens, 16 steps x 128 examples, lr 1e-2, texts cut at 64 tokens, seed 0, no DP), then scores it
in float32 on the first --limit test examples. Tuning wall time is the whole `peft-transfer tune` process
(model load and data included), so the ratio understates the step speed-up a little. Runs one after the
other on an otherwise idle machine; results/precision.md/.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_header, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CLI = str(ROOT / ".venv" / "bin" / "peft-transfer")
TUNE = ["--num-virtual-tokens", "4", "--batch-size", "128", "--max-steps", "16", "--learning-rate", "1e-2",
        "--max-length", "64", "--seed", "0"]


def run(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="rotten_tomatoes")
    parser.add_argument("--limit", type=int, default=300)
    args = parser.parse_args()
    header = run_header()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for precision in ("fp32", "bf16"):
            out = Path(work) / precision
            seconds, log = run(["tune", "--model", args.model, "--data", args.task, "--out", str(out), *TUNE,
                                "--precision", precision])
            estimate = next((line for line in log.splitlines() if line.startswith("estimated time")), "")
            _, scored = run(["evaluate", "--model", args.model, "--prompt", str(out), "--limit", str(args.limit),
                             "--json"])
            result = json.loads(scored)
            rows.append({"precision": precision, "tune_s": round(seconds, 1), "accuracy": result["accuracy"],
                         "macro_f1": result.get("macro_f1"), "estimate_line": estimate})
            print(rows[-1], flush=True)
    fp32, bf16 = rows
    lines = ["| precision | tune wall s (16 x 128) | accuracy | macro-F1 |", "|---|---|---|---|"]
    lines += [f"| {r['precision']} | {r['tune_s']} | {100 * r['accuracy']:.1f} | {100 * (r['macro_f1'] or 0):.1f} |"
              for r in rows]
    lines += ["", f"Speed-up of the whole tuning process: {fp32['tune_s'] / bf16['tune_s']:.2f}x. Accuracy: first "
              f"{args.limit} {args.task} test examples, scored in float32 (one seed: differences of a point or two "
              "are within what another seed moves).", "", "The CLI's own per-example estimate lines:", ""]
    lines += [f"- {r['precision']}: {r['estimate_line']}" for r in rows]
    print(write_results("precision", header, rows, "\n".join(lines)))


if __name__ == "__main__":
    main()
