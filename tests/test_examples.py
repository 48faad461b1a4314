"""Every script in examples/ runs end to end on tiny models (one role after the other, as a user would)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tiny_models import CORPUS, make_model, make_tokenizer

from peft_transfer import TransferablePromptConfig
from peft_transfer.prompts.handover import PROMPT_FILES

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(script: str, *args: str, cwd: Path) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=600)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_examples_run_on_tiny_models(tmp_path):
    teacher = tmp_path / "teacher"
    model, tok = make_model("llama", num_layers=4), make_tokenizer()
    model.save_pretrained(teacher)
    tok.save_pretrained(teacher)
    corpus = tmp_path / "public.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": t}) for t in sorted(set(CORPUS))))
    data = tmp_path / "private.jsonl"
    rows = [{"text": f"a {w} film, really {w}", "label": y} for w, y in
            [("great", 1), ("dull", 0), ("good", 1), ("boring", 0), ("wonderful", 1), ("terrible", 0)] * 6]
    data.write_text("\n".join(json.dumps(r) for r in rows))

    _run("provider_distil.py", "--teacher", str(teacher), "--corpus", str(corpus), "--keep-layers", "0,3",
         "--steps", "2", "--batch-size", "2", "--block-size", "16", "--out", "student", cwd=tmp_path)
    assert (tmp_path / "student" / "model.safetensors").is_file() and (tmp_path / "student" / "README.md").is_file()

    out = _run("data_owner_tune.py", "--student", "student", "--data", str(data), "--epsilon", "8", "--steps", "2",
               "--batch-size", "8", "--out", "p_s", cwd=tmp_path)
    assert "-DP" in out
    assert TransferablePromptConfig.from_pretrained(str(tmp_path / "p_s")).dp.private
    assert sorted(os.listdir(tmp_path / "p_s")) == sorted(PROMPT_FILES)  # the export; checkpoints in p_s-work

    _run("provider_transfer.py", "--prompt", "p_s", "--student", "student", "--target", str(teacher), "--public",
         str(corpus), "--num-public", "12", "--steps", "2", "--out", "p_t", cwd=tmp_path)
    transferred = TransferablePromptConfig.from_pretrained(str(tmp_path / "p_t"))
    assert transferred.transfer is not None and transferred.dp.private

    out = _run("evaluate_prompts.py", "--target", str(teacher), "--student", "student", "--source", "p_s",
               "--transferred", "p_t", "--data", str(data), "--limit", "12", "--out", "compare", cwd=tmp_path)
    for method in ("ZS", "CompPT", "Direct", "POST"):
        assert method in out

    out = _run("trainer_script_to_private.py", "--model", "student", "--epsilon", "8", "--steps", "2", "--limit", "64",
               "--out", "p_s_trainer", cwd=tmp_path)
    assert "ε =" in out and (tmp_path / "p_s_trainer" / "adapter_config.json").is_file()
    assert sorted(os.listdir(tmp_path / "p_s_trainer-export")) == sorted(PROMPT_FILES)


def test_trl_example_transfers_a_stock_prompt(tmp_path, capsys):
    """A prompt tuned with TRL's SFTTrainer (stock PromptTuningConfig, no provenance) is transferred once the
    task is given, and p_t records that the source had no DP record; the CLI asks for the task the same way."""
    from peft_transfer.cli import main
    from peft_transfer.student.layers import make_student

    teacher = make_model("llama", num_layers=4)
    tok = make_tokenizer()
    for name, model in (("teacher", teacher), ("student", make_student(teacher, [0, 3]))):
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    public = tmp_path / "public.jsonl"
    public.write_text("\n".join(json.dumps({"text": t}) for t in sorted(set(CORPUS))))
    data = tmp_path / "private.jsonl"
    rows = [{"text": f"a {w} film, really {w}", "label": y} for w, y in [("great", 1), ("dull", 0)] * 8]
    data.write_text("\n".join(json.dumps(r) for r in rows))

    out = _run("trl_prompt_to_post.py", "--student", "student", "--target", "teacher", "--data", str(data),
               "--public", str(public), "--num-public", "12", "--steps", "2", "--transfer-steps", "2", "--out", "trl",
               cwd=tmp_path)
    source = tmp_path / "trl" / "p_s_trl"
    assert (source / "adapter_config.json").is_file() and not (source / "prompt_provenance.json").exists()
    assert "the transfer asks for it" in out and "no guarantee is claimed" in out
    p_t = TransferablePromptConfig.from_pretrained(str(tmp_path / "trl" / "p_t"))
    assert p_t.dp.recorded is False and not p_t.dp.private and p_t.transfer.steps == 2
    assert p_t.task.name == "rotten_tomatoes"
    assert "No privacy record" in (tmp_path / "trl" / "p_t" / "README.md").read_text()

    common = ["transfer", "--prompt", str(source), "--student", str(tmp_path / "student"), "--target",
              str(tmp_path / "teacher"), "--public", str(public), "--public-limit", "12", "--steps", "1"]
    assert main([*common, "--out", str(tmp_path / "cli_a")]) == 2
    assert "carries no task record" in capsys.readouterr().err
    assert main([*common, "--task", "rotten_tomatoes", "--out", str(tmp_path / "cli_b")]) == 0
    assert "carried no DP record" in capsys.readouterr().out
