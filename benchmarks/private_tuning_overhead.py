"""DP step time ÷ non-DP step time for prompt tuning, measured with interleaved steps in one process (so that the
shared machine's load hits both alike): the layer-dropped student (0,1,28,29) of SmolLM2-135M, RT batch of 8.

Run: .venv/bin/python benchmarks/private_tuning_overhead.py [--rounds 8 --batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import run_header, write_results  # noqa: E402

from peft_transfer.assets import load_model, load_rotten_tomatoes  # noqa: E402
from peft_transfer.student.layers import make_student  # noqa: E402
from peft_transfer.tasks.defaults import get_task  # noqa: E402
from peft_transfer.tune.config import PrivatePromptConfig  # noqa: E402
from peft_transfer.tune.trainer import PrivatePromptTrainer  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--target", action="store_true", help="measure on the target instead of the student")
    args = parser.parse_args(argv)
    header = run_header()
    target, tok = load_model("smollm2-135m")
    model = target if args.target else make_student(target, keep_layers=[0, 1, 28, 29])
    task = get_task("rotten_tomatoes")
    train = load_rotten_tomatoes()["train"].shuffle(seed=0).select(range(64))
    trainers = {}
    with tempfile.TemporaryDirectory() as out:
        for name, kw in (("non-DP", {}), ("DP", {"noise_multiplier": 1.0})):
            cfg = PrivatePromptConfig(output_dir=out, max_steps=1, per_device_train_batch_size=args.batch,
                                      disable_tqdm=True, **kw)
            trainer = PrivatePromptTrainer(model, cfg, train, task, tok)
            trainer.create_optimizer()
            trainer.current_gradient_accumulation_steps = 1
            trainers[name] = trainer
        batch = trainers["DP"].data_collator([train[i] for i in range(args.batch)])
        times = {name: [] for name in trainers}
        for r in range(args.rounds + 1):
            for name in (("non-DP", "DP") if r % 2 == 0 else ("DP", "non-DP")):
                trainer = trainers[name]
                start = time.perf_counter()
                trainer.training_step(trainer.model, batch)
                trainer.optimizer.step()
                trainer.optimizer.zero_grad()
                if r > 0:  # round 0 warms up
                    times[name].append(time.perf_counter() - start)
                print(name, round(time.perf_counter() - start, 3), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["DP"] / med["non-DP"]
    paired = statistics.median(d / n for d, n in zip(times["DP"], times["non-DP"]))  # same round, same load
    rows = [{"mode": k, "median_step_s": round(v, 4), "steps_s": [round(t, 3) for t in times[k]]}
            for k, v in med.items()]
    header["sizes"] = (f"{'target SmolLM2-135M' if args.target else 'student (layers 0,1,28,29)'}, {args.rounds} "
                       f"interleaved rounds after 1 warm-up, fixed RT batch of {args.batch}, 20 virtual tokens")
    header["dp_over_nondp_step_time"] = round(ratio, 3)
    header["median_of_per_round_ratios"] = round(paired, 3)
    md = (f"DP step time ÷ non-DP step time = **{ratio:.3f}** (ratio of medians; median of the per-round ratios "
          f"**{paired:.3f}**; goal ≤ 1.15). A step = forward + backward + optimizer "
          "step (DP: per-example clipping and Gaussian noise via Opacus hooks on the prompt encoder).\n\n"
          "| mode | median step s | steps s |\n|---|---|---|\n"
          + "\n".join(f"| {r['mode']} | {r['median_step_s']} | {r['steps_s']} |" for r in rows))
    print(write_results("private_tuning_overhead", header, rows, md))


if __name__ == "__main__":
    main()
