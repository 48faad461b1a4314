"""evaluate (any task), evaluate_classification, the comparison files and the data loaders used by the CLI;
their bad-input errors."""

import json
from dataclasses import asdict

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny_models import make_model, make_tokenizer

from peft_transfer import PeftTransferError, evaluate_classification, get_task, label_logits, predict_scores
from peft_transfer.assets.data_files import load_labelled, load_texts
from peft_transfer.errors import PeftTransferWarning

TEXTS = ["a great film", "a dull and boring mess", "good", "the team won", "bad", "terrible acting"]
LABELS = [1, 0, 1, 1, 0, 0]


def test_scores_match_a_direct_forward_and_keep_input_order():
    model, tok, task = make_model("llama"), make_tokenizer(), get_task("rotten_tomatoes")
    scores = predict_scores(model, tok, task, TEXTS, batch_size=4)
    tokenized = task.tokenized(tok, masked_lm=False)
    for i, text in enumerate(TEXTS):
        with torch.no_grad():
            one = tokenized.class_scores(label_logits(model, **tokenized.encode([text])))
        np.testing.assert_allclose(scores[i], one[0].numpy(), rtol=1e-4, atol=1e-5)


def test_accuracy_and_macro_f1_by_hand_on_a_model_that_always_answers_one_class():
    """All label-word rows of the (tied) LM head zeroed: every class scores 0, argmax picks class 0 for all."""
    model, tok, task = make_model("gpt2"), make_tokenizer(), get_task("rotten_tomatoes")
    ids = [i for words in task.label_words for w in words for i in tok(w, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        model.get_output_embeddings().weight[ids] = 0.0
    result = evaluate_classification(model, tok, task, Dataset.from_dict({"text": TEXTS, "label": LABELS}),
                                     batch_size=4)
    # labels 1,0,1,1,0,0, predictions all 0: accuracy 3/6; F1(0) = 2·3 / (2·3 + 3 + 0) = 2/3, F1(1) = 0
    assert result.n == 6 and result.accuracy == pytest.approx(0.5)
    assert result.macro_f1 == pytest.approx((2 / 3 + 0) / 2)


def test_evaluation_reports_macro_f1_of_its_predictions(monkeypatch):
    """Three classes with known predictions: accuracy 4/6 and macro-F1 (0.5 + 2/3 + 0.8) / 3 by hand."""
    import peft_transfer.evaluation.classification as evaluation

    task = get_task("bbc_news")
    predictions = [0, 0, 1, 2, 2, 2]
    monkeypatch.setattr(evaluation, "predict_scores", lambda *a, **k: np.eye(task.num_classes)[predictions])
    data = Dataset.from_dict({"text": list("abcdef"), "label": [0, 1, 1, 2, 2, 0]})
    result = evaluation.evaluate_classification(None, None, task, data)
    # class 0: tp 1 fp 1 fn 1 -> 0.5; class 1: tp 1 fn 1 -> 2/3; class 2: tp 2 fp 1 -> 0.8; classes 3, 4 absent
    assert result.accuracy == pytest.approx(4 / 6)
    assert result.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / 3)


def test_evaluation_errors():
    model, tok, task = make_model("llama"), make_tokenizer(), get_task("rotten_tomatoes")
    with pytest.raises(PeftTransferError, match="empty"):
        evaluate_classification(model, tok, task, Dataset.from_dict({"text": [], "label": []}))
    with pytest.raises(PeftTransferError, match="no 'label' column"):
        evaluate_classification(model, tok, task, Dataset.from_dict({"text": ["a"]}))
    with pytest.raises(PeftTransferError, match="class indices"):
        evaluate_classification(model, tok, task, Dataset.from_dict({"text": ["a"], "label": [2]}))


def test_load_labelled_from_csv_jsonl_and_folder(tmp_path):
    rows = [{"text": t, "label": y} for t, y in zip(TEXTS, LABELS)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "d.csv").write_text("text,label\n" + "\n".join(f'"{t}",{y}' for t, y in zip(TEXTS, LABELS)))
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    for source in ("d.jsonl", "d.csv", "saved"):
        data = load_labelled(str(tmp_path / source), limit=4)
        assert data["text"] == TEXTS[:4] and data["label"] == LABELS[:4]


def test_load_errors(tmp_path):
    with pytest.raises(PeftTransferError, match="neither an embedded data set nor"):
        load_labelled(str(tmp_path / "missing.csv"))
    (tmp_path / "e.jsonl").write_text("")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(PeftTransferError, match="unsupported file type"):
        load_labelled(str(tmp_path / "x.txt"))
    Dataset.from_dict({"body": ["a"]}).save_to_disk(str(tmp_path / "nobody"))
    with pytest.raises(PeftTransferError, match="no 'text' column"):
        load_texts(str(tmp_path / "nobody"))


def test_load_texts_drops_labels(tmp_path):
    Dataset.from_dict({"text": TEXTS, "label": LABELS}).save_to_disk(str(tmp_path / "pub"))
    with pytest.warns(PeftTransferWarning, match="has a 'label' column, so it looks like labelled"):
        data = load_texts(str(tmp_path / "pub"))
    assert data.column_names == ["text"]


def test_load_texts_mixes_sources_joined_by_plus(tmp_path):
    Dataset.from_dict({"text": ["a", "b", "c"]}).save_to_disk(str(tmp_path / "one"))
    Dataset.from_dict({"text": ["x", "y"], "source": ["p", "q"]}).save_to_disk(str(tmp_path / "two"))
    data = load_texts(f"{tmp_path / 'one'}+{tmp_path / 'two'}")
    assert sorted(data["text"]) == ["a", "b", "c", "x", "y"]
    assert len(load_texts(f"{tmp_path / 'one'}+{tmp_path / 'two'}", limit=2)) == 2


def test_load_texts_cuts_to_max_words(tmp_path):
    Dataset.from_dict({"text": ["one two three four", "five six"]}).save_to_disk(str(tmp_path / "pub"))
    assert load_texts(str(tmp_path / "pub"), max_words=2)["text"] == ["one two", "five six"]
    with pytest.raises(PeftTransferError, match="max_words"):
        load_texts(str(tmp_path / "pub"), max_words=0)


def test_one_entry_scores_any_task_as_its_own_evaluation_does(tmp_path):
    """`evaluate` picks the task's scoring: the same numbers as evaluate_classification / evaluate_generation,
    with the headline (accuracy, ROUGE-L) and the other metrics named; an unknown task type is refused."""
    from peft_transfer import GenerationTask, evaluate, evaluate_generation
    from peft_transfer.evaluation.scoring import scoring

    model, tok, task = make_model("llama"), make_tokenizer(), get_task("rotten_tomatoes")
    data = Dataset.from_dict({"text": TEXTS, "label": LABELS})
    result = evaluate(model, tok, task, data)
    assert result == evaluate_classification(model, tok, task, data) and result.headline == result.accuracy
    assert result.metrics() == {"accuracy": result.accuracy, "macro_f1": result.macro_f1}
    assert result.describe() == f"accuracy {result.accuracy:.4f}, macro-F1 {result.macro_f1:.4f}"
    assert scoring(task).chance(task) == 0.5 and scoring(task).batch_size == 32

    titles = GenerationTask(name="topics", template="Article: {text}\nTopic:", max_new_tokens=4, max_length=32)
    pairs = Dataset.from_dict({"text": TEXTS[:3], "target": ["film", "film", "film"]})
    scores = evaluate(model, tok, titles, pairs, use_prompt=False)
    assert scores == evaluate_generation(model, tok, titles, pairs) and scores.headline == scores.rouge_l
    assert list(scores.metrics()) == ["rouge_l", "rouge_1", "rouge_2"] and scores.describe().startswith("ROUGE-L ")
    assert scoring(titles).chance is None  # no chance level: no Eq. 6 oracle for generation
    with pytest.raises(PeftTransferError, match="No evaluation for a task of type str"):
        evaluate(model, tok, "rotten_tomatoes", data)


def test_one_comparison_builder_writes_each_kind_in_its_own_layout(tmp_path):
    """Classification rows: accuracy / macro-F1 in %, no `metric` key; generation rows: ROUGE-L / -1 / -2 and
    `metric: ROUGE-L`, G on ROUGE-L; the pipeline's result records keep each kind's keys."""
    from peft_transfer.evaluation.classification import ClassificationResult
    from peft_transfer.evaluation.comparison import ComparisonRow, GenerationRow, gap_closure, write_comparison
    from peft_transfer.evaluation.generation import GenerationResult
    from peft_transfer.pipeline.report import result_record

    rows = [ComparisonRow("ZS", "t", None, 0.5, 0.4, 10), ComparisonRow("FullPT", "t", "f", 0.9, 0.8, 10),
            ComparisonRow.scored("POST", "t", "p", ClassificationResult(0.7, 0.6, 10))]
    md, js = write_comparison(rows, str(tmp_path / "c"), {"task": "rt"})
    data = json.loads(js.read_text())
    assert list(data) == ["task", "rows", "gap_closure"] and data["gap_closure"] == {"POST": pytest.approx(0.5)}
    assert data["rows"][2] == {"method": "POST", "model": "t", "prompt": "p", "accuracy": 0.7, "macro_f1": 0.6,
                               "n": 10, "epsilon": None, "note": ""}
    table = md.read_text()
    assert "| method | model | n | accuracy | macro-F1 | note |" in table and "| POST | t | 10 | 70.00 % | 60.00 % |" \
        in table and "(FullPT − ZS) = 0.50" in table

    generated = [GenerationRow("ZS", "t", None, 0.2, 0.3, 0.1, 4), GenerationRow("FullPT", "t", "f", 0.6, 0.7, 0.5, 4),
                 GenerationRow.scored("POST", "t", "p", GenerationResult(0.4, 0.5, 0.3, 4)),
                 GenerationRow.empty("Direct", "t", "s", 4, note="not applicable")]
    assert gap_closure(generated) == {"POST": pytest.approx(0.5)} and gap_closure(generated[1:], zs=0.2) == \
        {"POST": pytest.approx(0.5)}
    md, js = write_comparison(generated, str(tmp_path / "g"), {"task": "titles"})
    data = json.loads(js.read_text())
    assert list(data) == ["task", "metric", "rows", "gap_closure"] and data["metric"] == "ROUGE-L"
    assert data["rows"][3] == {"method": "Direct", "model": "t", "prompt": "s", "rouge_l": None, "rouge_1": None,
                               "rouge_2": None, "n": 4, "epsilon": None, "note": "not applicable"}
    table = md.read_text()
    assert "| ROUGE-L | ROUGE-1 | ROUGE-2 |" in table and "| POST | t | 4 | 40.00 | 50.00 | 30.00 |" in table
    assert "| Direct | t | 4 | – | – | – |" in table and "(FullPT − ZS) on ROUGE-L = 0.50" in table

    assert result_record(ClassificationResult, "rt", 8.0, "POST", asdict(rows[2])) == {
        "task": "rt", "epsilon": 8.0, "method": "POST", "accuracy": 0.7, "macro_f1": 0.6, "n": 10}
    assert result_record(GenerationResult, "titles", 8.0, "POST", asdict(generated[2])) == {
        "task": "titles", "epsilon": 8.0, "method": "POST", "metric": "ROUGE-L", "score": 0.4, "rouge_1": 0.5,
        "rouge_2": 0.3, "n": 4}
