"""A prompt is scored with its own task by default (evaluate, compare, transfer); labels may be class names."""

import json

import pytest
from datasets import ClassLabel, Dataset, Features, Value
from tiny_models import make_model, make_tokenizer

from peft_transfer import ClassificationTask, create_prompt_model, get_task, save_prompt
from peft_transfer.cli import main
from peft_transfer.tasks.labels import encode_labels

MINE = ClassificationTask(name="verdicts", template="Opinion: {text}\nVerdict:", label_words=[[" bad"], [" good"]])
TEXTS = ["a wonderful moving film", "a dull boring mess", "great acting", "the worst of times"] * 4
LABELS = [1, 0, 1, 0] * 4


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("task-choice")
    tok, model = make_tokenizer(), make_model("llama", num_layers=2)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    save_prompt(create_prompt_model(model, tok, MINE, num_virtual_tokens=4), str(root / "mine"))
    Dataset.from_dict({"text": TEXTS, "label": LABELS}).to_csv(root / "test.csv")
    return root


def _evaluate(folders, *extra):
    return main(["evaluate", "--model", str(folders / "model"), "--prompt", str(folders / "mine"), "--data",
                 str(folders / "test.csv"), *extra])


def test_evaluate_defaults_to_the_prompts_task(folders, capsys):
    assert _evaluate(folders) == 0
    default = capsys.readouterr().out.strip().splitlines()[-1]
    assert default.startswith("verdicts (all rows of test.csv, n=16)")  # its task; a whole file is not "(test)"
    words = json.dumps(MINE.label_words)
    assert _evaluate(folders, "--task", "verdicts", "--template", MINE.template, "--label-words", words) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == default
    assert _evaluate(folders, "--task", "rotten_tomatoes") == 2  # another task's template: refused ...
    assert "was tuned for task 'verdicts'" in capsys.readouterr().err
    assert _evaluate(folders, "--task", "rotten_tomatoes", "--force-task") == 0  # ... unless forced, loudly
    captured = capsys.readouterr()
    assert "WARNING: the prompt" in captured.err and captured.out.strip().splitlines()[-1].startswith("rotten_tomatoes")


def test_class_names_are_labels(folders, capsys):
    names = ["good" if y else "Bad " for y in LABELS]  # any case, stray spaces
    Dataset.from_dict({"text": TEXTS, "label": names}).to_csv(folders / "named.csv")
    assert _evaluate(folders, "--json") == 0
    by_index = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["evaluate", "--model", str(folders / "model"), "--prompt", str(folders / "mine"), "--data",
                 str(folders / "named.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == by_index
    out = folders / "tuned"
    assert main(["tune", "--model", str(folders / "model"), "--data", str(folders / "named.csv"), "--template",
                 MINE.template, "--label-words", json.dumps(MINE.label_words), "--task", "verdicts", "--out", str(out),
                 "--max-steps", "1", "--batch-size", "4", "--num-virtual-tokens", "4"]) == 0


def test_encode_labels():
    task = get_task("rotten_tomatoes")
    data = Dataset.from_dict({"text": ["a", "b", "c"], "label": ["positive", " Negative", "1"]})
    assert encode_labels(data, task)["label"] == [1, 0, 1]
    reordered = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]},
                                  features=Features({"text": Value("string"),
                                                     "label": ClassLabel(names=["positive", "negative"])}))
    assert encode_labels(reordered, task)["label"] == [1, 0]  # ClassLabel names in another order: re-mapped
    ints = Dataset.from_dict({"text": ["a"], "label": [1]})
    assert encode_labels(ints, task)["label"] == [1]
