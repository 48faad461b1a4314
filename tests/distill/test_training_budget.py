"""The wall-clock training budget: the schedule's shape, the stop, and the clock surviving a resume."""

from __future__ import annotations

import time

import pytest
from tiny_models import CORPUS, distill_inputs, make_model, make_tokenizer
from transformers import TrainerControl, TrainerState

from peft_transfer.distill import budget as training_budget
from peft_transfer.distill.budget import WARMUP_FRACTION, TrainingClock, budget_lr_factor
from peft_transfer.distill.config import DistillationConfig
from peft_transfer.distill.data import collator_for, prepare_blocks
from peft_transfer.distill.trainer import DistillationTrainer
from peft_transfer.errors import PeftTransferError
from peft_transfer.student.layers import make_student


def test_budget_schedule_warms_up_then_anneals_to_zero():
    assert budget_lr_factor(0.0) < 0.01
    assert budget_lr_factor(WARMUP_FRACTION / 2) == pytest.approx(0.5)
    assert budget_lr_factor(WARMUP_FRACTION) == pytest.approx(1.0)
    after = [budget_lr_factor(f) for f in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)]
    assert after == sorted(after, reverse=True) and after[-1] == pytest.approx(0.0, abs=1e-12)
    assert budget_lr_factor(0.5 + WARMUP_FRACTION / 2) == pytest.approx(0.5)
    assert budget_lr_factor(3.0) == pytest.approx(0.0, abs=1e-12)  # past the budget: no step is taken at LR > 0


def test_clock_stops_at_the_budget_and_carries_its_time_into_a_resume():
    clock = TrainingClock(budget_seconds=0.2)
    state, control = TrainerState(), TrainerControl()
    clock.on_train_begin(None, state, control)
    clock.on_step_end(None, state, control)
    assert not control.should_training_stop
    time.sleep(0.25)
    clock.on_step_end(None, state, control)
    assert control.should_training_stop and control.should_save
    restored = TrainingClock.from_state(clock.state())  # what the Trainer does from trainer_state.json
    assert restored.elapsed() >= 0.25 and restored.fraction() == 1.0
    with pytest.raises(ValueError):
        TrainingClock(0)


def test_distillation_with_a_time_budget_stops_early_with_the_learning_rate_annealed(tmp_path, monkeypatch):
    ticks = iter(range(10**6))  # a clock that advances 0.1 s each time it is read: the test does not depend on speed
    monkeypatch.setattr(training_budget.time, "perf_counter", lambda: next(ticks) * 0.1)
    teacher = make_model("llama", num_layers=4)
    tokenizer = make_tokenizer()
    blocks = prepare_blocks(CORPUS[:60], tokenizer, block_size=24)
    student = make_student(teacher, [0, 3])
    args = DistillationConfig(output_dir=str(tmp_path / "ckpt"), max_steps=100000, per_device_train_batch_size=4,
                              learning_rate=1e-3, logging_steps=1, use_cpu=True, save_strategy="no",
                              disable_tqdm=True, report_to="none", max_train_minutes=0.05)
    trainer = DistillationTrainer(model=student, teacher=teacher, args=args, train_dataset=blocks,
                                  data_collator=collator_for(student, tokenizer))
    trainer.train()
    assert 5 < trainer.state.global_step < 100  # stopped by the 3 s budget, far below max_steps
    rates = [e["learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert max(rates) > 9e-4 and rates[-1] < 0.1 * max(rates)  # warmed up to the full rate, annealed by the end
    assert rates.index(max(rates)) < len(rates) // 3
    with pytest.raises(PeftTransferError, match="max_train_minutes"):
        DistillationConfig(output_dir=str(tmp_path / "x"), max_train_minutes=0)


def test_distill_cli_with_a_spent_budget_is_finished_on_rerun(tmp_path, capsys):
    import json

    from peft_transfer.cli import main

    teacher, corpus = distill_inputs(tmp_path)
    out = tmp_path / "student"
    cmd = ["distill", "--teacher", teacher, "--corpus", corpus, "--keep-layers", "0,3",
           "--out", str(out), "--block-size", "24", "--eval-blocks", "3", "--batch-size", "4", "--max-steps",
           "100000", "--max-minutes", "0.02", "--save-steps", "5", "--no-progress", "--json"]
    assert main(cmd) == 0
    steps = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"]
    assert 0 < steps < 100000
    assert main(cmd) == 0  # the budget is spent: the finished student is returned, not trained further
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == steps
    assert json.loads((out / "distillation_summary.json").read_text())["steps"] == steps
