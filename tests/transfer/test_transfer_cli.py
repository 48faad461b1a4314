"""`peft-transfer transfer` and `peft-transfer compare` on tiny models saved to folders; `compare_prompts`."""

import json

import pytest
from datasets import Dataset
from tiny_models import make_tokenizer
from transfer_helpers import labelled_texts, public_texts, related_models, tune_source_prompt

from peft_transfer import TransferablePromptConfig, evaluate_classification, get_task, load_prompt, save_prompt
from peft_transfer.cli import main
from peft_transfer.evaluation.comparison import ComparisonRow, compare_prompts, gap_closure

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def setup(tmp_path):
    tok = make_tokenizer()
    student, target = related_models(noise=0.3)
    paths = {}
    for name, model in (("student", student), ("target", target)):
        paths[name] = str(tmp_path / name)
        model.save_pretrained(paths[name])
        tok.save_pretrained(paths[name])
    save_prompt(tune_source_prompt(student, tok), str(tmp_path / "p_s"))
    full_student, full_target = related_models(noise=0.3)
    save_prompt(tune_source_prompt(full_target, tok), str(tmp_path / "full"))
    paths["p_s"], paths["full"] = str(tmp_path / "p_s"), str(tmp_path / "full")
    texts, labels = labelled_texts(24, seed=7)
    paths["test"] = str(tmp_path / "test.csv")
    Dataset.from_dict({"text": texts, "label": labels}).to_csv(paths["test"])
    paths["public"] = str(tmp_path / "public.csv")
    Dataset.from_dict({"text": public_texts(40)}).to_csv(paths["public"])
    return paths


def _transfer(paths, out, steps, *extra):
    return main(["transfer", "--prompt", paths["p_s"], "--student", paths["student"], "--target", paths["target"],
                 "--public", paths["public"], "--out", out, "--steps", str(steps), "--batch-size", "4",
                 "--learning-rate", "0.05", "--save-steps", "2", "--monitor-size", "8", *extra])


def test_transfer_then_compare(setup, tmp_path, capsys):
    out = str(tmp_path / "p_t")
    assert _transfer(setup, out, 2) == 0
    assert TransferablePromptConfig.from_pretrained(out).transfer.steps == 2
    assert _transfer(setup, out, 4) == 0  # resumes from checkpoint-2
    record = TransferablePromptConfig.from_pretrained(out).transfer
    assert record.steps == 4 and record.public_dataset == setup["public"] and record.num_public_examples == 40
    capsys.readouterr()
    table = str(tmp_path / "table")
    assert main(["compare", "--target", setup["target"], "--student", setup["student"], "--source-prompt",
                 setup["p_s"], "--transferred-prompt", out, "--full-prompt", setup["full"], "--data", setup["test"],
                 "--split", "train", "--out", table]) == 0
    data = json.loads((tmp_path / "table" / "comparison.json").read_text())
    assert [r["method"] for r in data["rows"]] == ["ZS", "FullPT", "CompPT", "Direct", "POST"]
    assert all(r["n"] == 24 for r in data["rows"])
    acc = {r["method"]: r["accuracy"] for r in data["rows"]}
    assert acc["FullPT"] != acc["ZS"]  # so that G is defined, and checked against the formula
    assert data["gap_closure"] == {"POST": pytest.approx((acc["POST"] - acc["ZS"]) / (acc["FullPT"] - acc["ZS"]))}
    assert "| POST |" in (tmp_path / "table" / "comparison.md").read_text()
    assert "| ZS |" in capsys.readouterr().out


def test_transfer_cli_errors(setup, tmp_path, capsys):
    empty = str(tmp_path / "empty.csv")
    Dataset.from_dict({"text": ["", " "]}).to_csv(empty)
    setup = {**setup, "public": empty}
    assert _transfer(setup, str(tmp_path / "x"), 2) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["transfer", "--prompt", str(tmp_path / "nope"), "--student", setup["student"], "--target",
                 setup["target"], "--public", setup["test"], "--out", str(tmp_path / "y")]) == 2


def test_gap_closure_by_hand():
    """G = (POST - ZS) / (FullPT - ZS), each POST row against the FullPT row of the same ε."""
    rows = [ComparisonRow("ZS", "t", None, 0.50, 0.4, 10), ComparisonRow("FullPT", "t", "f", 0.90, 0.9, 10),
            ComparisonRow("FullPT (ε=8)", "t", "f8", 0.70, 0.7, 10, 8.0),
            ComparisonRow("POST", "t", "p", 0.80, 0.8, 10), ComparisonRow("POST (ε=8)", "t", "p8", 0.55, 0.5, 10, 8.0),
            ComparisonRow("Direct", "t", "s", 0.95, 0.9, 10)]
    assert gap_closure(rows) == {"POST": pytest.approx(0.3 / 0.4), "POST (ε=8)": pytest.approx(0.05 / 0.2)}
    assert gap_closure([rows[0], ComparisonRow("FullPT", "t", "f", 0.5, 0.5, 10), rows[3]]) == {}  # FullPT = ZS
    assert gap_closure(rows[:3]) == {}  # no POST row


def test_compare_prompts_scores_each_prompt_on_its_model(setup, tmp_path):
    from peft_transfer.assets import load_model

    target, tok = load_model(setup["target"])
    student, _ = load_model(setup["student"])
    task = get_task("rotten_tomatoes")
    texts, labels = labelled_texts(24, seed=7)
    test = Dataset.from_dict({"text": texts, "label": labels})
    assert _transfer(setup, str(tmp_path / "p_t"), 2) == 0
    zs_before = evaluate_classification(target, tok, task, test, use_prompt=False)
    rows = compare_prompts(target, tok, task, test, student=student, source_prompt=setup["p_s"],
                           transferred_prompt=str(tmp_path / "p_t"), full_prompts=[setup["full"]])
    by = {r.method: r for r in rows}
    assert list(by) == ["ZS", "FullPT", "CompPT", "Direct", "POST"]
    assert by["ZS"].accuracy == zs_before.accuracy and by["ZS"].prompt is None
    assert by["CompPT"].model == setup["student"] and by["Direct"].model == by["POST"].model == setup["target"]
    # each row is its prompt on its model, scored independently here
    for method, model, prompt in (("CompPT", student, setup["p_s"]), ("Direct", target, setup["p_s"]),
                                  ("POST", target, str(tmp_path / "p_t")), ("FullPT", target, setup["full"])):
        expected = evaluate_classification(load_prompt(model, prompt), tok, task, test)
        assert (by[method].accuracy, by[method].macro_f1) == (expected.accuracy, expected.macro_f1), method
    assert by["CompPT"].accuracy != by["Direct"].accuracy  # the same p_s on two models: the rows are not copies
    # the target is unchanged by the loads
    assert evaluate_classification(target, tok, task, test, use_prompt=False).accuracy == zs_before.accuracy


def test_transfer_cli_cuts_public_texts(setup, tmp_path):
    from peft_transfer.provenance import text_fingerprint

    out = str(tmp_path / "p_t_cut")
    assert _transfer(setup, out, 1, "--max-public-words", "3") == 0
    record = TransferablePromptConfig.from_pretrained(out).transfer
    full = list(Dataset.from_csv(setup["public"])["text"])
    cut = [" ".join(t.split()[:3]) for t in full]
    assert cut != full and record.num_public_examples == 40
    assert record.public_fingerprint in (text_fingerprint(cut), text_fingerprint(sorted(cut)))
