"""`PrivatePromptTrainer`: the data owner tunes a soft prompt on private data, optionally with DP-SGD.

One trainer serves every task kind: it asks the task for what differs (the task protocol, see
`tasks.classification`): `task.training_data` checks and prepares the rows, `tokenized.training_collator` batches
them, `tokenized.example_outputs` and `tokenized.example_losses` give each example's loss - the cross-entropy of
its class scores (label words of any length) for classification, the mean negative log-likelihood of its own
target tokens, teacher-forced, for generation. The privacy unit is one example: never HF's token mean over a
batch.

DP is Opacus 1.6, assembled from its parts rather than `PrivacyEngine.make_private`, for three reasons:
(1) only the prompt encoder needs per-sample gradients, so `GradSampleModule` hooks just that module and
the PeftModel itself stays unwrapped and saveable (what `make_private(wrap_model=False)` is for); (2) a
logical Poisson batch is split into physical micro-batches inside one `training_step`, clipping each
micro-batch's per-example gradients into `summed_grad` (what `BatchMemoryManager` does with skipped steps,
without the Trainer counting micro-batches as steps); (3) an empty Poisson batch must still take a
noise-only step. Per-example gradients are exact because `prompted_forward` embeds the prompt from a
(batch, n_virtual) index matrix (stock PEFT embeds one row and repeats it, which hides the batch from
Opacus); tests compare them with a one-example-at-a-time loop.

The accountant's history is saved with each checkpoint (`dp_accountant.json`) and restored on resume, so a
resumed run reports the same ε as an uninterrupted one; a resumed plan that would pass `target_epsilon` with
the checkpoint's σ is refused (or stopped there by `stop_at_epsilon`). The training loss in the logs is not
privatised (logs stay in `output_dir`, with the data owner); the unclipped gradient norm is not logged under
DP. What is handed over is the export (`export_prompt`, `handover.py`): the prompt and its record only.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import secrets
import warnings
from pathlib import Path

import torch
from datasets import Dataset
from opacus import GradSampleModule
from opacus.accountants import create_accountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.optimizers import DPOptimizer
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from peft import PeftModel
from peft.utils import load_peft_weights, set_peft_model_state_dict
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import get_last_checkpoint

from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from ..prompts.handover import check_export_destination, export_prompt, save_prompt
from ..prompts.model import create_prompt_model, load_prompt, model_id
from ..provenance import DPRecord, text_fingerprint
from ..rerun_guard import checkpoint_step, guard_rerun
from ..tasks.classification import TokenizedTask
from ..tasks.defaults import Task
from ..tasks.position_limits import fit_to_model, prompt_length
from .config import PrivatePromptConfig
from .dp_plan import check_reachable
from .micro_batches import micro_batches

ACCOUNTANT_FILE = "dp_accountant.json"
logger = logging.getLogger(__name__)


class PromptedTaskModel(torch.nn.Module):
    """A prompted model seen as `batch -> the task's per-example outputs` (`tokenized.example_outputs`: class
    scores, or logits at a generation target's positions). The base model stays in eval mode (no dropout); the
    prompt encoder follows train/eval (Opacus hooks only record in training mode)."""

    def __init__(self, prompt_model: PeftModel, tokenized: TokenizedTask):
        super().__init__()
        self.prompt_model = prompt_model
        self.tokenized = tokenized

    @property
    def prompt_encoder(self) -> torch.nn.Module:
        return self.prompt_model.prompt_encoder[self.prompt_model.active_adapter]

    def forward(self, input_ids, attention_mask, labels=None, **batch) -> torch.Tensor:
        return self.tokenized.example_outputs(self.prompt_model,
                                              {"input_ids": input_ids, "attention_mask": attention_mask, **batch})

    def train(self, mode: bool = True):
        super().train(mode)
        self.prompt_model.eval()
        self.prompt_encoder.train(mode)
        return self


class _EpsilonStop(TrainerCallback):
    """Stops training before the next step would take ε past `stop_at_epsilon`."""

    def __init__(self, trainer: PrivatePromptTrainer):
        self.trainer = trainer

    def on_step_end(self, args, state, control, **kwargs):
        if self.trainer.would_exceed(args.stop_at_epsilon):
            control.should_training_stop = True
        return control


class PrivatePromptTrainer(Trainer):
    """Tune a soft prompt for `task` (classification or generation) on `train_dataset` (columns
    `task.text_column` and `task.label_column`: class labels, or a generation task's targets), with (ε, δ)-DP
    when `args` asks for it (see `PrivatePromptConfig`).

    `model` is a plain model (a new prompt is created with `create_prompt_model`) or a PeftModel whose
    active prompt is tuned. The tuned PeftModel is `trainer.prompt_model`; `trainer.dp_record()` gives the
    guarantee so far, which `save_model`/checkpoints write into the prompt's provenance.
    """

    loss_is_scaled_for_ga = True  # training_step scales the loss itself

    def __init__(self, model: PreTrainedModel | PeftModel, args: PrivatePromptConfig, train_dataset: Dataset,
                 task: Task, processing_class, eval_dataset: Dataset | None = None, callbacks: list | None = None):
        if not isinstance(args, PrivatePromptConfig):
            raise PeftTransferError("PrivatePromptTrainer needs a PrivatePromptConfig as args.")
        n_virtual = prompt_length(model) if isinstance(model, PeftModel) else args.num_virtual_tokens
        task = fit_to_model(task, processing_class, model, n_virtual, f"num_virtual_tokens {n_virtual}")
        train_dataset = task.training_data(train_dataset, args.per_device_train_batch_size)
        if args.private and args.noise_seed is not None:
            warnings.warn("noise_seed is set: the DP noise can be regenerated by anyone who knows it, so the "
                          "guarantee holds only while it stays secret. Leave it unset for prompts you share.",
                          stacklevel=2)
        if args.world_size > 1 and args.private:
            raise PeftTransferError("DP prompt tuning runs in a single process (the accountant assumes one sampler).")
        if args.private and eval_dataset is not None:
            if not args.eval_data_is_public:
                raise PeftTransferError(
                    "An eval_dataset under DP would evaluate (and let you select) on data outside the privacy "
                    "accounting. Evaluate after training, or pass a set that is not private and set "
                    "eval_data_is_public=True.")
            logger.warning("Evaluating during DP tuning on an eval_dataset the data owner declared not private "
                           "(eval_data_is_public=True); its metrics are not covered by ε.")
        if not isinstance(model, PeftModel):
            model = create_prompt_model(model, processing_class, task, num_virtual_tokens=args.num_virtual_tokens,
                                        init_text=args.prompt_init_text)
        self.prompt_model, self.task = model, task
        self.tokenized = task.tokenized(processing_class, masked_lm=is_masked_lm(model))
        if eval_dataset is not None:
            eval_dataset = task.training_data(eval_dataset, 1)
        self.num_train_examples = len(train_dataset)
        self.sample_rate = args.per_device_train_batch_size / self.num_train_examples
        self.delta = args.resolved_delta(self.num_train_examples) if args.private else 0.0
        self.accountant = create_accountant(args.accountant) if args.private else None
        self.noise = None
        self._epsilons: dict = {}
        wrapper = PromptedTaskModel(model, self.tokenized)
        if args.private:
            # hooks on the prompt encoder only; the PeftModel is not wrapped (it stays saveable)
            self.grad_sampler = GradSampleModule(wrapper.prompt_encoder, batch_first=True, loss_reduction="sum",
                                                 force_functorch=args.grad_sample_mode == "functorch")
            self.grad_sampler.disable_hooks()  # on only inside training_step (saving a prompt runs the encoder)
        callbacks = list(callbacks or [])
        if args.private and args.stop_at_epsilon is not None:
            callbacks.append(_EpsilonStop(self))
        super().__init__(model=wrapper, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                         data_collator=self.tokenized.training_collator(),
                         processing_class=processing_class, callbacks=callbacks)
        if args.private:
            self.noise = self._noise_multiplier()

    # -- privacy parameters and accounting -------------------------------------------------------------
    def planned_steps(self) -> int:
        """Optimizer steps the run is planned for (what σ is calibrated over)."""
        if self.args.max_steps > 0:
            return self.args.max_steps
        per_epoch = int(1 / self.sample_rate) if self.args.poisson_sampling else math.ceil(
            self.num_train_examples / self.args.per_device_train_batch_size)
        per_epoch = max(per_epoch // self.args.gradient_accumulation_steps, 1)
        return math.ceil(self.args.num_train_epochs * per_epoch)

    def _noise_multiplier(self) -> float:
        if self.args.noise_multiplier is not None:
            return float(self.args.noise_multiplier)
        try:
            return float(get_noise_multiplier(target_epsilon=self.args.target_epsilon, target_delta=self.delta,
                                              sample_rate=self.sample_rate, steps=self.planned_steps(),
                                              accountant=self.args.accountant))
        except ValueError:  # Opacus: "The privacy budget is too low."
            check_reachable(self.args.target_epsilon, self.delta, self.sample_rate, self.planned_steps(),
                            self.args.accountant, "target_epsilon")
            raise

    def epsilon(self) -> float:
        """ε spent so far at δ (0 before the first step, inf without DP)."""
        if self.accountant is None:
            return math.inf
        if not self.accountant.history:
            return 0.0
        key = tuple(tuple(h) for h in self.accountant.history)
        if key not in self._epsilons:  # RDP over Opacus's fractional orders takes ~1 s on a small CPU
            self._epsilons[key] = float(self.accountant.get_epsilon(delta=self.delta))
        return self._epsilons[key]

    def would_exceed(self, limit: float) -> bool:
        """True when one more step would take ε past `limit`."""
        key = ("next", tuple(tuple(h) for h in self.accountant.history), self.noise)
        if key not in self._epsilons:
            trial = copy.deepcopy(self.accountant)
            trial.step(noise_multiplier=self.noise, sample_rate=self.sample_rate)
            self._epsilons[key] = float(trial.get_epsilon(delta=self.delta))
        return self._epsilons[key] > limit

    def dp_record(self) -> DPRecord:
        """The guarantee of the prompt as trained so far."""
        if not self.args.private:
            return DPRecord.not_private(self.num_train_examples)
        steps = sum(n for _, _, n in self.accountant.history)
        return DPRecord(private=True, epsilon=self.epsilon(), delta=self.delta, accountant=self.args.accountant,
                        noise_multiplier=self.noise, max_grad_norm=self.args.max_grad_norm,
                        sample_rate=self.sample_rate, steps=steps, num_train_examples=self.num_train_examples)

    # -- Trainer hooks ---------------------------------------------------------------------------------
    def get_train_dataloader(self) -> DataLoader:
        """Poisson sampling with Opacus's sampler (each example joins each batch with rate q = B / N; the
        collator itself turns an empty draw into an empty batch)."""
        if not self.args.poisson_sampling:
            return super().get_train_dataloader()
        sampler = UniformWithReplacementSampler(num_samples=self.num_train_examples, sample_rate=self.sample_rate,
                                                generator=self._dp_generator("cpu", 0) if self.args.private else None)
        return DataLoader(self.train_dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                          num_workers=self.args.dataloader_num_workers)

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.args.private and not isinstance(self.optimizer, DPOptimizer):
            device = next(p for p in self.model.parameters() if p.requires_grad).device
            self.optimizer = DPOptimizer(optimizer, noise_multiplier=self.noise, max_grad_norm=self.args.max_grad_norm,
                                         expected_batch_size=self.args.per_device_train_batch_size,
                                         loss_reduction="mean", generator=self._dp_generator(device, 1))
            self.optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        return self.optimizer

    def _dp_generator(self, device, stream: int) -> torch.Generator:
        """A generator for the noise (stream 1) or the Poisson draws (stream 0), seeded from OS entropy unless
        `noise_seed` is set. Not the global RNG: that one is seeded with `args.seed`, which is no secret."""
        fixed = self.args.noise_seed
        seed = secrets.randbits(63) if fixed is None else (fixed * 2 + stream) % 2**63
        return torch.Generator(device=device).manual_seed(seed)

    @property
    def dp_optimizer(self) -> DPOptimizer:
        opt = self.optimizer
        while not isinstance(opt, DPOptimizer):
            opt = opt.optimizer  # accelerate's AcceleratedOptimizer
        return opt

    def _clip_grad_norm(self, model):
        return None if self.args.private else super()._clip_grad_norm(model)

    def _get_grad_norm(self, model, grad_norm=None):
        return None if self.args.private else super()._get_grad_norm(model, grad_norm)

    def example_losses(self, model, inputs) -> torch.Tensor:
        """(batch,) loss of each example (`tokenized.example_losses`): the privacy unit."""
        return self.tokenized.example_losses(model(**inputs), inputs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        loss = self.tokenized.example_losses(outputs, inputs).mean()
        return (loss, {"logits": outputs}) if return_outputs else loss

    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        """One logical batch, in physical micro-batches (grouped by length, `micro_batches`). Under DP each
        micro-batch's per-example gradients are clipped into `summed_grad` at once; the optimizer step adds the
        noise (also for an empty batch)."""
        model.train()
        inputs = self._prepare_inputs(inputs)
        size = inputs["labels"].shape[0]
        private = self.args.private
        params = [p for p in model.parameters() if p.requires_grad]
        if private:
            self.dp_optimizer.zero_grad(set_to_none=True)  # the Trainer only zeroes p.grad
        # Trainer quirk: resuming at a checkpoint taken at max_steps still runs one more step; under DP that
        # step would spend budget beyond the plan, so it is skipped (no noise, no update, no accounting). So is
        # the first step after resuming at stop_at_epsilon (_EpsilonStop only looks ahead at a step's end).
        finished = private and self.state.max_steps > 0 and self.state.global_step >= self.state.max_steps
        if private and not finished and self.args.stop_at_epsilon is not None \
                and self.would_exceed(self.args.stop_at_epsilon):
            finished = True
            self.control.should_training_stop = True
        if finished:
            self.dp_optimizer.signal_skip_step(do_skip=True)
        if size == 0 or finished:
            if private:
                for p in params:
                    p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype, device=p.device)
            return torch.zeros((), device=self.args.device)
        chunk = self.args.physical_batch_size or size
        scale = 1.0 if private else 1.0 / (size * self.current_gradient_accumulation_steps)
        total = torch.zeros((), device=self.args.device)
        if private:
            self.grad_sampler.enable_hooks()
        try:
            parts = list(micro_batches(inputs, chunk, self.tokenized.padding_side))
            for i, part in enumerate(parts):
                losses = self.example_losses(model, part)
                self.accelerator.backward(losses.sum() * scale)
                total += losses.detach().sum()
                if private and i + 1 < len(parts):
                    self.dp_optimizer.clip_and_accumulate()
                    for p in params:
                        p.grad_sample = None
        finally:
            if private:
                self.grad_sampler.disable_hooks()
        return total / size / (1 if private else self.current_gradient_accumulation_steps)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.args.private:
            logs["epsilon"] = self.epsilon()
            logs.pop("grad_norm", None)
        super().log(logs, start_time)

    def train(self, *args, **kwargs):
        output = super().train(*args, **kwargs)
        self.prompt_model.peft_config[self.prompt_model.active_adapter].dp = self.dp_record()
        output.metrics["epsilon"] = self.epsilon()
        self.prompt_model.eval()
        return output

    def export_prompt(self, export_dir: str) -> str:
        """Write the handover export (adapter, provenance with the DP record so far, card) to `export_dir`,
        which must hold nothing else: what the data owner hands over. Returns the folder."""
        self.prompt_model.peft_config[self.prompt_model.active_adapter].dp = self.dp_record()
        return str(export_prompt(self.prompt_model, export_dir))

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        """Checkpoints and final saves: the stock prompt adapter with provenance (the DP record so far), the
        training args and the accountant's history."""
        output_dir = output_dir or self.args.output_dir
        if not self.args.should_save:
            return
        os.makedirs(output_dir, exist_ok=True)
        self.prompt_model.peft_config[self.prompt_model.active_adapter].dp = self.dp_record()
        save_prompt(self.prompt_model, output_dir)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))
        if self.accountant is not None:
            state = {"history": [list(h) for h in self.accountant.history], "mechanism": self.accountant.mechanism(),
                     "noise_multiplier": self.noise, "sample_rate": self.sample_rate, "delta": self.delta}
            with open(os.path.join(output_dir, ACCOUNTANT_FILE), "w") as f:
                json.dump(state, f, indent=1)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Restore the prompt and the accountant's history (stock resuming refuses prompt adapters)."""
        try:
            weights = load_peft_weights(resume_from_checkpoint, device="cpu")
        except (OSError, ValueError) as exc:
            raise PeftTransferError(f"Cannot resume from {resume_from_checkpoint}: {exc}") from exc
        set_peft_model_state_dict(self.prompt_model, weights)
        if self.accountant is None:
            return
        path = os.path.join(resume_from_checkpoint, ACCOUNTANT_FILE)
        if not os.path.exists(path):
            raise PeftTransferError(f"{resume_from_checkpoint} has no {ACCOUNTANT_FILE}: it was not saved by a DP run, "
                                    "so resuming would under-report ε. Start over in a new output_dir.")
        with open(path) as f:
            state = json.load(f)
        if state["mechanism"] != self.accountant.mechanism() or not math.isclose(state["sample_rate"],
                                                                                  self.sample_rate):
            raise PeftTransferError(f"{resume_from_checkpoint} was trained with another accountant or sample rate; "
                                    "resume with the same data, batch size and accountant, or start over.")
        self.accountant.history = [tuple(h) for h in state["history"]]
        self.noise = state["noise_multiplier"]
        if isinstance(self.optimizer, DPOptimizer) or self.optimizer is not None:
            self.dp_optimizer.noise_multiplier = self.noise
        self._check_resumed_plan(resume_from_checkpoint)

    def planned_epsilon(self) -> float:
        """ε after the planned steps with the current σ (history so far plus the steps left)."""
        trial = copy.deepcopy(self.accountant)
        done = sum(n for _, _, n in trial.history)
        left = self.planned_steps() - done
        if left > 0:
            if trial.history and trial.history[-1][:2] == (self.noise, self.sample_rate):
                trial.history[-1] = (self.noise, self.sample_rate, trial.history[-1][2] + left)
            else:
                trial.history.append((self.noise, self.sample_rate, left))
        return float(trial.get_epsilon(delta=self.delta)) if trial.history else 0.0

    def _check_resumed_plan(self, checkpoint: str) -> None:
        """A resume keeps the checkpoint's σ; refuse a plan that would spend more than target_epsilon."""
        target = self.args.target_epsilon
        if target is None or self.args.stop_at_epsilon is not None:
            return  # no promise to keep, or _EpsilonStop stops at (or below) the target
        planned = self.planned_epsilon()
        if planned > target + 1e-6:
            raise PeftTransferError(
                f"Resuming {checkpoint} for {self.planned_steps()} steps would spend ε = {planned:.3g} > target "
                f"{target:g}: its noise σ = {self.noise:.4g} was calibrated for fewer steps. Set stop_at_epsilon="
                f"{target:g} (CLI: --stop-at-epsilon) to stop at the target, or start over in a new output folder to "
                "calibrate σ for the new plan.")


def tune_prompt(model: PreTrainedModel | PeftModel, tokenizer, task: Task, train_dataset: Dataset,
                args: PrivatePromptConfig, resume_from_checkpoint: str | bool | None = None,
                eval_dataset: Dataset | None = None, callbacks: list | None = None,
                export_dir: str | None = None) -> PeftModel:
    """Tune a soft prompt for `task` (classification or generation) on `train_dataset` (DP as `args` says).
    Checkpoints, logs, the accountant state and a final copy stay in `args.output_dir` (the data owner's working
    folder); the handover export (adapter + provenance with the DP record + card, nothing else) goes to
    `export_dir` (default `<output_dir>/export`), which must not hold other files. Hand over only the export.
    Returns the prompted model (eval mode); its config's `dp` holds the guarantee."""
    export_dir = export_dir or os.path.join(args.output_dir, "export")
    check_export_destination(export_dir)  # before the expensive part
    # the trainer checks the data (columns, labels, size) before anything is written or deleted
    trainer = PrivatePromptTrainer(model, args, train_dataset, task, tokenizer, eval_dataset=eval_dataset,
                                   callbacks=callbacks)
    resume = resume_from_checkpoint not in (None, False)
    guard_rerun(args.output_dir, tune_settings(model, task, trainer.train_dataset, args), resume,
                Path(args.output_dir).glob("checkpoint-*"), write=args.should_save, what="prompt tuning")
    last = resume_from_checkpoint if isinstance(resume_from_checkpoint, str) else (
        get_last_checkpoint(args.output_dir) if resume and os.path.isdir(args.output_dir) else None)
    final = Path(args.output_dir) / "adapter_model.safetensors"
    if last and checkpoint_step(last) >= trainer.planned_steps() and final.is_file():
        # finished with these settings: return its prompt (a resumed Trainer would train one step more)
        if args.should_save and not (Path(export_dir) / "adapter_model.safetensors").is_file():
            export_prompt(args.output_dir, export_dir)
        return load_prompt(model.get_base_model() if isinstance(model, PeftModel) else model, args.output_dir)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    trainer.export_prompt(export_dir)
    return trainer.prompt_model


_TUNE_SETTINGS = ("num_virtual_tokens", "prompt_init_text", "target_epsilon", "target_delta", "noise_multiplier",
                  "max_grad_norm", "accountant", "poisson_sampling", "learning_rate", "per_device_train_batch_size",
                  "lr_scheduler_type", "weight_decay", "optim", "seed", "num_train_epochs", "bf16")


def tune_settings(model, task: Task, train_dataset: Dataset, args: PrivatePromptConfig) -> dict:
    """What determines the prompt besides the step budget (`rerun_guard`): the model, the task, the training
    data's content (a hash: no text), the prompt, DP and optimiser settings."""
    rows = (f"{t}\t{y}" for t, y in zip(train_dataset[task.text_column], train_dataset[task.label_column]))
    return {"model": model_id(model), "task": task.record().to_dict(), "data_fingerprint": text_fingerprint(rows),
            **{key: getattr(args, key) for key in _TUNE_SETTINGS}}
