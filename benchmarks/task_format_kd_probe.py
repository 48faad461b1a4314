"""Probe: does KD at the label position of task-formatted *public* text make the student read the task?

The student is trained so that, on public texts rendered with a task's template (optionally after the task
description, i.e. the text the prompt is initialised from), its full-vocabulary distribution at the label
position matches the target's (T^2 KL at T). No private text and no labels are used. Measured: the student's
zero-shot accuracy on the first test examples of each task, before and during training.

    python benchmarks/task_format_kd_probe.py --steps 300 --out runs/task_kd_probe
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from common import load_student

from peft_transfer.assets import load_labelled_dataset, load_model, load_public_texts
from peft_transfer.assets.data_files import first_words
from peft_transfer.distill.loss import kl_full
from peft_transfer.evaluation.classification import evaluate_classification
from peft_transfer.prompted_forward import label_logits
from peft_transfer.tasks.defaults import get_task


def public_pool(names: list[str], words: int, seed: int) -> list[str]:
    texts = []
    for name in names:
        texts += [t for t in load_public_texts(name).map(first_words, fn_kwargs={"n": words})["text"] if t]
    random.Random(seed).shuffle(texts)
    return texts


def zero_shot(model, tokenizer, tasks, tests, describe: bool) -> dict:
    out = {}
    for name, task in tasks.items():
        data = tests[name]
        if describe:
            data = data.map(lambda r, prefix=task.description: {"text": prefix + " " + r["text"]})
        out[name + ("+desc" if describe else "")] = round(100 * evaluate_classification(
            model, tokenizer, task, data, batch_size=32).accuracy, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--student", default=None)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--words", type=int, default=48)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--public", default="wikipedia,lee_news,guardian_headlines,movie_plots")
    parser.add_argument("--out", default="runs/task_kd_probe")
    args = parser.parse_args()
    torch.manual_seed(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    teacher, tokenizer = load_model("smollm2-135m")
    teacher.eval().requires_grad_(False)
    student, _, folder = load_student(args.student, [0, 1, 28, 29])
    student.get_input_embeddings().requires_grad_(False)
    student.get_output_embeddings().requires_grad_(False)
    tasks = {n: get_task(n) for n in ("rotten_tomatoes", "bbc_news")}
    tests = {}
    for n in tasks:
        test = load_labelled_dataset(n)["test"]
        tests[n] = test.select(range(min(args.test, len(test))))
    tests["bbc_news"] = tests["bbc_news"].map(first_words, fn_kwargs={"n": 48})
    tokenized = {n: t.tokenized(tokenizer, masked_lm=False) for n, t in tasks.items()}
    pool = public_pool(args.public.split(","), args.words, 0)
    rng = random.Random(0)
    params = [p for p in student.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    T = args.temperature
    log = []

    def evaluate(step: int, loss: float | None, seconds: float) -> None:
        row = {"step": step, "loss": loss, "train_seconds": round(seconds, 1)}
        row.update(zero_shot(student, tokenizer, tasks, tests, describe=False))
        row.update(zero_shot(student, tokenizer, tasks, tests, describe=True))
        log.append(row)
        print(json.dumps(row), flush=True)
        (out / "log.json").write_text(json.dumps({"args": vars(args), "student": folder, "rows": log}, indent=1))

    evaluate(0, None, 0.0)
    teacher_row = {"step": "teacher"}
    teacher_row.update(zero_shot(teacher, tokenizer, tasks, tests, describe=False))
    teacher_row.update(zero_shot(teacher, tokenizer, tasks, tests, describe=True))
    print(json.dumps(teacher_row), flush=True)
    log.append(teacher_row)
    seconds, running = 0.0, []
    cursor = 0
    for step in range(1, args.steps + 1):
        t0 = time.perf_counter()
        texts = pool[cursor : cursor + args.batch_size]
        cursor = (cursor + args.batch_size) % max(1, len(pool) - args.batch_size)
        name = rng.choice(list(tasks))
        rendered = [(tasks[name].description + " " + t) if rng.random() < 0.5 else t for t in texts]
        batch = tokenized[name].encode(rendered)
        with torch.no_grad():
            target = label_logits(teacher, batch["input_ids"], batch["attention_mask"], batch["label_positions"])
        student.train()
        logits = label_logits(student, batch["input_ids"], batch["attention_mask"], batch["label_positions"])
        loss = kl_full(logits, target, torch.ones(len(logits)), T)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        seconds += time.perf_counter() - t0
        running.append(loss.item())
        if step % args.eval_every == 0 or step == args.steps:
            evaluate(step, round(sum(running) / len(running), 4), seconds)
            running = []


if __name__ == "__main__":
    main()
