"""`DistillationTrainer`: a `Trainer` that distils a frozen teacher into a student (logits + LM + hidden states).

Why not TRL 1.16: `trl.DistillationTrainer` is on-policy (the student generates its own sequences, costly on
CPU and not the paper's recipe) and `trl.experimental.gkd.GKDTrainer(lmbda=0, seq_kd=False)` does
off-policy logit distillation but its `compute_loss` calls `generalized_jsd_loss` without a temperature
(T = 1, no T² factor; `args.temperature` only affects sampling) and has no LM / cosine terms; neither trains
from cached teacher logits. So the loss is written by hand (`distillation_loss`), everything else — optimiser,
schedule, checkpoints, resume, DDP/FSDP/DeepSpeed through accelerate — is the stock `Trainer`.

Loss terms are pluggable: `loss_terms()` returns a dict name -> scalar and `compute_loss` sums
`weights()[name] · term`; a subclass adds a term by extending both. Each term is logged (`loss_<name>`).
The teacher is kept out of the optimiser and of DDP wrapping: frozen (`requires_grad_(False)`), in eval
mode, run under `torch.no_grad()`, never updated. With a teacher cache (`teacher_cache.build_teacher_cache`)
the batch carries `teacher_topk_ids` / `teacher_topk_logprobs` (and optionally `teacher_last_hidden`) and the
teacher is not run at all.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, Trainer

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from ..student.layers import layer_list, student_lineage
from .budget import TrainingClock, budget_lr_factor
from .config import DistillationConfig
from .loss import cosine_loss, kl_full, kl_topk, lm_loss, relative_mse_loss

CACHE_COLUMNS = ("teacher_topk_ids", "teacher_topk_logprobs", "teacher_last_hidden")


def cut_points(model: PreTrainedModel) -> list[tuple[int, int]]:
    """(student layer j, teacher layer keep[j]) for every student layer that follows a gap in the kept layers."""
    lineage = student_lineage(model)
    if lineage is None:
        return []
    keep = lineage.kept_layers
    return [(j, keep[j]) for j in range(1, len(keep)) if keep[j] != keep[j - 1] + 1]


class DistillationTrainer(Trainer):
    """Trainer for `model` (the student) against `teacher`; `args` is a `DistillationConfig`."""

    loss_is_scaled_for_ga = False  # compute_loss returns a per-batch mean

    def __init__(self, model: PreTrainedModel, teacher: PreTrainedModel | None = None,
                 args: DistillationConfig | None = None, teacher_cache_temperature: float | None = None, **kwargs):
        if not isinstance(args, DistillationConfig):
            raise PeftTransferError("DistillationTrainer needs args=DistillationConfig(...).")
        if teacher is None and teacher_cache_temperature is None:
            raise PeftTransferError("give a teacher model or train from a teacher cache (teacher_cache_temperature).")
        if teacher_cache_temperature is not None and abs(teacher_cache_temperature - args.temperature) > 1e-9:
            raise PeftTransferError(
                f"the teacher cache holds probabilities at T={teacher_cache_temperature} but the config asks for "
                f"T={args.temperature}: rebuild the cache or use its temperature.")
        if teacher is not None and teacher.get_input_embeddings().num_embeddings != \
                model.get_input_embeddings().num_embeddings:
            raise PeftTransferError("teacher and student vocabularies differ: the student must share the tokenizer.")
        self.causal = not is_masked_lm(model)
        self._cuts = cut_points(model) if args.alpha_hidden > 0 or args.train_below_cut else []
        if (args.alpha_hidden > 0 or args.train_below_cut) and not self._cuts:
            raise PeftTransferError("--alpha-hidden above 0 and --train-below-cut (alpha_hidden, train_below_cut) "
                                    "match the student to the teacher where it skips teacher layers, but these kept "
                                    "layers skip none: keep layers with a gap (e.g. --keep-layers 0,3), or leave "
                                    "both off.")
        if args.train_below_cut:
            model.requires_grad_(False)
            for layer in list(layer_list(model))[: self._cuts[0][0]]:
                layer.requires_grad_(True)
        if args.freeze_embeddings:
            model.get_input_embeddings().weight.requires_grad_(False)
        if args.freeze_lm_head and model.get_output_embeddings() is not None:
            model.get_output_embeddings().weight.requires_grad_(False)
        super().__init__(model=model, args=args, **kwargs)
        if args.max_train_minutes is not None:
            self.add_callback(TrainingClock(args.max_train_minutes * 60.0))
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            self.teacher = teacher.to(self.args.device).eval()
        self._term_sums: dict[str, float] = {}
        self._term_count = 0

    def _clock(self) -> TrainingClock:
        # looked up each time: resuming replaces the callback with one restored from the checkpoint
        return next(cb for cb in self.callback_handler.callbacks if isinstance(cb, TrainingClock))

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """With `max_train_minutes`, the learning rate follows the spent fraction of the time budget."""
        if self.args.max_train_minutes is None or self.lr_scheduler is not None:
            return super().create_scheduler(num_training_steps, optimizer)
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer or self.optimizer, lambda _step: budget_lr_factor(self._clock().fraction()))
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def weights(self) -> dict[str, float]:
        a = self.args
        return {"kl": a.alpha_ce, "lm": a.alpha_lm, "cos": a.alpha_cos, "hidden": a.alpha_hidden}

    def _teacher_outputs(self, inputs: dict, need_hidden: bool, skip_head: bool = False):
        if self.teacher is None:
            raise PeftTransferError("the batch has no cached teacher columns and no teacher model was given.")
        self.teacher.eval()
        # accelerate's mixed precision wraps only the prepared student; the teacher gets the same autocast here
        with torch.no_grad(), self.accelerator.autocast():
            return self.teacher(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                output_hidden_states=need_hidden, **({"logits_to_keep": 1} if skip_head else {}))

    def loss_terms(self, model, inputs: dict) -> tuple[dict[str, torch.Tensor], object]:
        """Unweighted loss terms (only those with a positive weight) and the student outputs."""
        w = self.weights()
        need_hidden = w["cos"] > 0 or w["hidden"] > 0
        labels = inputs["labels"]
        # only hidden-state terms: a causal LM computes one position's logits instead of the full-vocabulary head
        skip_head = self.causal and w["kl"] == 0 and w["lm"] == 0
        extra = {"logits_to_keep": 1} if skip_head else {}
        out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                    output_hidden_states=need_hidden, **extra)
        # positions that count: every attended token (causal) / the masked tokens (masked LM, as DistilBERT)
        mask = inputs["attention_mask"].bool() if self.causal else labels.ne(-100)
        cached = "teacher_topk_ids" in inputs
        needs_teacher_hidden = w["hidden"] > 0 or (w["cos"] > 0 and "teacher_last_hidden" not in inputs)
        t_out = self._teacher_outputs(inputs, need_hidden, skip_head) if (not cached or needs_teacher_hidden) else None
        terms: dict[str, torch.Tensor] = {}
        if w["kl"] > 0:
            if cached:
                terms["kl"] = kl_topk(out.logits, inputs["teacher_topk_ids"], inputs["teacher_topk_logprobs"], mask,
                                      self.args.temperature)
            else:
                terms["kl"] = kl_full(out.logits, t_out.logits, mask, self.args.temperature)
        if w["lm"] > 0:
            terms["lm"] = lm_loss(out.logits, labels, self.causal)
        hidden_term = relative_mse_loss if self.args.hidden_loss == "mse" else cosine_loss
        if w["cos"] > 0:
            t_last = inputs["teacher_last_hidden"] if "teacher_last_hidden" in inputs else t_out.hidden_states[-1]
            terms["cos"] = hidden_term(out.hidden_states[-1], t_last, mask)
        if w["hidden"] > 0:
            terms["hidden"] = sum(hidden_term(out.hidden_states[j], t_out.hidden_states[t], mask)
                                  for j, t in self._cuts) / len(self._cuts)
        return terms, out

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "labels", *CACHE_COLUMNS)}
        terms, out = self.loss_terms(model, inputs)
        w = self.weights()
        loss = sum(w[name] * value for name, value in terms.items())
        if model.training:
            for name, value in terms.items():
                self._term_sums[name] = self._term_sums.get(name, 0.0) + float(value.detach())
            self._term_count += 1
        return (loss, out) if return_outputs else loss

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """Adds the mean of each loss term since the last log line (`loss_kl`, `loss_lm`, ...)."""
        if self._term_count and "loss" in logs:
            for name, total in self._term_sums.items():
                logs[f"loss_{name}"] = round(total / self._term_count, 4)
            self._term_sums, self._term_count = {}, 0
        super().log(logs, *args, **kwargs)
