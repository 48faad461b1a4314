"""One trained layer in place of a removed block (LLM-Streamline, Chen et al., ICLR 2025), on cached activations.

The replacement is a standard decoder layer of the teacher's class, copied from a teacher layer of the block,
with its attention output projection set to zero (`student.layers.zero_attention_output`): it then computes
h + MLP branch(h) token by token (norm(s) and MLP exactly as the layer's forward applies them), so it can be
trained on (h_l, h_{l+n}) pairs from the calibration cache alone: no backward through the model, no sequence
forward. Only the MLP and the norm(s) around it train (Gemma 3: pre- and post-feed-forward norms). Loss:
"relative" (default), the mean over tokens of ||pred - target||² / ||target||²; "mse", LLM-Streamline's squared
error (divided by the targets' mean squared norm, a constant); "cosine+mse", that plus mean 1 - cos. Plain MSE is
a fit to a sequence's first positions: their massive activations (SmolLM2-135M: norm ~23,000 against a median
of 201 after layer 18) carry ~99 % of it (see `linear_map`). The state with the best held-out loss is kept (the
teacher-layer start included).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..student.layers import layer_list, mlp_branch, mlp_branch_parameters, zero_attention_output
from .linear_map import cosine_distance, relative_mse, split_tokens

LOSSES = ("relative", "mse", "cosine+mse")
INITS = ("first", "last", "middle")


@dataclass
class ReplacementSettings:
    """How the replacement layer is trained."""

    steps: int = 300  # SmolLM2-135M, batch 1024: ~0.6 s a step on two busy cores
    max_seconds: float | None = None  # stop earlier when this much time has passed
    learning_rate: float = 3e-4
    batch_tokens: int = 1024
    loss: str = "relative"
    init: str = "first"  # which teacher layer of the block it starts from: first, last, middle
    held_out: float = 0.1
    eval_every: int = 50
    seed: int = 0


@dataclass
class ReplacementFit:
    """What training one replacement did: its block, start layer, steps, seconds and losses."""

    block: list[int]
    init_layer: int
    steps: int
    seconds: float
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # split -> removed / start / final loss

    def to_dict(self) -> dict:
        return {"block": self.block, "init_layer": self.init_layer, "steps": self.steps,
                "seconds": round(self.seconds, 2),
                "metrics": {k: {m: round(v, 6) for m, v in d.items()} for k, d in self.metrics.items()}}


def init_layer_index(block: list[int], init: str) -> int:
    """The teacher layer of `block` = [start, end) the replacement is copied from."""
    start, end = block
    if init not in INITS:
        raise PeftTransferError(f"unknown replacement init {init!r}; choose one of {INITS}.")
    return {"first": start, "last": end - 1, "middle": (start + end - 1) // 2}[init]


def _loss(pred: torch.Tensor, target: torch.Tensor, scale: float, kind: str) -> torch.Tensor:
    if kind == "relative":
        return ((pred - target).pow(2).sum(-1) / target.pow(2).sum(-1).clamp_min(1e-12)).mean()
    loss = (pred - target).pow(2).sum(-1).mean() / scale
    return loss + cosine_distance(pred, target) if kind == "cosine+mse" else loss


def _evaluate(model, layer, x, target, scale: float, kind: str, chunk: int = 8192) -> float:
    with torch.no_grad():
        total = 0.0
        for i in range(0, len(x), chunk):
            xb = x[i:i + chunk]
            total += float(_loss(xb + mlp_branch(model, layer, xb), target[i:i + chunk], scale, kind)) * len(xb)
        return total / max(len(x), 1)


def train_replacement(student: PreTrainedModel, position: int, inputs: torch.Tensor, targets: torch.Tensor,
                      block: list[int], init_layer: int, settings: ReplacementSettings | None = None,
                      progress: bool = False) -> ReplacementFit:
    """Turn student layer `position` into a trained replacement of `block`: zero its attention output, train its
    MLP branch so inputs + branch(inputs) ≈ targets (tokens x d: h_start and h_end of the block)."""
    settings = settings or ReplacementSettings()
    if settings.loss not in LOSSES:
        raise PeftTransferError(f"unknown replacement loss {settings.loss!r}; choose one of {LOSSES}.")
    if settings.steps < 0 or settings.batch_tokens < 1:
        raise PeftTransferError("replacement training needs steps >= 0 and batch_tokens >= 1.")
    layer = layer_list(student)[position]
    zero_attention_output(student, layer)
    params = mlp_branch_parameters(student, layer)
    dtype = params[0].dtype
    x, y = inputs.to(dtype), targets.to(dtype)
    fit, held = split_tokens(len(x), settings.held_out)
    x_fit, y_fit, x_held, y_held = x[fit], y[fit], x[held], y[held]
    if not len(x_held):
        x_held, y_held = x_fit, y_fit
    scale = float(y_fit.pow(2).sum(-1).mean().clamp_min(1e-12))
    kind = settings.loss

    def removed(xs, ys) -> float:
        return float(_loss(xs, ys, scale, kind))

    metrics = {"fitted": {"removed": removed(x_fit, y_fit), "start": _evaluate(student, layer, x_fit, y_fit, scale,
                                                                                kind)},
               "held_out": {"removed": removed(x_held, y_held), "start": _evaluate(student, layer, x_held, y_held,
                                                                                   scale, kind)}}
    best = metrics["held_out"]["start"]
    best_state = [p.detach().clone() for p in params]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=settings.learning_rate)
    total = max(settings.steps, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(settings.seed)
    began, steps = time.perf_counter(), 0
    try:
        with torch.enable_grad():
            for step in tqdm(range(1, settings.steps + 1), desc="replacement layer", disable=not progress):
                idx = torch.randint(len(x_fit), (min(settings.batch_tokens, len(x_fit)),), generator=gen)
                xb = x_fit[idx]
                loss = _loss(xb + mlp_branch(student, layer, xb), y_fit[idx], scale, kind)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                steps = step
                out_of_time = settings.max_seconds is not None and time.perf_counter() - began >= settings.max_seconds
                if step % settings.eval_every == 0 or step == settings.steps or out_of_time:
                    value = _evaluate(student, layer, x_held, y_held, scale, kind)
                    if value < best:
                        best, best_state = value, [p.detach().clone() for p in params]
                if out_of_time:
                    break
    finally:
        with torch.no_grad():
            for p, saved, flag in zip(params, best_state, flags, strict=True):
                p.copy_(saved)
                p.grad = None
                p.requires_grad_(flag)
    metrics["fitted"]["final"] = _evaluate(student, layer, x_fit, y_fit, scale, kind)
    metrics["held_out"]["final"] = best
    metrics["fitted"]["final_relative_mse"] = relative_mse(x_fit + _branch(student, layer, x_fit), y_fit)
    return ReplacementFit(block=list(block), init_layer=init_layer, steps=steps,
                          seconds=time.perf_counter() - began, metrics=metrics)


def _branch(model, layer, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([mlp_branch(model, layer, x[i:i + chunk]) for i in range(0, len(x), chunk)])
