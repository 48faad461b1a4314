"""`PromptTransferTrainer`: POST stage 3 as a `transformers.Trainer` - train p_t on the target so that
target+p_t behaves like student+p_s on public, unlabelled texts.

Only p_t trains. The student+p_s, student and target logits at the label position do not change during
transfer, so they are computed once per public text and cached (full vocabulary, float32, in memory:
3 x vocab floats per text, 0.6 MB for a 49k vocabulary); a step then costs one target forward and backward.

Why the model the Trainer sees is a small wrapper (`PromptedLabelModel`) around the target PeftModel: the
transfer forward is `label_logits` (explicit positions, one position read), not `PeftModel.forward`, and
under DDP (`accelerate launch`) the gradient all-reduce only happens for forwards that go through the
wrapped module. The wrapper keeps the target in eval mode (no dropout) so the trained forward matches the
cached constants (L = 0 when target = student and p_t = p_s). Checkpoints are stock prompt adapters
(`save_prompt`), so resuming restores p_t itself (stock Trainer resuming refuses prompt adapters).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from peft import PeftModel
from peft.utils import load_peft_weights, set_peft_model_state_dict
from transformers import Trainer
from transformers.trainer import TRAINING_ARGS_NAME

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm, label_logits
from ..prompts.handover import save_prompt
from ..prompts.model import model_id
from ..tasks.classification import ClassificationTask
from .config import TransferConfig
from .loss import transfer_loss
from .loss_over import compared
from .monitor import TransferMonitor, monitor_count
from .public_logits import (
    PublicTextCollator,
    PublicTextDataset,
    compute_label_logits,
    output_vocab_size,
    public_text_list,
)


class PromptedLabelModel(torch.nn.Module):
    """A PeftModel seen as `batch -> label-position logits (batch, vocab)`; the inner model stays in eval mode."""

    def __init__(self, prompt_model: PeftModel):
        super().__init__()
        self.prompt_model = prompt_model

    def forward(self, input_ids, attention_mask, label_positions, use_prompt: bool = True, **_) -> torch.Tensor:
        return label_logits(self.prompt_model, input_ids, attention_mask, label_positions, use_prompt=use_prompt)

    def train(self, mode: bool = True):
        super().train(mode)
        self.prompt_model.eval()
        return self


def check_transfer_inputs(trainer: str, args, model, student) -> None:
    """What every transfer trainer refuses: other arguments than a `TransferConfig`, a target or student without
    its prompt, and a student whose tokenizer or hidden size does not fit the target (`check_compatible`)."""
    if not isinstance(args, TransferConfig):
        raise PeftTransferError(f"{trainer} needs a TransferConfig as args.")
    if not isinstance(model, PeftModel) or not isinstance(student, PeftModel):
        raise PeftTransferError("Both the target and the student must carry a prompt (PeftModel): p_t to train "
                                "and p_s to copy. Use create_prompt_model / load_prompt.")
    check_compatible(student, model)


def check_compatible(student: torch.nn.Module, target: torch.nn.Module) -> None:
    """Student and target must score the same vocabulary (the KL is over it) and be the same kind of LM."""
    vs, vt = output_vocab_size(student), output_vocab_size(target)
    if vs != vt:
        raise PeftTransferError(
            f"The student {model_id(student)} has a vocabulary of {vs} tokens but the target {model_id(target)} has "
            f"{vt}: POST compares full-vocabulary outputs, so both must share the tokenizer (use a student "
            "derived from the target)."
        )
    if is_masked_lm(student) != is_masked_lm(target):
        raise PeftTransferError("The student and the target must both be causal LMs or both masked LMs.")


class PromptTransferTrainer(Trainer):
    """Train the target's prompt p_t to copy what the student's prompt p_s does, on public texts only.

    `model` is the target with a trainable p_t (e.g. from `create_prompt_model`), `student` the student
    with p_s loaded (`load_prompt`), `public_texts` a list of strings or a Dataset with a text column
    (other columns are ignored with a warning). There is deliberately no train/eval dataset argument:
    labels and private validation sets have no place in transfer. `monitor_size` texts are held out
    for the `TransferMonitor`. `student_constants` (n, 2, vocab) - student+p_s and student logits for
    `public_texts` in order - may be passed to reuse them across several targets.
    """

    loss_is_scaled_for_ga = False  # the loss is a per-batch mean

    def __init__(
        self,
        model: PeftModel,
        student: PeftModel,
        args: TransferConfig,
        public_texts,
        task: ClassificationTask,
        processing_class,
        callbacks: list | None = None,
        student_constants: torch.Tensor | None = None,
    ):
        check_transfer_inputs(type(self).__name__, args, model, student)
        texts = public_text_list(public_texts, task.text_column)
        if student_constants is not None and student_constants.shape[:2] != (len(texts), 2):
            raise PeftTransferError("student_constants must hold (student+p_s, student) logits for each public text.")
        self.prompt_model, self.student, self.task = model, student, task
        self.public_texts = texts
        self.tokenized = task.tokenized(processing_class, masked_lm=is_masked_lm(model))
        for p in student.parameters():
            p.requires_grad_(False)

        n_monitor = monitor_count(args.monitor_size, len(texts))
        order = np.random.default_rng(args.seed).permutation(len(texts))
        monitor_idx, train_idx = order[:n_monitor].tolist(), order[n_monitor:].tolist()
        if not train_idx:
            raise PeftTransferError("The public set is too small: no texts left for training after the monitor's.")
        needed = sorted(train_idx + monitor_idx) if args.cache_constants else sorted(monitor_idx)
        constants = self._constants(texts, needed, student_constants, args)
        row = {i: k for k, i in enumerate(needed)}
        take = (lambda idx: constants[[row[i] for i in idx]]) if constants is not None else None
        train_set = PublicTextDataset([texts[i] for i in train_idx],
                                      take(train_idx) if args.cache_constants else None)
        self.monitor = TransferMonitor(self.tokenized, [texts[i] for i in monitor_idx],
                                       take(monitor_idx) if monitor_idx else torch.empty(0, 3, 0),
                                       args.alpha, args.temperature, args.monitor_steps, args.cache_batch_size,
                                       loss_over=args.loss_over)
        self.num_train_texts = len(train_idx)
        super().__init__(model=PromptedLabelModel(model), args=args, train_dataset=train_set,
                         data_collator=PublicTextCollator(self.tokenized), processing_class=processing_class,
                         callbacks=[self.monitor, *(callbacks or [])])

    def _constants(self, texts, needed, student_constants, args) -> torch.Tensor | None:
        """(len(needed), 3, vocab): student+p_s, student, target logits for texts[needed]."""
        if not needed:
            return None
        chosen = [texts[i] for i in needed]
        bs = args.cache_batch_size
        if student_constants is not None:
            sp, su = student_constants[needed].unbind(1)
        else:
            sp = compute_label_logits(self.student, self.tokenized, chosen, True, bs, "caching student+p_s logits")
            su = compute_label_logits(self.student, self.tokenized, chosen, False, bs, "caching student logits")
        tu = compute_label_logits(self.prompt_model, self.tokenized, chosen, False, bs, "caching target logits")
        return torch.stack([sp, su, tu], dim=1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        target_prompted = model(inputs["input_ids"], inputs["attention_mask"], inputs["label_positions"])
        if "constants" in inputs:
            sp, su, tu = inputs["constants"].unbind(1)
        else:  # uncached (benchmark) path: what the reference code does at every step
            with torch.no_grad():
                batch = (inputs["input_ids"], inputs["attention_mask"], inputs["label_positions"])
                sp = label_logits(self.student, *batch)
                su = label_logits(self.student, *batch, use_prompt=False)
                tu = label_logits(self.prompt_model, *batch, use_prompt=False)
        loss = transfer_loss(*compared(self.args.loss_over, self.tokenized, target_prompted, sp, su, tu),
                             self.args.alpha, self.args.temperature)
        return (loss, {"logits": target_prompted}) if return_outputs else loss

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Checkpoints and final saves are stock prompt adapters (with provenance) plus the training args."""
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        save_prompt(self.prompt_model, output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Restore p_t from a checkpoint (stock resuming calls load_adapter(is_trainable=True), which PEFT
        refuses for prompt adapters)."""
        try:
            weights = load_peft_weights(resume_from_checkpoint, device="cpu")
        except (OSError, ValueError) as exc:
            raise PeftTransferError(f"Cannot resume from {resume_from_checkpoint}: {exc}") from exc
        set_peft_model_state_dict(self.prompt_model, weights)
