"""`peft-transfer run`: the main job on the embedded real model and data.

Until the distillation, private tuning and transfer stages are wired in, the job is the zero-shot
evaluation of the embedded LLM on the embedded tasks (written to results.md / results.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", nargs="+", default=["rotten_tomatoes", "bbc_news"])
    parser.add_argument("--limit", type=int, default=None, help="test examples per task (default: all)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 200 test examples per task")
    parser.add_argument("--out", default="runs/embedded", help="output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..assets import load_model
    from ..data_files import load_labelled
    from ..evaluation import evaluate_classification
    from ..tasks import get_task

    limit = 200 if args.quick and args.limit is None else args.limit
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_model(args.model)
    rows = []
    for name in args.tasks:
        task = get_task(name)
        data = load_labelled(name, split="test", limit=limit)
        start = time.perf_counter()
        result = evaluate_classification(model, tokenizer, task, data, progress=f"zero-shot {name}")
        rows.append({"task": name, "method": "ZS", "model": args.model, **result.to_dict(),
                     "seconds": round(time.perf_counter() - start, 1)})
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    lines = ["| task | method | n | accuracy | macro-F1 |", "|---|---|---|---|---|"]
    lines += [f"| {r['task']} | {r['method']} | {r['n']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} |" for r in rows]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nresults: {out / 'results.md'} and {out / 'results.json'}")
    return 0
