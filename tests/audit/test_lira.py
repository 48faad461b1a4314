"""LiRA statistics on synthetic scores, the empirical epsilon bound, and the audit driver on a tiny model."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny_models import make_model

from peft_transfer import PeftTransferError, create_prompt_model, get_task, save_prompt
from peft_transfer.audit import (
    auc,
    balanced_membership,
    bootstrap_auc_ci,
    clopper_pearson,
    empirical_epsilon,
    epsilon_from_rates,
    fit_gaussians,
    leave_one_out_scores,
    logit_confidence,
    plot_roc,
    roc_curve,
    run_lira_audit,
    tpr_at_fpr,
)
from peft_transfer.audit.lira_audit import PLAN_NAME
from peft_transfer.audit.roc import RocSeries
from peft_transfer.prompted_forward import label_logits
from peft_transfer.prompts.model import model_id

# -- statistics -------------------------------------------------------------------------------------------


def test_logit_confidence_matches_softmax_and_is_stable():
    rng = np.random.default_rng(0)
    scores, labels = rng.normal(size=(50, 5)), rng.integers(0, 5, 50)
    p = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    py = p[np.arange(50), labels]
    np.testing.assert_allclose(logit_confidence(scores, labels), np.log(py / (1 - py)), rtol=1e-9)
    extreme = logit_confidence(np.array([[200.0, -200.0], [-200.0, 200.0]]), np.array([0, 0]))
    np.testing.assert_allclose(extreme, [400.0, -400.0])


def test_balanced_membership_puts_each_example_in_half_the_shadows():
    keep = balanced_membership(300, 8, seed=1)
    assert keep.shape == (8, 300)
    assert (keep.sum(0) == 4).all()
    assert np.all(np.abs(keep.sum(1) - 150) < 40)  # each shadow trains on about half the pool
    assert not np.array_equal(keep, balanced_membership(300, 8, seed=2))


def _synthetic(k=16, n=400, shift=1.0, seed=0):
    """Shadow scores: per-example difficulty + IN shift + noise (the LiRA model)."""
    rng = np.random.default_rng(seed)
    keep = balanced_membership(n, k, seed)
    difficulty = rng.normal(0, 3, n)
    return difficulty + shift * keep + rng.normal(0, 0.5, (k, n)), keep


def test_fit_gaussians_recovers_means_and_global_variance():
    scores, keep = _synthetic(k=64, shift=2.0)
    fit = fit_gaussians(scores, keep, global_variance=True)
    np.testing.assert_allclose(fit.mean_in - fit.mean_out, 2.0, atol=0.5)
    assert fit.global_variance and np.allclose(fit.std_in, fit.std_in[0])
    assert abs(fit.std_in[0] - 0.5) < 0.05 and abs(fit.std_out[0] - 0.5) < 0.05
    per_example = fit_gaussians(scores, keep, global_variance=False)
    assert not per_example.global_variance and per_example.std_in.std() > 0


def test_lira_separates_members_when_there_is_signal_and_not_otherwise():
    strong, keep = _synthetic(shift=1.0)
    attack, member = leave_one_out_scores(strong, keep)
    assert auc(attack, member) > 0.8
    none, keep = _synthetic(shift=0.0)
    attack, member = leave_one_out_scores(none, keep)
    low, high = bootstrap_auc_ci(attack, member, num_resamples=200,
                                 groups=np.broadcast_to(np.arange(keep.shape[1]), keep.shape))
    assert low < 0.5 < high
    assert empirical_epsilon(attack, member, delta=1e-5).epsilon_lower_bound < 0.3


def test_lira_beats_raw_confidence_thresholding():
    """The per-example calibration is the point of LiRA: with hard and easy examples mixed, thresholding phi
    directly is near chance while the likelihood ratio finds members."""
    scores, keep = _synthetic(shift=0.5)
    attack, member = leave_one_out_scores(scores, keep)
    assert auc(attack, member) > auc(scores, keep) + 0.1


def test_too_few_shadows_is_an_error():
    scores, keep = _synthetic(k=3)
    with pytest.raises(PeftTransferError, match="at least 4"):
        leave_one_out_scores(scores, keep)
    with pytest.raises(PeftTransferError, match="no IN or no OUT"):
        fit_gaussians(scores[:1], keep[:1])


def test_auc_and_roc_match_brute_force_with_ties():
    rng = np.random.default_rng(3)
    scores, labels = rng.integers(0, 6, 300).astype(float), rng.random(300) < 0.4
    pos, neg = scores[labels], scores[~labels]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert auc(scores, labels) == pytest.approx(brute)
    fpr, tpr, thresholds = roc_curve(scores, labels)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and len(fpr) == 7  # 6 distinct scores + origin
    assert np.trapezoid(tpr, fpr) == pytest.approx(brute)
    t = thresholds[3]
    assert tpr[3] == pytest.approx((pos >= t).mean()) and fpr[3] == pytest.approx((neg >= t).mean())


def test_tpr_at_fpr():
    scores = np.array([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], float)
    labels = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0], bool)
    assert tpr_at_fpr(scores, labels, 0.0) == pytest.approx(2 / 3)
    assert tpr_at_fpr(scores, labels, 1 / 7) == pytest.approx(1.0)
    with pytest.raises(PeftTransferError):
        auc(scores, np.ones(10, bool))


def test_clopper_pearson_known_values():
    low, high = clopper_pearson(0, 10)
    assert low == 0 and high == pytest.approx(1 - 0.025 ** (1 / 10))
    low, high = clopper_pearson(10, 10)
    assert high == 1 and low == pytest.approx(0.025 ** (1 / 10))
    low, high = clopper_pearson(50, 100)
    assert low == pytest.approx(0.3983, abs=1e-4) and high == pytest.approx(0.6017, abs=1e-4)


def test_epsilon_from_rates_inverts_the_dp_inequalities():
    assert epsilon_from_rates(0.27, 0.1, 0.0) == pytest.approx(math.log(2.7))
    assert epsilon_from_rates(0.9, 0.6, 0.0) == pytest.approx(math.log(0.4 / 0.1))  # second inequality
    assert epsilon_from_rates(0.3, 0.3, 0.0) == 0.0
    assert epsilon_from_rates(0.1 + 1e-3, 0.1, 0.05) == 0.0  # delta absorbs the gap


@pytest.mark.parametrize("eps", [0.5, 2.0])
def test_empirical_epsilon_is_a_lower_bound_on_randomized_response(eps):
    """Randomized response is exactly eps-DP: the bound must stay below eps yet find most of it."""
    rng = np.random.default_rng(0)
    n = 20000
    member = rng.random(n) < 0.5
    p_yes = math.exp(eps) / (1 + math.exp(eps))
    guess = np.where(member, rng.random(n) < p_yes, rng.random(n) < 1 - p_yes).astype(float)
    bound = empirical_epsilon(guess, member, delta=0.0)
    assert 0.6 * eps < bound.epsilon_lower_bound < eps
    holdout = empirical_epsilon(guess, member, delta=0.0, selection="holdout")
    assert 0.5 * eps < holdout.epsilon_lower_bound < eps and holdout.num_guesses == n // 2


def test_plot_roc_writes_png(tmp_path):
    fpr, tpr, _ = roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    path = tmp_path / "roc.png"
    plot_roc([RocSeries("test", fpr, tpr)], str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- driver on a tiny model --------------------------------------------------------------------------------

WORDS = ["great", "good", "bad", "film", "movie", "the", "quick", "brown", "fox", "dog", "cat", "times", "new"]


def _pool(n=24, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, 6)) + f" {i}" for i in range(n)]
    return Dataset.from_dict({"text": texts, "label": rng.integers(0, 2, n).tolist()})


def cheap_train(model, tokenizer, task, dataset, args):
    """A few full-batch Adam steps on a 4-token prompt: stands in for tune_prompt in driver tests."""
    torch.manual_seed(len(dataset))
    prompt_model = create_prompt_model(model, tokenizer, task, num_virtual_tokens=4)
    batch = task.tokenized(tokenizer, masked_lm=False).encode(list(dataset["text"]))
    labels = torch.tensor(dataset["label"])
    params = [p for p in prompt_model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=0.05)
    tokenized = task.tokenized(tokenizer, masked_lm=False)
    for _ in range(args.get("steps", 5) if args else 5):
        logits = label_logits(prompt_model, batch["input_ids"], batch["attention_mask"], batch["label_positions"])
        loss = torch.nn.functional.cross_entropy(tokenized.class_scores(logits), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return prompt_model


@pytest.fixture(scope="module")
def tiny():
    from tiny_models import make_tokenizer

    return make_model("llama"), make_tokenizer()


def test_audit_driver_writes_reports_and_resumes(tiny, tmp_path):
    model, tokenizer = tiny
    task = get_task("rotten_tomatoes")
    out = str(tmp_path / "audit")
    result = run_lira_audit(model, tokenizer, task, _pool(), num_shadows=4, train_fn=cheap_train, out_dir=out,
                            progress=False)
    assert result.num_guesses == 4 * 24 and result.mode.startswith("leave-one-out")
    assert result.auc_ci[0] <= result.auc <= result.auc_ci[1]
    assert math.isinf(result.accountant_epsilon) and result.global_variance
    out_path = Path(out)
    # the AUC is that of the shadows' own scores: recomputed here from the stored class scores, the stored
    # membership plan and the pool labels, with leave-one-out Gaussians and a brute-force pair count
    plan = json.loads((out_path / PLAN_NAME).read_text())
    keep = np.array([[c == "1" for c in row] for row in plan["membership"]])
    labels = np.asarray(_pool()["label"])
    phi = np.stack([logit_confidence(np.load(out_path / "shadows" / f"shadow_{k:03d}" / "scores.npy"), labels)
                    for k in range(4)])
    attack, member = leave_one_out_scores(phi, keep)
    pos, neg = attack[member], attack[~member]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert member.sum() == keep.sum() == 48 and result.auc == pytest.approx(brute, abs=1e-12)
    flipped = ((neg[:, None] > pos[None]).sum() + 0.5 * (neg[:, None] == pos[None]).sum()) / (pos.size * neg.size)
    assert brute != pytest.approx(flipped)  # so a swapped membership would have been caught
    saved = json.loads((out_path / "audit.json").read_text())
    assert saved["auc"] == pytest.approx(result.auc) and saved["accountant_epsilon"] == "inf"
    assert (out_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    assert "TPR at 1 % FPR" in (out_path / "audit.md").read_text()
    assert sorted(os.listdir(os.path.join(out, "shadows"))) == [f"shadow_{k:03d}" for k in range(4)]

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished shadow was trained again")

    resumed = run_lira_audit(model, tokenizer, task, _pool(), num_shadows=4, train_fn=must_not_train, out_dir=out,
                             progress=False)
    assert resumed.auc == result.auc and resumed.epsilon_lower_bound == result.epsilon_lower_bound
    with pytest.raises(PeftTransferError, match="different pool_fingerprint"):
        run_lira_audit(model, tokenizer, task, _pool(seed=5), num_shadows=4, train_fn=must_not_train, out_dir=out,
                       progress=False)


def test_audit_of_a_target_prompt_and_provenance_checks(tiny, tmp_path):
    model, tokenizer = tiny
    task, pool = get_task("rotten_tomatoes"), _pool()
    members = np.arange(len(pool)) % 2 == 0
    target = cheap_train(model, tokenizer, task, pool.select(np.nonzero(members)[0].tolist()), {"steps": 5})
    save_prompt(target, str(tmp_path / "target"))
    model = target.get_base_model()
    result = run_lira_audit(model, tokenizer, task, pool, num_shadows=4, train_fn=cheap_train, progress=False,
                            target_prompt=str(tmp_path / "target"), target_members=members)
    assert result.mode == "target prompt" and result.num_guesses == len(pool)
    with pytest.raises(PeftTransferError, match="target_members"):
        run_lira_audit(model, tokenizer, task, pool, num_shadows=4, train_fn=cheap_train, progress=False,
                       target_prompt=str(tmp_path / "target"))

    other_task = create_prompt_model(model, tokenizer, get_task("bbc_news"), num_virtual_tokens=4)
    save_prompt(other_task, str(tmp_path / "bbc"))
    with pytest.raises(PeftTransferError, match="same task"):
        run_lira_audit(other_task.get_base_model(), tokenizer, task, pool, num_shadows=4, train_fn=cheap_train,
                       progress=False, target_prompt=str(tmp_path / "bbc"), target_members=members)
    from peft_transfer.student.layers import make_student, student_lineage

    student = make_student(make_model("llama", num_layers=4), keep_layers=[0, 3])
    on_student = create_prompt_model(student, tokenizer, task, num_virtual_tokens=4, tuned_on=model_id(model),
                                     student=student_lineage(student))
    save_prompt(on_student, str(tmp_path / "student"))
    with pytest.raises(PeftTransferError, match=r"student keeping layers \[0, 3\]"):
        run_lira_audit(model, tokenizer, task, pool, num_shadows=4, train_fn=cheap_train, progress=False,
                       target_prompt=str(tmp_path / "student"), target_members=members)
    gpt2 = make_model("gpt2")
    other_model = create_prompt_model(gpt2, tokenizer, task, num_virtual_tokens=4)
    save_prompt(other_model, str(tmp_path / "gpt2"))
    with pytest.raises(PeftTransferError, match="tuned on 'tiny-gpt2'"):
        run_lira_audit(model, tokenizer, task, pool, num_shadows=4, train_fn=cheap_train, progress=False,
                       target_prompt=str(tmp_path / "gpt2"), target_members=members)


def test_audit_bad_input(tiny):
    model, tokenizer = tiny
    task = get_task("rotten_tomatoes")
    with pytest.raises(PeftTransferError, match="at least 4 shadow"):
        run_lira_audit(model, tokenizer, task, _pool(), num_shadows=3, train_fn=cheap_train)
    with pytest.raises(PeftTransferError, match="24 examples but 100 were requested"):
        run_lira_audit(model, tokenizer, task, _pool(), num_shadows=4, pool_size=100, train_fn=cheap_train)
    with pytest.raises(PeftTransferError, match="at least 16"):
        run_lira_audit(model, tokenizer, task, _pool(10), num_shadows=4, train_fn=cheap_train)
    with pytest.raises(PeftTransferError, match="no 'label' column"):
        run_lira_audit(model, tokenizer, task, _pool().remove_columns("label"), num_shadows=4, train_fn=cheap_train)


def test_audit_cli_rejects_too_few_shadows_before_loading(tmp_path, capsys):
    from peft_transfer.cli import main

    assert main(["audit", "--shadows", "2", "--out", str(tmp_path)]) == 2
    assert "at least 4" in capsys.readouterr().err
