"""The DP plan (batch, steps, lr from data size, ε and budget) and the length-grouped micro-batches."""

import math

import pytest
import torch
from opacus.accountants import PRVAccountant, RDPAccountant
from tiny_models import make_tokenizer

from peft_transfer import PeftTransferError, get_task
from peft_transfer.tune import dp_plan as dd
from peft_transfer.tune.micro_batches import micro_batches

N, D = 10_752, 4 * 576
DELTA = 1 / (10 * N)


def _plan(**kwargs):
    return dd.plan_dp(kwargs.pop("n", N), kwargs.pop("epsilon", 8.0), kwargs.pop("delta", DELTA),
                      kwargs.pop("dims", D), **kwargs)


def test_plan_takes_the_smallest_batch_whose_noise_is_below_the_target():
    plan = _plan()
    assert plan.budget_examples == dd.MAX_DEFAULT_BUDGET  # one epoch of 10,752 capped at 8,192
    assert plan.steps == plan.budget_examples // plan.batch_size and plan.steps >= dd.MIN_STEPS
    assert plan.noise_ratio == pytest.approx(plan.noise_multiplier * math.sqrt(D) / plan.batch_size)
    assert plan.noise_ratio <= dd.NOISE_TARGET
    smaller = _plan(batch_size=plan.batch_size // 2)  # the next smaller candidate is too noisy
    assert smaller.steps == plan.budget_examples // smaller.batch_size and smaller.noise_ratio > dd.NOISE_TARGET
    assert plan.sample_rate <= dd.MAX_SAMPLE_RATE
    assert plan.learning_rate == dd.DP_LEARNING_RATE and plan.examples <= plan.budget_examples


@pytest.mark.parametrize("accountant", [RDPAccountant, PRVAccountant])
def test_the_planned_noise_keeps_epsilon_within_the_target(accountant):
    plan = _plan(epsilon=3.0, budget_examples=4096)
    acc = accountant()
    acc.history = [(plan.noise_multiplier, plan.sample_rate, plan.steps)]
    assert acc.get_epsilon(delta=DELTA) <= 3.0 + 1e-6  # RDP's σ is never below PRV's
    assert DELTA < 1 / N


def test_smaller_epsilon_or_longer_prompt_never_takes_a_smaller_batch():
    base = _plan(budget_examples=4096)
    assert _plan(epsilon=1.0, budget_examples=4096).batch_size >= base.batch_size
    assert _plan(dims=20 * 576, budget_examples=4096).batch_size >= base.batch_size
    old = _plan(batch_size=16, dims=20 * 576, budget_examples=4096)  # the old default: noise above the signal
    assert old.noise_ratio > 1.0


def test_plan_keeps_what_the_user_fixed_and_handles_small_data():
    fixed = _plan(batch_size=64, steps=10)
    assert (fixed.batch_size, fixed.steps, fixed.budget_examples) == (64, 10, 640)
    tiny = dd.plan_dp(50, 8.0, 1 / 500, D, budget_examples=64)  # q <= 0.1 and >= 16 steps: batch 4
    assert (tiny.batch_size, tiny.steps) == (4, 16)
    assert dd.default_budget(100) == dd.MIN_BUDGET and dd.default_budget(5000) == 5000
    with pytest.raises(PeftTransferError, match="larger than the 50 training examples"):
        dd.plan_dp(50, 8.0, 1 / 500, D, batch_size=64)
    assert dd.physical_batch(128, 128) == 16 and dd.physical_batch(8, 128) == 8 and dd.physical_batch(64, 4096) == 1


@pytest.mark.parametrize("side", ["left", "right"])
def test_micro_batches_group_by_length_and_cut_padding(side):
    tok = make_tokenizer()
    tokenized = get_task("rotten_tomatoes").tokenized(tok, masked_lm=False, padding_side=side)
    texts = ["good", "a dull and boring mess of a movie, terrible and long", "bad bad", "fine", "a great film"]
    batch = tokenized.encode(texts)
    batch["labels"] = torch.arange(len(texts))
    parts = list(micro_batches(batch, 2, side))
    seen = torch.cat([p["labels"] for p in parts])
    assert sorted(seen.tolist()) == list(range(len(texts)))  # every example once
    lengths = batch["attention_mask"].sum(1)
    assert lengths[seen].tolist() == sorted(lengths.tolist())  # shortest first
    assert parts[0]["attention_mask"].shape[1] < batch["attention_mask"].shape[1]  # padding was cut
    for part in parts:
        mask = part["attention_mask"]
        assert mask.shape[1] == int(mask.sum(1).max())  # no column that only pads
        for row, i in enumerate(part["labels"].tolist()):  # the same token sits at each label position
            label_token = batch["input_ids"][i, batch["label_positions"][i]]
            assert part["input_ids"][row, part["label_positions"][row]] == label_token
            assert part["input_ids"][row][mask[row].bool()].tolist() == \
                batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist()
    assert next(iter(micro_batches(batch, None, side))) is batch
