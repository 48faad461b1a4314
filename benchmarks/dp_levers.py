"""DP prompt tuning levers on the embedded SmolLM2-135M (target) and its student: logical batch size, examples
processed, learning rate, prompt length (= noised dimensions) and init, against the non-DP prompt at the same
compute, plus an ε curve (8, 3, 1, ∞) with the zero-shot and untrained-prompt references.

    .venv/bin/python benchmarks/dp_levers.py [--only REGEX] [--name dp_levers] [--report-only]

One resumable run: the rows of `plan()` run in that order (most informative first); each finished row is
appended to runs/<name>/rows.jsonl and skipped when the script runs again, so a killed run resumes. Data:
the whole train split (Rotten Tomatoes 10,752 reviews, BBC News 1,625 articles) is the private set DP samples
from (Poisson, q = B / N); non-DP rows take shuffled batches. "examples" is the compute budget: steps =
examples / B for DP and non-DP alike, and the examples actually processed are counted. Accuracy on the first
300 test examples with a 95 % Wilson interval. The levers are compared on that same test set: the comparison
is an experiment, and the defaults drawn from it (`peft_transfer.tune.dp_plan`) are fitted to these two tasks.
Each row records the machine's load average at its start: the 2 cores are shared, so wall times are noisy.
A file runs/<name>/STOP makes the run stop before its next row (delete it to go on).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, load_student, run_header, write_results  # noqa: E402

from peft_transfer.assets import load_bbc_news, load_model, load_rotten_tomatoes  # noqa: E402
from peft_transfer.evaluation.classification import evaluate_classification  # noqa: E402
from peft_transfer.evaluation.metrics import wilson_interval  # noqa: E402
from peft_transfer.prompts.model import create_prompt_model  # noqa: E402
from peft_transfer.tasks.defaults import get_task  # noqa: E402
from peft_transfer.tune.config import PrivatePromptConfig  # noqa: E402
from peft_transfer.tune.trainer import PrivatePromptTrainer  # noqa: E402

INF = math.inf
EOT = "<|endoftext|>"  # SmolLM2's document separator (id 0): a prompt init that leaves the input nearly as it is


@dataclasses.dataclass(frozen=True)
class Setting:
    """One row: a reference (zs, init, gradnorm) or a tuning run."""

    id: str
    group: str
    kind: str = "tune"  # zs | init | gradnorm | tune
    model: str = "target"  # target | student
    task: str = "rotten_tomatoes"
    epsilon: float = 8.0  # inf: no DP
    batch: int = 128
    examples: int = 2048
    lr: float = 1e-2
    schedule: str = "linear"
    virtual: int = 4
    clip: float = 1.0
    init: str | None = None  # prompt init text (None: the task description, the default)

    @property
    def steps(self) -> int:
        return max(1, round(self.examples / self.batch))


def plan() -> list[Setting]:
    """Rows in the order they run: RT references and the main DP row against non-DP at equal examples, the ε
    curve, BBC, then single-lever variations of the main row (the most telling first), the student, the rest."""
    bbc = "bbc_news"
    main = Setting("rt-dp8-main", "main", epsilon=8.0)
    rows = [
        Setting("rt-zs", "reference", kind="zs"),
        Setting("rt-init-v20", "reference", kind="init", virtual=20),
        Setting("rt-init-v4", "reference", kind="init", virtual=4),
        Setting("rt-init-v1", "reference", kind="init", virtual=1),
        Setting("rt-init-v4-eot", "reference", kind="init", virtual=4, init=EOT),
        Setting("rt-gradnorm-v4", "reference", kind="gradnorm", virtual=4),
        main,
        dataclasses.replace(main, id="rt-nodp-main", epsilon=INF),
        Setting("rt-nodp-b16-v20", "main", epsilon=INF, batch=16, lr=1e-3, virtual=20),
        dataclasses.replace(main, id="rt-dp3-main", group="eps-curve", epsilon=3.0),
        dataclasses.replace(main, id="rt-dp1-main", group="eps-curve", epsilon=1.0),
        Setting("bbc-zs", "reference", kind="zs", task=bbc),
        Setting("bbc-init-v4", "reference", kind="init", task=bbc, virtual=4),
        Setting("bbc-init-v20", "reference", kind="init", task=bbc, virtual=20),
        dataclasses.replace(main, id="bbc-dp8-main", task=bbc),
        dataclasses.replace(main, id="bbc-nodp-main", task=bbc, epsilon=INF),
        Setting("rt-dp8-b16-v20", "lever: old default (batch 16, lr 1e-3, 20 tokens)", batch=16, lr=1e-3, virtual=20),
        dataclasses.replace(main, id="rt-dp8-v20", group="lever: prompt length", virtual=20),
        # BBC has 1,625 training articles: 2,048 examples is 1.3 epochs; twice the compute, DP and not
        dataclasses.replace(main, id="bbc-dp8-e4096", task=bbc, group="lever: examples", examples=4096),
        dataclasses.replace(main, id="bbc-nodp-e4096", task=bbc, group="lever: examples", examples=4096,
                            epsilon=INF),
        Setting("rt-student-init-v4", "student", kind="init", model="student"),
        dataclasses.replace(main, id="rt-student-nodp-main", group="student", model="student", epsilon=INF),
        dataclasses.replace(main, id="rt-student-dp8-main", group="student", model="student"),
        # the main DP row again: another noise draw (OS entropy), and its wall time on an otherwise idle machine
        dataclasses.replace(main, id="rt-dp8-main-repeat", group="main"),
        dataclasses.replace(main, id="rt-dp8-b32", group="lever: batch", batch=32),
        dataclasses.replace(main, id="rt-dp8-lr3e-2", group="lever: learning rate", lr=3e-2),
        dataclasses.replace(main, id="bbc-dp8-e4096-lr3e-2", task=bbc, group="lever: examples", examples=4096,
                            lr=3e-2),
        dataclasses.replace(main, id="rt-dp8-b256", group="lever: batch", batch=256),
        dataclasses.replace(main, id="rt-dp8-lr3e-3", group="lever: learning rate", lr=3e-3),
        dataclasses.replace(main, id="rt-dp8-v1", group="lever: prompt length", virtual=1),
        dataclasses.replace(main, id="rt-dp8-init-eot", group="lever: init", init=EOT),
        dataclasses.replace(main, id="bbc-dp3-main", task=bbc, group="eps-curve", epsilon=3.0),
        dataclasses.replace(main, id="bbc-dp1-main", task=bbc, group="eps-curve", epsilon=1.0),
        Setting("bbc-nodp-b16-v20", "main", task=bbc, epsilon=INF, batch=16, lr=1e-3, virtual=20),
        # the plan's choices (dp_defaults) for its default budget on RT, 8,192 examples: an ε curve at 4x the compute
        dataclasses.replace(main, id="rt-dp8-e8192", group="plan, 8192 examples", examples=8192, batch=128),
        dataclasses.replace(main, id="rt-nodp-e8192", group="plan, 8192 examples", examples=8192, epsilon=INF),
        dataclasses.replace(main, id="rt-dp3-e8192", group="plan, 8192 examples", examples=8192, batch=256,
                            epsilon=3.0),
        dataclasses.replace(main, id="rt-dp1-e8192", group="plan, 8192 examples", examples=8192, batch=512,
                            epsilon=1.0),
    ]
    assert len({r.id for r in rows}) == len(rows)
    return rows


class CountingTrainer(PrivatePromptTrainer):
    """Counts the examples of the logical batches it trains on (the examples processed, Poisson draws included)."""

    processed = 0

    def training_step(self, model, inputs, num_items_in_batch=None):
        self.processed += int(inputs["labels"].shape[0])
        return super().training_step(model, inputs, num_items_in_batch)


def scored(model, tokenizer, task, test, use_prompt=True) -> dict:
    result = evaluate_classification(model, tokenizer, task, test, batch_size=32, use_prompt=use_prompt)
    lo, hi = wilson_interval(result.accuracy, result.n)
    return {"accuracy": round(result.accuracy, 4), "ci95": [round(lo, 4), round(hi, 4)],
            "macro_f1": round(result.macro_f1, 4), "n_test": result.n}


def gradient_norms(model, tokenizer, task, train, virtual: int, n: int = 32) -> dict:
    """Per-example gradient norms of the prompt at its init (one example at a time): how much C = 1 clips."""
    from peft_transfer.tune.trainer import PromptedTaskModel

    prompt_model = create_prompt_model(model, tokenizer, task, num_virtual_tokens=virtual)
    classifier = PromptedTaskModel(prompt_model, task.tokenized(tokenizer, masked_lm=False)).train()
    weight = classifier.prompt_encoder.embedding.weight
    norms = []
    for row in train.select(range(n)):
        batch = classifier.tokenized.encode([row["text"]])
        scores = classifier(**batch)
        loss = torch.nn.functional.cross_entropy(scores, torch.tensor([row["label"]]))
        (grad,) = torch.autograd.grad(loss, weight)
        norms.append(float(grad.norm()))
    norms.sort()
    return {"grad_norm_min": round(norms[0], 3), "grad_norm_median": round(norms[len(norms) // 2], 3),
            "grad_norm_max": round(norms[-1], 3), "n_examples": n}


def tune_row(s: Setting, model, tokenizer, task, train, test) -> dict:
    private = not math.isinf(s.epsilon)
    with tempfile.TemporaryDirectory() as out:
        config = PrivatePromptConfig(
            output_dir=out, max_steps=s.steps, per_device_train_batch_size=s.batch, learning_rate=s.lr,
            lr_scheduler_type=s.schedule, num_virtual_tokens=s.virtual, max_grad_norm=s.clip, prompt_init_text=s.init,
            physical_batch_size=32 if s.task == "rotten_tomatoes" else 16,
            target_epsilon=s.epsilon if private else None, accountant="prv", save_strategy="no",
            logging_steps=max(s.steps // 4, 1), seed=0, disable_tqdm=True, report_to="none")
        start, cpu_start = time.perf_counter(), time.process_time()
        trainer = CountingTrainer(model, config, train, task, tokenizer)
        trainer.train()
        tune_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    record = trainer.dp_record()
    d = s.virtual * model.get_input_embeddings().weight.shape[1]
    row = {"steps": s.steps, "examples_processed": trainer.processed, "tune_s": round(tune_s, 1),
           "tune_cpu_s": round(cpu_s, 1),  # CPU seconds of this process: less sensitive to the sharing
           "s_per_example": round(tune_s / max(trainer.processed, 1), 3), "prompt_dims": d,
           "epsilon_spent": round(record.epsilon, 3) if private else None,
           "delta": record.delta if private else None,
           "noise_multiplier": round(record.noise_multiplier, 4) if private else None,
           "sample_rate": round(record.sample_rate, 5) if private else None,
           # std of the noise on the mean clipped gradient, per coordinate and as a norm (relative to C)
           "noise_std_per_coord": round(record.noise_multiplier / s.batch, 6) if private else None,
           "noise_norm_over_C": round(record.noise_multiplier * math.sqrt(d) / s.batch, 4) if private else None}
    row.update(scored(trainer.prompt_model, tokenizer, task, test))
    return row


def truncation(task, tokenizer, data) -> dict:
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    return {split: f"{sum(tokenized.is_truncated(t) for t in data[split]['text'])} of {len(data[split])}"
            for split in data}


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="dp_levers", help="results file name; rows kept in runs/<name>/")
    parser.add_argument("--only", default=None, help="run only the rows whose id matches this regex")
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--bbc-max-length", type=int, default=64, help="tokens per BBC example (template included)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="write the results files from the rows so far")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows_path = Path("runs") / args.name / "rows.jsonl"
    rows_path.parent.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()] if rows_path.exists() else []
    done = {r["id"] for r in rows}
    todo = [s for s in plan() if s.id not in done and (args.only is None or re.search(args.only, s.id))]
    tasks = {"rotten_tomatoes": get_task("rotten_tomatoes"),
             "bbc_news": dataclasses.replace(get_task("bbc_news"), max_length=args.bbc_max_length)}
    loaders = {"rotten_tomatoes": load_rotten_tomatoes, "bbc_news": load_bbc_news}
    data, models = {}, {}
    stop = rows_path.parent / "STOP"
    for s in [] if args.report_only else todo:
        if stop.exists():
            print(f"{stop} exists: stopping before {s.id}", flush=True)
            break
        if s.task not in data:
            ds = loaders[s.task]()
            data[s.task] = ds["train"].shuffle(seed=0), ds["test"].select(range(min(args.test, len(ds["test"])))), ds
        if s.model not in models:
            models.clear()
            if s.model == "student":
                model, tok, folder = load_student(None, [0, 1, 28, 29])
                label = f"student {folder}" if folder else "student (layers 0,1,28,29 of the target, not distilled)"
            else:
                (model, tok), label = load_model("smollm2-135m"), "target SmolLM2-135M"
            models[s.model] = model, tok, label
        model, tok, label = models[s.model]
        task, (train, test, whole) = tasks[s.task], data[s.task]
        row = {"id": s.id, **dataclasses.asdict(s), "epsilon": "inf" if math.isinf(s.epsilon) else s.epsilon,
               "model_label": label, "max_length": task.max_length,
               "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
               "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
        print(f"[{row['date_utc']}] {s.id} (load {row['loadavg_at_start']})", flush=True)
        start = time.perf_counter()
        if s.kind == "zs":
            row.update(scored(model, tok, task, test, use_prompt=False))
            row["truncated"] = truncation(task, tok, whole)
        elif s.kind == "init":
            prompted = create_prompt_model(model, tok, task, num_virtual_tokens=s.virtual, init_text=s.init)
            row.update(scored(prompted, tok, task, test))
        elif s.kind == "gradnorm":
            row.update(gradient_norms(model, tok, task, train, s.virtual))
        else:
            row.update(tune_row(s, model, tok, task, train, test))
        row["wall_s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)
        rows.append(row)
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
    report(rows, args)


def _fmt_acc(r: dict) -> str:
    if r.get("accuracy") is None:
        return ""
    lo, hi = r["ci95"]
    return f"{100 * r['accuracy']:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def report(rows: list[dict], args) -> None:
    header = run_header()
    header["command"] = "python benchmarks/dp_levers.py" + (f" --name {args.name}" if args.name != "dp_levers" else "")
    header["date_utc"] = f"{header['date_utc']} (written; each row has its own date and load below)"
    header["loadavg_when_written"] = header.pop("loadavg_at_start")
    header["rows_file"] = f"runs/{args.name}/rows.jsonl (each row with its own date and load average)"
    order = {s.id: i for i, s in enumerate(plan())}
    rows = sorted(rows, key=lambda r: order.get(r["id"], len(order)))
    cols = ["id", "group", "model", "task", "epsilon", "epsilon_spent", "noise_multiplier", "batch", "steps",
            "examples_processed", "lr", "virtual", "clip", "noise_norm_over_C", "accuracy (95% CI)", "macro_f1",
            "tune_s", "tune_cpu_s", "s_per_example", "loadavg_at_start"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        if r["kind"] == "gradnorm":
            continue
        cells = {**r, "accuracy (95% CI)": _fmt_acc(r), "loadavg_at_start": r["loadavg_at_start"][0]}
        if r["kind"] != "tune":
            for c in ("batch", "steps", "lr", "clip", "epsilon"):
                cells[c] = ""
            cells["epsilon_spent"] = "zero-shot" if r["kind"] == "zs" else "untrained prompt"
        lines.append("| " + " | ".join("" if cells.get(c) is None else str(cells[c]) for c in cols) + " |")
    extra = [f"- per-example gradient norms of the prompt at init ({r['task']}, {r['virtual']} tokens, "
             f"{r['n_examples']} training examples): min {r['grad_norm_min']}, median {r['grad_norm_median']}, max "
             f"{r['grad_norm_max']}" for r in rows if r["kind"] == "gradnorm"]
    extra += [f"- truncated at {r['max_length']} tokens ({r['task']}): {r['truncated']}" for r in rows
              if r.get("truncated")]
    body = "\n".join(lines) + "\n\n" + "\n".join(extra) + "\n"
    path = write_results(args.name, header, rows, body)
    plot(rows, RESULTS / f"{args.name}.png")
    print(path)


def plot(rows: list[dict], path: Path) -> None:
    """ε curve per task (main settings, 95 % Wilson intervals), with zero-shot and untrained-prompt lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in ("rotten_tomatoes", "bbc_news") if any(r["task"] == t for r in rows)]
    if not tasks:
        return
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)

    def main_settings(r, examples):
        return (r["kind"] == "tune" and r["examples"] == examples and r["lr"] == 1e-2 and r["virtual"] == 4
                and not r.get("init") and not r["id"].endswith("-repeat")
                and (r["batch"] == 128 or r["group"].startswith("plan")))

    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task and r["model"] == "target"]
        series = ((2048, "DP prompt, 2,048 examples (batch 128, 4 tokens, lr 1e-2)"),
                  (4096, "DP prompt, 4,096 examples (batch 128, 4 tokens, lr 1e-2)"),
                  (8192, "DP prompt, 8,192 examples (the plan's batch per ε)"))
        for shift, (examples, name) in zip((-0.06, 0.0, 0.06), series):
            xs, ys, err = [], [], []
            for i, eps in enumerate((1.0, 3.0, 8.0, "inf")):
                for r in mine:
                    if main_settings(r, examples) and r["epsilon"] == eps:
                        xs.append(i + shift)
                        ys.append(100 * r["accuracy"])
                        err.append([100 * (r["accuracy"] - r["ci95"][0]), 100 * (r["ci95"][1] - r["accuracy"])])
            if xs:
                ax.errorbar(xs, ys, yerr=list(zip(*err)), marker="o", capsize=4, label=name)
        refs = [(next((r for r in mine if r["kind"] == "zs"), None), "--"),
                *[(next((r for r in mine if r["kind"] == "init" and r["virtual"] == v and not r.get("init")), None),
                   style) for v, style in ((4, ":"), (20, "-."))]]
        for r, style in refs:
            if r:
                what = "zero-shot" if r["kind"] == "zs" else f"untrained text-init prompt ({r['virtual']} tokens)"
                ax.axhline(100 * r["accuracy"], linestyle=style, color="grey", label=what)
        ax.set_xticks(range(4), ["1", "3", "8", "∞ (no DP)"])
        ax.set_xlabel("ε (δ = 1/(10 N))")
        ax.set_ylabel("accuracy on the first 300 test examples (%)")
        ax.set_title(f"{task}, target SmolLM2-135M")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
