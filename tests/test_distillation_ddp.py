"""Scale-out: the same distillation runs under `accelerate launch` with 2 CPU processes (gloo backend).

`accelerate launch --cpu --num_processes 2` starts ONE process in accelerate 1.15 (its simple launcher goes
multi-process on CPU only through mpirun); `--multi_gpu --num_processes 2` uses torchrun, and on a machine
without a GPU with `use_cpu=True` accelerate sets up MULTI_CPU with the gloo backend, which the test checks.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM

from peft_transfer.student import student_lineage


def test_two_process_gloo_distillation(tmp_path):
    script = Path(__file__).with_name("distill_ddp_script.py")
    accelerate = Path(sys.executable).with_name("accelerate")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["world_size"] == 2 and result["backend"] == "gloo"
    losses = [h["loss"] for h in result["log"]]
    assert len(losses) == 10 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    student = AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    assert student.config.num_hidden_layers == 2 and student_lineage(student).kept_layers == [0, 3]
