"""evaluate_classification and the data loaders used by the CLI; their bad-input errors."""

import json

import numpy as np
import pytest
import torch
from datasets import Dataset
from tiny_models import make_model, make_tokenizer

from peft_transfer import PeftTransferError, evaluate_classification, get_task, label_logits, predict_scores
from peft_transfer.assets.data_files import load_labelled, load_texts

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
    data = load_texts(str(tmp_path / "pub"))
    assert data.column_names == ["text"]


def test_load_texts_mixes_sources_joined_by_plus(tmp_path):
    Dataset.from_dict({"text": ["a", "b", "c"]}).save_to_disk(str(tmp_path / "one"))
    Dataset.from_dict({"text": ["x", "y"], "label": [0, 1]}).save_to_disk(str(tmp_path / "two"))
    data = load_texts(f"{tmp_path / 'one'}+{tmp_path / 'two'}")
    assert sorted(data["text"]) == ["a", "b", "c", "x", "y"]
    assert len(load_texts(f"{tmp_path / 'one'}+{tmp_path / 'two'}", limit=2)) == 2


def test_load_texts_cuts_to_max_words(tmp_path):
    Dataset.from_dict({"text": ["one two three four", "five six"]}).save_to_disk(str(tmp_path / "pub"))
    assert load_texts(str(tmp_path / "pub"), max_words=2)["text"] == ["one two", "five six"]
    with pytest.raises(PeftTransferError, match="max_words"):
        load_texts(str(tmp_path / "pub"), max_words=0)
