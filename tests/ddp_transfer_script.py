"""Run by tests/test_transfer_distributed.py under `accelerate launch --num_processes 2 --cpu`:
a tiny transfer whose every process saves its final p_t, so the test can check they stayed in sync."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
torch.set_num_threads(1)

from tiny_models import make_tokenizer  # noqa: E402
from transfer_helpers import public_texts, saved_source_prompt  # noqa: E402

from peft_transfer.transfer import transfer_prompt  # noqa: E402
from peft_transfer.transfer_config import TransferConfig  # noqa: E402


def main(out: str) -> None:
    from pathlib import Path

    tokenizer = make_tokenizer()
    rank = int(os.environ.get("RANK", "0"))
    folder, student, target = saved_source_prompt(Path(out) / f"source-rank{rank}", tokenizer)
    args = TransferConfig(output_dir=os.path.join(out, "prompt"), max_steps=4, per_device_train_batch_size=4,
                          logging_steps=2, monitor_steps=2, monitor_size=8, save_strategy="no", learning_rate=0.05,
                          disable_tqdm=True, public_dataset_name="tiny-public")
    p_t = transfer_prompt(folder, student, target, tokenizer, public_texts(40), args)
    weights = p_t.prompt_encoder["default"].embedding.weight.detach()
    torch.save({"weights": weights, "world_size": int(os.environ.get("WORLD_SIZE", "1"))},
               os.path.join(out, f"p_t-rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
