"""Private prompt tuning: bad input gives clear errors; tuning learns; the CLI tunes, records DP and resumes."""

import contextlib
import json
import logging
import math
import os

import pytest
from datasets import Dataset
from tiny_models import make_model

from peft_transfer import PeftTransferError, TransferablePromptConfig, get_task
from peft_transfer.audit import find_leaks
from peft_transfer.cli import main
from peft_transfer.prompts.handover import PROMPT_FILES
from peft_transfer.student.layers import make_student
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import PrivatePromptTrainer, tune_prompt

TASK = get_task("rotten_tomatoes")
TEXTS = [f"private review {i}: " + ("good great " if i % 2 else "bad bad ") * (1 + i % 3) for i in range(16)]
DATA = Dataset.from_dict({"text": TEXTS, "label": [i % 2 for i in range(16)]})


@contextlib.contextmanager
def assert_logs(name: str, text: str):
    """The logger `name` emits a record containing `text` inside the block (caplog misses propagate=False)."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert any(text in r.getMessage() for r in records), [r.getMessage() for r in records]


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


def test_cli_tunes_with_dp_writes_an_export_and_resumes(tmp_path, tokenizer, capsys):
    model_dir = tmp_path / "model"
    make_student(make_model("llama", num_layers=4), keep_layers=[0, 3]).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    data = tmp_path / "train.jsonl"
    data.write_text("\n".join(json.dumps({"text": t, "label": i % 2}) for i, t in enumerate(TEXTS)))
    out, work = tmp_path / "prompt", tmp_path / "prompt-work"
    argv = ["tune", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--epsilon", "8",
            "--max-steps", "2", "--batch-size", "4", "--save-steps", "1", "--json", "--accountant", "rdp"]
    assert main(argv) == 0
    first = _record(capsys.readouterr().out)
    assert first["private"] and first["steps"] == 2 and first["epsilon"] <= 8.0
    # --out is the export: the prompt and its record only; checkpoints and logs are in the sibling work folder
    assert sorted(os.listdir(out)) == sorted(PROMPT_FILES)
    assert (work / "checkpoint-2" / "trainer_state.json").is_file() and (work / "training_args.bin").is_file()
    config = TransferablePromptConfig.from_pretrained(str(out))
    assert config.dp.to_dict() == first
    assert config.student.kept_layers == [0, 3] and config.student.teacher == "tiny-llama"  # the student's lineage
    assert main(argv) == 0  # resumes from checkpoint-2: nothing left to do, same record
    second = capsys.readouterr().out
    assert _record(second)["epsilon"] == pytest.approx(first["epsilon"])
    assert "resumed from" in second
    # more steps with the checkpoint's σ would pass ε = 8: refused, naming the ways out ...
    more = [*argv[:argv.index("--max-steps")], "--max-steps", "6", *argv[argv.index("--max-steps") + 2:]]
    assert main(more) == 2
    err = capsys.readouterr().err
    assert "stop-at-epsilon" in err and "new output folder" in err and "Traceback" not in err
    # ... or stopped at the target: σ spent ε = 8 in 2 steps, so not one step more is taken
    assert main([*more, "--stop-at-epsilon", "8"]) == 0
    third = _record(capsys.readouterr().out)
    assert third["steps"] == 2 and third["epsilon"] == pytest.approx(first["epsilon"]) and third["epsilon"] <= 8.0
    assert main(["tune", "--model", str(model_dir), "--data", str(data), "--out", str(out), "--epsilon", "0"]) == 2
    # an --out that holds anything but an export is refused before training, naming the files
    assert main([*argv[:argv.index("--out")], "--out", str(work), *argv[argv.index("--out") + 2:]]) == 2
    assert "checkpoint-" in capsys.readouterr().err


def test_dp_refuses_selection_on_private_data(tmp_path, tokenizer):
    with pytest.raises(PeftTransferError, match="load_best_model_at_end"):
        _args(tmp_path, target_epsilon=8.0, load_best_model_at_end=True, eval_strategy="steps", save_strategy="steps")
    with pytest.raises(PeftTransferError, match="eval_data_is_public"):
        PrivatePromptTrainer(make_model("llama"), _args(tmp_path, target_epsilon=8.0), DATA, TASK, tokenizer,
                             eval_dataset=DATA)
    with pytest.raises(PeftTransferError, match="target_epsilon"):
        _args(tmp_path, target_epsilon=2.0, stop_at_epsilon=3.0)
    # a set the data owner declares not private may be evaluated on (and says so in the log)
    public = Dataset.from_dict({"text": ["a public sentence", "another public one"], "label": [0, 1]})
    args = _args(tmp_path, target_epsilon=8.0, eval_data_is_public=True, eval_strategy="steps", eval_steps=1)
    with assert_logs("peft_transfer.tune.trainer", "declared not private"):
        trainer = PrivatePromptTrainer(make_model("llama"), args, DATA, TASK, tokenizer, eval_dataset=public)
    trainer.train()
    assert any("eval_loss" in h for h in trainer.state.log_history)
    # without DP there is no guarantee to protect: evaluation on any set is the user's choice
    PrivatePromptTrainer(make_model("llama"), _args(tmp_path), DATA, TASK, tokenizer, eval_dataset=DATA)


def test_lineage_of_a_distilled_student_is_recorded(tmp_path, tokenizer):
    student = make_student(make_model("llama", num_layers=4), keep_layers=[1, 3])
    tune_prompt(student, tokenizer, TASK, DATA, _args(tmp_path), export_dir=str(tmp_path / "export"))
    lineage = TransferablePromptConfig.from_pretrained(str(tmp_path / "export")).student
    assert lineage.teacher == "tiny-llama" and lineage.kept_layers == [1, 3] and lineage.teacher_num_layers == 4
    tune_prompt(make_model("llama"), tokenizer, TASK, DATA, _args(tmp_path / "plain"))
    assert TransferablePromptConfig.from_pretrained(str(tmp_path / "plain" / "run" / "export")).student is None
