"""Probe for issue #4: which distillation target makes a useful 4-layer student of SmolLM2-135M fastest?

    .venv/bin/python benchmarks/student_probe.py --recipe hidden --minutes 10

A hand-written loop (not the DistillationTrainer) so that recipes can be compared before they become
trainer options. Student = teacher layers 0, 1, 28, 29 (+ embeddings, final norm, tied head). Recipes:
- `hidden`: train the lower layers so that the student's hidden state at the cut (input of its first
  upper layer) matches the teacher's hidden state at the same depth (input of teacher layer 28); dense,
  per-token, no LM head in the backward pass;
- `kl`: KL(teacher || student) at T=2 on full-vocabulary logits + LM loss (the paper's main terms);
- `hidden+kl`: both.
After the time budget: held-out perplexity, student zero-shot and prompt-tuned (CompPT) accuracy on
Rotten Tomatoes. Results append to benchmarks/results/student_probe.jsonl.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from common import RESULTS, run_header  # noqa: E402

from peft_transfer import create_prompt_model, evaluate_classification, get_task, label_logits  # noqa: E402
from peft_transfer.assets import load_model, load_public_texts, load_rotten_tomatoes  # noqa: E402


def layer_dropped(teacher, keep):
    student = copy.deepcopy(teacher)
    student.model.layers = torch.nn.ModuleList([student.model.layers[i] for i in keep])
    for new, layer in enumerate(student.model.layers):
        layer.self_attn.layer_idx = new
    student.config.num_hidden_layers = len(keep)
    if getattr(student.config, "layer_types", None):
        student.config.layer_types = [teacher.config.layer_types[i] for i in keep]
    return student


def blocks(tokenizer, texts, size):
    ids = []
    for t in texts:
        ids.extend(tokenizer(t + tokenizer.eos_token, add_special_tokens=False)["input_ids"])
    n = len(ids) // size
    return torch.tensor(ids[: n * size]).view(n, size)


@torch.no_grad()
def perplexity(model, data, batch=8):
    total, count = 0.0, 0
    for i in range(0, len(data), batch):
        x = data[i : i + batch]
        out = model(input_ids=x, labels=x)
        total += out.loss.item() * x.numel()
        count += x.numel()
    return math.exp(total / count)


def tune_prompt_quick(model, tok, task, train, steps, batch, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    pm = create_prompt_model(model, tok, task, num_virtual_tokens=20)
    tokenized = task.tokenized(tok, masked_lm=False)
    opt = torch.optim.Adam([p for p in pm.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(seed)
    pm.train()
    for _ in range(steps):
        idx = torch.randint(len(train), (batch,), generator=g).tolist()
        rows = train.select(idx)
        enc = tokenized.encode(rows["text"])
        scores = tokenized.class_scores(label_logits(pm, **enc))
        loss = F.cross_entropy(scores, torch.tensor(rows["label"]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    pm.eval()
    return pm


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", choices=["hidden", "kl", "hidden+kl", "none"], default="hidden")
    p.add_argument("--keep", default="0,1,28,29")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--block", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--train-upper", action="store_true",
                   help="also train the upper layers (default: lower only for hidden)")
    p.add_argument("--corpus", default="movie_plots,wikipedia,lee_news")
    p.add_argument("--tune-steps", type=int, default=100)
    p.add_argument("--test", type=int, default=300)
    args = p.parse_args()
    header = run_header()
    torch.manual_seed(0)
    teacher, tok = load_model("smollm2-135m")
    keep = [int(x) for x in args.keep.split(",")]
    student = layer_dropped(teacher, keep)
    n_lower = next(i for i, (a, b) in enumerate(zip(keep, keep[1:])) if b != a + 1) + 1  # layers before the gap
    teacher_cut = keep[n_lower]  # teacher hidden_states index = input of that teacher layer
    texts = []
    for name in args.corpus.split(","):
        texts += load_public_texts(name)["text"]
    data = blocks(tok, texts, args.block)
    g = torch.Generator().manual_seed(0)
    data = data[torch.randperm(len(data), generator=g)]
    held_out, data = data[:24], data[24:]
    for prm in student.parameters():
        prm.requires_grad_(False)
    trainable = [student.model.layers[i] for i in range(n_lower)]
    if args.recipe != "hidden" or args.train_upper:
        trainable += list(student.model.layers[n_lower:]) + [student.model.norm]
    params = [q for m in trainable for q in m.parameters()]
    for q in params:
        q.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    trainable_m = sum(q.numel() for q in params) / 1e6
    print(f"blocks {len(data)}, lower {n_lower}, teacher cut {teacher_cut}, trainable {trainable_m:.1f}M")
    start, step, log = time.perf_counter(), 0, []
    student.train()
    while args.recipe != "none" and time.perf_counter() - start < args.minutes * 60:
        x = data[(step * args.batch) % len(data):][: args.batch]
        with torch.no_grad():
            t_out = teacher(input_ids=x, output_hidden_states=True, use_cache=False,
                            logits_to_keep=0 if "kl" in args.recipe else 1)
        loss = torch.zeros(())
        if "hidden" in args.recipe:
            s_h = student.model(input_ids=x, output_hidden_states=True, use_cache=False).hidden_states[n_lower]
            t_h = t_out.hidden_states[teacher_cut]
            loss = loss + F.mse_loss(s_h, t_h) / t_h.pow(2).mean()
        if "kl" in args.recipe:
            s_logits = student(input_ids=x, use_cache=False).logits
            T = 2.0
            kl = F.kl_div(F.log_softmax(s_logits / T, -1), F.log_softmax(t_out.logits / T, -1), log_target=True,
                          reduction="batchmean") * T * T / x.shape[1]
            lm = F.cross_entropy(s_logits[:, :-1].reshape(-1, s_logits.shape[-1]), x[:, 1:].reshape(-1))
            loss = loss + 5.0 * kl + 2.0 * lm
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        if step % 20 == 0:
            el = time.perf_counter() - start
            print(f"step {step} {el:.0f}s loss {loss.item():.4f}", flush=True)
            log.append((step, round(el, 1), round(loss.item(), 5)))
    train_s = time.perf_counter() - start
    student.eval()
    result = {**header, "recipe": args.recipe, "keep": keep, "steps": step, "train_seconds": round(train_s, 1),
              "tokens": step * args.batch * args.block, "lr": args.lr, "corpus": args.corpus,
              "train_upper": args.train_upper, "log": log}
    result["ppl_student"] = perplexity(student, held_out)
    result["ppl_teacher"] = perplexity(teacher, held_out)
    task = get_task("rotten_tomatoes")
    rt = load_rotten_tomatoes()
    test = rt["test"].select(range(args.test))
    result["student_zero_shot"] = evaluate_classification(student, tok, task, test).accuracy
    pm = tune_prompt_quick(student, tok, task, rt["train"], args.tune_steps, 16)
    result["compt"] = evaluate_classification(pm, tok, task, test).accuracy
    result["tune_steps"] = args.tune_steps
    print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=1))
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "student_probe.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
