"""A linear map in place of a removed block, folded into the layer before it (ReplaceMe, Shopkhoev et al. 2025).

For the block [l, l+n) take, at each calibration token, M = what layer l-1's MLP adds to the residual stream,
Y = the stream before that addition (h_l - M) and L = h_{l+n}, the stream leaving the block. A d x d map T with
Y + M T ≈ L lets layer l-1 itself produce (approximately) what the block would have, so the student is the
teacher minus the block with layer l-1's MLP output projection multiplied by T (`student.layers.fold_output_map`):
no extra module, no custom code, the teacher's class.

Two objectives, both fitted on the cached activations (`calibration.CalibrationCache`, no model forward):
- "ls": least squares, closed form, ridge towards the identity, min Σ_t w_t ||M_t T + Y_t - L_t||² + λ||T - I||²
  with λ = ridge · (mean diagonal of the weighted MᵀM). T = I is plain removal, so the fit never does worse than
  removal on the data it was fitted to. Weights: "relative" (default) w_t = 1 / ||L_t||², each token's error
  relative to its target; "none" w_t = 1, ReplaceMe's plain least squares. Why relative: the residual stream of
  a sequence's first position carries massive activations (SmolLM2-135M, block 9-18 on 20 k public tokens: norm
  ~23,000 at layer 19 against a median of 201), so plain least squares fits those few tokens and ruins the rest
  (held-out 1 - cos 0.54, plain removal 0.17); the relative fit gives 0.12.
- "cos": ReplaceMe's cosine objective, mean over tokens of 1 - cos(M T + Y, L), minimised by Adam on token
  mini-batches starting from the better (held-out cosine) of the least-squares T and the identity; the T with the
  best held-out cosine is kept (the start included), so it is never worse than plain removal on held-out tokens.
A share of the tokens (the last `held_out`) is held out for the numbers reported for each fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..errors import PeftTransferError
from .calibration import CalibrationCache

OBJECTIVES = ("ls", "cos")
WEIGHTINGS = ("relative", "none")


@dataclass
class LinearMapSettings:
    """How the map is fitted."""

    ridge: float = 1e-3
    weighting: str = "relative"  # least-squares token weights: 1/||target||² ("relative") or 1 ("none")
    steps: int = 300  # Adam steps of the cosine objective
    learning_rate: float = 1e-3
    batch_tokens: int = 2048
    eval_every: int = 25
    held_out: float = 0.1
    seed: int = 0


@dataclass
class LinearMapFit:
    """One block's map and how well it (and plain removal) fit the held-out and fitted tokens."""

    block: list[int]
    objective: str
    transform: torch.Tensor = field(repr=False)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> {removed|fit}_{mse|cos}
    steps: int = 0

    def to_dict(self) -> dict:
        return {"block": self.block, "objective": self.objective, "steps": self.steps,
                "metrics": {k: {m: round(v, 6) for m, v in d.items()} for k, d in self.metrics.items()}}


def block_activations(cache: CalibrationCache, start: int, end: int) -> tuple[torch.Tensor, ...]:
    """(M, Y, L) of the block [start, end): layer start-1's MLP output, the stream before it, the block's output."""
    if start < 1:
        raise PeftTransferError("a linear map folds into the layer before the block: the block cannot start at 0.")
    m = cache.mlp(start - 1)
    return m, cache.hidden(start) - m, cache.hidden(end)


def relative_mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    """sum ||pred - target||² / sum ||target||² (scale-free squared error)."""
    return float((pred - target).double().pow(2).sum() / target.double().pow(2).sum().clamp_min(1e-30))


def cosine_distance(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of 1 - cos(pred, target)."""
    return (1.0 - torch.nn.functional.cosine_similarity(pred, target, dim=-1)).mean()


def least_squares_map(m: torch.Tensor, residual: torch.Tensor, ridge: float = 1e-3,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """argmin_T Σ_t w_t ||m_t T - residual_t||² + λ ||T - I||², λ = ridge · trace(mᵀWm) / d (float64 normal
    equations; `weights` w_t default 1)."""
    if ridge < 0:
        raise PeftTransferError(f"ridge must be 0 or more, got {ridge}.")
    m64, residual = m.double(), residual.double()
    if weights is not None:
        root = weights.double().clamp_min(0).sqrt().unsqueeze(-1)
        m64, residual = m64 * root, residual * root
    gram = m64.T @ m64
    d = gram.shape[0]
    lam = ridge * float(gram.diagonal().mean())
    eye = torch.eye(d, dtype=torch.float64)
    try:
        return torch.linalg.solve(gram + lam * eye, m64.T @ residual + lam * eye).float()
    except RuntimeError as exc:  # singular with ridge 0 (fewer tokens than dimensions, a dead MLP)
        raise PeftTransferError(f"the least-squares system is singular ({exc}); use a positive ridge or more "
                                "calibration tokens.") from None


def cosine_map(m: torch.Tensor, y: torch.Tensor, target: torch.Tensor, start: torch.Tensor,
               settings: LinearMapSettings, held: tuple[torch.Tensor, ...] | None = None,
               progress: bool = False) -> tuple[torch.Tensor, int]:
    """T minimising mean 1 - cos(m T + y, target), Adam from `start`; the best on `held` (m, y, target) is kept."""
    gen = torch.Generator().manual_seed(settings.seed)
    t = torch.nn.Parameter(start.detach().clone().float())
    opt = torch.optim.Adam([t], lr=settings.learning_rate)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, settings.steps) / max(settings.steps, 1))))
    held = held if held is not None and len(held[0]) else (m, y, target)

    def held_loss() -> float:
        with torch.no_grad():
            return float(cosine_distance(held[0] @ t + held[1], held[2]))

    best, best_t = held_loss(), t.detach().clone()
    n = len(m)
    for step in tqdm(range(1, settings.steps + 1), desc="cosine map", disable=not progress):
        idx = torch.randint(n, (min(settings.batch_tokens, n),), generator=gen)
        loss = cosine_distance(m[idx] @ t + y[idx], target[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % settings.eval_every == 0 or step == settings.steps:
            value = held_loss()
            if value < best:
                best, best_t = value, t.detach().clone()
    return best_t, settings.steps


def split_tokens(n: int, held_out: float) -> tuple[slice, slice]:
    """(fitted, held-out) token ranges: the last `held_out` share is held out (at least one token each when n > 1)."""
    if not 0 <= held_out < 1:
        raise PeftTransferError(f"held_out must lie in [0, 1), got {held_out}.")
    k = min(max(1, round(n * held_out)), n - 1) if held_out > 0 and n > 1 else 0
    return slice(0, n - k), slice(n - k, n)


def token_relative_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean over tokens of ||pred - target||² / ||target||² (what the "relative" least squares minimises)."""
    return float(((pred - target).double().pow(2).sum(-1) / target.double().pow(2).sum(-1).clamp_min(1e-30)).mean())


def _metrics(m, y, target, t) -> dict[str, float]:
    with torch.no_grad():
        fit = m @ t + y
        removed = m + y
        return {"removed_mse": relative_mse(removed, target), "fit_mse": relative_mse(fit, target),
                "removed_rel": token_relative_error(removed, target), "fit_rel": token_relative_error(fit, target),
                "removed_cos": float(cosine_distance(removed, target)), "fit_cos": float(cosine_distance(fit, target))}


def fit_linear_map(cache: CalibrationCache, block: list[int], objective: str = "cos",
                   settings: LinearMapSettings | None = None, progress: bool = False) -> LinearMapFit:
    """Fit the map replacing `block` = [start, end) on the cached activations (see the module docstring)."""
    if objective not in OBJECTIVES:
        raise PeftTransferError(f"unknown linear-map objective {objective!r}; choose one of {OBJECTIVES}.")
    settings = settings or LinearMapSettings()
    if settings.weighting not in WEIGHTINGS:
        raise PeftTransferError(f"unknown least-squares weighting {settings.weighting!r}; choose one of {WEIGHTINGS}.")
    start, end = block
    m, y, target = block_activations(cache, start, end)
    fit, held = split_tokens(len(m), settings.held_out)
    weights = 1.0 / target[fit].double().pow(2).sum(-1).clamp_min(1e-30) if settings.weighting == "relative" else None
    t = least_squares_map(m[fit], target[fit] - y[fit], settings.ridge, weights)
    steps = 0
    if objective == "cos":
        check = (m[held], y[held], target[held]) if held.stop > held.start else (m[fit], y[fit], target[fit])
        with torch.no_grad():
            identity = torch.eye(t.shape[0])
            if cosine_distance(check[0] @ identity + check[1], check[2]) < cosine_distance(check[0] @ t + check[1],
                                                                                              check[2]):
                t = identity  # removal beats the least-squares start: descend from there
        t, steps = cosine_map(m[fit], y[fit], target[fit], t, settings, (m[held], y[held], target[held]), progress)
    metrics = {"fitted": _metrics(m[fit], y[fit], target[fit], t)}
    if held.stop > held.start:
        metrics["held_out"] = _metrics(m[held], y[held], target[held], t)
    return LinearMapFit(block=[start, end], objective=objective, transform=t, metrics=metrics, steps=steps)
