"""Private prompt tuning: bad input gives clear errors; tuning learns; the CLI tunes, records DP and resumes."""

import json
import math

import pytest
from datasets import Dataset
from tiny_models import make_model

from peft_transfer import PeftTransferError, TransferablePromptConfig, get_task
from peft_transfer.audit import find_leaks
from peft_transfer.cli import main
from peft_transfer.private_prompt_config import PrivatePromptConfig
from peft_transfer.private_prompt_trainer import PrivatePromptTrainer, tune_prompt

TASK = get_task("rotten_tomatoes")
TEXTS = [f"private review {i}: " + ("good great " if i % 2 else "bad bad ") * (1 + i % 3) for i in range(16)]
DATA = Dataset.from_dict({"text": TEXTS, "label": [i % 2 for i in range(16)]})


def _args(tmp_path, **kw):
    values = dict(output_dir=str(tmp_path / "run"), max_steps=2, per_device_train_batch_size=4, disable_tqdm=True,
                  save_strategy="no")
    values.update(kw)
    return PrivatePromptConfig(**values)


@pytest.mark.parametrize("kw, match", [
    ({"target_epsilon": 0.0}, "positive"),
    ({"target_epsilon": -1.0}, "positive"),
    ({"target_epsilon": 8.0, "noise_multiplier": 1.0}, "not both"),
    ({"noise_multiplier": 0.0}, "positive"),
    ({"target_epsilon": 8.0, "gradient_accumulation_steps": 2}, "Gradient accumulation"),
    ({"target_epsilon": 8.0, "poisson_sampling": False}, "Poisson"),
    ({"accountant": "gdp"}, "accountant"),
    ({"target_delta": 1.5}, "target_delta"),
])
def test_bad_config_is_refused(tmp_path, kw, match):
    with pytest.raises(PeftTransferError, match=match):
        _args(tmp_path, **kw)


def test_infinite_epsilon_means_no_dp(tmp_path):
    args = _args(tmp_path, target_epsilon=math.inf)
    assert not args.private and not args.poisson_sampling


@pytest.mark.parametrize("data, kw, match", [
    (DATA.rename_column("label", "y"), {}, "no \\['label'\\]"),
    (Dataset.from_dict({"text": TEXTS, "label": [0, 1, 2, 0] * 4}), {}, "outside"),
    (DATA.select(range(3)), {}, "Only 3 training examples"),
    (DATA, {"target_epsilon": 8.0, "target_delta": 0.1}, "1/N"),
])
def test_bad_data_is_refused(tmp_path, tokenizer, data, kw, match):
    with pytest.raises(PeftTransferError, match=match):
        PrivatePromptTrainer(make_model("llama"), _args(tmp_path, **kw), data, TASK, tokenizer)


def test_tuning_without_dp_lowers_the_loss(tmp_path, tokenizer):
    args = _args(tmp_path, max_steps=15, learning_rate=0.05, per_device_train_batch_size=16, logging_steps=1)
    trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses[-1] < losses[0]
    assert trainer.dp_record().private is False


def test_dp_run_saves_prompt_with_record_and_no_private_text(tmp_path, tokenizer):
    args = _args(tmp_path, target_epsilon=8.0, save_strategy="steps", save_steps=1, logging_steps=1,
                 physical_batch_size=2)
    prompt = tune_prompt(make_model("llama"), tokenizer, TASK, DATA, args)
    assert not prompt.training
    config = TransferablePromptConfig.from_pretrained(str(tmp_path / "run"))
    assert config.dp.private and config.dp.epsilon <= 8.0 and config.dp.steps == 2
    assert config.task.name == "rotten_tomatoes"
    assert find_leaks([str(tmp_path)], TEXTS) == []


def _record(out: str) -> dict:
    return json.loads(next(line for line in out.splitlines() if line.startswith('{"')))


def test_cli_tunes_with_dp_and_resumes(tmp_path, tokenizer, capsys):
    model_dir = tmp_path / "model"
    make_model("llama").save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": i % 2}) for i, t in enumerate(TEXTS)))
    out = tmp_path / "prompt"
    argv = ["tune", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--epsilon", "8",
            "--max-steps", "2", "--batch-size", "4", "--save-steps", "1", "--json", "--accountant", "rdp"]
    assert main(argv) == 0
    first = _record(capsys.readouterr().out)
    assert first["private"] and first["steps"] == 2 and first["epsilon"] <= 8.0
    assert (out / "checkpoint-2").is_dir()
    assert main(argv) == 0  # resumes from checkpoint-2: nothing left to do, same record
    second = capsys.readouterr().out
    assert _record(second)["epsilon"] == pytest.approx(first["epsilon"])
    assert "resumed from" in second
    assert main(["tune", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--epsilon", "0"]) == 2
