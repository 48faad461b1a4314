"""POST at every position of a teacher-forced sequence: generation (the student+p_s continuation of each public
input) and label words that split (every label-word token); the classic one-position transfer as a special case."""

import json
from pathlib import Path

import pytest
import torch
from tiny_models import make_tokenizer
from transfer_helpers import public_texts, related_models

from peft_transfer import (
    ClassificationTask,
    PeftTransferError,
    TransferablePromptConfig,
    create_prompt_model,
    get_task,
    load_prompt,
)
from peft_transfer.prompts.handover import save_prompt
from peft_transfer.tasks.decoding import generate_continuations
from peft_transfer.tasks.generation import GenerationTask
from peft_transfer.transfer.config import TransferConfig
from peft_transfer.transfer.monitor import HISTORY_NAME
from peft_transfer.transfer.run import init_target_prompt, transfer_prompt
from peft_transfer.transfer.sequence_trainer import SequenceTransferTrainer
from peft_transfer.transfer.trainer import PromptTransferTrainer

GEN = GenerationTask(name="topics", template="Article: {text}\nTopic:", max_new_tokens=5, max_length=48)
MULTI = ClassificationTask(name="multi", template="Review: {text}\nSentiment:",
                           label_words=[[" awful", " bad"], [" great", " fantastic"]])


pytestmark = pytest.mark.usefixtures("one_thread")


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), max_steps=10, logging_steps=5, monitor_steps=5, save_strategy="no",
                per_device_train_batch_size=8, learning_rate=0.05, disable_tqdm=True, monitor_size=8)
    return TransferConfig(**{**base, **kw})


def _source(tmp_path, task, arch="llama", noise=1.0, prompt_noise=1.0):
    """A saved p_s (text init plus noise) on a peaked tiny student; returns (folder, student, target)."""
    tok = make_tokenizer()
    student, target = related_models(arch, noise=noise)
    p_s = create_prompt_model(student, tok, task, num_virtual_tokens=4)
    with torch.no_grad():
        weight = p_s.prompt_encoder["default"].embedding.weight
        weight.add_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(3)) * prompt_noise)
    folder = str(tmp_path / "source")
    save_prompt(p_s, folder)
    return folder, related_models(arch, noise=noise)[0], target


def _trainer(tmp_path, task, cls=SequenceTransferTrainer, arch="llama", target_is_student=False, n=24,
             prompt_noise=1.0, **kw):
    tok = make_tokenizer()
    folder, student, target = _source(tmp_path, task, arch, prompt_noise=prompt_noise)
    if target_is_student:
        _, target = related_models(arch, noise=0.0)
    args = _args(tmp_path, **kw)
    source = load_prompt(student, folder)
    p_t = init_target_prompt(target, tok, source, TransferablePromptConfig.from_pretrained(folder), task, args)
    return cls(p_t, source, args, public_texts(n), task, tok)


def _batch(trainer, k=6):
    trainer.model.train()  # as the Trainer does: the wrapper keeps the models in eval mode (no dropout)
    return trainer.data_collator([trainer.train_dataset[i] for i in range(k)])


@pytest.mark.parametrize("task,arch", [(GEN, "llama"), (MULTI, "llama"), (MULTI, "roberta"), (GEN, "gpt2")])
def test_loss_is_zero_when_target_is_student_and_p_t_is_p_s(tmp_path, task, arch):
    trainer = _trainer(tmp_path, task, arch=arch, target_is_student=True, prompt_init="source", prompt_noise=5.0)
    batch = _batch(trainer)
    assert batch["position_mask"].sum() > 6  # several positions per public text
    assert trainer.compute_loss(trainer.model, batch).abs().item() < 1e-5
    other = _trainer(tmp_path / "b", task, arch=arch, target_is_student=True, prompt_noise=5.0)
    # p_t = text init differs from p_s; a tiny random masked LM barely reads the prompt's content (4e-6 here)
    assert other.compute_loss(other.model, _batch(other)).item() > (1e-7 if arch == "roberta" else 1e-3)


def test_generation_rows_are_the_student_continuations(tmp_path):
    tok = make_tokenizer()
    folder, student, _ = _source(tmp_path, GEN)
    source = load_prompt(student, folder)
    texts = public_texts(6)
    tokenized = GEN.tokenized(tok, masked_lm=False)
    rows = tokenized.public_rows(texts, source)
    continuations = generate_continuations(source, tok, GEN, texts)
    for text, (row,), cont in zip(texts, rows, continuations):
        prefix = tok(tokenized.render(text))["input_ids"]
        assert row.ids == prefix + cont[:-1] and row.targets == cont
        assert row.positions == list(range(len(prefix) - 1, len(prefix) - 1 + len(cont)))
    assert any(len(c) > 1 for c in continuations)


def test_multi_token_rows_count_each_position_once(tmp_path):
    trainer = _trainer(tmp_path, MULTI, n=8)
    per_text = 1 + (3 - 1) + (6 - 1)  # label position, then the rest of " awful" (3 tokens) and " fantastic" (6)
    assert trainer.num_positions == per_text * trainer.num_train_texts


def test_cached_and_uncached_losses_agree(tmp_path):
    cached = _trainer(tmp_path / "a", GEN)
    uncached = _trainer(tmp_path / "b", GEN, cache_constants=False)
    a, b = _batch(cached), _batch(uncached)
    assert "constants" in a and "constants" not in b
    assert a["constants"].shape == (int(a["position_mask"].sum()), 3, len(make_tokenizer()))
    loss_a, loss_b = cached.compute_loss(cached.model, a), uncached.compute_loss(uncached.model, b)
    assert loss_a.item() > 1e-3
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-5, atol=1e-6)


def test_one_position_per_text_is_the_classic_transfer(tmp_path):
    """On single-token label words the sequence trainer reduces to POST at the label position."""
    task = get_task("rotten_tomatoes")
    classic = _trainer(tmp_path / "a", task, cls=PromptTransferTrainer)
    sequence = _trainer(tmp_path / "b", task)
    assert sequence.num_positions == sequence.num_train_texts
    a = classic.compute_loss(classic.model, _batch(classic))
    b = sequence.compute_loss(sequence.model, _batch(sequence))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task", [GEN, MULTI])
def test_transfer_prompt_end_to_end(tmp_path, task):
    tok = make_tokenizer()
    folder, student, target = _source(tmp_path, task, noise=0.3)
    args = _args(tmp_path, max_steps=40, monitor_steps=20, learning_rate=0.1, monitor_size=8)
    p_t = transfer_prompt(folder, student, target, tok, public_texts(40), args)
    record = p_t.peft_config["default"].transfer
    assert record.steps == 40 and "every" in record.distilled_positions
    saved = TransferablePromptConfig.from_pretrained(args.output_dir)
    assert saved.task.kind == task.kind and saved.transfer.distilled_positions == record.distilled_positions
    history = json.loads(Path(args.output_dir, HISTORY_NAME).read_text())["monitor"]
    assert [e["step"] for e in history] == [0, 20, 40]
    assert history[-1]["monitor_loss"] < 0.8 * history[0]["monitor_loss"]
    assert 0.0 <= history[-1]["monitor_agreement"] <= 1.0


def test_loss_over_classes_is_refused_where_one_position_does_not_score(tmp_path):
    with pytest.raises(PeftTransferError, match="loss_over 'classes' needs label words of one token"):
        _trainer(tmp_path, MULTI, loss_over="classes")
