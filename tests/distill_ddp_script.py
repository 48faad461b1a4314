"""Run by test_distillation_ddp.py under `accelerate launch --num_processes 2 --cpu`: distil a tiny student;
every process saves the batches it collated and a weight before and after, for the shard and sync checks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_models import CORPUS, make_model, make_tokenizer  # noqa: E402

from peft_transfer.distill.config import DistillationConfig  # noqa: E402
from peft_transfer.distill.data import collator_for, prepare_blocks  # noqa: E402
from peft_transfer.distill.trainer import DistillationTrainer  # noqa: E402
from peft_transfer.student.layers import make_student  # noqa: E402


def main(out: str) -> None:
    tok = make_tokenizer()
    teacher = make_model("llama", num_layers=4)
    with torch.no_grad():  # sharp outputs and strong middle layers: a student visibly different from its teacher
        teacher.model.norm.weight.mul_(8.0)
        for layer in teacher.model.layers[1:-1]:
            for p in layer.parameters():
                if p.dim() == 2:
                    p.mul_(4.0)
    student = make_student(teacher, [0, 3])
    initial = student.model.layers[0].mlp.up_proj.weight.detach().clone()
    collate, seen = collator_for(student, tok), []

    def recording_collate(features):
        batch = collate(features)
        seen.append(batch["input_ids"].tolist())
        return batch

    args = DistillationConfig(output_dir=out, max_steps=10, per_device_train_batch_size=4, learning_rate=3e-3,
                              logging_steps=1, use_cpu=True, save_strategy="no", disable_tqdm=True, report_to="none",
                              seed=0)
    trainer = DistillationTrainer(model=student, teacher=teacher, args=args, data_collator=recording_collate,
                                  train_dataset=prepare_blocks(CORPUS[:60], tok, block_size=24))
    trainer.train()
    torch.save({"initial": initial, "final": student.model.layers[0].mlp.up_proj.weight.detach().clone(),
                "batches": seen}, f"{out}/rank{trainer.args.process_index}.pt")
    trainer.save_model(out + "/student")
    if trainer.is_world_process_zero():
        Path(out, "result.json").write_text(json.dumps({
            "world_size": trainer.args.world_size, "backend": str(torch.distributed.get_backend())
            if torch.distributed.is_initialized() else None,
            "log": [h for h in trainer.state.log_history if "loss" in h]}))


if __name__ == "__main__":
    main(sys.argv[1])
