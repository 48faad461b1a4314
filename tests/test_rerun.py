"""A rerun into an existing --out: same settings resume (a finished run is not trained again), other settings
are refused naming them and --no-resume, and --no-resume redoes the work. Never a record that lies."""

import json

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from tiny_models import distill_inputs, make_model, make_tokenizer
from transfer_helpers import public_texts, related_models, tune_source_prompt

from peft_transfer import PeftTransferError, TransferablePromptConfig, save_prompt
from peft_transfer.cli import main
from peft_transfer.precision import use_bf16
from peft_transfer.rerun_guard import SETTINGS_NAME, guard_rerun
from peft_transfer.student.layers import student_lineage


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("rerun")
    tok = make_tokenizer()
    student, target = related_models(noise=0.3)
    for name, model in (("student", student), ("target", target)):
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    save_prompt(tune_source_prompt(student, tok, steps=5), str(root / "p_s"))
    Dataset.from_dict({"text": public_texts(24)}).to_csv(root / "public.csv")
    return root


def _transfer(root, out, *extra):
    return main(["transfer", "--prompt", str(root / "p_s"), "--student", str(root / "student"), "--target",
                 str(root / "target"), "--public", str(root / "public.csv"), "--out", str(out), "--steps", "2",
                 "--batch-size", "4", "--monitor-size", "4", "--save-steps", "1", "--learning-rate", "0.05", *extra])


def _weights(folder):
    return load_file(str(folder / "adapter_model.safetensors"))["prompt_embeddings"]


def test_transfer_rerun_resumes_refuses_or_redoes(pair, tmp_path, capsys):
    out = tmp_path / "p_t"
    assert _transfer(pair, out) == 0
    first, record = _weights(out), TransferablePromptConfig.from_pretrained(str(out)).transfer
    assert record.alpha == 0.5 and record.steps == 2
    # the same settings: the finished run is returned, not trained one step further
    assert _transfer(pair, out) == 0
    assert torch.equal(_weights(out), first)
    assert TransferablePromptConfig.from_pretrained(str(out)).transfer.steps == 2
    capsys.readouterr()
    # other settings: refused, naming them and --no-resume; nothing in the folder changes
    assert _transfer(pair, out, "--alpha", "0.9", "--temperature", "3") == 2
    err = capsys.readouterr().err
    assert "alpha: 0.5 → 0.9" in err and "temperature: 2.0 → 3.0" in err and "--no-resume" in err
    assert torch.equal(_weights(out), first)
    assert TransferablePromptConfig.from_pretrained(str(out)).transfer.alpha == 0.5
    # --no-resume: redone with the new settings, recorded truthfully
    assert _transfer(pair, out, "--alpha", "0.9", "--temperature", "3", "--no-resume") == 0
    record = TransferablePromptConfig.from_pretrained(str(out)).transfer
    assert record.alpha == 0.9 and record.temperature == 3.0 and record.steps == 2
    assert not torch.equal(_weights(out), first)
    assert json.loads((tmp_path / "p_t-work" / SETTINGS_NAME).read_text())["alpha"] == 0.9  # work folder
    # more steps with the same settings continue
    assert _transfer(pair, out, "--alpha", "0.9", "--temperature", "3", "--steps", "3") == 0
    assert TransferablePromptConfig.from_pretrained(str(out)).transfer.steps == 3


def test_other_public_text_under_the_same_name_is_other_settings(pair, tmp_path, capsys):
    out = tmp_path / "p_t"
    assert _transfer(pair, out) == 0
    Dataset.from_dict({"text": public_texts(24, seed=5)}).to_csv(pair / "public.csv")  # same file, new content
    capsys.readouterr()
    assert _transfer(pair, out) == 2
    assert "public_fingerprint" in capsys.readouterr().err


def test_checkpoints_without_a_record_are_not_resumed(tmp_path):
    (tmp_path / "checkpoint-5").mkdir()
    with pytest.raises(PeftTransferError, match="settings were not recorded.*--no-resume"):
        guard_rerun(tmp_path, {"alpha": 0.5}, True, tmp_path.glob("checkpoint-*"))
    assert guard_rerun(tmp_path, {"alpha": 0.5}, False, tmp_path.glob("checkpoint-*")) is False
    assert not (tmp_path / "checkpoint-5").exists()  # starting over deletes the stale checkpoints
    assert json.loads((tmp_path / SETTINGS_NAME).read_text()) == {"alpha": 0.5}


def test_distill_rerun_with_other_layers_is_refused_then_redone(tmp_path, capsys):
    teacher, corpus = distill_inputs(tmp_path)
    out = tmp_path / "student"
    common = ["distill", "--teacher", teacher, "--corpus", corpus, "--out", str(out),
              "--block-size", "24", "--eval-blocks", "3", "--batch-size", "4", "--max-steps", "2"]
    assert main([*common, "--keep-layers", "0,3"]) == 0
    assert main(common) == 2  # the default is the paper's rule: first 2 + last 2 = 0,1,2,3
    err = capsys.readouterr().err
    assert "keep_layers: [0, 3] → [0, 1, 2, 3]" in err and "--no-resume" in err
    assert student_lineage(_config(out)).kept_layers == [0, 3]  # the folder is untouched
    assert main([*common, "--no-resume"]) == 0
    assert student_lineage(_config(out)).kept_layers == [0, 1, 2, 3]
    assert "| Kept layers | 0, 1, 2, 3 |" in (out / "README.md").read_text()
    steps = json.loads((out / "distillation_summary.json").read_text())["steps"]
    assert main(common) == 0 and json.loads((out / "distillation_summary.json").read_text())["steps"] == steps == 2


def _config(folder):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder)


def test_tune_rerun_returns_the_finished_prompt_refuses_other_settings_or_redoes(tmp_path, capsys):
    model = make_model("llama", num_layers=2)
    tok = make_tokenizer()
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    Dataset.from_dict({"text": ["a wonderful film", "a dull mess"] * 8, "label": [1, 0] * 8}).to_csv(
        tmp_path / "d.csv")
    out = tmp_path / "p_s"

    def tune(*extra):
        return main(["tune", "--model", str(tmp_path / "m"), "--data", str(tmp_path / "d.csv"), "--out", str(out),
                     "--max-steps", "2", "--batch-size", "4", "--save-steps", "1", "--num-virtual-tokens", "4",
                     *extra])

    assert tune() == 0
    first = _weights(out)
    assert tune() == 0  # the same settings: the finished prompt, not one step more
    assert torch.equal(_weights(out), first)
    capsys.readouterr()
    assert tune("--learning-rate", "0.05") == 2
    err = capsys.readouterr().err
    assert "learning_rate: 0.001 → 0.05" in err and "--no-resume" in err
    assert torch.equal(_weights(out), first)
    bf16 = use_bf16("auto")  # another precision gives other weights: refused too
    assert tune("--precision", "fp32" if bf16 else "bf16") == 2
    assert f"bf16: {str(bf16).lower()} → {str(not bf16).lower()}" in capsys.readouterr().err
    assert tune("--learning-rate", "0.05", "--no-resume") == 0
    assert not torch.equal(_weights(out), first)
