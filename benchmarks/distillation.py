"""Distillation machinery on the real embedded LLM (SmolLM2-135M, 30 layers) -> student of layers 0, 1, 28, 29.

    .venv/bin/python benchmarks/distillation.py [--steps 30] [--batch-size 4] [--block-size 128] [--top-k 64]

Measures, on the shared CPU: training tokens/s of `DistillationTrainer` with the teacher run online (full-
vocabulary KL) and from the teacher top-k cache (cache build time reported separately); held-out perplexity
and full-vocabulary KL to the teacher of the teacher, the undistilled student and both distilled students after
N steps (same data, seed and loss weights 5/2/1, T = 2); the top-k approximation gap of the KL itself on
held-out data for several k; student size; process peak RSS after each phase. N is small (CPU budget): the
numbers show the machinery and its costs, not a converged student.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(__file__))
from common import run_header, write_results  # noqa: E402


def peak_rss_mib() -> dict[str, float]:
    """Process max RSS so far, and the 1-minute load average (the CPU is shared: read throughput with it)."""
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loadavg_1min": os.getloadavg()[0]}


@torch.no_grad()
def heldout_kl(student, teacher, tok, blocks, temperature: float, ks: tuple[int, ...] = ()) -> dict[str, float]:
    """Mean full-vocabulary T²·KL(teacher‖student) on held-out blocks, and its top-k approximations."""
    from peft_transfer.distill.data import CausalBlockCollator
    from peft_transfer.distill.loss import kl_full, kl_topk

    out = {"full": 0.0, **{f"top{k}": 0.0 for k in ks}}
    batches = 0
    for start in range(0, len(blocks), 4):
        batch = CausalBlockCollator()([blocks[i] for i in range(start, min(start + 4, len(blocks)))])
        mask = batch["attention_mask"].bool()
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        out["full"] += float(kl_full(s, t, mask, temperature))
        logp = torch.log_softmax(t.float() / temperature, -1)
        for k in ks:
            vals, ids = logp.topk(k, -1)
            out[f"top{k}"] += float(kl_topk(s, ids, vals, mask, temperature))
        batches += 1
    return {key: value / batches for key, value in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=64)
    parser.add_argument("--eval-blocks", type=int, default=12)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--corpus", default="wikipedia")
    args = parser.parse_args()
    header = run_header()
    header["note"] = ("shared 2-core CPU, other developers' jobs running: throughput numbers are indicative; "
                      f"N = {args.steps} steps only (CPU budget), not a converged student")

    from peft_transfer.assets import load_model, load_public_texts
    from peft_transfer.distill.config import DistillationConfig
    from peft_transfer.distill.data import collator_for, perplexity, prepare_blocks
    from peft_transfer.distill.teacher_cache import build_teacher_cache
    from peft_transfer.distill.trainer import DistillationTrainer
    from peft_transfer.student.layers import make_student

    keep = [0, 1, 28, 29]
    teacher, tok = load_model("smollm2-135m")
    rows: dict = {"phases_peak_rss_mib": {"teacher loaded": peak_rss_mib()}}
    n_train = args.steps * args.batch_size
    texts = load_public_texts(args.corpus, limit=1500, seed=0)["text"]
    blocks = prepare_blocks(texts, tok, args.block_size, max_blocks=n_train + args.eval_blocks)
    if len(blocks) < n_train + args.eval_blocks:
        raise SystemExit(f"corpus gives only {len(blocks)} blocks")
    train_blocks, held = blocks.select(range(n_train)), blocks.select(range(n_train, n_train + args.eval_blocks))
    tokens_per_step = args.batch_size * args.block_size
    rows["setup"] = {"teacher": "HuggingFaceTB/SmolLM2-135M-Instruct (embedded)", "kept_layers": keep,
                     "corpus": args.corpus, "train_blocks": n_train, "heldout_blocks": args.eval_blocks,
                     "block_size": args.block_size, "batch_size": args.batch_size, "steps": args.steps,
                     "learning_rate": args.learning_rate, "alphas": [5.0, 2.0, 1.0], "temperature": 2.0,
                     "top_k": args.top_k, "torch_threads": torch.get_num_threads()}

    start = time.perf_counter()
    ppl = {"teacher": perplexity(teacher, tok, held)}
    rows["teacher_eval_s"] = time.perf_counter() - start
    undistilled = make_student(teacher, keep)
    ppl["undistilled student"] = perplexity(undistilled, tok, held)
    ks = (8, 32, args.top_k, 512)
    kl_rows = {"undistilled student": heldout_kl(undistilled, teacher, tok, held, 2.0, ks)}
    with tempfile.TemporaryDirectory() as tmp:
        undistilled.save_pretrained(tmp)
        size = sum(f.stat().st_size for f in Path(tmp).glob("*.safetensors"))
    rows["student_size"] = {"parameters": undistilled.num_parameters(), "safetensors_mib": size / 2**20,
                            "teacher_parameters": teacher.num_parameters()}
    rows["phases_peak_rss_mib"]["held-out eval"] = peak_rss_mib()

    def distil(student, data, teacher_arg, cache_t, out):
        cfg = DistillationConfig(
            output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate, warmup_steps=max(1, args.steps // 10), lr_scheduler_type="cosine",
            logging_steps=max(1, args.steps // 10), save_strategy="no", use_cpu=True, report_to="none", seed=0,
            data_seed=0, disable_tqdm=False)
        trainer = DistillationTrainer(model=student, teacher=teacher_arg, args=cfg, train_dataset=data,
                                      teacher_cache_temperature=cache_t, data_collator=collator_for(student, tok))
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        logs = [h for h in trainer.state.log_history if "loss" in h]
        return {"train_s": seconds, "tokens_per_s": args.steps * tokens_per_step / seconds,
                "first_log": logs[0], "last_log": logs[-1]}

    with tempfile.TemporaryDirectory() as tmp:
        online = make_student(teacher, keep)
        rows["online"] = distil(online, train_blocks, teacher, None, tmp + "/online")
        rows["phases_peak_rss_mib"]["online distillation"] = peak_rss_mib()
        start = time.perf_counter()
        cache = build_teacher_cache(teacher, tok, train_blocks, tmp + "/cache", top_k=args.top_k, temperature=2.0,
                                    batch_size=args.batch_size, store_last_hidden=True)
        cache_s = time.perf_counter() - start
        cache_mib = sum(f.stat().st_size for f in Path(tmp, "cache").rglob("*.arrow")) / 2**20
        rows["phases_peak_rss_mib"]["cache build"] = peak_rss_mib()
        cached = make_student(teacher, keep)
        rows["cached"] = distil(cached, cache, None, 2.0, tmp + "/cached")
        rows["cached"].update({"cache_build_s": cache_s, "cache_mib": cache_mib,
                               "cache_build_tokens_per_s": n_train * args.block_size / cache_s})
        rows["phases_peak_rss_mib"]["cached distillation"] = peak_rss_mib()
    ppl["distilled, online full-vocab KL"] = perplexity(online, tok, held)
    ppl[f"distilled, cached top-{args.top_k} KL"] = perplexity(cached, tok, held)
    kl_rows["distilled, online full-vocab KL"] = heldout_kl(online, teacher, tok, held, 2.0, ks)
    kl_rows[f"distilled, cached top-{args.top_k} KL"] = heldout_kl(cached, teacher, tok, held, 2.0, ks)
    rows["perplexity"], rows["heldout_kl"] = ppl, kl_rows

    s = rows["setup"]
    md = [f"Teacher {s['teacher']} (30 layers, {rows['student_size']['teacher_parameters'] / 1e6:.1f} M params); "
          f"student layers {keep} ({rows['student_size']['parameters'] / 1e6:.1f} M params, "
          f"{rows['student_size']['safetensors_mib']:.0f} MiB safetensors, float32; the tied 49k-word embedding "
          f"is most of it). Corpus `{s['corpus']}`: {n_train} training blocks of {s['block_size']} tokens, "
          f"{args.eval_blocks} held-out blocks; {args.steps} steps of batch {args.batch_size}, lr "
          f"{args.learning_rate:g}, loss 5·T²·KL + 2·LM + 1·cos, T = 2.", "",
          "## Throughput", "",
          "| mode | training tokens/s | train time (s) | first logged loss | last logged loss |",
          "|---|---|---|---|---|"]
    for name, key in (("teacher online, full-vocab KL", "online"), (f"top-{args.top_k} cache", "cached")):
        r = rows[key]
        md.append(f"| {name} | {r['tokens_per_s']:.0f} | {r['train_s']:.0f} | {r['first_log']['loss']:.3f} | "
                  f"{r['last_log']['loss']:.3f} |")
    c = rows["cached"]
    md += ["", f"Cache build (one teacher pass over the {n_train} training blocks, top-{args.top_k} + last hidden "
           f"state): {c['cache_build_s']:.0f} s ({c['cache_build_tokens_per_s']:.0f} tokens/s), "
           f"{c['cache_mib']:.0f} MiB on disk. Speed-up of training from the cache: "
           f"{c['tokens_per_s'] / rows['online']['tokens_per_s']:.2f}x per epoch after the first; the cache pays "
           "off from the second epoch over the same corpus (or when several students share one teacher pass).",
           "", "## Held-out perplexity (next token)", "", "| model | perplexity |", "|---|---|"]
    md += [f"| {name} | {value:.2f} |" for name, value in ppl.items()]
    md += ["", "## Quality cost of top-k: held-out T²·KL(teacher ‖ student), T = 2", "",
           "Full = exact KL over the 49,152-word vocabulary; top-k = the cached approximation (teacher's top k "
           "words + one tail bucket), a lower bound of the full KL.", "",
           "| student | full | " + " | ".join(f"top-{k}" for k in ks) + " |", "|---|---|" + "---|" * len(ks)]
    md += [f"| {name} | {r['full']:.4f} | " + " | ".join(f"{r[f'top{k}']:.4f}" for k in ks) + " |"
           for name, r in kl_rows.items()]
    md += ["", "## Peak memory and machine load after each phase", "",
           "Process max RSS so far (monotone) and the 1-minute load average of the shared 2-core machine.", "",
           "| phase | peak RSS (MiB) | load average (1 min) |", "|---|---|---|"]
    md += [f"| {name} | {v['peak_rss_mib']:.0f} | {v['loadavg_1min']:.2f} |"
           for name, v in rows["phases_peak_rss_mib"].items()]
    path = write_results("distillation", header, [rows], "\n".join(md))
    print(path.read_text())


if __name__ == "__main__":
    main()
