"""Per-step cost of the sequence paths vs the classification path, interleaved in one process (so the shared
machine's load hits all alike), on SmolLM2-135M:

- data owner's DP tuning step on the student (layers 0,1,28,29, undistilled: the step's cost does not depend on
  the weights), batch of 8 BBC articles cut to the task's 160 tokens: bbc_news (single-token label words) vs
  bbc_news with label words that split (' business news', ' entertainment news': two rows per example) vs
  bbc_titles (generation: the title teacher-forced after the article, mean token loss);
- provider's transfer step on the target, batch of 8 public Lee news texts (first 48 words), constants
  cached: POST at the label position (bbc_news) vs at every token of the student's continuation (bbc_titles).

Run: .venv/bin/python benchmarks/sequence_step_cost.py [--rounds 5 --batch 8]
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

from peft_transfer import ClassificationTask, create_prompt_model, get_task  # noqa: E402
from peft_transfer.assets import load_labelled_dataset, load_model  # noqa: E402
from peft_transfer.assets.data_files import load_texts  # noqa: E402
from peft_transfer.prompts.config import TransferablePromptConfig  # noqa: E402
from peft_transfer.prompts.handover import save_prompt  # noqa: E402
from peft_transfer.prompts.model import load_prompt  # noqa: E402
from peft_transfer.student.layers import make_student  # noqa: E402
from peft_transfer.transfer.config import TransferConfig  # noqa: E402
from peft_transfer.transfer.run import init_target_prompt  # noqa: E402
from peft_transfer.transfer.sequence_trainer import SequenceTransferTrainer  # noqa: E402
from peft_transfer.transfer.trainer import PromptTransferTrainer  # noqa: E402
from peft_transfer.tune.config import PrivatePromptConfig  # noqa: E402
from peft_transfer.tune.trainer import PrivatePromptTrainer  # noqa: E402

SPLIT_WORDS = [[" business news"], [" entertainment news"], [" politics"], [" sport"], [" tech"]]


def split_bbc_task() -> ClassificationTask:
    base = get_task("bbc_news")
    return ClassificationTask(name="bbc_news_split_words", template=base.template, label_words=SPLIT_WORDS,
                              class_names=base.class_names, max_length=base.max_length)


def tuning_trainers(student, tok, batch: int, out: str) -> dict:
    news = load_labelled_dataset("bbc_news")["train"].shuffle(seed=0).select(range(64))
    titles = load_labelled_dataset("bbc_titles")["train"].shuffle(seed=0).select(range(64))
    setups = {"tune: classification, single-token words (bbc_news)": (PrivatePromptTrainer, get_task("bbc_news"), news),
              "tune: classification, split words (2 rows/example)": (PrivatePromptTrainer, split_bbc_task(), news),
              "tune: generation (bbc_titles, title teacher-forced)": (PrivatePromptTrainer, get_task("bbc_titles"),
                                                                     titles)}
    trainers = {}
    for name, (cls, task, data) in setups.items():
        cfg = PrivatePromptConfig(output_dir=out, max_steps=1, per_device_train_batch_size=batch, disable_tqdm=True,
                                  noise_multiplier=1.0, use_cpu=True)
        trainer = cls(student, cfg, data, task, tok)
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1
        trainers[name] = (trainer, trainer.data_collator([data[i] for i in range(batch)]))
    return trainers


def transfer_trainers(student, target, tok, batch: int, out: str) -> dict:
    public = list(load_texts("lee_news", limit=48, seed=0, max_words=48)["text"])
    trainers = {}
    for name, cls, task in (("transfer: label position (bbc_news)", PromptTransferTrainer, get_task("bbc_news")),
                            ("transfer: every continuation token (bbc_titles)", SequenceTransferTrainer,
                             get_task("bbc_titles"))):
        folder = f"{out}/{task.name}_p_s"
        save_prompt(create_prompt_model(student, tok, task, num_virtual_tokens=20), folder)
        source = load_prompt(student, folder)
        args = TransferConfig(output_dir=out, max_steps=1, per_device_train_batch_size=batch, disable_tqdm=True,
                              monitor_size=4, use_cpu=True)
        p_t = init_target_prompt(target, tok, source, TransferablePromptConfig.from_pretrained(folder), task, args)
        trainer = cls(p_t, source, args, public, task, tok)
        trainer.create_optimizer()
        trainer.model.train()
        batch_inputs = trainer.data_collator([trainer.train_dataset[i] for i in range(batch)])
        trainers[name] = (trainer, batch_inputs)
    return trainers


def step(trainer, inputs) -> None:
    if isinstance(trainer, PrivatePromptTrainer):
        trainer.training_step(trainer.model, inputs)
    else:
        trainer.compute_loss(trainer.model, inputs).backward()
    trainer.optimizer.step()
    trainer.optimizer.zero_grad()


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    header = run_header()
    target, tok = load_model("smollm2-135m")
    with tempfile.TemporaryDirectory() as out:
        student = make_student(target, keep_layers=[0, 1, 28, 29])
        trainers = tuning_trainers(student, tok, args.batch, out)
        trainers.update(transfer_trainers(make_student(target, keep_layers=[0, 1, 28, 29]), target, tok, args.batch,
                                          out))
        times = {name: [] for name in trainers}
        names = list(trainers)
        for r in range(args.rounds + 1):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                trainer, inputs = trainers[name]
                start = time.perf_counter()
                step(trainer, inputs)
                if r > 0:  # round 0 warms up
                    times[name].append(time.perf_counter() - start)
                print(name, round(time.perf_counter() - start, 3), flush=True)
        shapes = {name: list(inputs["input_ids"].shape) for name, (_, inputs) in trainers.items()}
        positions = {name: int(inputs["position_mask"].sum()) if "position_mask" in inputs else len(inputs["input_ids"])
                     for name, (_, inputs) in trainers.items() if name.startswith("transfer")}
    med = {k: statistics.median(v) for k, v in times.items()}
    base_tune, base_transfer = names[0], names[3]
    rows = []
    for name in names:
        base = base_tune if name.startswith("tune") else base_transfer
        paired = statistics.median(a / b for a, b in zip(times[name], times[base]))
        rows.append({"path": name, "median_step_s": round(med[name], 4), "ratio_to_classification": round(
            med[name] / med[base], 3), "median_paired_ratio": round(paired, 3), "batch_shape": shapes[name],
            "kl_positions": positions.get(name), "steps_s": [round(t, 3) for t in times[name]]})
    header["sizes"] = (f"batch {args.batch}, {args.rounds} interleaved rounds after 1 warm-up, 20 virtual tokens; "
                       "tuning under DP (noise multiplier 1.0, Opacus hooks) on the student, transfer on the target")
    lines = ["Step = forward + backward + optimizer step. Ratio = median step time ÷ the classification path's "
             "(tuning rows vs single-token bbc_news tuning, transfer rows vs label-position transfer); paired = median "
             "of the per-round ratios (same round, same load).", "",
             "| path | median step s | ratio | paired ratio | batch (rows × tokens) | KL positions |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['path']} | {row['median_step_s']:.3f} | {row['ratio_to_classification']:.2f} | "
                     f"{row['median_paired_ratio']:.2f} | {row['batch_shape'][0]} × {row['batch_shape'][1]} | "
                     f"{row['kl_positions'] or '–'} |")
    print(write_results("sequence_step_cost", header, rows, "\n".join(lines)))


if __name__ == "__main__":
    main()
