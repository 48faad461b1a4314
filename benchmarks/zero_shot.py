"""Zero-shot accuracy of the embedded LLM on the embedded tasks, and model load time cold vs warm.

    .venv/bin/python benchmarks/zero_shot.py [--limit N]

Cold = GGUF de-quantisation + conversion into a fresh cache folder; warm = loading the cached safetensors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from common import run_header, write_results  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="test examples per task (default: all)")
    args = parser.parse_args()
    header = run_header()

    from peft_transfer.assets import load_model
    from peft_transfer.assets.data_files import load_labelled
    from peft_transfer.evaluation.classification import evaluate_classification
    from peft_transfer.tasks.defaults import get_task

    with tempfile.TemporaryDirectory() as cache:
        os.environ["PEFT_TRANSFER_CACHE"] = cache
        start = time.perf_counter()
        load_model("smollm2-135m")
        cold = time.perf_counter() - start
    os.environ.pop("PEFT_TRANSFER_CACHE")
    load_model("smollm2-135m")  # make sure the real cache exists
    start = time.perf_counter()
    model, tokenizer = load_model("smollm2-135m")
    warm = time.perf_counter() - start

    rows = []
    for name in ("rotten_tomatoes", "bbc_news"):
        task = get_task(name)
        data = load_labelled(name, split="test", limit=args.limit)
        start = time.perf_counter()
        result = evaluate_classification(model, tokenizer, task, data, batch_size=32, progress=f"ZS {name}")
        rows.append({"task": name, "template": task.template, "label_words": task.label_words, **result.to_dict(),
                     "seconds": round(time.perf_counter() - start, 1)})
    table = ["| task | template | n | accuracy | macro-F1 | seconds |", "|---|---|---|---|---|---|"]
    table += [f"| {r['task']} | `{r['template']!r}` | {r['n']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | "
              f"{r['seconds']} |" for r in rows]
    load = f"\nModel load (smollm2-135m): cold (GGUF -> safetensors cache) {cold:.1f} s, warm (cache) {warm:.2f} s.\n"
    rows.append({"load_cold_s": round(cold, 2), "load_warm_s": round(warm, 2)})
    path = write_results("zero_shot", header, rows, "\n".join(table) + "\n" + load)
    print(path.read_text())


if __name__ == "__main__":
    main()
