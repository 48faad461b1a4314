"""Leakage scanner: planted leaks in every kind of file are found; a saved prompt folder is clean."""

from __future__ import annotations

import json

import pytest
import torch
from datasets import Dataset
from safetensors.torch import save_file
from tiny_models import make_model

from peft_transfer import PeftTransferError, get_task, save_prompt
from peft_transfer.audit import find_leaks
from peft_transfer.audit.leakage import text_hash
from peft_transfer.cli import main
from peft_transfer.tune.config import PrivatePromptConfig
from peft_transfer.tune.trainer import tune_prompt

PRIVATE = [
    "My neighbour Zoltan Kovacs told me his account number is 4471 at the clinic on Elm Street.",
    "Café Ümlaut served the worst crème brûlée I have ever eaten in my whole life, said Renée.",
    "Secret plan: meet at the old harbour.",  # shorter than 8 words: matched whole
    "bad film",  # too short to be checked
]


def test_planted_leaks_are_found_in_text_json_safetensors_and_torch_files(tmp_path):
    (tmp_path / "README.md").write_text("# Card\nExample: MY NEIGHBOUR zoltan kovacs, told me his account number!")
    (tmp_path / "log.json").write_text(json.dumps({"sample": PRIVATE[1]}))  # ensure_ascii escapes é, Ü, û
    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.safetensors"), metadata={"note": PRIVATE[2]})
    torch.save({"texts": ["the old harbour", "secret plan meet at the old harbour"]}, tmp_path / "state.pt")
    leaks = find_leaks([str(tmp_path)], PRIVATE)
    found = {(leak.path.rsplit("/", 1)[1], leak.text_index, leak.kind) for leak in leaks}
    assert found == {("README.md", 0, "ngram"), ("log.json", 1, "ngram"), ("weights.safetensors", 2, "string"),
                     ("state.pt", 2, "string")}
    for leak in leaks:
        assert leak.text_hash == text_hash(PRIVATE[leak.text_index])
        assert len(leak.excerpt) <= 17 and PRIVATE[leak.text_index] not in leak.excerpt


def test_no_false_positive_from_short_texts_or_partial_runs(tmp_path):
    (tmp_path / "card.md").write_text("A bad film. My neighbour Zoltan Kovacs told me his.")  # 7 words only
    assert find_leaks(str(tmp_path), PRIVATE) == []
    assert find_leaks(str(tmp_path), PRIVATE, ngram=7)[0].text_index == 0
    with pytest.raises(PeftTransferError, match="does not exist"):
        find_leaks(str(tmp_path / "missing"), PRIVATE)
    with pytest.raises(PeftTransferError, match="No training texts"):
        find_leaks(str(tmp_path), [])


def test_saved_prompt_and_trainer_output_have_no_leak(tmp_path, tokenizer):
    """Tune a prompt on private texts with a stock Trainer (logs, checkpoints, trainer_state) and save it."""
    from test_lira import cheap_train  # the same few-step trainer the audit tests use

    model = make_model("llama")
    task = get_task("rotten_tomatoes")
    data = Dataset.from_dict({"text": PRIVATE * 3, "label": [0, 1, 0, 1] * 3})
    prompt = cheap_train(model, tokenizer, task, data, {"steps": 3})
    save_prompt(prompt, str(tmp_path / "prompt"))
    assert find_leaks([str(tmp_path)], PRIVATE) == []
    (tmp_path / "prompt" / "notes.txt").write_text(PRIVATE[0])
    assert [leak.text_index for leak in find_leaks([str(tmp_path)], PRIVATE)] == [0]


def test_tune_prompt_output_dir_has_no_leak(tmp_path, tokenizer):
    model = make_model("llama")
    task = get_task("rotten_tomatoes")
    data = Dataset.from_dict({"text": PRIVATE * 4, "label": [0, 1, 0, 1] * 4})
    args = PrivatePromptConfig(output_dir=str(tmp_path / "run"), max_steps=2, target_epsilon=8.0, target_delta=1e-3,
                               per_device_train_batch_size=4, logging_steps=1, save_steps=1, report_to="none")
    prompt = tune_prompt(model, tokenizer, task, data, args, export_dir=str(tmp_path / "export"))
    save_prompt(prompt, str(tmp_path / "prompt"))
    written = {p.name for p in (tmp_path / "run").rglob("*")}
    assert {"trainer_state.json", "adapter_model.safetensors"} <= written  # logs and checkpoints were scanned
    assert find_leaks([str(tmp_path)], PRIVATE) == []


def test_check_leaks_cli(tmp_path, capsys):
    data = tmp_path / "private.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": 0}) + "\n" for t in PRIVATE))
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "card.md").write_text("nothing private here")
    assert main(["check-leaks", "--data", str(data), str(clean)]) == 0
    (clean / "log.txt").write_text("step 1: " + PRIVATE[1])
    assert main(["check-leaks", "--data", str(data), str(clean)]) == 1
    err = capsys.readouterr().err
    assert "log.txt" in err and text_hash(PRIVATE[1]) in err
    assert PRIVATE[1] not in err and "brûlée" not in err
    assert main(["check-leaks", "--data", str(data), str(tmp_path / "nope")]) == 2
