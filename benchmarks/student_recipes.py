"""Issue #4: student quality against distillation time, per recipe, on the embedded SmolLM2-135M.

    .venv/bin/python benchmarks/student_recipes.py --recipe cut-mse --max-steps 900 --save-steps 150 \
        --eval-steps 150,450,900

Distils a 4-layer student (teacher layers 0, 1, 28, 29) with the named recipe through `run_distillation`
(the code path of `peft-transfer distill`), keeping every checkpoint and the wall time at which it was saved.
Then, for each checkpoint in `--eval-steps`, runs the embedded pipeline (`run_pipeline`, ε = ∞, no FullPT)
with that checkpoint as the student: ZS and Direct on the target, CompPT (prompt tuned on the student with
the labelled training data) and POST (that prompt transferred to the target on public text). Held-out
perplexity is measured on the corpus blocks the distillation held out. Each evaluated point appends one
line to results/student_recipes.jsonl; results/student_recipes.md is rebuilt from all lines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, TrainerCallback

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, run_header  # noqa: E402

from peft_transfer.assets import load_model  # noqa: E402
from peft_transfer.assets.data_files import load_texts  # noqa: E402
from peft_transfer.distill.data import perplexity, prepare_blocks, split_held_out  # noqa: E402
from peft_transfer.distill.recipes import RECIPES  # noqa: E402
from peft_transfer.distill.run import DistillJob, run_distillation  # noqa: E402
from peft_transfer.pipeline.config import PipelineConfig, StudentSettings  # noqa: E402
from peft_transfer.pipeline.runner import run_pipeline  # noqa: E402

JSONL = RESULTS / "student_recipes.jsonl"


class Clock(TrainerCallback):
    """Wall seconds of training (this process) at each checkpoint save."""

    def __init__(self):
        self.start, self.at_save = None, {}

    def on_train_begin(self, args, state, control, **kw):
        self.start = time.perf_counter()

    def on_save(self, args, state, control, **kw):
        self.at_save[state.global_step] = round(time.perf_counter() - self.start, 1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    p.add_argument("--keep", default="0,1,28,29")
    p.add_argument("--corpus", default="wikipedia+movie_plots+lee_news+guardian_headlines")
    p.add_argument("--max-steps", type=int, default=900)
    p.add_argument("--save-steps", type=int, default=150)
    p.add_argument("--eval-steps", default="150,450,900")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tasks", default="rotten_tomatoes")
    p.add_argument("--test", type=int, default=300)
    p.add_argument("--work", default="/tmp/student_recipes")
    p.add_argument("--max-public-words", type=int, default=64, help="0: whole public texts (up to 256 tokens)")
    args = p.parse_args()
    header = run_header()
    keep = [int(x) for x in args.keep.split(",")]
    work = Path(args.work) / args.recipe
    clock = Clock()
    job = DistillJob(teacher="smollm2-135m", corpus=args.corpus, out=str(work / "student"), keep_layers=keep,
                     max_steps=args.max_steps, batch_size=8, block_size=128, learning_rate=args.lr,
                     save_steps=args.save_steps, save_total_limit=None, callbacks=[clock], **RECIPES[args.recipe])
    started = time.perf_counter()
    summary = run_distillation(job)
    total = time.perf_counter() - started
    clock_file = work / "clock.json"  # a rerun (evaluation only) keeps the times of the run that trained
    if clock_file.is_file():
        clock.at_save = {**{int(k): v for k, v in json.loads(clock_file.read_text()).items()}, **clock.at_save}
    clock_file.write_text(json.dumps(clock.at_save))

    # the blocks run_distillation held out (same corpus, seed and split), for the checkpoints' perplexity
    _, tok = load_model("smollm2-135m")
    _, held_out = split_held_out(prepare_blocks(load_texts(args.corpus, seed=0)["text"], tok, 128), job.eval_blocks)
    ppl_teacher = summary.perplexity["teacher"]
    for step in [int(s) for s in args.eval_steps.split(",")]:
        ckpt = work / "student" / "checkpoints" / f"checkpoint-{step}"
        student = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32)
        ppl = perplexity(student, tok, held_out)
        config = PipelineConfig(tasks=args.tasks.split(","), epsilons=[math.inf], test_examples=args.test,
                                full_pt=False, student=StudentSettings(path=str(ckpt)))
        config.transfer.max_public_words = args.max_public_words
        out = work / f"pipeline-{step}"
        t0 = time.perf_counter()
        paths = run_pipeline(config, out)
        rows = json.loads(Path(paths["json"]).read_text())["results"]
        acc = {f"{r['task']}:{r['method']}": round(r["accuracy"], 4) for r in rows}
        line = {**header, "recipe": args.recipe, **RECIPES[args.recipe], "keep": keep, "corpus": args.corpus,
                "lr": args.lr, "step": step, "tokens": step * 8 * 128,
                "distill_seconds": clock.at_save.get(step), "ppl_student": round(ppl, 2),
                "ppl_teacher": round(ppl_teacher, 2), "accuracy": acc, "test_examples": args.test,
                "eval_seconds": round(time.perf_counter() - t0, 1),
                "max_public_words": args.max_public_words or None, "distill_total_seconds": round(total, 1),
                "final_losses": summary.final_losses}
        print(json.dumps(line), flush=True)
        RESULTS.mkdir(exist_ok=True)
        with open(JSONL, "a") as f:
            f.write(json.dumps(line) + "\n")
    write_markdown()


def write_markdown() -> None:
    lines = [json.loads(x) for x in JSONL.read_text().splitlines() if x.strip()]
    out = ["# student_recipes", "",
           "Student quality against distillation time (issue #4). Student: SmolLM2-135M layers 0, 1, 28, 29 "
           "(42.5 M parameters incl. the tied 28 M-parameter embedding; per-token compute about 4 of 30 layers plus "
           "the LM head, under a third of the target's). Batches of 8×128 tokens. CompPT: a 20-token prompt tuned "
           "on the student (100 steps of 16, lr 1e-3, 2000 labelled training examples, no DP); POST: that prompt "
           "transferred to the target (100 steps of 8 on 200 public texts cut to their first `max_public_words` words "
           "(none: whole texts, up to 256 tokens), α = 0.5, T = 2); ZS and Direct for "
           "reference. Accuracy on the first `test_examples` of each test split. Distillation time is the wall "
           "time of training up to the checkpoint on the machine in `machine` (load at start in `loadavg`).", "",
           "| recipe | corpus | lr | steps | distill min | ppl student / teacher | task | ZS | CompPT | Direct | "
           "POST | public words | command | date |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in lines:
        tasks = sorted({k.split(":")[0] for k in x["accuracy"]})
        for task in tasks:
            a = {m: x["accuracy"].get(f"{task}:{m}") for m in ("ZS", "CompPT", "Direct", "POST")}
            cell = {m: f"{100 * v:.1f}" if v is not None else "–" for m, v in a.items()}
            minutes = f"{x['distill_seconds'] / 60:.1f}" if x.get("distill_seconds") else "?"
            out.append(f"| {x['recipe']} | {x['corpus']} | {x['lr']:g} | {x['step']} | {minutes} | "
                       f"{x['ppl_student']:.1f} / {x['ppl_teacher']:.1f} | {task} | {cell['ZS']} | {cell['CompPT']} | "
                       f"{cell['Direct']} | {cell['POST']} | {x.get('max_public_words') or 'all'} | "
                       f"`{x['command']}` | {x['date_utc']}, load "
                       f"{x['loadavg_at_start'][0]} |")
    (RESULTS / "student_recipes.md").write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
