"""Provider, stage 3: POST - turn the student's prompt into the target's with public, unlabelled text only.

`config.TransferConfig` + `trainer.PromptTransferTrainer` (the loss of `loss`, Eq. 3-5, on constant logits
from `public_logits`), `sequence_trainer` for answers that span several tokens, `monitor` (public agreement,
no labels) and `run.transfer_prompt`, the whole stage in one call.
"""
