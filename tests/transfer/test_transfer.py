"""POST transfer (stage 3) on tiny models: the loss, the cache, what trains, the API's refusals, the artifact."""

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import PeftModel
from tiny_models import make_model, make_tokenizer
from transfer_helpers import public_texts, related_models, saved_source_prompt

from peft_transfer import (
    PeftTransferError,
    TransferablePromptConfig,
    create_prompt_model,
    get_task,
    load_prompt,
    save_prompt,
)
from peft_transfer.evaluation.comparison import eq6_alpha_oracle
from peft_transfer.prompts.handover import PROMPT_FILES
from peft_transfer.student.layers import make_student
from peft_transfer.transfer.config import TransferConfig
from peft_transfer.transfer.loss import transfer_loss, transfer_loss_terms
from peft_transfer.transfer.monitor import HISTORY_NAME, PLOT_NAME
from peft_transfer.transfer.run import init_target_prompt, transfer_prompt
from peft_transfer.transfer.trainer import PromptTransferTrainer

TASK = get_task("rotten_tomatoes")


pytestmark = pytest.mark.usefixtures("one_thread")


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), max_steps=10, logging_steps=5, monitor_steps=5, save_strategy="no",
                per_device_train_batch_size=8, learning_rate=0.05, disable_tqdm=True, monitor_size=16)
    return TransferConfig(**{**base, **kw})


def _trainer(tmp_path, tokenizer, target_is_student=False, **kw):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    if target_is_student:
        _, target = related_models(noise=0.0)
    args = _args(tmp_path, **kw)
    source = load_prompt(student, folder)
    config = TransferablePromptConfig.from_pretrained(folder)
    p_t = init_target_prompt(target, tokenizer, source, config, TASK, args)
    return PromptTransferTrainer(p_t, source, args, public_texts(48), TASK, tokenizer)


def _batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(6)])


def test_loss_equals_hand_computation():
    torch.manual_seed(0)
    tp, sp, su, tu = (torch.randn(3, 50) * 3 for _ in range(4))
    T, alpha = 2.0, 0.3

    def kl(p_logits, q_logits):
        p, q = torch.softmax(p_logits / T, -1), torch.softmax(q_logits / T, -1)
        return (p * (p.log() - q.log())).sum(-1).mean() * T * T

    expected = (1 - alpha) * kl(sp, tp) + alpha * kl(sp - su, tp - tu)
    torch.testing.assert_close(transfer_loss(tp, sp, su, tu, alpha, T), expected)
    l1, l2 = transfer_loss_terms(tp, sp, su, tu, T)
    torch.testing.assert_close(l1, kl(sp, tp))
    torch.testing.assert_close(l2, kl(sp - su, tp - tu))
    assert transfer_loss(sp, sp, su, su, alpha, T).abs() < 1e-6
    assert l1 > 0.1 and l2 > 0.1


def test_loss_is_zero_when_target_is_student_and_p_t_is_p_s(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, target_is_student=True, prompt_init="source")
    loss = trainer.compute_loss(trainer.model, _batch(trainer))
    assert loss.abs().item() < 1e-5
    # and clearly not zero with the text init
    other = _trainer(tmp_path / "b", tokenizer, target_is_student=True)
    assert other.compute_loss(other.model, _batch(other)).item() > 1e-3


def test_cached_and_uncached_losses_agree(tmp_path, tokenizer):
    cached = _trainer(tmp_path / "a", tokenizer)
    uncached = _trainer(tmp_path / "b", tokenizer, cache_constants=False)
    assert "constants" in _batch(cached) and "constants" not in _batch(uncached)
    assert _batch(cached)["constants"].shape == (6, 3, len(tokenizer))
    a = cached.compute_loss(cached.model, _batch(cached))
    b = uncached.compute_loss(uncached.model, _batch(uncached))
    assert a.item() > 1e-3
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_loss_over_classes_compares_the_class_scores_only(tmp_path, tokenizer):
    classes = _trainer(tmp_path / "a", tokenizer, loss_over="classes")
    batch = _batch(classes)
    sp, su, tu = batch["constants"].unbind(1)
    tp = classes.model(batch["input_ids"], batch["attention_mask"], batch["label_positions"])
    scores = classes.tokenized.class_scores
    expected = transfer_loss(scores(tp), scores(sp), scores(su), scores(tu), 0.5, 2.0)
    torch.testing.assert_close(classes.compute_loss(classes.model, batch), expected)
    vocab = _trainer(tmp_path / "b", tokenizer)
    assert abs(vocab.compute_loss(vocab.model, _batch(vocab)).item() - expected.item()) > 1e-3
    # the monitor's loss is the same loss, and the record says which one trained p_t
    assert (classes.monitor.loss_over, vocab.monitor.loss_over) == ("classes", "vocab")
    folder, student, target = saved_source_prompt(tmp_path / "c", tokenizer)
    transfer_prompt(folder, student, target, tokenizer, public_texts(24), _args(tmp_path / "c", max_steps=2,
                                                                                 monitor_size=4, loss_over="classes"))
    record = TransferablePromptConfig.from_pretrained(str(tmp_path / "c" / "out")).transfer
    assert record.loss_over == "classes" and "loss_over" in record.to_dict()
    assert "loss_over" not in dataclasses.replace(record, loss_over="vocab").to_dict()  # old records unchanged
    with pytest.raises(PeftTransferError, match="loss_over must be one of"):
        _args(tmp_path, loss_over="labels")


def test_only_p_t_gets_gradients(tmp_path, tokenizer):
    trainer = _trainer(tmp_path, tokenizer, cache_constants=False)
    trainer.compute_loss(trainer.model, _batch(trainer)).backward()
    p_t = trainer.prompt_model.prompt_encoder["default"].embedding.weight
    assert p_t.grad is not None and p_t.grad.abs().sum() > 0
    trainable = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert trainable and all("prompt_encoder" in n for n in trainable)
    assert all(p.grad is None for p in trainer.student.parameters())
    assert all(p.grad is None for p in trainer.prompt_model.get_base_model().parameters())


def test_api_has_no_place_for_labels_and_refuses_empty_sets(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    args = _args(tmp_path, max_steps=2)
    source = load_prompt(student, folder)
    config = TransferablePromptConfig.from_pretrained(folder)
    p_t = init_target_prompt(target, tokenizer, source, config, TASK, args)
    with pytest.raises(TypeError):
        PromptTransferTrainer(p_t, source, args, public_texts(16), TASK, tokenizer, eval_dataset=public_texts(4))
    with pytest.raises(TypeError):
        transfer_prompt(folder, student, target, tokenizer, public_texts(16), args, train_dataset=None)
    labelled = Dataset.from_dict({"text": public_texts(16), "label": [0, 1] * 8})
    with pytest.warns(UserWarning, match="ignored"):
        trainer = PromptTransferTrainer(p_t, source, args, labelled, TASK, tokenizer)
    assert "label" not in trainer.train_dataset[0]
    for empty in ([], ["  ", ""], Dataset.from_dict({"text": []})):
        with pytest.raises(PeftTransferError, match="empty"):
            PromptTransferTrainer(p_t, source, args, empty, TASK, tokenizer)
    with pytest.raises(PeftTransferError, match="list of strings"):
        PromptTransferTrainer(p_t, source, args, [{"text": "a", "label": 1}], TASK, tokenizer)


def test_transfer_lowers_the_loss_and_raises_agreement(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer, noise=0.3)
    args = _args(tmp_path, max_steps=60, monitor_steps=20, monitor_size=32)
    transfer_prompt(folder, student, target, tokenizer, public_texts(128), args)
    history = _history(args.output_dir)
    assert [e["step"] for e in history] == [0, 20, 40, 60]
    first, last = history[0], history[-1]
    assert last["monitor_loss"] < 0.7 * first["monitor_loss"]
    assert last["monitor_agreement"] > first["monitor_agreement"]
    assert os.path.getsize(os.path.join(args.output_dir, PLOT_NAME)) > 1000


def test_artifact_loads_with_stock_peft_and_carries_the_record(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    args = _args(tmp_path, max_steps=6, public_dataset_name="tiny-public", seed=3)
    texts = public_texts(40)
    p_t = transfer_prompt(folder, student, target, tokenizer, texts, args, export_dir=str(tmp_path / "p_t"))
    out = str(tmp_path / "p_t")
    assert sorted(os.listdir(out)) == sorted(PROMPT_FILES)  # the export: prompt, record, card; nothing else
    assert PLOT_NAME in os.listdir(args.output_dir)  # the monitor stays in the working folder
    config = TransferablePromptConfig.from_pretrained(out)
    source = TransferablePromptConfig.from_pretrained(folder)
    assert config.base_model_name_or_path == "tiny-llama-target"
    assert config.tuned_on == source.tuned_on == "tiny-llama"
    assert config.dp == source.dp and config.task == source.task
    record = config.transfer
    assert record.public_dataset == "tiny-public" and record.num_public_examples == 40
    assert record.steps == 6 and record.seed == 3 and record.alpha == 0.5 and record.temperature == 2.0
    assert record.learning_rate == 0.05 and record.final_loss > 0 and 0 <= record.public_agreement <= 1
    from peft_transfer.provenance import text_fingerprint

    assert record.public_fingerprint == text_fingerprint(texts)
    # stock PEFT, no plugin: same prompt weights as the returned model
    _, fresh_target = related_models()
    stock = PeftModel.from_pretrained(fresh_target, out)
    torch.testing.assert_close(stock.prompt_encoder["default"].embedding.weight,
                               p_t.prompt_encoder["default"].embedding.weight)


def test_provider_takes_only_an_export_and_only_public_data(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    args = _args(tmp_path, max_steps=1)
    (Path(folder) / "trainer_state.json").write_text('{"log_history": [{"loss": 0.7}]}')
    with pytest.raises(PeftTransferError, match="not a prompt export.*trainer_state.json"):
        transfer_prompt(folder, student, target, tokenizer, public_texts(16), args)
    (Path(folder) / "trainer_state.json").unlink()
    bbc = create_prompt_model(student, tokenizer, get_task("bbc_news"), num_virtual_tokens=4)
    save_prompt(bbc, str(tmp_path / "bbc"))
    with pytest.raises(PeftTransferError, match="'bbc_articles' comes from the same source as the private task"):
        transfer_prompt(str(tmp_path / "bbc"), student, target, tokenizer, public_texts(16),
                        _args(tmp_path, public_dataset_name="wikipedia+bbc_articles"))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(PeftTransferError, match="notes.txt"):  # refused before any training
        transfer_prompt(folder, student, target, tokenizer, public_texts(16), args, export_dir=str(tmp_path / "busy"))
    with pytest.raises(PeftTransferError, match="was tuned on 'tiny-llama', not the student .*other weights"):
        transfer_prompt(folder, make_student(make_model("llama", num_layers=4), [0, 3]), target, tokenizer,
                        public_texts(16), args)  # another student than p_s's: refused before any training
    lineage_student = make_student(make_model("llama", num_layers=4), [0, 3])
    on_student = str(tmp_path / "on_student")
    save_prompt(create_prompt_model(lineage_student, tokenizer, get_task("rotten_tomatoes"), num_virtual_tokens=4),
                on_student)
    p_t = transfer_prompt(on_student, lineage_student, target, tokenizer, public_texts(16), args)
    lineage = p_t.peft_config["default"].student  # the student's lineage travels with p_t
    assert lineage.teacher == "tiny-llama" and lineage.kept_layers == [0, 3]


def test_several_targets_in_one_call(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    second = make_model("llama", 3, seed=5)  # deeper target of the same family (same hidden size, vocab)
    args = _args(tmp_path, max_steps=3)
    results = transfer_prompt(folder, student, [target, second], tokenizer, public_texts(32), args)
    assert len(results) == 2
    for name in ("tiny-llama-target", "tiny-llama"):
        config = TransferablePromptConfig.from_pretrained(os.path.join(args.output_dir, "export", name))
        assert config.base_model_name_or_path == name and config.transfer.steps == 3
        assert os.path.isfile(os.path.join(args.output_dir, name, PLOT_NAME))


def test_masked_lm_pair(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer, arch="roberta", noise=0.3)
    args = _args(tmp_path, max_steps=30, monitor_steps=30, learning_rate=0.1)
    transfer_prompt(folder, student, target, tokenizer, public_texts(64), args)
    history = _history(args.output_dir)
    assert history[-1]["monitor_loss"] < history[0]["monitor_loss"]
    assert TransferablePromptConfig.from_pretrained(args.output_dir).transfer.steps == 30


def test_resume_continues_from_the_last_checkpoint(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    args = _args(tmp_path, max_steps=4, save_strategy="steps", save_steps=4)
    first = transfer_prompt(folder, student, target, tokenizer, public_texts(32), args)
    weights = first.prompt_encoder["default"].embedding.weight.detach().clone()
    assert os.path.isdir(os.path.join(args.output_dir, "checkpoint-4"))
    _, fresh_target = related_models()
    args = _args(tmp_path, max_steps=6, save_strategy="steps", save_steps=4)
    resumed = transfer_prompt(folder, student, fresh_target, tokenizer, public_texts(32), args, resume=True)
    assert TransferablePromptConfig.from_pretrained(args.output_dir).transfer.steps == 6
    # it started from the checkpoint's p_t, not the text init: only 2 more steps from `weights`
    now = resumed.prompt_encoder["default"].embedding.weight.detach()
    _, other = related_models()
    fresh = _args(tmp_path / "fresh", max_steps=2)
    restarted = transfer_prompt(folder, student, other, tokenizer, public_texts(32), fresh)
    assert (now - weights).norm() < (restarted.prompt_encoder["default"].embedding.weight.detach() - weights).norm()


def test_bad_inputs_get_clear_errors(tmp_path, tokenizer):
    folder, student, target = saved_source_prompt(tmp_path, tokenizer)
    with pytest.raises(PeftTransferError, match="vocabulary"):
        other_vocab = make_model("llama", 2)
        other_vocab.resize_token_embeddings(len(tokenizer) + 7)
        transfer_prompt(folder, student, other_vocab, tokenizer, public_texts(16), _args(tmp_path))
    wide = make_model("llama", 2)
    wide_config = wide.config.__class__(**{**wide.config.to_dict(), "hidden_size": 64, "head_dim": 16})
    from transformers import LlamaForCausalLM

    wider = LlamaForCausalLM(wide_config)
    with pytest.raises(PeftTransferError, match="hidden size"):
        transfer_prompt(folder, student, wider, tokenizer, public_texts(16), _args(tmp_path, prompt_init="source"))
    with pytest.raises(PeftTransferError, match="alpha"):
        TransferConfig(output_dir=str(tmp_path), alpha=1.5)
    with pytest.raises(PeftTransferError, match="temperature"):
        TransferConfig(output_dir=str(tmp_path), temperature=0)
    with pytest.raises(PeftTransferError, match="prompt_init"):
        TransferConfig(output_dir=str(tmp_path), prompt_init="random")
    with pytest.raises(PeftTransferError, match="max_steps"):
        TransferConfig(output_dir=str(tmp_path), max_steps=-1)
    with pytest.raises(PeftTransferError, match="label word"):
        odd = TASK.__class__(name="odd", template="Review: {text}\nSentiment:", label_words=[["<unk>"], [" good"]])
        transfer_prompt(folder, student, target, make_tokenizer(), public_texts(16), _args(tmp_path), task=odd)


def test_text_init_with_a_wider_target(tmp_path, tokenizer):
    """p_t is created on the target's own embeddings, so a different hidden size is fine with text init."""
    folder, student, _ = saved_source_prompt(tmp_path, tokenizer)
    from transformers import LlamaForCausalLM

    base = make_model("llama", 2)
    wider = LlamaForCausalLM(base.config.__class__(**{**base.config.to_dict(), "hidden_size": 64, "head_dim": 16}))
    wider.name_or_path = "tiny-llama-wide"
    p_t = transfer_prompt(folder, student, wider, tokenizer, public_texts(24), _args(tmp_path, max_steps=2))
    assert p_t.prompt_encoder["default"].embedding.weight.shape == (4, 64)


def test_eq6_alpha_oracle():
    assert eq6_alpha_oracle(0.75, 0.85, 0.5) == pytest.approx(0.25 / 0.35)
    assert eq6_alpha_oracle(0.9, 0.85, 0.5) == 1.0
    assert eq6_alpha_oracle(0.4, 0.85, 0.5) == 0.0
    with pytest.raises(PeftTransferError, match="not above random"):
        eq6_alpha_oracle(0.7, 0.5, 0.5)
    with pytest.raises(PeftTransferError):
        eq6_alpha_oracle(75.0, 0.8, 0.5)


def test_kl_direction_is_source_to_target():
    """KL(p_source || q_target): mass where the source is confident weighs most (torch's kl_div argument order)."""
    source = torch.tensor([[4.0, 0.0, 0.0]])
    target = torch.tensor([[0.0, 4.0, 0.0]])
    p = F.softmax(source / 2, -1)
    q = F.log_softmax(target / 2, -1)
    expected = (p * (p.log() - q)).sum() * 4
    torch.testing.assert_close(transfer_loss(target, source, torch.zeros(1, 3), torch.zeros(1, 3), 0.0), expected)


def _history(output_dir: str) -> list[dict]:
    with open(os.path.join(output_dir, HISTORY_NAME)) as f:
        return json.load(f)["monitor"]
