"""Length-grouped micro-batches vs micro-batches in sampling order: time of a DP step (logical batch 128 in
micro-batches of 16) on the 4-layer cut of the embedded SmolLM2-135M (layers 0,1,28,29), Rotten Tomatoes,
interleaved rounds so that load changes hit both alike.

    .venv/bin/python benchmarks/micro_batch_sorting.py [--rounds 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import run_header, write_results  # noqa: E402

import peft_transfer.tune.trainer as ppt  # noqa: E402
from peft_transfer.assets import load_model, load_rotten_tomatoes  # noqa: E402
from peft_transfer.student.layers import make_student  # noqa: E402
from peft_transfer.tasks.defaults import get_task  # noqa: E402
from peft_transfer.tune.config import PrivatePromptConfig  # noqa: E402
from peft_transfer.tune.micro_batches import micro_batches  # noqa: E402


def in_order(inputs, size, padding_side):
    """The old way: consecutive slices of the padded logical batch."""
    total = inputs["input_ids"].shape[0]
    for start in range(0, total, size or total):
        yield {k: v[start:start + (size or total)] for k, v in inputs.items()}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    header = run_header()
    target, tok = load_model("smollm2-135m")
    model = make_student(target, keep_layers=[0, 1, 28, 29])
    task, train = get_task("rotten_tomatoes"), load_rotten_tomatoes()["train"]
    times = {"grouped by length": [], "in sampling order": []}
    for _ in range(args.rounds):
        for name, fn in (("grouped by length", micro_batches), ("in sampling order", in_order)):
            ppt.micro_batches = fn
            with tempfile.TemporaryDirectory() as out:
                config = PrivatePromptConfig(output_dir=out, max_steps=args.steps, per_device_train_batch_size=128,
                                             physical_batch_size=16, num_virtual_tokens=4, target_epsilon=8.0,
                                             accountant="rdp", save_strategy="no", disable_tqdm=True,
                                             logging_steps=1000, noise_seed=0)
                trainer = ppt.PrivatePromptTrainer(model, config, train, task, tok)
                start = time.perf_counter()
                trainer.train()
                times[name].append((time.perf_counter() - start) / args.steps)
    ppt.micro_batches = micro_batches
    rows = [{"micro_batches": k, "median_s_per_step": round(statistics.median(v), 3),
             "s_per_step": [round(x, 3) for x in v]} for k, v in times.items()]
    ratio = rows[0]["median_s_per_step"] / rows[1]["median_s_per_step"]
    header["ratio_grouped_over_in_order"] = round(ratio, 3)
    body = ("| micro-batches | median s per step | each round |\n|---|---|---|\n" + "\n".join(
        f"| {r['micro_batches']} | {r['median_s_per_step']} | {r['s_per_step']} |" for r in rows)
            + f"\n\nGrouped ÷ in order: {ratio:.3f} (same noise seed, so the same Poisson batches in both).\n")
    print(write_results("micro_batch_sorting", header, rows, body))


if __name__ == "__main__":
    main()
