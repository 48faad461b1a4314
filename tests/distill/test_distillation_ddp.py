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

import torch
from transformers import AutoModelForCausalLM

from peft_transfer.student.layers import student_lineage


def test_two_process_gloo_distillation(tmp_path):
    script = Path(__file__).parents[1] / "distill_ddp_script.py"
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
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    # different shards: the two processes' first batches differ (the corpus repeats some blocks, so a block may
    # legitimately occur in both; identical batches would mean both processes read the same shard)
    first = [r["batches"][0] for r in ranks]
    assert len(first[0]) == len(first[1]) == 4 and {tuple(x) for x in first[0]} != {tuple(x) for x in first[1]}
    # the same start, different data, the same moved weights at the end: the gradients were all-reduced
    torch.testing.assert_close(ranks[0]["initial"], ranks[1]["initial"], rtol=0, atol=0)
    assert (ranks[0]["final"] - ranks[0]["initial"]).abs().max() > 1e-4
    torch.testing.assert_close(ranks[0]["final"], ranks[1]["final"], rtol=0, atol=0)
    student = AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    assert student.config.num_hidden_layers == 2 and student_lineage(student).kept_layers == [0, 3]
