"""POST transfer on the embedded LLM: step cost (cached vs uncached vs plain prompt tuning) and, with
--table, the ZS / FullPT / CompPT / Direct / POST comparison on Rotten Tomatoes.

    .venv/bin/python benchmarks/transfer.py [--cost-steps 4] [--table --n-test 200 ...]

Target: SmolLM2-135M-Instruct (30 layers). Student: the target with layers 0,1,28,29 kept and NOT distilled
(`make_student`), so transfer is expected to be weak. Public set: movie_plots (disjoint from the reviews),
each plot cut to its first `--public-words` words to keep CPU time down. Everything is scaled down to fit a
shared 2-core CPU; the numbers are what this run measured, with the sizes stated next to them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import torch  # noqa: E402
from common import run_header, write_results  # noqa: E402


def _public(n: int, words: int, seed: int) -> list[str]:
    from peft_transfer.assets import load_public_texts

    texts = load_public_texts("movie_plots", limit=n, seed=seed)["text"]
    return [" ".join(t.split()[:words]) for t in texts]


def _transfer_trainer(tokenizer, task, texts, batch, cached, out):
    from peft_transfer import create_prompt_model
    from peft_transfer.transfer.config import TransferConfig
    from peft_transfer.transfer.trainer import PromptTransferTrainer

    p_s = create_prompt_model(_student(_fresh_target()), tokenizer, task, num_virtual_tokens=20)
    p_t = create_prompt_model(_fresh_target(), tokenizer, task, num_virtual_tokens=20)
    args = TransferConfig(output_dir=out, max_steps=1, per_device_train_batch_size=batch, monitor_size=0,
                          save_strategy="no", disable_tqdm=True, cache_constants=cached)
    start = time.perf_counter()
    trainer = PromptTransferTrainer(p_t, p_s, args, texts, task, tokenizer)
    return trainer, time.perf_counter() - start


def _transfer_step(trainer, optimizer, features):
    """What one Trainer step computes: collate, compute_loss (the forward(s)), backward, Adam."""
    batch = trainer.data_collator(features)
    loss = trainer.compute_loss(trainer.model, batch)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _plain_step(model, tokenized, optimizer, texts, num_classes):
    """One prompt-tuning step on the target: class scores at the label position, cross-entropy, Adam
    (labels arbitrary: only the cost is measured)."""
    from peft_transfer import label_logits

    scores = tokenized.class_scores(label_logits(model, **tokenized.encode(texts)))
    loss = torch.nn.functional.cross_entropy(scores, torch.arange(len(texts)) % num_classes)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def cost_section(args, tokenizer, task) -> tuple[list[dict], str]:
    """The three step kinds timed in interleaved rounds (the shared machine's load drifts), same texts."""
    from peft_transfer import create_prompt_model

    texts = _public(args.cost_steps * args.batch_size, args.public_words, args.seed)
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    mean_tokens = statistics.mean(len(tokenized.encode([t])["input_ids"][0]) for t in texts)
    with tempfile.TemporaryDirectory() as tmp:
        cached, cache_s = _transfer_trainer(tokenizer, task, texts, args.batch_size, True, tmp)
        uncached, _ = _transfer_trainer(tokenizer, task, texts, args.batch_size, False, tmp)
    plain = create_prompt_model(_fresh_target(), tokenizer, task, num_virtual_tokens=20)
    plain.eval()

    def adam(model):
        return torch.optim.Adam([w for w in model.parameters() if w.requires_grad], lr=1e-3)

    opts = {"cached": adam(cached.model), "uncached": adam(uncached.model), "plain": adam(plain)}
    times = {k: [] for k in opts}
    for step in range(args.cost_steps + 1):  # round 0 is a warm-up
        idx = range(step * args.batch_size % len(texts), step * args.batch_size % len(texts) + args.batch_size)
        chunk = [texts[i % len(texts)] for i in idx]
        for kind in ("cached", "uncached", "plain"):
            start = time.perf_counter()
            if kind == "plain":
                _plain_step(plain, tokenized, opts[kind], chunk, task.num_classes)
            else:
                trainer = cached if kind == "cached" else uncached
                features = [{"text": t} for t in chunk]
                if kind == "cached":  # the cached rows of these texts
                    rows = {t: trainer.train_dataset[i] for i, t in enumerate(trainer.train_dataset.texts)}
                    features = [rows[t] for t in chunk]
                _transfer_step(trainer, opts[kind], features)
            if step:
                times[kind].append(time.perf_counter() - start)
    base = statistics.median(times["plain"])
    names = {"cached": "transfer step, cached constants (1 target forward + backward)",
             "uncached": "transfer step, uncached (+ student x2 and target forwards)",
             "plain": "plain prompt-tuning step on the target"}
    rows = [{"what": names[k], "step_s_median": statistics.median(v), "ratio_to_plain": statistics.median(v) / base,
             "step_s_all": [round(t, 3) for t in v]} for k, v in times.items()]
    lines = [f"Batch {args.batch_size} public texts (movie_plots, first {args.public_words} words; mean "
             f"{mean_tokens:.0f} tokens with the template), 20 virtual tokens, {args.cost_steps} interleaved rounds "
             f"after one warm-up round, median step time. Cache build for {len(texts)} texts (student+p_s, student, "
             f"target forwards, once): {cache_s:.1f} s.", "",
             "| step | median s | × plain |", "|---|---|---|"]
    lines += [f"| {r['what']} | {r['step_s_median']:.2f} | {r['ratio_to_plain']:.2f} |" for r in rows]
    return rows, "\n".join(lines) + "\n"


def table_section(args, tokenizer, task) -> tuple[list[dict], str]:
    from peft_transfer import save_prompt
    from peft_transfer.assets import load_rotten_tomatoes
    from peft_transfer.evaluation.comparison import compare_prompts, comparison_markdown, gap_closure
    from peft_transfer.transfer.config import TransferConfig
    from peft_transfer.transfer.run import transfer_prompt

    data = load_rotten_tomatoes()
    train = data["train"].shuffle(seed=args.seed).select(range(args.n_train))
    test = data["test"].select(range(args.n_test))
    tuner = _tuner()
    with tempfile.TemporaryDirectory() as tmp:
        timings = {}
        start = time.perf_counter()
        p_s = tuner(_student(_fresh_target()), tokenizer, task, train, args, os.path.join(tmp, "tune_s"))
        save_prompt(p_s, os.path.join(tmp, "p_s"))
        timings["tune_student_s"] = time.perf_counter() - start
        start = time.perf_counter()
        fresh_target = _fresh_target()
        p_full = tuner(fresh_target, tokenizer, task, train, args, os.path.join(tmp, "tune_t"))
        save_prompt(p_full, os.path.join(tmp, "full"))
        timings["tune_target_s"] = time.perf_counter() - start
        start = time.perf_counter()
        config = TransferConfig(output_dir=os.path.join(tmp, "p_t"), max_steps=args.transfer_steps,
                                per_device_train_batch_size=args.batch_size, learning_rate=args.transfer_lr,
                                alpha=args.alpha, monitor_size=32, monitor_steps=max(args.transfer_steps // 4, 1),
                                save_strategy="no", seed=args.seed, public_dataset_name="movie_plots",
                                logging_steps=5)
        student_fresh = _student(_fresh_target())
        transfer_prompt(os.path.join(tmp, "p_s"), student_fresh, _fresh_target(), tokenizer,
                        _public(args.n_public, args.public_words, args.seed), config)
        timings["transfer_s"] = time.perf_counter() - start
        import shutil

        plot = os.path.join(os.path.dirname(__file__), "results", f"{args.name}_monitor.png")
        shutil.copy(os.path.join(tmp, "p_t", "transfer_monitor.png"), plot)
        start = time.perf_counter()
        rows = compare_prompts(_fresh_target(), tokenizer, task, test, student=_student(_fresh_target()),
                               source_prompt=os.path.join(tmp, "p_s"),
                               transferred_prompt=os.path.join(tmp, "p_t"),
                               full_prompts=[os.path.join(tmp, "full")], progress=True)
        timings["evaluate_s"] = time.perf_counter() - start
    out = [{**r.__dict__, "prompt": None} for r in rows]
    text = (f"Rotten Tomatoes, {args.n_train} private training reviews, {args.n_test} test reviews (first of the "
            f"embedded test split), seed {args.seed}, 20 virtual tokens. p_s and FullPT: {args.tune_steps} steps of "
            f"{args.batch_size} at lr {args.tune_lr} ({tuner.__doc__.strip()}), no DP. POST: {args.transfer_steps} "
            f"steps of {args.batch_size}, lr {args.transfer_lr}, alpha {args.alpha}, T 2, {args.n_public} movie "
            f"plots (first {args.public_words} words). Student: layers 0,1,28,29 of the target, NOT distilled.\n\n"
            + comparison_markdown(rows)
            + "\nTimings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items())
            + f"\n\nMonitor plot (public held-out loss and agreement): {args.name}_monitor.png\n")
    out.append({"timings_s": timings, "gap_closure": gap_closure(rows)})
    return out, text


_TARGET = {}


def _fresh_target():
    from peft_transfer.assets import load_model

    model, tok = load_model("smollm2-135m")
    _TARGET["tokenizer"] = tok
    return model


def _student(target):
    from peft_transfer.student.layers import make_student

    return make_student(target, keep_layers=[0, 1, 28, 29])


def _tuner():
    """Prompt tuning from issue #5 (`tune_prompt`) when present, else a labelled minimal loop."""
    try:
        from peft_transfer.tune.config import PrivatePromptConfig
        from peft_transfer.tune.trainer import tune_prompt
    except ImportError:
        tune_prompt = None

    if tune_prompt is not None:
        def tune(model, tokenizer, task, train, args, out):
            """peft_transfer.tune.trainer.tune_prompt"""
            config = PrivatePromptConfig(output_dir=out, max_steps=args.tune_steps,
                                         per_device_train_batch_size=args.batch_size, learning_rate=args.tune_lr,
                                         seed=args.seed, save_strategy="no", disable_tqdm=True)
            return tune_prompt(model, tokenizer, task, train, config)
        tune.__doc__ = "peft_transfer.tune.trainer.tune_prompt"
        return tune

    def fallback(model, tokenizer, task, train, args, out):
        """fallback: plain Adam loop on class-score cross-entropy (tune_prompt was not available)"""
        from peft_transfer import create_prompt_model, label_logits

        p = create_prompt_model(model, tokenizer, task, num_virtual_tokens=20)
        tokenized = task.tokenized(tokenizer, masked_lm=False)
        opt = torch.optim.Adam([w for w in p.parameters() if w.requires_grad], lr=args.tune_lr)
        g = torch.Generator().manual_seed(args.seed)
        p.eval()
        for _ in range(args.tune_steps):
            idx = torch.randint(len(train), (args.batch_size,), generator=g).tolist()
            rows = train.select(idx)
            scores = tokenized.class_scores(label_logits(p, **tokenized.encode(rows["text"])))
            loss = torch.nn.functional.cross_entropy(scores, torch.tensor(rows["label"]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        return p
    return fallback


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost-steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--public-words", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--table", action="store_true", help="also the ZS/FullPT/CompPT/Direct/POST table")
    parser.add_argument("--skip-cost", action="store_true")
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--n-public", type=int, default=160)
    parser.add_argument("--tune-steps", type=int, default=40)
    parser.add_argument("--tune-lr", type=float, default=1e-2)
    parser.add_argument("--transfer-steps", type=int, default=40)
    parser.add_argument("--transfer-lr", type=float, default=1e-2)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--name", default="transfer", help="results file name under benchmarks/results/")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on the shared 2-core machine 2 threads thrash when others run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    header = run_header()
    from peft_transfer.tasks.defaults import get_task

    task = get_task("rotten_tomatoes")
    _fresh_target()
    tokenizer = _TARGET["tokenizer"]
    rows, text = [], ""
    if not args.skip_cost:
        cost_rows, cost_text = cost_section(args, tokenizer, task)
        rows += cost_rows
        text += "## Step cost\n\n" + cost_text
    if args.table:
        table_rows, table_text = table_section(args, tokenizer, task)
        rows += table_rows
        text += "\n## Comparison on Rotten Tomatoes (scaled down)\n\n" + table_text
    header["note"] = "shared 2-core CPU (other developers' jobs running): timings are indicative"
    path = write_results(args.name, header, rows, text)
    print(path.read_text())


if __name__ == "__main__":
    main()
