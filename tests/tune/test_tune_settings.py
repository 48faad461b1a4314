"""`tune.settings.resolve_settings`: the one DP-settings resolver. `peft-transfer tune` (its flags) and the
pipeline (`run`'s tune section) get the same batch / steps / lr / prompt length / micro-batch for the same inputs."""

import argparse
import math

import pytest
from tiny_models import make_model

import peft_transfer.pipeline.runner as runner
from peft_transfer import PeftTransferError, get_task
from peft_transfer.cli.tune_settings import resolve
from peft_transfer.pipeline.config import PipelineConfig, TuneSettings
from peft_transfer.pipeline.runner import _tune
from peft_transfer.prompts.model import hidden_size
from peft_transfer.tune.config import default_delta
from peft_transfer.tune.dp_plan import DP_LEARNING_RATE, MIN_BUDGET, physical_batch
from peft_transfer.tune.settings import NON_DP_BATCH, NON_DP_LR, NON_DP_VIRTUAL, resolve_settings

N = 640
TASK = get_task("rotten_tomatoes")


def _flags(**given) -> argparse.Namespace:
    flags = dict(epsilon=None, budget_examples=None, epochs=None, batch_size=None, max_steps=None, learning_rate=None,
                 num_virtual_tokens=None, physical_batch_size=None, accountant="prv")
    return argparse.Namespace(**{**flags, **given})


def _cli(model, epsilon, **flags) -> tuple:
    dp = epsilon is not None and not math.isinf(epsilon)
    s = resolve(_flags(epsilon=epsilon, **flags), N, hidden_size(model), TASK.max_length,
                default_delta(N) if dp else None)  # what `tune` passes without --delta
    return s.batch_size, s.max_steps, s.learning_rate, s.num_virtual_tokens, s.physical_batch_size


def _pipeline(model, epsilon, tmp_path, monkeypatch, **tune) -> tuple:
    """What `run` hands `tune_prompt` for its tuning stage (training itself replaced by a recorder)."""
    seen = {}
    monkeypatch.setattr(runner, "tune_prompt", lambda *a, **kw: seen.update(args=a[4], task=a[2]))
    tune.setdefault("max_length", None)  # the task's own limit, as the CLI without --max-length
    _tune(model, None, TASK, list(range(N)), PipelineConfig(tune=TuneSettings(**tune)), epsilon, tmp_path / "p")
    a = seen["args"]
    return a.per_device_train_batch_size, a.max_steps, a.learning_rate, a.num_virtual_tokens, a.physical_batch_size


def test_cli_and_pipeline_get_the_same_dp_plan(tmp_path, monkeypatch):
    model = make_model("llama")
    cli = _cli(model, 8.0, budget_examples=512, num_virtual_tokens=4)
    pipeline = _pipeline(model, 8.0, tmp_path, monkeypatch, budget_examples=512, num_virtual_tokens=4)
    assert cli == pipeline
    batch, steps, lr, virtual, physical = cli
    # planned, not the config's batch 16 / 50 steps / lr 1e-3: q <= 0.1 and >= 16 steps of 512 examples allow 32
    assert batch in (8, 16, 32) and steps == 512 // batch and lr == DP_LEARNING_RATE and virtual == 4
    assert physical == physical_batch(batch, TASK.max_length)


def test_cli_and_pipeline_get_the_same_settings_without_dp(tmp_path, monkeypatch):
    model = make_model("llama")
    given = dict(batch_size=24, learning_rate=0.05, num_virtual_tokens=8)
    micro = physical_batch(24, TASK.max_length)  # micro-batches of at most 2,048 tokens, without DP too
    assert micro < 24
    for epsilon in (None, math.inf):
        assert _cli(model, epsilon, max_steps=7, **given) == (24, 7, 0.05, 8, micro)
    assert _pipeline(model, math.inf, tmp_path, monkeypatch, max_steps=7, **given) == (24, 7, 0.05, 8, micro)
    # the DP plan switched off: the YAML's settings as given, under DP too
    assert _pipeline(model, 8.0, tmp_path, monkeypatch, max_steps=7, dp_plan=False, **given) == (24, 7, 0.05, 8, micro)
    # a budget that the batch divides: the same steps
    assert _cli(model, None, budget_examples=240, **given) == (24, 10, 0.05, 8, micro)
    assert _pipeline(model, math.inf, tmp_path, monkeypatch, budget_examples=240, **given) == (24, 10, 0.05, 8, micro)


def test_resolver_defaults_and_the_budget_rounding_of_each_caller():
    s = resolve_settings(N, 32, 128)
    assert (s.batch_size, s.max_steps, s.num_train_epochs, s.learning_rate, s.num_virtual_tokens, s.plan) == (
        NON_DP_BATCH, -1, 1.0, NON_DP_LR, NON_DP_VIRTUAL, None)
    assert resolve_settings(N, 32, 128, epochs=2.5).num_train_epochs == 2.5
    # without the plan, a budget the batch does not divide: the CLI rounds the steps up, the pipeline down
    assert resolve_settings(N, 32, 128, budget_examples=100).max_steps == 7
    assert resolve_settings(N, 32, 128, budget_examples=100, round_steps_up=False).max_steps == 6
    assert resolve_settings(N, 32, 128, budget_examples=8, round_steps_up=False).max_steps == 1
    # under DP, flags given win over the plan; --epochs sets the budget; δ defaults to the trainer's 1/(10 N)
    s = resolve_settings(N, 32, 128, 8.0, batch_size=16, max_steps=5, learning_rate=0.5, physical_batch_size=3)
    assert (s.batch_size, s.max_steps, s.learning_rate, s.physical_batch_size, s.num_virtual_tokens) == (
        16, 5, 0.5, 3, 4)
    assert s.num_train_epochs == 1.0 and s.plan is not None
    assert resolve_settings(N, 32, 128, 8.0, epochs=2.0).plan.budget_examples == 2 * N
    assert resolve_settings(N, 32, 128, 8.0, dp_plan=False).plan is None
    with pytest.raises(PeftTransferError, match="larger than the 640 training examples"):
        resolve_settings(N, 32, 128, 8.0, batch_size=N + 1)


def test_pipeline_dp_stages_get_at_least_the_minimum_budget_and_cut_texts(tmp_path, monkeypatch):
    """With no tune.budget_examples, a DP stage processes at least dp_plan.MIN_BUDGET examples (steps x batch of
    the plan), a non-DP stage max_steps x batch_size; tune.max_length cuts the training texts only."""
    model = make_model("llama")
    seen = {}
    monkeypatch.setattr(runner, "tune_prompt", lambda *a, **kw: seen.update(args=a[4], task=a[2]))
    config = PipelineConfig(tune=TuneSettings(max_steps=4, batch_size=16, max_length=48))
    _tune(model, None, TASK, list(range(N)), config, 8.0, tmp_path / "dp")
    assert seen["args"].per_device_train_batch_size * seen["args"].max_steps >= MIN_BUDGET
    assert seen["task"].max_length == 48 and TASK.max_length > 48
    _tune(model, None, TASK, list(range(N)), config, math.inf, tmp_path / "nodp")
    assert (seen["args"].per_device_train_batch_size, seen["args"].max_steps) == (16, 4)
