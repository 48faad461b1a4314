"""Transfer under `accelerate launch` with 2 CPU processes (DDP over gloo) on tiny models.

Set PEFT_TRANSFER_SKIP_DISTRIBUTED=1 to skip it (it starts two Python processes: ~30 s on 2 busy cores).
On CPU, `accelerate launch --cpu` starts a single process unless MPI is installed, so the test launches
with `--multi_gpu` and `ACCELERATE_USE_CPU=true`, which gives torch.distributed over gloo.
"""

import os
import subprocess
import sys

import pytest
import torch

from peft_transfer import TransferablePromptConfig

HERE = os.path.dirname(os.path.dirname(__file__))  # tests/: the DDP script and tiny models


@pytest.mark.skipif(os.environ.get("PEFT_TRANSFER_SKIP_DISTRIBUTED") == "1", reason="skipped on request")
def test_transfer_under_accelerate_launch_with_two_cpu_processes(tmp_path):
    accelerate = os.path.join(os.path.dirname(sys.executable), "accelerate")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29571",
           os.path.join(HERE, "ddp_transfer_script.py"), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"p_t-rank{r}.pt") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # different shards: 4 steps of 4 texts per process cover the 32 training texts once, none seen twice
    seen = [[t for batch in r["texts"][:4] for t in batch] for r in ranks]
    assert [len(s) for s in seen] == [16, 16] and not set(seen[0]) & set(seen[1])
    # the same start, then different data; ending with the same moved prompt means the gradients were averaged
    torch.testing.assert_close(ranks[0]["initial"], ranks[1]["initial"], rtol=0, atol=0)
    assert (ranks[0]["weights"] - ranks[0]["initial"]).abs().max() > 1e-3
    torch.testing.assert_close(ranks[0]["weights"], ranks[1]["weights"], rtol=0, atol=0)
    config = TransferablePromptConfig.from_pretrained(str(tmp_path / "prompt" / "export"))
    assert config.transfer.steps == 4 and config.transfer.public_dataset == "tiny-public"
    assert (tmp_path / "prompt" / "transfer_monitor.png").exists()
