"""The GPU student build, rehearsed end to end on this CPU: pack -> one device call per part -> shipped files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_rehearsal_packs_builds_in_several_calls_and_reassembles(tmp_path):
    env = dict(os.environ, REHEARSAL_DIR=str(tmp_path))
    done = subprocess.run(["bash", "scripts/rehearse_student_build.sh", "tiny"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    calls = sorted((tmp_path / "pack").glob("call*"))
    assert len(calls) >= 2  # the teacher travelled in parts, one call each
    manifest = json.loads((calls[-1] / "manifest.json").read_text())
    assert [p["call"] for p in manifest["teacher"]["parts"]] == list(range(1, len(calls) + 1))
    assert "waiting for" in done.stdout  # the earlier calls only staged their part
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(out) <= 8 and {"config.json", "student_build.json", "README.md", "build.log"} <= set(out)
    assert any(n.startswith("student_delta") for n in out)
    assert "reassembled student: LlamaForCausalLM 2 layers" in done.stdout
    build = json.loads((tmp_path / "out" / "student_build.json").read_text())
    assert build["lineage"]["kept_layers"] == [0, 3] and build["lineage"]["tokens_seen"] > 0
    assert "CPU" in build["build"]["hardware"]


def test_build_refuses_when_an_earlier_part_was_lost(tmp_path):
    """The last call arriving at a fresh machine (its /tmp lost part 1) says so instead of building."""
    carry = tmp_path / "tree" / ".gpu_carry" / "call2"
    carry.mkdir(parents=True)
    (carry / "teacher.part2").write_bytes(b"x")
    (carry / "corpus.jsonl.xz").write_bytes(b"")
    manifest = {"teacher": {"kind": "folder", "file": "teacher.tar", "sha256": "0",
                            "parts": [{"file": "teacher.part1", "sha256": "0", "call": 1},
                                      {"file": "teacher.part2", "sha256": "0", "call": 2}]},
                "wheels": [], "calls": 2, "distill": {}, "corpus": {"file": "corpus.jsonl.xz", "sha256": "0"}}
    (carry / "manifest.json").write_text(json.dumps(manifest))
    for name in ("build_student_gpu.py",):
        (tmp_path / "tree" / "scripts").mkdir(exist_ok=True)
        (tmp_path / "tree" / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    env = dict(os.environ, STUDENT_BUILD_STAGE=str(tmp_path / "stage"), OUT=str(tmp_path / "out"))
    done = subprocess.run([sys.executable, "scripts/build_student_gpu.py"], cwd=tmp_path / "tree", env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "machine was given back between calls" in done.stderr and "teacher.part1 (call 1)" in done.stderr
