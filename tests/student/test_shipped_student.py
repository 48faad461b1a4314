"""The shipped student: export only what is not the teacher's (fp16), reassemble from the teacher, refuse another."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from tiny_models import make_model, make_tokenizer

from peft_transfer.assets import shipped_students
from peft_transfer.assets.models import load_model
from peft_transfer.errors import PeftTransferError
from peft_transfer.student.card import DistillationSummary
from peft_transfer.student.layers import make_student, student_lineage
from peft_transfer.student.shipped import export_shipped_student, reassemble_student, student_delta
from peft_transfer.student.weights_hash import state_dict_sha256


def _distilled_folder(tmp_path, teacher, keep=(0, 3)):
    """A student folder as `peft-transfer distill` writes it, with its layers and final norm 'trained'."""
    student = make_student(teacher, list(keep))
    torch.manual_seed(1)
    with torch.no_grad():
        for layer in student.model.layers:
            for p in layer.parameters():
                p.add_(0.01 * torch.randn_like(p))
        student.model.norm.weight.mul_(1.5)
    lineage = student_lineage(student)
    lineage.teacher_sha256 = state_dict_sha256(teacher.state_dict())
    lineage.tokens_seen = 1234
    student.config.peft_transfer_lineage = lineage.to_dict()
    folder = tmp_path / "distilled"
    student.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    summary = DistillationSummary(corpus="wikipedia", steps=3, num_blocks=10, block_size=16,
                                  perplexity={"teacher": 10.0, "distilled student": 20.0})
    (folder / "distillation_summary.json").write_text(json.dumps(summary.__dict__))
    (folder / "distillation_log.jsonl").write_text('{"step": 1, "loss": 3.0}\n')
    return student, folder


def test_delta_holds_only_the_trained_layers_and_norm_and_reassembles_exactly(tmp_path):
    teacher = make_model("llama", num_layers=4)
    student, folder = _distilled_folder(tmp_path, teacher)
    delta, reused = student_delta(student, teacher)
    assert all(k.startswith("model.layers.") or k == "model.norm.weight" for k in delta)
    assert "model.norm.weight" in delta and "model.embed_tokens.weight" in reused
    files = export_shipped_student(folder, teacher, tmp_path / "shipped", build={"hardware": "test"},
                                   max_shard_size="20KB")
    names = [p.name for p in files]
    assert sum(n.startswith("student_delta-") for n in names) >= 2  # sharded below the size limit
    assert {"config.json", "student_build.json", "README.md", "distillation_log.jsonl"} <= set(names)
    shard = next(p for p in files if p.name.startswith("student_delta-"))
    with safe_open(str(shard), "pt") as f:
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())  # noqa: SIM118 - safe_open is not a dict
    rebuilt = reassemble_student(tmp_path / "shipped", teacher)
    ids = make_tokenizer()("the quick brown fox jumps", return_tensors="pt")["input_ids"]
    expected = make_student(teacher, [0, 3])
    with torch.no_grad():  # the reference: the trained student rounded to fp16, as shipped
        expected.load_state_dict({k: v.half().float() if k in delta else v for k, v in student.state_dict().items()})
        assert torch.equal(rebuilt(ids).logits, expected(ids).logits)
        assert not torch.equal(rebuilt(ids).logits, make_student(teacher, [0, 3])(ids).logits)
    assert student_lineage(rebuilt).tokens_seen == 1234
    card = (tmp_path / "shipped" / "README.md").read_text()
    assert "Tokens seen" in card and "hardware" in card


def test_reassembly_refuses_another_teacher(tmp_path):
    teacher = make_model("llama", num_layers=4)
    _, folder = _distilled_folder(tmp_path, teacher)
    export_shipped_student(folder, teacher, tmp_path / "shipped")
    other = make_model("llama", num_layers=4, seed=5)
    with pytest.raises(PeftTransferError, match="another teacher"):
        reassemble_student(tmp_path / "shipped", other)


def test_export_refuses_a_student_without_teacher_hash(tmp_path):
    teacher = make_model("llama", num_layers=4)
    student = make_student(teacher, [0, 3])
    student.save_pretrained(tmp_path / "s")
    make_tokenizer().save_pretrained(tmp_path / "s")
    with pytest.raises(PeftTransferError, match="no teacher weights hash"):
        export_shipped_student(tmp_path / "s", teacher, tmp_path / "shipped")


def test_load_model_reassembles_a_shipped_student_once_and_names_it(tmp_path, monkeypatch):
    teacher = make_model("llama", num_layers=4)
    teacher_dir = tmp_path / "teacher"
    teacher.save_pretrained(teacher_dir)
    make_tokenizer().save_pretrained(teacher_dir)
    teacher, _ = load_model(str(teacher_dir))  # the loaded teacher, as reassembly will see it
    _, folder = _distilled_folder(tmp_path, teacher)
    monkeypatch.setattr(shipped_students, "STUDENTS_DIR", tmp_path / "students")
    monkeypatch.setattr(shipped_students, "SHIPPED_STUDENTS",
                        {"tiny-student": shipped_students.ShippedStudent("tiny-student", teacher=str(teacher_dir))})
    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(PeftTransferError, match="has not been built yet"):
        load_model("tiny-student")
    export_shipped_student(folder, teacher, tmp_path / "students" / "tiny-student")
    student, tokenizer = load_model("tiny-student")
    assert student.name_or_path == "tiny-student"
    assert student_lineage(student).kept_layers == [0, 3]
    cached = list((tmp_path / "cache" / "models").glob("tiny-student-*"))
    assert len(cached) == 1 and (cached[0] / "README.md").is_file() and (cached[0] / "tokenizer.json").is_file()
    stamp = (cached[0] / "model.safetensors").stat().st_mtime_ns
    load_model("tiny-student")
    assert (cached[0] / "model.safetensors").stat().st_mtime_ns == stamp  # reassembled once


def test_push_takes_a_shipped_student_name_and_sends_its_standard_folder(tmp_path, monkeypatch):
    from argparse import Namespace

    from peft_transfer.cli import push_cmd

    teacher = make_model("llama", num_layers=4)
    teacher.save_pretrained(tmp_path / "teacher")
    make_tokenizer().save_pretrained(tmp_path / "teacher")
    teacher, _ = load_model(str(tmp_path / "teacher"))
    _, folder = _distilled_folder(tmp_path, teacher)
    monkeypatch.setattr(shipped_students, "STUDENTS_DIR", tmp_path / "students")
    monkeypatch.setattr(shipped_students, "SHIPPED_STUDENTS", {"tiny-student": shipped_students.ShippedStudent(
        "tiny-student", teacher=str(tmp_path / "teacher"))})
    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path / "cache"))
    export_shipped_student(folder, teacher, tmp_path / "students" / "tiny-student")
    pushed = []
    monkeypatch.setattr(push_cmd, "maybe_push", lambda args, folder, kind: pushed.append((folder, kind)))
    push_cmd.run(Namespace(folder="tiny-student", repo_id="org/tiny"))
    (sent, kind), = pushed
    assert kind == "student" and {"model.safetensors", "config.json", "tokenizer.json", "README.md"} <= {
        p.name for p in sent.iterdir()}
