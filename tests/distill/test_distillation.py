"""Distillation: loss terms, trainer (teacher frozen, freezing options, cache), data prep, card, CLI + resume."""

from __future__ import annotations

import json

import pytest
import torch
from huggingface_hub import ModelCard
from tiny_models import CORPUS, distill_inputs, make_model, make_tokenizer
from transformers import AutoModelForCausalLM

from peft_transfer.distill.config import DistillationConfig
from peft_transfer.distill.data import collator_for, perplexity, prepare_blocks
from peft_transfer.distill.loss import kl_full, kl_topk, relative_mse_loss
from peft_transfer.distill.run import check_teacher_fits, check_tokenizer_matches
from peft_transfer.distill.teacher_cache import build_teacher_cache, load_teacher_cache
from peft_transfer.distill.trainer import DistillationTrainer, cut_points
from peft_transfer.errors import PeftTransferError
from peft_transfer.provenance import text_fingerprint
from peft_transfer.student.card import DistillationSummary, render_student_card
from peft_transfer.student.layers import make_student, student_lineage
from peft_transfer.student.weights_hash import state_dict_sha256


def _teacher(arch: str = "llama", num_layers: int = 4):
    """A tiny teacher with sharp outputs and strong middle layers, so that dropping layers changes its logits."""
    model = make_model(arch, num_layers=num_layers)
    if arch != "llama":
        return model
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)
        for layer in model.model.layers[1:-1]:
            for p in layer.parameters():
                if p.dim() == 2:
                    p.mul_(4.0)
    return model


def _args(tmp_path, **kw) -> DistillationConfig:
    base = dict(output_dir=str(tmp_path / "ckpt"), max_steps=8, per_device_train_batch_size=8, learning_rate=3e-3,
                logging_steps=1, use_cpu=True, save_strategy="no", disable_tqdm=True, report_to="none", seed=0)
    base.update(kw)
    return DistillationConfig(**base)


@pytest.fixture(scope="module")
def blocks():
    return prepare_blocks(CORPUS[:60], make_tokenizer(), block_size=24)


def test_topk_kl_equals_full_kl_at_full_support_and_bounds_it_below():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 40) * 3, torch.randn(2, 5, 40) * 3
    mask = torch.ones(2, 5, dtype=torch.bool)
    full = kl_full(s, t, mask, 2.0)
    logp = torch.log_softmax(t / 2.0, -1)
    vals, ids = logp.topk(40, -1)
    assert torch.allclose(kl_topk(s, ids, vals, mask, 2.0), full, atol=1e-5)
    vals, ids = logp.topk(5, -1)
    approx = kl_topk(s, ids, vals, mask, 2.0)
    assert 0 < approx < full
    assert float(kl_full(t, t, mask, 2.0)) == pytest.approx(0.0, abs=1e-6)


def test_kd_loss_is_the_papers_formula_by_hand(tmp_path):
    """compute_loss = 5·T²·KL(teacher‖student at T) + 2·LM + 1·(1 − cos) on the last hidden states, T = 2,
    each a mean over the attended positions (the LM loss over next-token targets), written out here in torch."""
    tok = make_tokenizer()
    teacher = _teacher()
    student = make_student(teacher, [0, 3])
    batch = tok(["the quick brown fox jumps over the lazy dog", "a film"], return_tensors="pt", padding=True)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert (mask == 0).any()  # padded: the pad positions must not count
    labels = ids.masked_fill(mask == 0, -100)
    trainer = DistillationTrainer(model=student, teacher=teacher, args=_args(tmp_path))
    assert (trainer.args.alpha_ce, trainer.args.alpha_lm, trainer.args.alpha_cos, trainer.args.temperature) == \
        (5.0, 2.0, 1.0, 2.0)
    with torch.no_grad():
        loss = trainer.compute_loss(student.eval(), {"input_ids": ids, "attention_mask": mask, "labels": labels})
        s = student(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        t = teacher(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    T, kept = 2.0, mask.bool()
    p_t, p_s = torch.softmax(t.logits / T, -1)[kept], torch.softmax(s.logits / T, -1)[kept]
    kl = (p_t * (p_t.log() - p_s.log())).sum(-1).mean() * T**2
    nll, count = 0.0, 0
    for b in range(ids.shape[0]):
        for j in range(ids.shape[1] - 1):
            if labels[b, j + 1] != -100:
                nll -= torch.log_softmax(s.logits[b, j], -1)[labels[b, j + 1]]
                count += 1
    hs, ht = s.hidden_states[-1][kept], t.hidden_states[-1][kept]
    cos = (1 - (hs * ht).sum(-1) / (hs.norm(dim=-1) * ht.norm(dim=-1))).mean()
    assert kl > 0.01 and cos > 0.01  # every term is live
    torch.testing.assert_close(loss, 5 * kl + 2 * (nll / count) + 1 * cos, rtol=1e-5, atol=1e-5)


def test_pad_positions_do_not_count():
    torch.manual_seed(1)
    s, t = torch.randn(1, 6, 30), torch.randn(1, 6, 30)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    s2 = s.clone()
    s2[:, 4:] = 100 * torch.randn(1, 2, 30)
    assert torch.equal(kl_full(s, t, mask, 2.0), kl_full(s2, t, mask, 2.0))
    assert torch.allclose(kl_full(s, t, mask, 2.0), kl_full(s[:, :4], t[:, :4], mask[:, :4], 2.0))


def test_trainer_lowers_kl_and_never_touches_teacher(tmp_path, blocks):
    tok = make_tokenizer()
    teacher = _teacher()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = make_student(teacher, [0, 3])
    trainer = DistillationTrainer(model=student, teacher=teacher, args=_args(tmp_path, alpha_lm=0.0, alpha_cos=0.0),
                                  train_dataset=blocks, data_collator=collator_for(student, tok))
    trainer.train()
    kls = [h["loss_kl"] for h in trainer.state.log_history if "loss_kl" in h]
    assert len(kls) == 8 and kls[0] > 0.05
    assert sum(kls[-3:]) / 3 < 0.8 * kls[0]
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_freeze_options_keep_embeddings_and_head(tmp_path, blocks):
    tok = make_tokenizer()
    teacher = make_model("qwen2", num_layers=4)  # untied embeddings and head
    student = make_student(teacher, [0, 3])
    emb = student.get_input_embeddings().weight.clone()
    head = student.get_output_embeddings().weight.clone()
    layer = student.model.layers[0].mlp.up_proj.weight.clone()
    trainer = DistillationTrainer(model=student, teacher=teacher, train_dataset=blocks,
                                  args=_args(tmp_path, max_steps=2, freeze_embeddings=True, freeze_lm_head=True),
                                  data_collator=collator_for(student, tok))
    trainer.train()
    assert torch.equal(student.get_input_embeddings().weight, emb)
    assert torch.equal(student.get_output_embeddings().weight, head)
    assert not torch.equal(student.model.layers[0].mlp.up_proj.weight, layer)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_cache_with_full_support_gives_the_online_loss(tmp_path, blocks, arch):
    tok = make_tokenizer()
    teacher = _teacher(arch)
    student = make_student(teacher, [0, 3])
    cache = build_teacher_cache(teacher, tok, blocks.select(range(4)), tmp_path / "cache", top_k=len(tok),
                                temperature=2.0, store_last_hidden=True, progress=False)
    again, meta = load_teacher_cache(tmp_path / "cache")
    assert meta["top_k"] == len(tok) and len(again) == 4 and "labels" in again.column_names
    args = _args(tmp_path, alpha_hidden=0.0)
    batch = collator_for(student, tok)([cache[i] for i in range(4)])
    online = DistillationTrainer(model=student, teacher=teacher, args=args)
    cached = DistillationTrainer(model=student, teacher=None, teacher_cache_temperature=2.0, args=args)
    with torch.no_grad():
        plain = {k: batch[k] for k in ("input_ids", "attention_mask", "labels")}
        loss_online = online.compute_loss(student.eval(), plain)
        loss_cached = cached.compute_loss(student.eval(), batch)
    assert torch.allclose(loss_online, loss_cached, atol=2e-3)
    with pytest.raises(PeftTransferError, match="T=2"):
        DistillationTrainer(model=student, teacher=None, teacher_cache_temperature=2.0,
                            args=_args(tmp_path, temperature=1.0))


def test_cut_point_hidden_term(tmp_path, blocks):
    tok = make_tokenizer()
    teacher = _teacher("llama", num_layers=6)
    student = make_student(teacher, [0, 1, 4, 5])
    assert cut_points(student) == [(2, 4)]
    trainer = DistillationTrainer(model=student, teacher=teacher, train_dataset=blocks,
                                  args=_args(tmp_path, max_steps=2, alpha_hidden=1.0),
                                  data_collator=collator_for(student, tok))
    trainer.train()
    assert all(h["loss_hidden"] > 0 for h in trainer.state.log_history if "loss_hidden" in h)
    with pytest.raises(PeftTransferError, match="gap"):
        DistillationTrainer(model=make_student(teacher, [0, 1, 2]), teacher=teacher,
                            args=_args(tmp_path, alpha_hidden=1.0))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_train_below_cut_moves_only_lower_layers_and_lowers_the_relative_error(tmp_path, blocks, arch):
    tok = make_tokenizer()
    teacher = _teacher(arch, num_layers=6)
    student = make_student(teacher, [0, 1, 4, 5])
    before = {n: p.detach().clone() for n, p in student.named_parameters()}
    args = _args(tmp_path, max_steps=8, alpha_ce=0.0, alpha_lm=0.0, alpha_cos=0.0, alpha_hidden=1.0,
                 hidden_loss="mse", train_below_cut=True)
    trainer = DistillationTrainer(model=student, teacher=teacher, train_dataset=blocks, args=args,
                                  data_collator=collator_for(student, tok))
    trainer.train()
    lower = (".h.0.", ".h.1.") if arch == "gpt2" else (".layers.0.", ".layers.1.")
    changed = {n for n, p in student.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(any(key in n for key in lower) for n in changed)
    assert any(".h.0." in n or ".layers.0." in n for n in changed)
    losses = [h["loss_hidden"] for h in trainer.state.log_history if "loss_hidden" in h]
    assert losses[-1] < losses[0]
    with pytest.raises(PeftTransferError, match="gap"):
        DistillationTrainer(model=make_student(teacher, [0, 1, 2]), teacher=teacher,
                            args=_args(tmp_path, train_below_cut=True))
    with pytest.raises(PeftTransferError, match="hidden_loss"):
        _args(tmp_path, alpha_hidden=1.0, hidden_loss="l1")


def test_relative_mse_is_zero_at_the_teacher_and_scale_aware():
    t = torch.randn(2, 5, 8)
    mask = torch.ones(2, 5, dtype=torch.bool)
    assert relative_mse_loss(t, t, mask) == 0
    assert relative_mse_loss(2 * t, t, mask) == pytest.approx(1.0)  # cosine would call this a perfect match
    mask[:, 3:] = False
    noisy = t.clone()
    noisy[:, 3:] += 100.0
    assert relative_mse_loss(noisy, t, mask) == 0


def test_blocks_and_masked_perplexity():
    tok = make_tokenizer()
    blocks = prepare_blocks(CORPUS[:30], tok, block_size=16)
    assert len(blocks) > 5 and all(len(b) == 16 for b in blocks["input_ids"])
    with pytest.raises(PeftTransferError, match="empty"):
        prepare_blocks(["", "  "], tok, 16)
    with pytest.raises(PeftTransferError, match="shorter than one block"):
        prepare_blocks(["a short text"], tok, 64)
    bert = make_model("bert", num_layers=2)
    batch = collator_for(bert, tok, seed=0)([blocks[i] for i in range(4)])
    assert (batch["labels"] != -100).any() and (batch["input_ids"] == tok.mask_token_id).any()
    assert 1.0 < perplexity(bert, tok, blocks.select(range(4))) < 10 * len(tok)


def test_bad_teacher_inputs(tmp_path):
    teacher = make_model("llama", num_layers=2)
    teacher.save_pretrained(tmp_path / "t")
    with pytest.raises(PeftTransferError, match="memory"):
        check_teacher_fits(str(tmp_path / "t"), available=10_000)
    assert check_teacher_fits(str(tmp_path / "t"), available=10**12) == teacher.num_parameters()
    tok = make_tokenizer()
    tok.add_tokens([f"extra{i}" for i in range(50)])
    with pytest.raises(PeftTransferError, match="do not belong together"):
        check_tokenizer_matches(teacher, tok)
    small = make_model("llama", num_layers=2)
    small.resize_token_embeddings(4 * len(make_tokenizer()))
    with pytest.raises(PeftTransferError, match="not the teacher's tokenizer"):
        check_tokenizer_matches(small, make_tokenizer())
    check_tokenizer_matches(make_model("llama", num_layers=2), make_tokenizer())


def test_card_metadata_and_body():
    teacher = make_model("llama", num_layers=4)
    teacher.name_or_path = "org/tiny-teacher"
    student = make_student(teacher, [0, 3])
    summary = DistillationSummary(corpus="wikipedia", steps=7, num_blocks=3, block_size=24,
                                  alphas={"kl": 5.0, "lm": 2.0}, final_losses={"kl": 0.5},
                                  perplexity={"teacher": 11.0, "distilled student": 22.5}, eval_blocks=2,
                                  datasets=["wikipedia"], license="apache-2.0")
    card = render_student_card(student, summary, teacher.num_parameters())
    assert card.data.base_model == "org/tiny-teacher" and card.data.library_name == "transformers"
    assert set(card.data.tags) == {"peft-transfer", "distillation", "post"} and card.data.license == "apache-2.0"
    assert "| Kept layers | 0, 3 |" in card.text and "22.50" in card.text and "| Steps | 7" in card.text


def test_cli_distill_writes_standard_folder_and_resumes(tmp_path, capsys):
    from peft_transfer.cli import main

    teacher, corpus = distill_inputs(tmp_path)
    out = tmp_path / "student"
    common = ["distill", "--teacher", teacher, "--corpus", corpus, "--keep-layers", "0,3",
              "--out", str(out), "--block-size", "24", "--eval-blocks", "3", "--save-steps", "2", "--batch-size", "4"]
    assert main([*common, "--max-steps", "2"]) == 0
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    # a rerun with a higher step budget continues from checkpoint-2 (as after a kill) instead of starting over
    assert main([*common, "--max-steps", "4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 4 and set(summary["perplexity"]) == {"teacher", "student before distillation",
                                                                     "distilled student"}
    state = json.loads((out / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [h["step"] for h in state["log_history"] if "loss" in h][:2] == [1, 2]  # steps 1-2 kept from run 1
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2 and (out / "model.safetensors").is_file()
    lineage = student_lineage(model)
    assert lineage.kept_layers == [0, 3] and lineage.distillation_steps == 4
    # the lineage names the teacher's exact weights, the corpus by content, the tokens seen and the recipe
    teacher_model = AutoModelForCausalLM.from_pretrained(teacher)
    assert lineage.teacher_sha256 == state_dict_sha256(teacher_model.state_dict())
    texts = [t for t in CORPUS[:40]]
    assert lineage.corpus == f"corpus.jsonl ({text_fingerprint(texts)}, 40 texts)"
    assert lineage.tokens_seen == 4 * 4 * 24 and lineage.recipe == "kd-frozen-head"
    log = [json.loads(line) for line in (out / "distillation_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "loss" in e] == [1, 2, 3, 4]
    assert "distillation" in ModelCard.load(out / "README.md").data.tags
    # bad input: layer out of range and corpus shorter than a block, each one line on stderr
    assert main(["distill", "--teacher", teacher, "--corpus", corpus, "--keep-layers", "0,9",
                 "--out", str(tmp_path / "x"), "--block-size", "24"]) == 2
    assert "out of range" in capsys.readouterr().err
    short = tmp_path / "short.jsonl"
    short.write_text(json.dumps({"text": "too short"}) + "\n")
    assert main(["distill", "--teacher", teacher, "--corpus", str(short), "--out",
                 str(tmp_path / "y"), "--keep-layers", "0,3"]) == 2
    assert "shorter than one block" in capsys.readouterr().err


def test_cli_recipe_presets_and_overrides(tmp_path, capsys):
    from peft_transfer.cli import main
    from peft_transfer.distill.recipes import RECIPES, recipe_settings

    teacher, corpus = distill_inputs(tmp_path)
    common = ["distill", "--teacher", teacher, "--corpus", corpus, "--keep-layers", "0,3",
              "--block-size", "24", "--eval-blocks", "3", "--batch-size", "4", "--max-steps", "2", "--json"]
    assert main([*common, "--out", str(tmp_path / "a"), "--recipe", "last-mse"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["alphas"] == {"kl": 0.0, "lm": 0.0, "cos": 1.0, "hidden": 0.0}
    assert summary["hidden_loss"] == "mse" and set(summary["final_losses"]) == {"cos"}
    assert "relative MSE(last hidden)" in (tmp_path / "a" / "README.md").read_text()
    assert main([*common, "--out", str(tmp_path / "b"), "--recipe", "last-mse", "--alpha-lm", "2"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["alphas"]["lm"] == 2.0 and set(summary["final_losses"]) == {"cos", "lm"}
    assert all(set(r) == set(RECIPES["kd"]) for r in RECIPES.values())
    with pytest.raises(PeftTransferError, match="unknown distillation recipe"):
        recipe_settings("fast")
