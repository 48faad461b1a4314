"""The prompt artifact: stock PEFT layout, loads without the plugin (fresh process, no warnings), exact
provenance round trip, clear errors for corrupted files."""

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from tiny_models import ALL_ARCHS, MASKED_ARCHS, make_model, make_tokenizer

from peft_transfer import (
    PROVENANCE_NAME,
    DPRecord,
    PeftTransferError,
    StudentLineage,
    TransferablePromptConfig,
    TransferRecord,
    create_prompt_model,
    get_task,
    label_logits,
    load_prompt,
    save_prompt,
)
from peft_transfer.provenance import text_fingerprint

TEXTS = ["a great film", "a dull and boring mess of a movie"]

FULL_PROVENANCE = dict(
    student=StudentLineage(teacher="org/teacher", kept_layers=[0, 1, 28, 29], teacher_num_layers=30,
                           distillation_steps=1000),
    dp=DPRecord(private=True, epsilon=7.93, delta=1e-5, accountant="prv", noise_multiplier=0.71, max_grad_norm=1.0,
                sample_rate=0.01, steps=300, num_train_examples=10000),
    transfer=TransferRecord(source_model="org/student", public_dataset="movie_plots",
                            public_fingerprint=text_fingerprint(["a", "b"]), num_public_examples=2, alpha=0.5,
                            temperature=2.0, steps=100, learning_rate=1e-3, seed=0, final_loss=0.12,
                            public_agreement=0.9),
)


def _save(arch, folder, **provenance):
    tok = make_tokenizer()
    base_dir = os.path.join(folder, f"base-{arch}")
    model = make_model(arch)
    model.save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
    model.name_or_path = base_dir
    prompt = create_prompt_model(model, tok, get_task("rotten_tomatoes"), num_virtual_tokens=3, **provenance)
    with torch.no_grad():
        prompt.prompt_encoder["default"].embedding.weight.normal_()
    prompt_dir = os.path.join(folder, f"prompt-{arch}")
    save_prompt(prompt, prompt_dir)
    return prompt.eval(), tok, prompt_dir


def test_saved_layout_is_a_stock_prompt_tuning_adapter(tmp_path):
    _, _, prompt_dir = _save("llama", str(tmp_path), **FULL_PROVENANCE)
    assert {"adapter_config.json", "adapter_model.safetensors", PROVENANCE_NAME} <= set(os.listdir(prompt_dir))
    stock = json.loads((tmp_path / "prompt-llama" / "adapter_config.json").read_text())
    assert stock["peft_type"] == "PROMPT_TUNING"
    assert not {"dp", "transfer", "student", "task", "tuned_on", "library_versions"} & set(stock)
    assert stock["base_model_name_or_path"] == str(tmp_path / "base-llama")


def test_provenance_round_trip_is_exact(tmp_path):
    prompt, _, prompt_dir = _save("gpt2", str(tmp_path), target="org/target", **FULL_PROVENANCE)
    loaded = TransferablePromptConfig.from_pretrained(prompt_dir)
    original = prompt.peft_config["default"]
    assert loaded.provenance_dict() == original.provenance_dict()
    assert loaded.dp == FULL_PROVENANCE["dp"] and loaded.transfer == FULL_PROVENANCE["transfer"]
    assert loaded.student.kept_layers == [0, 1, 28, 29]
    assert loaded.task.label_words == [[" negative"], [" positive"]]
    assert loaded.base_model_name_or_path == "org/target"
    assert loaded.tuned_on == str(tmp_path / "base-gpt2")
    assert "torch" in loaded.library_versions and "peft" in loaded.library_versions


def test_not_private_epsilon_round_trips_as_infinity(tmp_path):
    _, _, prompt_dir = _save("qwen2", str(tmp_path))
    loaded = TransferablePromptConfig.from_pretrained(prompt_dir)
    assert loaded.dp.private is False and math.isinf(loaded.dp.epsilon)


STOCK_LOADER = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("always")
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer
    from peft import AutoPeftModelForCausalLM, PeftModel
    jobs = json.loads(sys.argv[1])
    out = {}
    with warnings.catch_warnings(record=True) as caught:
        for arch, prompt_dir, base_dir, masked in jobs:
            if masked:
                model = PeftModel.from_pretrained(AutoModelForMaskedLM.from_pretrained(base_dir), prompt_dir)
            else:
                model = AutoPeftModelForCausalLM.from_pretrained(prompt_dir)
            tok = AutoTokenizer.from_pretrained(base_dir)
            model.eval()
            texts = __TEXTS__
            rendered = [("Review: " + t + "\\nSentiment:" + (" <mask>" if masked else "")) for t in texts]
            batch = tok(rendered, padding=True, return_tensors="pt")
            with torch.no_grad():
                logits = model(**batch).logits
            out[arch] = logits.tolist()
    assert "peft_transfer" not in sys.modules, "the plugin was imported"
    # transformers deprecates is_gradient_checkpointing, which PEFT itself calls: not about the artifact
    relevant = [str(w.message) for w in caught if "is_gradient_checkpointing" not in str(w.message)]
    print(json.dumps({"logits": out, "warnings": relevant}))
""").replace("__TEXTS__", repr(TEXTS))


def test_stock_peft_loads_every_architecture_without_plugin_or_warnings(tmp_path):
    jobs, ours = [], {}
    for arch in ALL_ARCHS:
        prompt, tok, prompt_dir = _save(arch, str(tmp_path))
        masked = arch in MASKED_ARCHS
        jobs.append([arch, prompt_dir, str(tmp_path / f"base-{arch}"), masked])
        tokenized = get_task("rotten_tomatoes").tokenized(tok, masked_lm=masked, padding_side="right")
        batch = tokenized.encode(TEXTS)
        with torch.no_grad():
            ours[arch] = (label_logits(prompt, **batch), batch["label_positions"])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "always"}
    proc = subprocess.run([sys.executable, "-c", STOCK_LOADER, json.dumps(jobs)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["warnings"] == []
    for arch, (logits, positions) in ours.items():
        stock = torch.tensor(result["logits"][arch])[torch.arange(len(TEXTS)), positions + 3]
        torch.testing.assert_close(logits, stock, rtol=1e-5, atol=1e-5)


def test_load_prompt_checks_hidden_size(tmp_path):
    _, _, prompt_dir = _save("llama", str(tmp_path))
    from transformers import LlamaConfig, LlamaForCausalLM

    wider = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2, vocab_size=480))
    with pytest.raises(PeftTransferError, match="hidden size 32 .* has 64"):
        load_prompt(wider, prompt_dir)


def test_load_prompt_round_trip_gives_identical_logits(tmp_path):
    prompt, tok, prompt_dir = _save("gemma3", str(tmp_path))
    loaded = load_prompt(make_model("gemma3"), prompt_dir)
    batch = get_task("rotten_tomatoes").tokenized(tok, masked_lm=False).encode(TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(label_logits(loaded, **batch), label_logits(prompt, **batch))
    assert isinstance(loaded.peft_config["default"], TransferablePromptConfig)


def test_truncated_adapter_file_gives_a_clear_error(tmp_path):
    _, _, prompt_dir = _save("llama", str(tmp_path))
    weights = os.path.join(prompt_dir, "adapter_model.safetensors")
    with open(weights, "rb") as f:
        data = f.read()
    with open(weights, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(PeftTransferError, match="corrupted or truncated|Cannot load"):
        load_prompt(make_model("llama"), prompt_dir)


def test_corrupted_config_gives_a_clear_error(tmp_path):
    _, _, prompt_dir = _save("llama", str(tmp_path))
    with open(os.path.join(prompt_dir, PROVENANCE_NAME), "w") as f:
        f.write("{not json")
    with pytest.raises(PeftTransferError, match="not valid JSON"):
        TransferablePromptConfig.from_pretrained(prompt_dir)


def test_folder_without_adapter_is_refused(tmp_path):
    with pytest.raises(PeftTransferError, match="not a saved prompt"):
        TransferablePromptConfig.from_pretrained(str(tmp_path))


def test_saving_a_prompt_has_one_home_and_no_import_cycle():
    """`save_prompt` lives in `prompts.handover` (the export format); `prompts.model` and `prompts.card` do not
    import each other (they did: save_prompt <-> save_prompt_card)."""
    import ast
    import importlib

    import peft_transfer
    from peft_transfer.prompts import handover

    def local_imports(module: str) -> set[str]:
        name = f"peft_transfer.{module}"
        tree = ast.parse(importlib.util.find_spec(name).loader.get_source(name))
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}

    assert "card" not in local_imports("prompts.model") and "model" not in local_imports("prompts.card")
    assert "handover" not in local_imports("prompts.card") and "handover" not in local_imports("prompts.model")
    assert peft_transfer.save_prompt is handover.save_prompt
    assert not hasattr(importlib.import_module("peft_transfer.prompts.model"), "save_prompt")
