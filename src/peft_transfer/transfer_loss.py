"""POST's transfer loss (Eq. 3-5) and its alpha heuristic (Eq. 6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import PeftTransferError


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


def alpha_heuristic(zs: float, compt: float, random_guess: float) -> float:
    """Eq. 6: alpha = min((ZS - RG) / (C - RG), 1), clipped at 0.

    `zs` is the target's zero-shot accuracy, `compt` the student+p_s accuracy (measured by the data owner,
    who holds the labels), `random_guess` the chance accuracy (1 / classes for balanced data). A target
    that is already as good as the prompted student gets alpha = 1 (transfer only the prompt's shift).
    """
    for name, value in (("zs", zs), ("compt", compt), ("random_guess", random_guess)):
        if not 0.0 <= value <= 1.0:
            raise PeftTransferError(f"alpha_heuristic: {name} is an accuracy in [0, 1], got {value}.")
    if compt <= random_guess:
        raise PeftTransferError(
            f"alpha_heuristic: the student prompt's accuracy ({compt}) is not above random guessing "
            f"({random_guess}); there is nothing to transfer - tune the source prompt first."
        )
    return float(min(max((zs - random_guess) / (compt - random_guess), 0.0), 1.0))
