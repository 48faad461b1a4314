"""The generation path from the command line on tiny models: tune (DP) -> transfer -> evaluate -> compare."""

import json

import pytest
from tiny_models import make_tokenizer
from transfer_helpers import public_texts, related_models

from peft_transfer import TransferablePromptConfig
from peft_transfer.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_generation_task_end_to_end_from_the_cli(tmp_path, capsys):
    tok = make_tokenizer()
    student, target = related_models(noise=0.3)
    for name, model in (("student", student), ("target", target)):
        model.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    data = tmp_path / "titles.jsonl"
    pairs = [("the team won the cup final", "sport"), ("a new phone with a faster chip", "tech news"),
             ("the bank raised interest rates", "business"), ("the singer released a new album", "music")] * 4
    data.write_text("\n".join(json.dumps({"text": t, "target": y}) for t, y in pairs))
    public = tmp_path / "public.jsonl"
    public.write_text("\n".join(json.dumps({"text": t}) for t in public_texts(16)))
    s, t = str(tmp_path / "student"), str(tmp_path / "target")

    assert main(["tune", "--model", s, "--data", str(data), "--task", "bbc_titles", "--epsilon", "8", "--max-steps",
                 "2", "--batch-size", "4", "--num-virtual-tokens", "4", "--out", str(tmp_path / "p_s")]) == 0
    assert "-DP" in capsys.readouterr().out
    assert main(["transfer", "--prompt", str(tmp_path / "p_s"), "--student", s, "--target", t, "--public",
                 str(public), "--steps", "2", "--monitor-size", "4", "--out", str(tmp_path / "p_t")]) == 0
    p_t = TransferablePromptConfig.from_pretrained(str(tmp_path / "p_t"))
    assert p_t.task.kind == "generation" and p_t.dp.private and "continuation" in p_t.transfer.distilled_positions
    capsys.readouterr()
    assert main(["evaluate", "--model", t, "--prompt", str(tmp_path / "p_t"), "--task", "bbc_titles", "--data",
                 str(data), "--limit", "4", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["n"] == 4 and 0.0 <= scores["rouge_l"] <= 1.0
    assert main(["compare", "--target", t, "--student", s, "--source-prompt", str(tmp_path / "p_s"),
                 "--transferred-prompt", str(tmp_path / "p_t"), "--task", "bbc_titles", "--data", str(data),
                 "--limit", "4", "--out", str(tmp_path / "cmp")]) == 0
    table = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "ROUGE-L" in table and all(f"| {m}" in table for m in ("ZS", "CompPT", "Direct", "POST"))
    rows = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["rows"]
    assert all(0.0 <= r["rouge_l"] <= 1.0 for r in rows)
