"""`tune`: the DP plan from --budget-examples (printed, with a time estimate), --max-length (cuts counted, template
and label slot kept), and the refusals of contradictory compute flags."""

import json

import pytest
from tiny_models import make_model, make_tokenizer

from peft_transfer import TransferablePromptConfig, get_task
from peft_transfer.cli import main

LONG = "a long review that goes on " * 12


@pytest.fixture
def folders(tmp_path):
    model = make_model("llama", num_layers=2)
    tok = make_tokenizer()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    rows = [{"text": (LONG if i % 4 == 0 else "") + ("good great" if i % 2 else "bad dull"), "label": i % 2}
            for i in range(200)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def _tune(folders, *extra):
    return main(["tune", "--model", str(folders / "m"), "--data", str(folders / "d.jsonl"), "--out",
                 str(folders / "p"), "--save-steps", "5", *extra])


def test_dp_plan_from_the_budget_is_printed_estimated_and_used(folders, capsys):
    assert _tune(folders, "--epsilon", "8", "--budget-examples", "64", "--accountant", "rdp", "--json") == 0
    captured = capsys.readouterr()
    out, capsys_err = captured.out, captured.err
    # 200 examples: q <= 0.1 allows batch 20, at least 16 steps in 64 examples allows 4
    assert "DP plan for 200 examples at ε = 8: logical batch 4 (Poisson, q = 0.02), 16 steps = 64 examples" in out
    assert "4 virtual tokens, micro-batches of 4" in out
    assert "estimated time: ~" in out and "for 64 examples" in out
    assert "WARNING: the noise on each step" in capsys_err  # batch 4: noise far above the signal
    record = json.loads(next(line for line in out.splitlines() if line.startswith('{"')))
    assert record["steps"] == 16 and record["sample_rate"] == pytest.approx(0.02) and record["epsilon"] <= 8.0
    config = TransferablePromptConfig.from_pretrained(str(folders / "p"))
    assert config.num_virtual_tokens == 4


def test_max_length_cuts_long_texts_keeps_the_label_slot_and_counts_them(folders, capsys):
    assert _tune(folders, "--max-length", "12", "--max-steps", "1", "--batch-size", "4") == 0
    out = capsys.readouterr().out
    assert "50 of 200 training texts are longer than --max-length 12 tokens allows" in out
    task = get_task("rotten_tomatoes")
    task.max_length = 12
    tokenized = task.tokenized(make_tokenizer(), masked_lm=False)
    rendered = tokenized.render(LONG)
    assert rendered.startswith("Review: a long") and rendered.endswith("\nSentiment:")
    assert len(make_tokenizer()(rendered)["input_ids"]) <= 12
    assert tokenized.is_truncated(LONG) and not tokenized.is_truncated("good")
    encoded = tokenized.encode([LONG, "good"])
    assert encoded["input_ids"].shape[1] <= 12


def test_contradictory_or_impossible_settings_are_one_line(folders, capsys):
    assert _tune(folders, "--budget-examples", "64", "--epochs", "2") == 2
    assert "give the compute once" in capsys.readouterr().err
    assert _tune(folders, "--max-length", "3") == 2
    err = capsys.readouterr().err
    assert "leaves no room for text" in err and "Traceback" not in err
    assert _tune(folders, "--epsilon", "8", "--batch-size", "500", "--max-steps", "1") == 2
    assert "larger than the 200 training examples" in capsys.readouterr().err


def test_help_explains_why_dp_wants_large_batches(capsys):
    assert main(["tune", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "fewer and larger batches" in out and "--budget-examples" in out and "--max-length" in out


def test_non_dp_budget_sets_the_steps(folders, capsys):
    assert _tune(folders, "--budget-examples", "40", "--batch-size", "8") == 0
    out = capsys.readouterr().out
    assert "for 40 examples" in out and "DP plan" not in out and "without differential privacy" in out
    state = json.loads((folders / "p-work" / "checkpoint-5" / "trainer_state.json").read_text())
    assert state["global_step"] == 5
