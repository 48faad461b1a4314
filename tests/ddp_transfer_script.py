"""Run by tests/test_transfer_distributed.py under `accelerate launch --num_processes 2 --cpu`: a tiny
transfer whose every process saves the public texts it trained on and its initial and final p_t, so the test
can check that the processes saw different shards and still ended with the same prompt (gradient sync)."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
torch.set_num_threads(1)

from tiny_models import make_tokenizer  # noqa: E402
from transfer_helpers import public_texts, saved_source_prompt  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

from peft_transfer.transfer.config import TransferConfig  # noqa: E402
from peft_transfer.transfer.public_logits import PublicTextCollator  # noqa: E402
from peft_transfer.transfer.run import transfer_prompt  # noqa: E402

SEEN: list[list[str]] = []  # the texts of each training batch this process collated
INITIAL: list[torch.Tensor] = []
_collate = PublicTextCollator.__call__


def _recording_collate(self, features):
    SEEN.append([f["text"] for f in features])
    return _collate(self, features)


PublicTextCollator.__call__ = _recording_collate


class RecordInitialPrompt(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        INITIAL.append(model.prompt_model.prompt_encoder["default"].embedding.weight.detach().clone())


def main(out: str) -> None:
    from pathlib import Path

    tokenizer = make_tokenizer()
    rank = int(os.environ.get("RANK", "0"))
    folder, student, target = saved_source_prompt(Path(out) / f"source-rank{rank}", tokenizer)
    args = TransferConfig(output_dir=os.path.join(out, "prompt"), max_steps=4, per_device_train_batch_size=4,
                          logging_steps=2, monitor_steps=2, monitor_size=8, save_strategy="no", learning_rate=0.05,
                          disable_tqdm=True, public_dataset_name="tiny-public")
    p_t = transfer_prompt(folder, student, target, tokenizer, public_texts(40), args,
                          callbacks=[RecordInitialPrompt()])
    weights = p_t.prompt_encoder["default"].embedding.weight.detach()
    torch.save({"weights": weights, "initial": INITIAL[0], "texts": SEEN,
                "world_size": int(os.environ.get("WORLD_SIZE", "1"))}, os.path.join(out, f"p_t-rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
