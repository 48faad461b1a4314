"""POST's transfer loss (Eq. 3-5). Eq. 6's α needs labelled accuracies: it lives on the evaluation side
(`comparison.eq6_alpha_oracle`), never in the provider's transfer."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _kl(teacher: torch.Tensor, student: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(teacher/T) || softmax(student/T)) * T^2, mean over the batch."""
    log_p = F.log_softmax(teacher.float() / temperature, dim=-1)
    log_q = F.log_softmax(student.float() / temperature, dim=-1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="batchmean") * temperature**2


def transfer_loss_terms(
    target_prompted: torch.Tensor,
    student_prompted: torch.Tensor,
    student_plain: torch.Tensor,
    target_plain: torch.Tensor,
    temperature: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L1, L2) on full-vocabulary label-position logits, each (batch, vocab).

    L1 = KL(student+p_s || target+p_t) - copy the prompted output; L2 = KL of the prompt-induced shifts
    (student+p_s - student) || (target+p_t - target) - copy what the prompt changes. Both at temperature T, x T^2.
    """
    l1 = _kl(student_prompted, target_prompted, temperature)
    l2 = _kl(student_prompted.float() - student_plain.float(), target_prompted.float() - target_plain.float(),
             temperature)
    return l1, l2


def transfer_loss(
    target_prompted: torch.Tensor,
    student_prompted: torch.Tensor,
    student_plain: torch.Tensor,
    target_plain: torch.Tensor,
    alpha: float = 0.5,
    temperature: float = 2.0,
) -> torch.Tensor:
    """L = (1 - alpha) * L1 + alpha * L2 (see `transfer_loss_terms`); a batch mean, like the reference code."""
    l1, l2 = transfer_loss_terms(target_prompted, student_prompted, student_plain, target_plain, temperature)
    return (1.0 - alpha) * l1 + alpha * l2

