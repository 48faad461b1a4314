"""`run_lira_audit`: train K shadow prompts on random halves of a pool and attack them with LiRA.

Design: every example of the pool is IN for exactly half of the K shadows (`balanced_membership`). Each
shadow in turn plays the target and is attacked with IN/OUT Gaussians fitted on the other K - 1 shadows
(leave-one-out), giving K * n membership guesses from K trained prompts. Optionally an existing prompt
(`target_prompt`, with the pool rows it was trained on) is attacked with Gaussians from all K shadows.
Shadows are saved under `out_dir/shadows/` (prompt + scores) as they finish, so a killed audit resumes;
a plan file pins the model, task, pool and membership, and a mismatch on resume is an error.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from datasets import Dataset
from peft import PeftModel
from tqdm.auto import tqdm
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..evaluation.classification import predict_scores
from ..prompts.config import TransferablePromptConfig
from ..prompts.handover import save_prompt
from ..prompts.model import load_prompt, model_id
from ..provenance import DPRecord, text_fingerprint
from ..student.layers import student_lineage
from ..tasks.classification import ClassificationTask
from ..tune.trainer import tune_prompt
from .epsilon_bound import empirical_epsilon
from .lira import (
    GLOBAL_VARIANCE_BELOW,
    MIN_SHADOWS,
    balanced_membership,
    fit_gaussians,
    leave_one_out_scores,
    likelihood_ratio,
    logit_confidence,
)
from .roc import RocSeries, auc, bootstrap_auc_ci, plot_roc, roc_curve, tpr_at_fpr

MIN_POOL = 16
PLAN_NAME = "audit_plan.json"
DEFAULT_DELTA = 1e-5  # for the bound when the shadows are not private (no accountant delta to match)
TrainFn = Callable[..., PeftModel]


@dataclass
class LiraAuditResult:
    """What the audit measured; `to_dict` is audit.json, `markdown` is audit.md."""

    num_shadows: int
    pool_size: int
    mode: str
    num_guesses: int
    auc: float
    auc_ci: tuple[float, float]
    tpr_at_0_1pct_fpr: float
    tpr_at_1pct_fpr: float
    epsilon_lower_bound: float
    epsilon_lower_bound_holdout: float
    delta: float
    confidence: float
    accountant_epsilon: float
    global_variance: bool
    shadow_train_accuracy: float
    shadow_heldout_accuracy: float
    model: str
    task: str
    seed: int
    seconds: float
    details: dict = field(default_factory=dict)
    fpr: np.ndarray | None = field(default=None, repr=False)
    tpr: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("fpr", "tpr")}
        out["auc_ci"] = list(self.auc_ci)
        return {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in out.items()}

    def markdown(self) -> str:
        eps = "∞" if math.isinf(self.accountant_epsilon) else f"{self.accountant_epsilon:.2f}"
        return "\n".join([
            f"# LiRA membership-inference audit: {self.task} on {self.model}",
            "",
            f"- shadows K = {self.num_shadows}, pool n = {self.pool_size}, mode: {self.mode} "
            f"({self.num_guesses} guesses), seed {self.seed}, {self.seconds:.0f} s",
            f"- shadow prompts' accuracy on their training half {self.shadow_train_accuracy:.3f}, "
            f"on the other half {self.shadow_heldout_accuracy:.3f}",
            f"- per-example Gaussians with {'one global' if self.global_variance else 'per-example'} variance",
            "",
            "| metric | value |",
            "|---|---|",
            f"| AUC ({self.confidence:.0%} bootstrap CI over examples) | {self.auc:.3f} "
            f"[{self.auc_ci[0]:.3f}, {self.auc_ci[1]:.3f}] |",
            f"| TPR at 0.1 % FPR | {self.tpr_at_0_1pct_fpr:.4f} |",
            f"| TPR at 1 % FPR | {self.tpr_at_1pct_fpr:.4f} |",
            f"| empirical ε lower bound (max over thresholds, Clopper-Pearson {self.confidence:.0%}, "
            f"δ = {self.delta:g}) | {self.epsilon_lower_bound:.3f} |",
            f"| empirical ε lower bound (threshold chosen on a held-out half) | "
            f"{self.epsilon_lower_bound_holdout:.3f} |",
            f"| accountant ε | {eps} |",
            "",
            "Guesses pooled over prompts and examples are not fully independent, so the Clopper-Pearson "
            "bounds are approximate; the AUC interval resamples whole examples.",
            "",
        ])

    def write(self, out_dir: str) -> None:
        """Write audit.json, audit.md and roc.png into `out_dir`."""
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "audit.json"), "w") as f:
            json.dump(self.to_dict(), f, indent=2)
        with open(os.path.join(out_dir, "audit.md"), "w") as f:
            f.write(self.markdown())
        if self.fpr is not None:
            eps = "∞" if math.isinf(self.accountant_epsilon) else f"{self.accountant_epsilon:g}"
            plot_roc([RocSeries(f"ε = {eps}, AUC {self.auc:.3f}", self.fpr, self.tpr)],
                     os.path.join(out_dir, "roc.png"), title=f"LiRA on {self.task} (K = {self.num_shadows})")


def _shadow_args(tune_args, out_dir: str | None, index: int, seed: int):
    """Per-shadow copy of the tuning arguments: own output folder and seed (when those fields exist)."""
    if tune_args is None:
        return None
    changes = {}
    if hasattr(tune_args, "seed"):
        changes["seed"] = seed + 1000 * (index + 1)
    if hasattr(tune_args, "output_dir") and out_dir is not None:
        changes["output_dir"] = os.path.join(out_dir, "shadows", f"shadow_{index:03d}", "trainer")
    try:
        return replace(tune_args, **changes) if changes else tune_args
    except TypeError:
        return tune_args


def _check_provenance(config: TransferablePromptConfig, model: PreTrainedModel, task: ClassificationTask,
                      what: str) -> None:
    expected_model = model_id(model)
    if config.tuned_on and config.tuned_on != expected_model:
        raise PeftTransferError(
            f"{what} was tuned on {config.tuned_on!r} but the shadows are tuned on {expected_model!r}: "
            "audit a prompt with shadows of the same model (pass that model, or use a new --out folder)."
        )
    lineage = student_lineage(model)
    expected_layers = lineage.kept_layers if lineage else None
    saved_layers = config.student.kept_layers if config.student else None
    if config.student is not None and saved_layers != expected_layers:
        raise PeftTransferError(
            f"{what} was tuned on a student keeping layers {saved_layers} of {config.student.teacher} but the "
            f"shadows are tuned on {'a student keeping ' + str(expected_layers) if lineage else 'the full model'}: "
            "audit a prompt with shadows of the same model."
        )
    record = task.record()
    if config.task is not None and (config.task.template != record.template
                                    or config.task.label_words != record.label_words):
        raise PeftTransferError(
            f"{what} was tuned for task {config.task.name!r} (template {config.task.template!r}) but the audit "
            f"is for {record.name!r} (template {record.template!r}): use the same task."
        )


def _prompt_config(peft_model: PeftModel) -> TransferablePromptConfig | None:
    config = peft_model.peft_config[peft_model.active_adapter]
    return config if isinstance(config, TransferablePromptConfig) else None


def _prepare_pool(pool: Dataset, task: ClassificationTask, pool_size: int | None, seed: int) -> Dataset:
    for column in (task.text_column, task.label_column):
        if column not in pool.column_names:
            raise PeftTransferError(f"The audit pool has no {column!r} column (columns: {pool.column_names}).")
    if pool_size is not None:
        if len(pool) < pool_size:
            raise PeftTransferError(
                f"The audit pool has {len(pool)} examples but {pool_size} were requested: "
                "pass more data or a smaller pool size."
            )
        pool = pool.shuffle(seed=seed).select(range(pool_size))
    if len(pool) < MIN_POOL:
        raise PeftTransferError(
            f"The audit pool has {len(pool)} examples; LiRA needs at least {MIN_POOL} (two halves of "
            f"{MIN_POOL // 2}) and a few hundred for a useful confidence interval."
        )
    labels = np.asarray(pool[task.label_column])
    if labels.min() < 0 or labels.max() >= task.num_classes:
        raise PeftTransferError(f"Labels must be class indices 0..{task.num_classes - 1} for task {task.name!r}.")
    return pool


def _check_shadow_args(tune_args, members: int) -> None:
    """What each shadow's tuning would refuse for its `members` training examples, refused before the audit
    writes anything: a batch larger than that, a δ not below 1/members."""
    batch = getattr(tune_args, "per_device_train_batch_size", None)
    if batch is not None and members < batch:
        raise PeftTransferError(f"Each shadow trains on {members} examples (about half the pool), fewer than a batch "
                                f"of {batch}: use a smaller --batch-size or a larger --pool-size.")
    if getattr(tune_args, "private", False):
        tune_args.resolved_delta(members)


def _load_or_write_plan(out_dir: str | None, plan: dict) -> None:
    if out_dir is None:
        return
    path = os.path.join(out_dir, PLAN_NAME)
    if os.path.isfile(path):
        with open(path) as f:
            saved = json.load(f)
        for key in ("model", "task", "pool_fingerprint", "num_shadows", "seed"):
            if saved.get(key) != plan[key]:
                raise PeftTransferError(
                    f"{out_dir} holds an audit with a different {key} ({saved.get(key)!r} vs {plan[key]!r}); "
                    "use a new --out folder, or delete it to start over."
                )
        return
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as f:
        json.dump(plan, f)


def run_lira_audit(
    model: PreTrainedModel,
    tokenizer,
    task: ClassificationTask,
    pool: Dataset,
    num_shadows: int = 8,
    tune_args=None,
    seed: int = 0,
    out_dir: str | None = None,
    pool_size: int | None = None,
    delta: float | None = None,
    confidence: float = 0.95,
    target_prompt: str | None = None,
    target_members: Sequence[bool] | None = None,
    train_fn: TrainFn | None = None,
    batch_size: int = 32,
    progress: bool = True,
) -> LiraAuditResult:
    """Run the LiRA audit of the prompt-tuning recipe `tune_args` (a `PrivatePromptConfig`) on `pool`.

    `train_fn(model, tokenizer, task, train_dataset, args) -> PeftModel` defaults to
    `private_prompt_trainer.tune_prompt`. Without `target_prompt`, every shadow is the target once
    (leave-one-out); with it, that prompt is attacked and `target_members[i]` says whether pool row i
    was in its training set. `delta` defaults to the accountant's delta (1e-5 when not private).
    Results are also written to `out_dir` (audit.json, audit.md, roc.png) when it is given.
    """
    start = time.time()
    if task.kind != "classification":
        raise PeftTransferError(f"The LiRA audit scores class predictions; {task.name!r} is a {task.kind} task, "
                                "which it does not cover yet.")
    if num_shadows < MIN_SHADOWS:
        raise PeftTransferError(
            f"LiRA needs at least {MIN_SHADOWS} shadow prompts so that every example keeps IN and OUT shadows "
            f"(got {num_shadows}); the paper uses 8, more give tighter estimates."
        )
    pool = _prepare_pool(pool, task, pool_size, seed)
    texts, labels = list(pool[task.text_column]), np.asarray(pool[task.label_column])
    target_config = None
    if target_prompt is not None:
        target_config = TransferablePromptConfig.from_pretrained(target_prompt)
        _check_provenance(target_config, model, task, f"The target prompt {target_prompt}")
        if target_members is None or len(target_members) != len(pool):
            raise PeftTransferError(
                f"A target prompt needs target_members: one bool per pool row ({len(pool)}) saying whether it "
                "was in the prompt's training set."
            )
    train_fn = train_fn or tune_prompt
    keep = balanced_membership(len(pool), num_shadows, seed)
    lineage = student_lineage(model)
    name = model_id(model) + (f" (student, layers {lineage.kept_layers})" if lineage else "")
    plan = {"model": name, "task": task.record().to_dict(), "num_shadows": num_shadows, "seed": seed,
            "pool_fingerprint": text_fingerprint(f"{t}\x00{y}" for t, y in zip(texts, labels.tolist())),
            "membership": ["".join("1" if v else "0" for v in row) for row in keep]}
    _check_shadow_args(tune_args, int(keep.sum(axis=1).min()))
    _load_or_write_plan(out_dir, plan)

    phi = np.zeros((num_shadows, len(pool)))
    dp_records: list[DPRecord] = []
    accuracy_in: list[float] = []
    accuracy_out: list[float] = []
    for k in tqdm(range(num_shadows), desc="LiRA shadows", unit="prompt", disable=not progress):
        folder = os.path.join(out_dir, "shadows", f"shadow_{k:03d}") if out_dir else None
        scores_path = os.path.join(folder, "scores.npy") if folder else None
        if scores_path and os.path.isfile(scores_path):
            config = TransferablePromptConfig.from_pretrained(folder)
            _check_provenance(config, model, task, f"The saved shadow {folder}")
            class_scores = np.load(scores_path)
        else:
            members = pool.select(np.nonzero(keep[k])[0].tolist())
            args = _shadow_args(tune_args, out_dir, k, seed)
            shadow = train_fn(model, tokenizer, task, members, args)
            config = _prompt_config(shadow)
            class_scores = predict_scores(shadow, tokenizer, task, texts, batch_size=batch_size)
            if folder:
                save_prompt(shadow, folder)
                np.save(os.path.join(folder, "scores.tmp.npy"), class_scores)
                os.replace(os.path.join(folder, "scores.tmp.npy"), scores_path)
            model = shadow.get_base_model()
        if config is not None:
            dp_records.append(config.dp)
        phi[k] = logit_confidence(class_scores, labels)
        correct = class_scores.argmax(1) == labels
        accuracy_in.append(float(correct[keep[k]].mean()))
        accuracy_out.append(float(correct[~keep[k]].mean()))

    if target_prompt is not None:
        target = load_prompt(model, target_prompt)
        target_phi = logit_confidence(predict_scores(target, tokenizer, task, texts, batch_size=batch_size), labels)
        fit = fit_gaussians(phi, keep)
        attack, member = likelihood_ratio(target_phi, fit), np.asarray(target_members, dtype=bool)
        groups, global_var, mode = np.arange(len(pool)), fit.global_variance, "target prompt"
        dp = target_config.dp
    else:
        attack, member = leave_one_out_scores(phi, keep)
        groups = np.broadcast_to(np.arange(len(pool)), keep.shape)
        global_var, mode = num_shadows - 1 < GLOBAL_VARIANCE_BELOW, "leave-one-out over shadows"
        dp = dp_records[0] if dp_records else DPRecord.not_private(len(pool) // 2)
    accountant_epsilon = dp.epsilon if dp.private else math.inf
    if delta is None:
        delta = dp.delta if dp.private and dp.delta else DEFAULT_DELTA
    fpr, tpr, _ = roc_curve(attack, member)
    result = LiraAuditResult(
        num_shadows=num_shadows, pool_size=len(pool), mode=mode, num_guesses=int(np.size(attack)),
        auc=auc(attack, member), auc_ci=bootstrap_auc_ci(attack, member, confidence=confidence, seed=seed,
                                                         groups=groups),
        tpr_at_0_1pct_fpr=tpr_at_fpr(attack, member, 0.001), tpr_at_1pct_fpr=tpr_at_fpr(attack, member, 0.01),
        epsilon_lower_bound=empirical_epsilon(attack, member, delta, confidence).epsilon_lower_bound,
        epsilon_lower_bound_holdout=empirical_epsilon(attack, member, delta, confidence, "holdout",
                                                      seed).epsilon_lower_bound,
        delta=float(delta), confidence=confidence, accountant_epsilon=float(accountant_epsilon),
        global_variance=bool(global_var), shadow_train_accuracy=float(np.mean(accuracy_in)),
        shadow_heldout_accuracy=float(np.mean(accuracy_out)), model=name, task=task.name, seed=seed,
        seconds=time.time() - start, details={"dp": dp.to_dict()}, fpr=fpr, tpr=tpr,
    )
    if out_dir:
        result.write(out_dir)
    return result
