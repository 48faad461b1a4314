"""Private prompt tuning on the embedded SmolLM2-135M (target) and a layer-dropped student (layers 0,1,28,29):
test accuracy at several ε, DP step time ÷ non-DP step time, peak memory, student vs target tuning time.

Scaled down for a shared 2-core CPU (sizes are written into the results file).
Run: .venv/bin/python benchmarks/private_tuning.py [--train 256 --test 200 --steps 40 --target-steps 12]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

sys.path.insert(0, str(Path(__file__).parent))
from common import run_header, write_results  # noqa: E402

from peft_transfer.assets import load_bbc_news, load_model, load_rotten_tomatoes  # noqa: E402
from peft_transfer.evaluation import evaluate_classification  # noqa: E402
from peft_transfer.private_prompt_config import PrivatePromptConfig  # noqa: E402
from peft_transfer.private_prompt_trainer import PrivatePromptTrainer  # noqa: E402
from peft_transfer.student import make_student  # noqa: E402
from peft_transfer.tasks import get_task  # noqa: E402


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step (forward, backward, clipping, noise, update)."""

    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(time.perf_counter() - self._t)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(model, tokenizer, task, train, test, eps, steps, batch, lr, seed, label):
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        args = PrivatePromptConfig(output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
                                   target_epsilon=None if math.isinf(eps) else eps, accountant="prv",
                                   save_strategy="no", logging_steps=max(steps // 2, 1), seed=seed, disable_tqdm=True)
        start = time.perf_counter()
        trainer = PrivatePromptTrainer(model, args, train, task, tokenizer, callbacks=[timer])
        trainer.train()
        tune_s = time.perf_counter() - start
    result = evaluate_classification(trainer.prompt_model, tokenizer, task, test, batch_size=16)
    record = trainer.dp_record()
    row = {"model": label, "task": task.name, "epsilon_target": "inf" if math.isinf(eps) else eps,
           "epsilon_spent": None if math.isinf(record.epsilon) else round(record.epsilon, 3),
           "delta": record.delta, "noise_multiplier": record.noise_multiplier, "steps": steps, "batch": batch,
           "accuracy": round(result.accuracy, 4), "macro_f1": round(result.macro_f1, 4), "n_test": result.n,
           "tune_s": round(tune_s, 1), "median_step_s": round(statistics.median(timer.times[1:] or timer.times), 4),
           "peak_rss_mb_so_far": round(peak_rss_mb())}
    print(row, flush=True)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--target-steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    header = run_header()
    torch.manual_seed(args.seed)
    target, tok = load_model("smollm2-135m")
    student = make_student(target, keep_layers=[0, 1, 28, 29])
    rows = []
    sets = {"rotten_tomatoes": load_rotten_tomatoes(), "bbc_news": load_bbc_news()}
    data = {name: (ds["train"].shuffle(seed=args.seed).select(range(args.train)),
                   ds["test"].shuffle(seed=args.seed).select(range(min(args.test, len(ds["test"])))))
            for name, ds in sets.items()}
    for name, epsilons in (("rotten_tomatoes", [math.inf, 8, 1]), ("bbc_news", [math.inf, 8])):
        train, test = data[name]
        for eps in epsilons:
            rows.append(run_one(student, tok, get_task(name), train, test, eps, args.steps, args.batch, args.lr,
                                args.seed, "student(0,1,28,29)"))
    rt_train, rt_test = data["rotten_tomatoes"]
    for eps in (math.inf, 8):
        rows.append(run_one(target, tok, get_task("rotten_tomatoes"), rt_train, rt_test, eps, args.target_steps,
                            args.batch, args.lr, args.seed, "target SmolLM2-135M"))
    # same number of target steps on the student, for the time ratio
    rows.append(run_one(student, tok, get_task("rotten_tomatoes"), rt_train, rt_test, math.inf, args.target_steps,
                        args.batch, args.lr, args.seed, "student(0,1,28,29)"))

    def step(label, task, eps, steps):
        return next(r["median_step_s"] for r in rows if r["model"].startswith(label) and r["task"] == task
                    and r["epsilon_target"] == eps and r["steps"] == steps)

    ratios = {
        "dp_over_nondp_step_student_rt": round(step("student", "rotten_tomatoes", 8, args.steps)
                                                / step("student", "rotten_tomatoes", "inf", args.steps), 3),
        "dp_over_nondp_step_student_bbc": round(step("student", "bbc_news", 8, args.steps)
                                                 / step("student", "bbc_news", "inf", args.steps), 3),
        "dp_over_nondp_step_target_rt": round(step("target", "rotten_tomatoes", 8, args.target_steps)
                                               / step("target", "rotten_tomatoes", "inf", args.target_steps), 3),
        "student_over_target_step_time": round(step("student", "rotten_tomatoes", "inf", args.target_steps)
                                                / step("target", "rotten_tomatoes", "inf", args.target_steps), 3),
    }
    header["sizes"] = (f"{args.train} train examples per task (shuffled, seed {args.seed}), first {args.test} of the "
                       f"shuffled test split; student {args.steps} steps, target {args.target_steps} steps; logical "
                       f"batch {args.batch} (Poisson under DP), lr {args.lr}, 20 virtual tokens, PRV accountant, "
                       f"delta = 1/(10 N), clip 1.0")
    header["ratios"] = ratios
    cols = ["model", "task", "epsilon_target", "epsilon_spent", "noise_multiplier", "steps", "accuracy", "macro_f1",
            "n_test", "tune_s", "median_step_s", "peak_rss_mb_so_far"]
    table = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    table += "\n".join("| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows)
    notes = (
        "Ratios (median step times, same model, same batch size): "
        + ", ".join(f"{k} = {v}" for k, v in ratios.items()) + ".\n\n"
        "Peak memory is the process's peak RSS so far (monotone; includes both models and the data sets); "
        "the machine is a shared 2-core CPU with other developers' jobs running, so times are noisy. "
        "tune_s includes noise calibration (PRV) and accounting. Reference: on the target, 20 virtual tokens, "
        "150 steps of 16 reached 82.1 % on RT; these runs are much shorter.\n"
    )
    path = write_results("private_tuning", header, rows, notes + "\n" + table)
    print(path)


if __name__ == "__main__":
    main()
