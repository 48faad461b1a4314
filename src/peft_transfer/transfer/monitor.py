"""`TransferMonitor`: a public-only view of a running transfer (loss, agreement with the source) and its plot.

Agreement is the fraction of held-out PUBLIC examples on which target+p_t and student+p_s predict the same
class (argmax over the task's classes). It needs no labels, so it can be watched without touching private
data; the saved prompt is still the last step's, whatever the monitor shows.
"""

from __future__ import annotations

import json
import logging
import os

import torch
from transformers import TrainerCallback

from ..errors import PeftTransferError
from ..tasks.classification import TokenizedTask
from .loss import transfer_loss
from .loss_over import compared

logger = logging.getLogger(__name__)

PLOT_NAME = "transfer_monitor.png"
HISTORY_NAME = "transfer_monitor.json"
MONITOR_SHARE = 4  # the monitor holds out at most 1 / MONITOR_SHARE of the public texts: the rest trains


def monitor_count(monitor_size: int, num_texts: int) -> int:
    """Public texts the monitor holds out: `monitor_size`, at most a quarter of the `num_texts`."""
    return min(monitor_size, num_texts // MONITOR_SHARE)


def check_monitor_size(monitor_size: int, num_texts: int, flag: str = "--monitor-size") -> None:
    """Refuse a monitor size the public set cannot give (it would be cut to a quarter of the texts), naming
    `flag` and the numbers."""
    most = num_texts // MONITOR_SHARE
    if monitor_size > most:
        raise PeftTransferError(f"{flag} {monitor_size} is more than the monitor may hold out of {num_texts} public "
                                f"texts (a quarter: {most}; the rest trains p_t); use {flag} {most} or less (0: no "
                                "monitor), or give more public texts.")


class TransferMonitor(TrainerCallback):
    """Every `every` steps (and at the first and last), log `monitor_loss` and `monitor_agreement` on held-out
    public texts into the trainer's log history; at the end save a PNG of loss and agreement vs step."""

    def __init__(self, tokenized: TokenizedTask, texts: list[str], constants: torch.Tensor, alpha: float,
                 temperature: float, every: int, batch_size: int = 16, loss_over: str = "vocab"):
        self.tokenized, self.texts, self.constants = tokenized, texts, constants
        self.loss_over = loss_over  # what the loss compares (TransferConfig.loss_over), as the trainer's
        self.alpha, self.temperature, self.every, self.batch_size = alpha, temperature, every, batch_size
        self.last: dict | None = None
        self._source_classes = tokenized.class_scores(constants[:, 0]).argmax(-1) if len(texts) else None

    @torch.no_grad()
    def measure(self, model: torch.nn.Module) -> dict:
        """Transfer loss and agreement of the current p_t on the held-out texts (`model` maps a batch to logits)."""
        logits = []
        for start in range(0, len(self.texts), self.batch_size):
            batch = self.tokenized.encode(self.texts[start : start + self.batch_size])
            logits.append(model(**batch).float().cpu())
        target = torch.cat(logits)
        sp, su, tu = self.constants.unbind(1)
        agreement = (self.tokenized.class_scores(target).argmax(-1) == self._source_classes).float().mean().item()
        loss = transfer_loss(*compared(self.loss_over, self.tokenized, target, sp, su, tu), self.alpha,
                             self.temperature).item()
        return {"monitor_loss": loss, "monitor_agreement": agreement}

    def _log(self, state, model) -> None:
        if not self.texts or not state.is_world_process_zero or model is None:
            return
        if any(e.get("step") == state.global_step and "monitor_agreement" in e for e in state.log_history):
            return
        self.last = {**self.measure(model), "step": state.global_step}
        state.log_history.append(dict(self.last))
        logger.info("transfer monitor: %s", self.last)

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step == 0:
            self._log(state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._log(state, model)

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and args.output_dir:
            save_monitor_plot(state.log_history, args.output_dir)


def save_monitor_plot(log_history: list[dict], output_dir: str) -> str:
    """Write transfer_monitor.png (training/monitor loss and agreement vs step) and transfer_monitor.json."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(output_dir, exist_ok=True)
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    monitor = [e for e in log_history if "monitor_agreement" in e]
    with open(os.path.join(output_dir, HISTORY_NAME), "w") as f:
        json.dump({"train_loss": train, "monitor": monitor}, f, indent=1)
    fig, (ax_loss, ax_agree) = plt.subplots(1, 2, figsize=(10, 3.6))
    if train:
        ax_loss.plot(*zip(*train), label="training loss (batch)")
    if monitor:
        ax_loss.plot([e["step"] for e in monitor], [e["monitor_loss"] for e in monitor], "o-",
                     label="held-out public loss")
        ax_agree.plot([e["step"] for e in monitor], [e["monitor_agreement"] for e in monitor], "o-")
    ax_loss.set(xlabel="step", ylabel="transfer loss", title="POST transfer loss")
    ax_loss.legend()
    ax_agree.set(xlabel="step", ylabel="agreement", ylim=(0, 1.02),
                 title="target+p_t vs student+p_s (public, held out)")
    fig.tight_layout()
    path = os.path.join(output_dir, PLOT_NAME)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
