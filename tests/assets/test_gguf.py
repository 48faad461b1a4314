"""A GGUF file as a model: converted once into the cache (like the embedded model), identical logits."""

import json

import torch
from tiny_gguf import write_tiny_llama_gguf
from tiny_models import CORPUS, make_tokenizer

from peft_transfer.assets import load_model
from peft_transfer.assets.gguf_models import gguf_cache_folder
from peft_transfer.cli import main
from peft_transfer.student.layers import student_lineage


def test_gguf_file_loads_like_the_model_it_holds(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path / "cache"))
    path = str(tmp_path / "tiny.gguf")
    reference = write_tiny_llama_gguf(path, num_layers=4)
    model, tokenizer = load_model(path)
    assert "converting" in capsys.readouterr().out and model.name_or_path == path
    ids = make_tokenizer()(["a wonderful moving film"], return_tensors="pt")["input_ids"]
    assert tokenizer("a wonderful moving film")["input_ids"] == ids[0].tolist()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, reference(ids).logits, atol=1e-5)
    stamp = (gguf_cache_folder(path) / "model.safetensors").stat().st_mtime_ns
    load_model(path)  # cached: no second conversion
    assert "converting" not in capsys.readouterr().out
    assert (gguf_cache_folder(path) / "model.safetensors").stat().st_mtime_ns == stamp


def test_distill_from_a_gguf_teacher(tmp_path, monkeypatch):
    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path / "cache"))
    path = str(tmp_path / "teacher.gguf")
    write_tiny_llama_gguf(path, num_layers=4)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": t}) + "\n" for t in CORPUS[:40]))
    out = tmp_path / "student"
    assert main(["distill", "--teacher", path, "--corpus", str(corpus), "--out", str(out), "--block-size", "24",
                 "--eval-blocks", "3", "--batch-size", "4", "--max-steps", "1"]) == 0
    from transformers import AutoConfig

    lineage = student_lineage(AutoConfig.from_pretrained(out))
    assert lineage.teacher == path and lineage.kept_layers == [0, 1, 2, 3] and lineage.teacher_num_layers == 4
