"""Private prompt tuning on the embedded SmolLM2-135M (target) and its student: test accuracy at each ε on
Rotten Tomatoes and BBC News, DP ÷ non-DP step time, student ÷ target step time, peak memory.

    .venv/bin/python benchmarks/private_tuning.py [--epsilons inf,8,3,1] [--steps 100] [--target-steps 60]

Data as the pipeline takes it: the train split shuffled with the seed, its first `--train` examples; the
first `--test` test examples. The student is the pipeline's cached distilled student when it exists (else
`--student`, else layers 0,1,28,29 without distillation). Each finished row is appended to
runs/<name>/rows.jsonl and skipped when the script is run again (a killed run resumes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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
from common import load_student, run_header, write_results  # noqa: E402

from peft_transfer.assets import load_bbc_news, load_model, load_rotten_tomatoes  # noqa: E402
from peft_transfer.evaluation.classification import evaluate_classification  # noqa: E402
from peft_transfer.tasks.defaults import get_task  # noqa: E402
from peft_transfer.tune.config import PrivatePromptConfig  # noqa: E402
from peft_transfer.tune.trainer import PrivatePromptTrainer  # noqa: E402


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


def run_one(model, tokenizer, task, train, test, eps, steps, args, label) -> dict:
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        config = PrivatePromptConfig(
            output_dir=out, max_steps=steps, per_device_train_batch_size=args.batch, learning_rate=args.lr,
            num_virtual_tokens=args.virtual_tokens, target_epsilon=None if math.isinf(eps) else eps,
            accountant="prv", save_strategy="no", logging_steps=max(steps // 4, 1), seed=args.seed,
            disable_tqdm=True, report_to="none")
        start = time.perf_counter()
        trainer = PrivatePromptTrainer(model, config, train, task, tokenizer, callbacks=[timer])
        trainer.train()
        tune_s = time.perf_counter() - start
    result = evaluate_classification(trainer.prompt_model, tokenizer, task, test, batch_size=16)
    record = trainer.dp_record()
    return {"model": label, "task": task.name, "epsilon_target": eps_text(eps),
            "epsilon_spent": None if math.isinf(record.epsilon) else round(record.epsilon, 3),
            "delta": record.delta, "noise_multiplier": record.noise_multiplier, "sample_rate": record.sample_rate,
            "steps": steps, "batch": args.batch, "n_train": len(train), "max_length": task.max_length,
            "accuracy": round(result.accuracy, 4), "macro_f1": round(result.macro_f1, 4), "n_test": result.n,
            "tune_s": round(tune_s, 1), "median_step_s": round(statistics.median(timer.times[1:] or timer.times), 4),
            "peak_rss_mb_so_far": round(peak_rss_mb())}


def init_row(model, tokenizer, task, test, args, label) -> dict:
    """The untrained prompt (text init from the task description): where every run starts."""
    from peft_transfer.prompts.model import create_prompt_model

    prompt_model = create_prompt_model(model, tokenizer, task, num_virtual_tokens=args.virtual_tokens)
    result = evaluate_classification(prompt_model, tokenizer, task, test, batch_size=16)
    return {"model": label, "task": task.name, "epsilon_target": "init (no tuning)", "steps": 0,
            "accuracy": round(result.accuracy, 4), "macro_f1": round(result.macro_f1, 4), "n_test": result.n,
            "peak_rss_mb_so_far": round(peak_rss_mb())}


def eps_text(eps: float) -> str:
    return "inf" if math.isinf(eps) else f"{eps:g}"


def load_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def key(row: dict) -> tuple:
    return (row["model"].split()[0], row["task"], str(row["epsilon_target"]), row["steps"])


def ratios(rows: list[dict]) -> dict:
    """DP ÷ non-DP median step time per model and task; student ÷ target median step time per task."""
    step = {key(r)[:3]: r["median_step_s"] for r in rows if r.get("median_step_s")}
    out = {}
    for (model, task, eps), value in step.items():
        base = step.get((model, task, "inf"))
        if eps != "inf" and base:
            out[f"dp{eps}_over_nondp_step_{model}_{task}"] = round(value / base, 3)
    for task in {r["task"] for r in rows}:
        s, t = step.get(("student", task, "inf")), step.get(("target", task, "inf"))
        if s and t:
            out[f"student_over_target_step_{task}"] = round(s / t, 3)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--epsilons", default="inf,8,3,1")
    parser.add_argument("--tasks", default="rotten_tomatoes,bbc_news")
    parser.add_argument("--models", default="student,target")
    parser.add_argument("--student", default=None, help="student folder (default: the pipeline's cached student)")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps on the student")
    parser.add_argument("--target-steps", type=int, default=60, help="optimizer steps on the target")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--virtual-tokens", type=int, default=20)
    parser.add_argument("--bbc-max-length", type=int, default=64, help="tokens per BBC example (template included)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="private_tuning", help="results file name; rows kept in runs/<name>/")
    args = parser.parse_args(argv)
    rows_path = Path("runs") / args.name / "rows.jsonl"
    header = run_header()
    torch.manual_seed(args.seed)
    epsilons = [math.inf if e == "inf" else float(e) for e in args.epsilons.split(",")]
    loaders = {"rotten_tomatoes": load_rotten_tomatoes, "bbc_news": load_bbc_news}
    data = {}
    for name in args.tasks.split(","):
        ds = loaders[name]()
        train = ds["train"].shuffle(seed=args.seed).select(range(min(args.train, len(ds["train"]))))
        data[name] = train, ds["test"].select(range(min(args.test, len(ds["test"]))))
    tasks = {name: get_task(name) for name in data}
    if "bbc_news" in tasks:
        tasks["bbc_news"] = dataclasses.replace(tasks["bbc_news"], max_length=args.bbc_max_length)

    rows = load_rows(rows_path)
    done = {key(r) for r in rows}
    rows_path.parent.mkdir(parents=True, exist_ok=True)

    def keep(row: dict) -> None:
        print(row, flush=True)
        rows.append(row)
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")

    for which in args.models.split(","):
        if which == "student":
            model, tok, folder = load_student(args.student, [0, 1, 28, 29])
            label = "student (distilled, layers 0,1,28,29)" if folder else "student (layers 0,1,28,29)"
            steps = args.steps
        else:
            model, tok = load_model("smollm2-135m")
            label, steps = "target SmolLM2-135M", args.target_steps
        for name, (train, test) in data.items():
            if (which, name, "init (no tuning)", 0) not in done:
                keep(init_row(model, tok, tasks[name], test, args, label))
            for eps in epsilons:
                if (which, name, eps_text(eps), steps) not in done:
                    keep(run_one(model, tok, tasks[name], train, test, eps, steps, args, label))
        del model

    header["sizes"] = (f"train: first {args.train} of the train split shuffled with seed {args.seed}; test: first "
                       f"{args.test} test examples; student {args.steps} steps, target {args.target_steps} steps of "
                       f"a logical batch of {args.batch} (Poisson sampling under DP), lr {args.lr}, "
                       f"{args.virtual_tokens} virtual tokens, PRV accountant, δ = 1/(10 N), clip 1.0; BBC News "
                       f"cut to {args.bbc_max_length} tokens per example (template included)")
    header["ratios"] = ratios(rows)
    cols = ["model", "task", "epsilon_target", "epsilon_spent", "noise_multiplier", "sample_rate", "steps",
            "accuracy", "macro_f1", "n_test", "tune_s", "median_step_s", "peak_rss_mb_so_far"]

    def place(r: dict) -> tuple:  # student first; per task: init, ε = ∞, then decreasing ε
        rank = {"init (no tuning)": -1.0, "inf": 0.0}.get(r["epsilon_target"])
        return key(r)[0] != "student", r["task"], 1 / float(r["epsilon_target"]) if rank is None else rank

    table = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    table += "\n".join("| " + " | ".join("" if r.get(c) is None else str(r[c]) for c in cols) + " |"
                        for r in sorted(rows, key=place))
    notes = (
        "Ratios (median optimizer-step times, same batch): "
        + ", ".join(f"{k} = {v}" for k, v in header["ratios"].items()) + ". The student ÷ target step ratio is "
        "also the ratio of tuning times for the same number of epochs (tuning time = steps × step time plus a "
        "fixed set-up).\n\nPeak memory is the process's peak RSS so far (monotone): student rows run first, "
        "so their value is the student alone; target rows include everything loaded before. tune_s includes "
        "noise calibration (PRV) and accounting.\n"
    )
    path = write_results(args.name, header, rows, notes + "\n" + table)
    print(path)


if __name__ == "__main__":
    main()
