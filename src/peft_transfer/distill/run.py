"""One distillation job end to end: teacher + corpus -> student folder (weights, tokenizer, card), resumable.

Used by `peft-transfer distill` and the benchmark. Checkpoints go to `<out>/checkpoints` (stock Trainer
checkpoints); a rerun with the same `out` and settings resumes from the newest one, other settings are
refused (`rerun_guard`; `resume=False` starts over). Bad input is refused before the
expensive part: a teacher too large for memory (estimated from its config on the meta device, before any
weight is loaded), a tokenizer whose ids exceed the teacher's vocabulary, a corpus shorter than one block.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from transformers import AutoConfig, PreTrainedModel
from transformers.trainer_utils import get_last_checkpoint

from ..assets.data_files import load_texts
from ..assets.models import load_model, resolve_model
from ..errors import PeftTransferError
from ..prompted_forward import auto_model_class, position_limit
from ..provenance import text_fingerprint
from ..rerun_guard import checkpoint_step, guard_rerun
from ..student.card import DistillationSummary, save_student_card
from ..student.layers import LINEAGE_KEY, make_student, student_lineage
from ..student.weights_hash import state_dict_sha256
from .budget import spent_seconds
from .config import DistillationConfig
from .data import collator_for, perplexity, prepare_blocks, split_held_out
from .recipes import MIN_BLOCK_SIZE
from .teacher_cache import META_NAME, build_teacher_cache, load_teacher_cache
from .trainer import DistillationTrainer
from .training_log import JsonlLogCallback

LOG_NAME = "distillation_log.jsonl"


def available_memory_bytes() -> int:
    """MemAvailable from /proc/meminfo (Linux), else total physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def estimate_parameters(config) -> int:
    """Parameter count of the LM built from `config`, counted on the meta device (no memory allocated)."""
    with torch.device("meta"):
        model = auto_model_class(config).from_config(config)
    return model.num_parameters()


def check_teacher_fits(path: str, dtype_bytes: int = 4, available: int | None = None) -> int:
    """Raise if the teacher (weights + the student's training state) cannot fit in memory; returns #params."""
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError):
        return 0  # load_model reports unknown models with its own message
    n = estimate_parameters(config)
    need = n * dtype_bytes * 1.3  # weights plus activations / student share, a rough lower bound
    available = available_memory_bytes() if available is None else available
    if need > available:
        raise PeftTransferError(
            f"the teacher {path!r} has {n / 1e9:.2f} B parameters: about {need / 2**30:.1f} GiB in float32 with "
            f"activations, but only {available / 2**30:.1f} GiB of memory is available. Use a machine with more "
            "memory (a GPU through accelerate) or a smaller teacher.")
    return n


def check_same_vocabulary(own, tokenizer, name: str) -> None:
    """Refuse a --tokenizer that maps tokens to other ids than the teacher's own tokenizer (added tokens
    beyond it are checked against the embedding by `check_tokenizer_matches`)."""
    mine, theirs = own.get_vocab(), tokenizer.get_vocab()
    differ = [t for t, i in mine.items() if theirs.get(t) != i]
    if differ:
        raise PeftTransferError(
            f"--tokenizer {name} is not the teacher's tokenizer: {len(differ)} of the teacher's {len(mine)} tokens "
            f"have another id or are missing (e.g. {differ[0]!r}). Omit --tokenizer to use the teacher's own.")


def check_tokenizer_matches(teacher: PreTrainedModel, tokenizer) -> None:
    """Refuse a tokenizer that produces ids the teacher has no embedding for."""
    vocab = teacher.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise PeftTransferError(
            f"the tokenizer has {len(tokenizer)} tokens but the teacher's embedding has only {vocab} rows: they do "
            "not belong together. Use the teacher's own tokenizer.")
    if len(tokenizer) < vocab // 2:
        raise PeftTransferError(
            f"the tokenizer has only {len(tokenizer)} tokens for a teacher with {vocab} embedding rows: it is "
            "not the teacher's tokenizer. Use the teacher's own tokenizer.")


@dataclass
class DistillJob:
    """Inputs of one distillation run (CLI flags map one to one)."""

    teacher: str
    corpus: str
    out: str
    keep_layers: list[int] | None = None
    num_keep: int = 2
    tokenizer: str | None = None
    corpus_limit: int | None = None
    block_size: int = 128
    eval_blocks: int = 16
    max_steps: int = 100
    batch_size: int = 8
    learning_rate: float = 5e-4
    alpha_ce: float = 5.0
    alpha_lm: float = 2.0
    alpha_cos: float = 1.0
    alpha_hidden: float = 0.0
    hidden_loss: str = "cosine"
    train_below_cut: bool = False
    temperature: float = 2.0
    top_k: int = 0  # > 0: train from a cached top-k teacher (built once under <out>/teacher_cache)
    freeze_embeddings: bool = False
    freeze_lm_head: bool = False
    save_steps: int = 50
    save_total_limit: int | None = 2
    seed: int = 0
    progress: bool = True
    recipe: str | None = None  # the distillation_recipes name the loss settings came from (recorded in lineage)
    bf16: bool = False  # bfloat16 mixed precision (GPU)
    gradient_accumulation_steps: int = 1
    max_minutes: float | None = None  # wall-clock budget; max_steps is then an upper bound (training_budget.py)
    logging_steps: int | None = None  # default: max(1, min(10, max_steps // 10))
    extra_args: dict = field(default_factory=dict)  # more DistillationConfig fields
    callbacks: list = field(default_factory=list)  # extra TrainerCallbacks (e.g. a benchmark's clock)
    resume: bool = True  # False: start over, deleting <out>/checkpoints and <out>/teacher_cache
    init_student: str | None = None  # start from this student folder (e.g. `peft-transfer compress`), not make_student

# DistillJob fields a rerun may change and still resume (everything else must match: `rerun_guard`)
RESUMABLE_FIELDS = ("out", "max_steps", "save_steps", "save_total_limit", "progress", "callbacks", "resume",
                    "max_minutes", "logging_steps")  # how long and how loudly, not what is trained


def distill_settings(job: DistillJob, kept_layers: list[int], texts: list[str], init_sha256: str | None = None) -> dict:
    """What determines the student besides the step count: the job's settings with the kept layers
    resolved (num_keep's default spelled out), the corpus's content fingerprint and the starting student's
    weights hash (`init_student`)."""
    settings = {f.name: getattr(job, f.name) for f in fields(job) if f.name not in RESUMABLE_FIELDS}
    settings.update(keep_layers=list(kept_layers), num_keep=None, corpus_fingerprint=text_fingerprint(texts))
    if init_sha256 is not None:
        settings["init_student_sha256"] = init_sha256
    return settings


def check_block_size(block_size: int, teacher, name: str) -> None:
    """Refuse blocks too short to learn or measure anything (`recipes.MIN_BLOCK_SIZE`) or longer than the
    positions of `teacher` (a model or its config, called `name`; `prompted_forward.position_limit`): before
    any work."""
    what = f"block size {block_size} (--block-size; student.block_size in a run config)"
    if block_size < MIN_BLOCK_SIZE:
        raise PeftTransferError(f"{what}: a block needs at least {MIN_BLOCK_SIZE} tokens (one token predicts "
                                f"nothing: loss 0 and perplexity nan); use --block-size {MIN_BLOCK_SIZE} or more "
                                "(default 128).")
    limit = position_limit(teacher)
    if limit is not None and block_size > limit:
        raise PeftTransferError(f"{what} is longer than the {limit} positions of the teacher {name}; use "
                                f"--block-size {limit} or less.")


def load_init_student(job: DistillJob, teacher: PreTrainedModel, teacher_hash: str) -> PreTrainedModel:
    """The student folder `job.init_student`, checked against the teacher (weights hash, class, vocabulary)."""
    folder = Path(job.init_student)
    if job.keep_layers is not None:
        raise PeftTransferError("give either --keep-layers (keep_layers: a new student from the teacher) or "
                                "--init-student (init_student: an existing student), not both.")
    if not (folder / "config.json").is_file():
        raise PeftTransferError(f"--init-student (init_student) {folder}: no such student folder (config.json "
                                "missing).")
    config = AutoConfig.from_pretrained(folder)
    lineage = student_lineage(config)
    if lineage is None:
        raise PeftTransferError(f"--init-student (init_student) {folder} records no lineage: it was not made by "
                                "peft-transfer (distill or compress).")
    if lineage.teacher_sha256 is not None and lineage.teacher_sha256 != teacher_hash:
        raise PeftTransferError(f"--init-student (init_student) {folder} was made from other teacher weights "
                                f"({lineage.teacher_sha256[:19]}…) than --teacher {job.teacher}.")
    student = auto_model_class(config).from_pretrained(folder, dtype=teacher.dtype)
    if type(student) is not type(teacher) or \
            student.get_input_embeddings().num_embeddings != teacher.get_input_embeddings().num_embeddings:
        raise PeftTransferError(f"--init-student (init_student) {folder} ({type(student).__name__}) is not a "
                                f"student of --teacher {job.teacher} ({type(teacher).__name__}, same vocabulary "
                                "expected).")
    return student.eval()


def run_distillation(job: DistillJob) -> DistillationSummary:
    """Distil, save the student (safetensors, config, tokenizer, README.md card) to `job.out`; resumable."""
    out = Path(job.out)
    path, _ = resolve_model(job.teacher)
    teacher_params = check_teacher_fits(path)
    teacher, tokenizer = load_model(job.teacher)
    if job.tokenizer:
        from transformers import AutoTokenizer

        own, tokenizer = tokenizer, AutoTokenizer.from_pretrained(resolve_model(job.tokenizer)[0])
        check_same_vocabulary(own, tokenizer, job.tokenizer)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    check_tokenizer_matches(teacher, tokenizer)
    check_block_size(job.block_size, teacher, job.teacher)
    teacher_hash = state_dict_sha256(teacher.state_dict())
    texts = load_texts(job.corpus, limit=job.corpus_limit, seed=job.seed)["text"]
    corpus_name = Path(job.corpus).name if Path(job.corpus).exists() else job.corpus  # no machine-specific paths
    corpus_record = f"{corpus_name} ({text_fingerprint(texts)}, {len(texts)} texts)"
    blocks = prepare_blocks(texts, tokenizer, job.block_size)
    train_blocks, eval_blocks = split_held_out(blocks, job.eval_blocks)
    n_eval = len(eval_blocks) if eval_blocks is not None else 0

    if job.init_student:
        student = load_init_student(job, teacher, teacher_hash)
        init_sha256 = state_dict_sha256(student.state_dict())
    else:
        student, init_sha256 = make_student(teacher, job.keep_layers, job.num_keep), None
    settings = distill_settings(job, student_lineage(student).kept_layers, texts, init_sha256)
    resumable = guard_rerun(out, settings, job.resume,
                            [*(out / "checkpoints").glob("checkpoint-*"), out / "teacher_cache"],
                            write=int(os.environ.get("RANK", "0")) == 0, what="distillation")
    undistilled_ppl = perplexity(student, tokenizer, eval_blocks) if eval_blocks is not None else None
    train_data, cache_temperature, teacher_logits = train_blocks, None, "full vocabulary, teacher run online"
    if job.top_k > 0:
        cache_dir = out / "teacher_cache"
        if (cache_dir / META_NAME).is_file():
            train_data, meta = load_teacher_cache(cache_dir)
        else:
            train_data = build_teacher_cache(teacher, tokenizer, train_blocks, cache_dir, top_k=job.top_k,
                                             temperature=job.temperature, store_last_hidden=job.alpha_cos > 0,
                                             seed=job.seed, progress=job.progress)
        cache_temperature = job.temperature
        teacher_logits = f"top-{job.top_k} cache (+ tail bucket), built once"
    args = DistillationConfig(
        output_dir=str(out / "checkpoints"), max_steps=job.max_steps, per_device_train_batch_size=job.batch_size,
        learning_rate=job.learning_rate, warmup_steps=max(1, job.max_steps // 20), lr_scheduler_type="cosine",
        logging_steps=job.logging_steps or max(1, min(10, job.max_steps // 10)), save_strategy="steps",
        save_steps=job.save_steps, save_total_limit=job.save_total_limit, seed=job.seed, data_seed=job.seed,
        report_to="none", disable_tqdm=not job.progress, bf16=job.bf16,
        gradient_accumulation_steps=job.gradient_accumulation_steps, max_train_minutes=job.max_minutes,
        restore_callback_states_from_checkpoint=job.max_minutes is not None, include_num_input_tokens_seen="all",
        use_cpu=not torch.cuda.is_available(), alpha_ce=job.alpha_ce, alpha_lm=job.alpha_lm,
        alpha_cos=job.alpha_cos, alpha_hidden=job.alpha_hidden, hidden_loss=job.hidden_loss,
        train_below_cut=job.train_below_cut, temperature=job.temperature,
        freeze_embeddings=job.freeze_embeddings, freeze_lm_head=job.freeze_lm_head, **job.extra_args)
    trainer = DistillationTrainer(
        model=student, teacher=teacher, args=args, teacher_cache_temperature=cache_temperature,
        train_dataset=train_data, data_collator=collator_for(student, tokenizer, seed=job.seed),
        processing_class=tokenizer, callbacks=[JsonlLogCallback(out / LOG_NAME), *job.callbacks])
    last = get_last_checkpoint(args.output_dir) if resumable and Path(args.output_dir).is_dir() else None
    spent = spent_seconds(last)
    budget_spent = job.max_minutes is not None and spent is not None and spent >= job.max_minutes * 60
    if (checkpoint_step(last) >= job.max_steps or budget_spent) and (out / "distillation_summary.json").is_file():
        return DistillationSummary(**json.loads((out / "distillation_summary.json").read_text()))  # finished
    if last and job.progress:
        print(f"[peft-transfer] resuming from {last}")
    trainer.train(resume_from_checkpoint=last)
    student = trainer.model
    steps = trainer.state.global_step

    summary = DistillationSummary(
        corpus=corpus_name, steps=steps, num_blocks=len(train_blocks), block_size=job.block_size,
        batch_size=job.batch_size, learning_rate=job.learning_rate, temperature=job.temperature,
        alphas={"kl": job.alpha_ce, "lm": job.alpha_lm, "cos": job.alpha_cos, "hidden": job.alpha_hidden},
        teacher_logits=teacher_logits, eval_blocks=n_eval,
        final_losses={k[len("loss_"):]: v for k, v in _last_log(trainer).items() if k.startswith("loss_")},
        hidden_loss=job.hidden_loss, train_below_cut=job.train_below_cut,
        datasets=[job.corpus] if "/" not in job.corpus and "." not in job.corpus else [],
    )
    if trainer.is_world_process_zero():
        if eval_blocks is not None:
            summary.perplexity = {"teacher": perplexity(teacher, tokenizer, eval_blocks),
                                  "student before distillation": undistilled_ppl,
                                  "distilled student": perplexity(student, tokenizer, eval_blocks)}
        lineage = student_lineage(student)
        lineage.distillation_steps = steps
        lineage.teacher_sha256 = teacher_hash
        lineage.corpus = corpus_record
        lineage.tokens_seen = int(trainer.state.num_input_tokens_seen)
        lineage.recipe = job.recipe
        build = None
        if job.init_student:
            lineage.init_student = Path(job.init_student).name  # no machine-specific paths
            build = {"Started from": f"`{lineage.init_student}`" + (f" ({lineage.method} student)"
                                                                    if lineage.method else "")}
        setattr(student.config, LINEAGE_KEY, lineage.to_dict())
        student.save_pretrained(out)
        tokenizer.save_pretrained(out)
        save_student_card(student, out, summary, teacher_params or teacher.num_parameters(), build=build)
        (out / "distillation_summary.json").write_text(json.dumps(asdict(summary), indent=2))
    return summary


def _last_log(trainer: DistillationTrainer) -> dict:
    for entry in reversed(trainer.state.log_history):
        if "loss" in entry:
            return entry
    return {}
