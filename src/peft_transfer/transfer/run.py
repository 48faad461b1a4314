"""`transfer_prompt`: POST stage 3 in one call - a saved source prompt onto one or several targets."""

from __future__ import annotations

import copy
import hashlib
import os
import re
from pathlib import Path

import torch
from peft import PeftModel
from transformers import PreTrainedModel
from transformers.trainer_utils import get_last_checkpoint

from ..assets.overlap import check_source_overlap
from ..errors import PeftTransferError
from ..prompted_forward import is_masked_lm
from ..prompts.config import TransferablePromptConfig
from ..prompts.fit import check_base_model
from ..prompts.handover import check_export_destination, check_prompt_export, export_prompt, save_prompt
from ..prompts.model import create_prompt_model, hidden_size, load_prompt, model_id
from ..provenance import TransferRecord, text_fingerprint
from ..rerun_guard import checkpoint_step, guard_rerun
from ..student.layers import student_lineage
from ..tasks.defaults import Task, task_from_record
from ..tasks.position_limits import fit_to_model
from .config import TransferConfig
from .public_logits import compute_label_logits, public_text_list
from .sequence_trainer import SequenceTransferTrainer
from .trainer import PromptTransferTrainer, check_compatible


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "target"


def init_target_prompt(target: PreTrainedModel, tokenizer, source: PeftModel, source_config: TransferablePromptConfig,
                       task: Task, args: TransferConfig) -> PeftModel:
    """p_t for `target`: text-initialised like p_s (default) or a copy of p_s; provenance kept from the source."""
    n_virtual = args.num_virtual_tokens or source_config.num_virtual_tokens
    if args.prompt_init == "source":
        if hidden_size(target) != hidden_size(source.get_base_model()):
            raise PeftTransferError(
                f"--prompt-init source (prompt_init='source') copies p_s, but the student's hidden size "
                f"{hidden_size(source.get_base_model())} differs from the target {model_id(target)}'s "
                f"{hidden_size(target)}; use --prompt-init text.")
        if n_virtual != source_config.num_virtual_tokens:
            raise PeftTransferError("--prompt-init source (prompt_init='source') copies p_s, so num_virtual_tokens "
                                    f"must equal p_s's ({source_config.num_virtual_tokens}).")
    prompt = create_prompt_model(
        target, tokenizer, task, num_virtual_tokens=n_virtual, init_text=source_config.prompt_tuning_init_text,
        target=model_id(target), tuned_on=source_config.tuned_on,
        student=source_config.student or student_lineage(source.get_base_model()), dp=source_config.dp,
    )
    if args.prompt_init == "source":
        with torch.no_grad():
            weight = source.prompt_encoder[source.active_adapter].embedding.weight
            prompt.prompt_encoder[prompt.active_adapter].embedding.weight.copy_(weight)
    return prompt


def transfer_prompt(
    source_prompt: str | os.PathLike,
    student: PreTrainedModel,
    target: PreTrainedModel | list[PreTrainedModel],
    tokenizer,
    public_texts,
    args: TransferConfig,
    task: Task | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    export_dir: str | os.PathLike | None = None,
) -> PeftModel | list[PeftModel]:
    """Transfer the prompt saved at `source_prompt` (tuned on `student`) to `target` (or each of a list).

    `public_texts`: unlabelled public texts (a list, or a Dataset whose non-text columns are ignored with a
    warning). A local `source_prompt` must be a prompt export (`handover.check_prompt_export`): the provider
    takes the prompt and its record, nothing else. The task comes from the prompt's task record unless given (a
    prompt tuned elsewhere, e.g. with TRL, has none: give the task it was tuned with - its template is what POST
    needs); a public set from the same source as the private task is refused (`overlap.check_source_overlap`).
    Generation tasks and label words that split are transferred at every position of a teacher-forced sequence
    (`sequence_transfer`); other tasks at the label position. Each result is the LAST step's p_t, written as a
    prompt export to `export_dir` (default `<output_dir>/export`; `<export_dir>/<target id>` for several
    targets) with `base_model_name_or_path` = the target, `tuned_on`, `student`, `task` and `dp` kept from the
    source (transfer is post-processing, so the DP guarantee holds) and a `TransferRecord`; checkpoints and the
    monitor stay in `args.output_dir` (`<output_dir>/<target id>`). `resume=True` continues from the last
    checkpoint there when the folder's recorded settings are these (other settings are refused: `rerun_guard`);
    `resume=False` deletes old checkpoints there first. The student+p_s and student logits are computed once
    and shared by all targets.
    """
    if os.path.isdir(source_prompt):
        check_prompt_export(source_prompt)
    source_config = TransferablePromptConfig.from_pretrained(str(source_prompt))
    if task is None:
        if source_config.task is None:
            raise PeftTransferError(
                f"The prompt at {source_prompt} carries no task record (tuned outside peft-transfer?), so the "
                "transfer cannot tell which template the inputs were read through: pass the task it was tuned with "
                "(task=..., or --task / --template and --label-words on the command line).")
        task = task_from_record(source_config.task)
    check_source_overlap(args.public_dataset_name, task.name)
    targets = list(target) if isinstance(target, (list, tuple)) else [target]
    if not targets:
        raise PeftTransferError("No target model given.")
    texts = public_text_list(public_texts, task.text_column)
    check_base_model(source_config, student, f"the prompt {source_prompt}", f"the student {model_id(student)!r}",
                     "transfer it with the model it was made on as the student (--student).")
    student_prompted = load_prompt(student, str(source_prompt))
    for t in targets:
        check_compatible(student_prompted, t)
    n_source = source_config.num_virtual_tokens
    n_target = args.num_virtual_tokens or n_source
    task = fit_to_model(task, tokenizer, student, n_source, f"the prompt {source_prompt} ({n_source} virtual tokens)")
    for t in targets:  # public texts within both models' positions, beside p_s and p_t
        task = fit_to_model(task, tokenizer, t, n_target, f"p_t's {n_target} virtual tokens")

    tokenized = task.tokenized(tokenizer, masked_lm=is_masked_lm(student))
    sequence = tokenized.needs_sequence_transfer
    bs = args.cache_batch_size
    student_constants = None
    if args.cache_constants and not sequence:
        student_constants = torch.stack([
            compute_label_logits(student_prompted, tokenized, texts, True, bs, "caching student+p_s logits"),
            compute_label_logits(student_prompted, tokenized, texts, False, bs, "caching student logits"),
        ], dim=1)

    export_root = str(export_dir or os.path.join(args.output_dir, "export"))
    exports, names = [], []
    for i, t in enumerate(targets):
        name = _safe_name(model_id(t))
        name = name if name not in names else f"{name}-{i}"
        names.append(name)
        exports.append(os.path.join(export_root, name) if len(targets) > 1 else export_root)
    for folder in exports:
        check_export_destination(folder)  # before the expensive part
    results = []
    for t, name, export in zip(targets, names, exports):
        run_args = args
        if len(targets) > 1:
            run_args = copy.deepcopy(args)
            run_args.output_dir = os.path.join(args.output_dir, name)
        resumable = guard_rerun(run_args.output_dir, transfer_settings(student_prompted, t, task, texts, run_args),
                                resume, Path(run_args.output_dir).glob("checkpoint-*"), write=run_args.should_save,
                                what="transfer")
        checkpoint = get_last_checkpoint(run_args.output_dir) if resumable else None
        if checkpoint_step(checkpoint) >= run_args.max_steps and _saved(run_args.output_dir):
            finished = load_prompt(t, run_args.output_dir)  # finished with these settings: nothing to train
            if run_args.should_save and not _saved(export):
                export_prompt(run_args.output_dir, export)
            results.append(finished)
            continue
        p_t = init_target_prompt(t, tokenizer, student_prompted, source_config, task, run_args)
        if sequence:
            trainer = SequenceTransferTrainer(p_t, student_prompted, run_args, texts, task, tokenizer,
                                              callbacks=callbacks)
        else:
            trainer = PromptTransferTrainer(p_t, student_prompted, run_args, texts, task, tokenizer,
                                            callbacks=callbacks, student_constants=student_constants)
        output = trainer.train(resume_from_checkpoint=checkpoint)
        config = p_t.peft_config[p_t.active_adapter]
        config.base_model_name_or_path = model_id(t)
        config.transfer = TransferRecord(
            source_model=source_config.tuned_on or model_id(student),
            public_dataset=args.public_dataset_name or "in-memory texts",
            public_fingerprint=text_fingerprint(texts),
            num_public_examples=len(texts),
            alpha=run_args.alpha, temperature=run_args.temperature, steps=trainer.state.global_step,
            learning_rate=run_args.learning_rate, seed=run_args.seed,
            final_loss=_last_loss(trainer, output),
            public_agreement=trainer.monitor.last["monitor_agreement"] if trainer.monitor.last else None,
            alpha_source=run_args.alpha_source,
            distilled_positions=tokenized.distilled_positions, loss_over=run_args.loss_over,
        )
        if run_args.should_save:
            save_prompt(p_t, run_args.output_dir)  # the provider's working copy, next to the checkpoints
            export_prompt(p_t, export)
        p_t.eval()
        results.append(p_t)
    return results if isinstance(target, (list, tuple)) else results[0]


def transfer_settings(source: PeftModel, target: PreTrainedModel, task: Task, texts: list[str],
                      args: TransferConfig) -> dict:
    """What determines p_t besides the step count (`rerun_guard`): p_s's weights, the models, the task, the
    public texts' content and the POST and optimiser settings."""
    weight = source.prompt_encoder[source.active_adapter].embedding.weight.detach().float().cpu().contiguous()
    return {
        "source_prompt": "sha256:" + hashlib.sha256(weight.numpy().tobytes()).hexdigest(),
        "student": model_id(source.get_base_model()), "target": model_id(target), "task": task.record().to_dict(),
        "public_dataset": args.public_dataset_name, "public_fingerprint": text_fingerprint(texts),
        **{key: getattr(args, key) for key in _SETTINGS},
    }


_SETTINGS = ("alpha", "temperature", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps",
             "seed", "prompt_init", "num_virtual_tokens", "monitor_size", "lr_scheduler_type", "weight_decay",
             "optim", "bf16", "loss_over")


def _saved(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "adapter_model.safetensors")) and os.path.isfile(
        os.path.join(folder, "prompt_provenance.json"))


def _last_loss(trainer: PromptTransferTrainer, output) -> float | None:
    """The last logged training loss (mean over the last logging window)."""
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    return float(losses[-1]) if losses else (float(output.training_loss) if output else None)
