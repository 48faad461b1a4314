"""Accounting: the recorded ε is Opacus's for the recorded parameters; kill + resume reports the same ε."""

import math

import pytest
import torch
from datasets import Dataset
from opacus.accountants import PRVAccountant, RDPAccountant
from tiny_models import make_model
from transformers import TrainerCallback

from peft_transfer import TransferablePromptConfig, get_task
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import ACCOUNTANT_FILE, PrivatePromptTrainer, tune_prompt

TEXTS = [f"movie number {i} was " + "good " * (i % 4) for i in range(24)]
DATA = Dataset.from_dict({"text": TEXTS, "label": [i % 2 for i in range(24)]})
TASK = get_task("rotten_tomatoes")


def _args(out, **kw):
    values = dict(output_dir=str(out), max_steps=6, per_device_train_batch_size=4, logging_steps=2, save_steps=3,
                  disable_tqdm=True, seed=0)
    values.update(kw)
    return PrivatePromptConfig(**values)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_recorded_epsilon_is_opacus_epsilon_for_recorded_parameters(tmp_path, tokenizer, accountant):
    args = _args(tmp_path, target_epsilon=4.0, accountant=accountant, max_steps=3, save_strategy="no")
    tune_prompt(make_model("llama"), tokenizer, TASK, DATA, args)
    dp = TransferablePromptConfig.from_pretrained(str(tmp_path)).dp
    assert dp.private and dp.accountant == accountant and dp.steps == 3 and dp.num_train_examples == 24
    assert dp.sample_rate == pytest.approx(4 / 24) and dp.max_grad_norm == 1.0
    assert dp.delta == pytest.approx(1 / 240)  # default 1/(10 N)
    fresh = RDPAccountant() if accountant == "rdp" else PRVAccountant()
    fresh.history = [(dp.noise_multiplier, dp.sample_rate, dp.steps)]
    assert fresh.get_epsilon(delta=dp.delta) == pytest.approx(dp.epsilon, rel=1e-9)
    assert 4.0 - 0.02 <= dp.epsilon <= 4.0 + 1e-9  # calibrated to spend the target, not more


def test_epsilon_logged_at_every_logging_step_and_in_final_metrics(tmp_path, tokenizer):
    args = _args(tmp_path, noise_multiplier=1.0, accountant="prv", save_strategy="no")
    trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer)
    output = trainer.train()
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert [h["step"] for h in logged] == [2, 4, 6]
    eps = [h["epsilon"] for h in logged]
    assert eps[0] < eps[1] < eps[2] == pytest.approx(output.metrics["epsilon"])
    assert all("grad_norm" not in h for h in trainer.state.log_history)  # the unclipped norm is not private


def test_kill_and_resume_reports_the_same_epsilon(tmp_path, tokenizer):
    full = tune_prompt(make_model("llama"), tokenizer, TASK, DATA,
                       _args(tmp_path / "full", noise_multiplier=1.0, accountant="prv"))

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 4:
                raise KeyboardInterrupt

    killed = _args(tmp_path / "killed", noise_multiplier=1.0, accountant="prv")
    with pytest.raises(KeyboardInterrupt):
        tune_prompt(make_model("llama"), tokenizer, TASK, DATA, killed, callbacks=[Kill()])
    assert (tmp_path / "killed" / "checkpoint-3" / ACCOUNTANT_FILE).exists()
    assert not (tmp_path / "killed" / "checkpoint-6").exists()
    resumed = tune_prompt(make_model("llama"), tokenizer, TASK, DATA, killed, resume_from_checkpoint=True)
    a, b = full.peft_config["default"].dp, resumed.peft_config["default"].dp
    assert b.steps == 6 and b.epsilon == pytest.approx(a.epsilon, rel=1e-12)
    assert b.noise_multiplier == a.noise_multiplier


def test_resume_without_accountant_history_is_refused(tmp_path, tokenizer):
    tune_prompt(make_model("llama"), tokenizer, TASK, DATA, _args(tmp_path / "run", noise_multiplier=1.0))
    (tmp_path / "run" / "checkpoint-3" / ACCOUNTANT_FILE).unlink()
    with pytest.raises(Exception, match="under-report"):
        tune_prompt(make_model("llama"), tokenizer, TASK, DATA,
                    _args(tmp_path / "run", noise_multiplier=1.0, max_steps=8),
                    resume_from_checkpoint=str(tmp_path / "run" / "checkpoint-3"))


def test_stop_at_epsilon_stops_before_exceeding(tmp_path, tokenizer):
    args = _args(tmp_path, noise_multiplier=0.8, accountant="prv", max_steps=12, stop_at_epsilon=2.0,
                 save_strategy="no")
    trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer)
    trainer.train()
    record = trainer.dp_record()
    assert 0 < record.steps < 12 and record.epsilon <= 2.0  # PRV: 3 steps give 1.84, 4 more than 2
    assert trainer.would_exceed(2.0)  # one more step would have crossed it


def test_empty_poisson_batch_takes_a_noise_only_step(tmp_path, tokenizer):
    args = _args(tmp_path, noise_multiplier=1.0, per_device_train_batch_size=4, save_strategy="no")
    trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer)
    trainer.create_optimizer()
    weight = trainer.prompt_model.prompt_encoder["default"].embedding.weight
    before = weight.detach().clone()
    loss = trainer.training_step(trainer.model, trainer.data_collator([]))
    trainer.optimizer.step()
    assert loss.item() == 0.0
    assert not torch.equal(before, weight)  # noise moved the prompt
    assert trainer.accountant.history == [(1.0, 4 / 24, 1)]
    assert math.isfinite(trainer.epsilon())


def test_training_survives_many_empty_poisson_batches(tmp_path, tokenizer):
    """Expected batch 1 of 8 examples (q = 1/8): about a third of the Poisson draws are empty."""
    small = DATA.select(range(8))
    args = _args(tmp_path, noise_multiplier=1.0, per_device_train_batch_size=1, max_steps=12, save_strategy="no",
                 logging_steps=4, noise_seed=3)  # fixed draws, so that some batch is empty every time
    trainer = PrivatePromptTrainer(make_model("llama"), args, small, TASK, tokenizer)
    sizes = []
    collate = trainer.data_collator
    trainer.data_collator = lambda rows: (sizes.append(len(rows)), collate(rows))[1]
    trainer.train()
    assert trainer.dp_record().steps == 12
    assert 0 in sizes


def test_dp_noise_and_sampling_do_not_follow_the_training_seed(tmp_path, tokenizer):
    """The noise must be unknowable: the same `seed` twice gives different prompts; only `noise_seed` repeats."""
    def prompt(name, **kw):
        args = _args(tmp_path / name, noise_multiplier=1.0, max_steps=2, save_strategy="no", **kw)
        trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer)
        trainer.train()
        return trainer.prompt_model.prompt_encoder["default"].embedding.weight.detach().clone()

    first, second = prompt("a"), prompt("b")
    assert not torch.allclose(first, second)
    with pytest.warns(UserWarning, match="noise_seed"):
        fixed = prompt("c", noise_seed=7)
    with pytest.warns(UserWarning, match="noise_seed"):
        assert torch.equal(fixed, prompt("d", noise_seed=7))
