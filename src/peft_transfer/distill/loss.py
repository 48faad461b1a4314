"""Loss terms of logit distillation, as plain functions over (batch, seq, ...) tensors and a position mask.

Written by hand (not taken from TRL 1.16) because `trl.DistillationTrainer` is on-policy (the student
generates) and `trl.experimental.gkd.GKDTrainer` computes its divergence at temperature 1, while the
paper's student distillation (DistilBERT recipe) uses KL(teacher ‖ student) at temperature T scaled by T²,
plus the LM loss and a cosine loss on hidden states. Every term is a mean over the positions where
`mask` is true, so padding never contributes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def kl_full(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) over the full vocabulary, averaged over masked positions."""
    t_logp = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    s_logp = F.log_softmax(student_logits.float() / temperature, dim=-1)
    kl = (t_logp.exp() * (t_logp - s_logp)).sum(-1)
    return _masked_mean(kl, mask) * temperature**2


def kl_topk(student_logits: torch.Tensor, teacher_ids: torch.Tensor, teacher_logprobs: torch.Tensor,
            mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """T² · KL between teacher and student collapsed onto the teacher's top-k words plus one "tail" bucket.

    `teacher_logprobs` are the teacher's log-probabilities at temperature T on its top-k words (`teacher_ids`),
    so their exp sums to at most 1 and the rest is the tail mass. The student's tail mass is 1 minus its
    probability on the same words. This is the KL of the (k + 1)-outcome coarsening of both distributions:
    exact when the teacher puts no mass outside its top k, and never larger than the full KL otherwise (data
    processing inequality), the gap being the divergence *within* the tail, which the cache cannot see.
    """
    s_logp_all = F.log_softmax(student_logits.float() / temperature, dim=-1)
    s_logp = s_logp_all.gather(-1, teacher_ids.long())
    t_logp = teacher_logprobs.float()
    head = (t_logp.exp() * (t_logp - s_logp)).sum(-1)
    t_tail = (1.0 - t_logp.exp().sum(-1)).clamp_min(0.0)
    s_tail = (1.0 - s_logp.exp().sum(-1)).clamp_min(1e-12)
    tail = torch.where(t_tail > 1e-9, t_tail * (t_tail.clamp_min(1e-12).log() - s_tail.log()), 0.0)
    return _masked_mean(head + tail, mask) * temperature**2


def lm_loss(student_logits: torch.Tensor, labels: torch.Tensor, causal: bool) -> torch.Tensor:
    """Token-mean cross-entropy on `labels` (-100 ignored); causal LMs predict the next token."""
    if causal:
        student_logits, labels = student_logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(student_logits.reshape(-1, student_logits.size(-1)).float(), labels.reshape(-1),
                           ignore_index=-100)


def cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of 1 − cos(student, teacher) hidden vectors over masked positions (DistilBERT's cosine term)."""
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1)
    return _masked_mean(1.0 - cos, mask)


def relative_mse_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over masked positions of ‖student − teacher‖² / ‖teacher‖² (per-token relative squared error)."""
    s, t = student_hidden.float(), teacher_hidden.float()
    rel = (s - t).pow(2).sum(-1) / t.pow(2).sum(-1).clamp_min(1e-6)
    return _masked_mean(rel, mask)
