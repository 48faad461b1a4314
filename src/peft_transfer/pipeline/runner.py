"""`run_pipeline`: distil -> private tune -> transfer -> evaluate with all baselines, resumable by stage.

Layout of the output folder (every stage is skipped when its artifact is already there, and a killed
stage resumes from its Trainer checkpoints):

    run_config.json                      the settings; another run's folder is refused
    <task>/zero_shot.json                the target without a prompt on the test set
    <task>/eps-<ε>/student_prompt/       export of p_s, tuned on the student with the private data (the data
                                         owner); the only thing the provider's stage reads
    <task>/eps-<ε>/post_prompt/          export of p_t, transferred to the target with public text only
    <task>/eps-<ε>/fullpt_prompt/        upper bound: a prompt tuned on the target with the private data
    <task>/eps-<ε>/<stage>-work/         each stage's checkpoints and logs (never handed over)
    <task>/eps-<ε>/post_oracle_alpha/    with eq6_alpha_oracle: p_t with Eq. 6's α from test labels (a baseline)
    <task>/eps-<ε>/comparison.{md,json}  ZS / FullPT / CompPT / Direct / POST on the test set
    results.{md,json,png}                the table over all tasks and ε, and its bar chart
    timings.json                         wall seconds of each stage, as run (a resumed stage: its last part)

Every task runs through the same stages; its scoring (`evaluation.scoring`: accuracy, or ROUGE-L for a
generation task) decides the numbers, and the Eq. 6 oracle runs only where the task has a chance level.

The student is built once per machine (under the peft-transfer cache) and shared by every run. Public sets
(transfer and distillation corpus) that overlap a private task by source or content are refused first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from transformers import AutoTokenizer

from ..assets import load_model
from ..assets.data_files import load_texts
from ..assets.models import cache_root, resolve_model
from ..assets.overlap import check_content_overlap, check_source_overlap
from ..assets.shipped_students import REBUILD_HINT, shipped_student_for
from ..assets.vocabulary import check_same_tokenizer
from ..distill.compress import SUMMARY_NAME, CompressJob, run_compression
from ..distill.recipes import recipe_settings
from ..distill.run import DistillJob, run_distillation
from ..errors import PeftTransferError
from ..evaluation.comparison import compare_prompts, eq6_alpha_oracle, row_type, write_comparison
from ..evaluation.scoring import evaluate, scoring
from ..precision import precision_args
from ..prompted_forward import is_masked_lm
from ..prompts.model import hidden_size, load_prompt, model_id
from ..student.layers import check_keep_layers, default_keep_layers, num_layers
from ..tasks.position_limits import fit_to_model
from ..transfer.config import TransferConfig
from ..transfer.run import transfer_prompt
from ..tune.config import PrivatePromptConfig
from ..tune.dp_plan import MIN_BUDGET, noise_warning
from ..tune.settings import resolve_settings
from ..tune.trainer import tune_prompt
from .config import PipelineConfig
from .report import result_record, write_report
from .tasks import PreparedTask, prepare_tasks
from .validation import validate_config

_METHODS = ("ZS", "FullPT", "CompPT", "Direct", "POST", "POST-oracle-α")


def _eps_tag(epsilon: float) -> str:
    return "eps-inf" if math.isinf(epsilon) else f"eps-{epsilon:g}"


def _say(message: str) -> None:
    print(f"[peft-transfer run] {message}", flush=True)


@contextlib.contextmanager
def _timed(out: Path, key: str, artifact: Path | None = None) -> Iterator[None]:
    """Record the wall seconds of one stage in out/timings.json (kept across resumed invocations); a stage
    whose `artifact` is already complete is skipped by its runner and keeps its earlier time."""
    start = time.perf_counter()
    skipped = artifact is not None and _done(artifact)
    yield
    if skipped:
        return
    path = out / "timings.json"
    timings = json.loads(path.read_text()) if path.is_file() else {}
    timings[key] = round(time.perf_counter() - start, 2)
    path.write_text(json.dumps(timings, indent=2) + "\n")


def check_run_folder(out: Path, config: PipelineConfig, data: dict[str, str] | None = None,
                     write: bool = True) -> None:
    """Refuse a folder that holds a different run's artifacts; record this run's settings (`write`) otherwise.

    `data`: content fingerprints of your own tasks' data, recorded next to the settings (an edited data
    file is another run).
    """
    record = out / "run_config.json"
    settings = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    if data:
        settings["data_fingerprints"] = data
    if record.is_file():
        previous = json.loads(record.read_text())
        defaults = json.loads(json.dumps(dataclasses.asdict(PipelineConfig()), default=str))
        previous = {**{k: v for k, v in settings.items() if k not in previous and v == defaults.get(k)}, **previous}
        if data is None:
            previous.pop("data_fingerprints", None)
        if previous != settings:
            changed = sorted(k for k in set(previous) | set(settings) if previous.get(k) != settings.get(k))
            raise PeftTransferError(
                f"{out} holds the artifacts of a different run (settings differ in: {', '.join(changed)}). "
                "Use another --out folder, or delete this one to start over."
            )
    elif out.is_dir() and any(out.iterdir()):
        raise PeftTransferError(f"{out} is not empty and holds no run_config.json: it is not a peft-transfer run "
                                "folder. Choose an empty or new --out folder.")
    if write:
        out.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(settings, indent=2) + "\n")


def compresses(config: PipelineConfig) -> bool:
    """True when the run builds a compressed student (`source: compress`, or `auto` with no shipped student)."""
    s = config.student
    return s.path is None and (s.source == "compress" or (
        s.source == "auto" and shipped_student_for(config.target) is None))


def resolve_keep_layers(config: PipelineConfig, target) -> PipelineConfig:
    """`config` with the student's size spelled out for `target` and checked against its depth: a compressed
    student's `layers` (null: two thirds of the target's, the kept ones chosen later on calibration text), a
    distilled one's `keep_layers` (null: the paper's first 2 + last 2); unchanged for a student folder."""
    depth = num_layers(target.config)
    if config.student.path is not None:
        return config
    if compresses(config):
        layers = config.student.layers if config.student.layers is not None else round(2 * depth / 3)
        if not 1 <= layers < depth:
            raise PeftTransferError(f"config key 'student.layers' must lie in 1..{depth - 1} for {config.target} "
                                    f"({depth} layers), got {layers}")
        return dataclasses.replace(config, student=dataclasses.replace(config.student, layers=layers))
    try:
        keep = (default_keep_layers(depth) if config.student.keep_layers is None
                else check_keep_layers(config.student.keep_layers, depth))
    except PeftTransferError as exc:
        raise PeftTransferError(f"config key 'student.keep_layers': {exc}") from None
    return dataclasses.replace(config, student=dataclasses.replace(config.student, keep_layers=keep))


_COMPRESS_KEYS = ("layers", "method", "calibration", "calibration_tokens")


def student_folder(config: PipelineConfig) -> Path:
    """The per-machine cache folder of the student these settings describe (distilled, or compressed)."""
    name = config.target.replace("/", "--")
    student = dataclasses.asdict(config.student)
    if compresses(config):
        student = {key: student[key] for key in _COMPRESS_KEYS}
        name += "-compressed"
    else:  # a distilled student's folder does not depend on the compression settings (nor on where it came from)
        student = {key: value for key, value in student.items() if key not in (*_COMPRESS_KEYS, "source")}
    settings = {"target": config.target, "seed": config.seed, "student": student}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_root() / "students" / f"{name}-{digest}"


def build_student(config: PipelineConfig) -> str:
    """The student to load: the configured folder, the shipped student of the target, or the cached student
    distilled on this machine (built on first use)."""
    if config.student.path:
        _say(f"student: {config.student.path} (student.path)")
        return config.student.path
    shipped = shipped_student_for(config.target) if config.student.source in ("auto", "shipped") else None
    if shipped is not None:
        _say(f"student: {shipped.name}, shipped with peft-transfer (distilled once on a GPU; its card and "
             f"build record are in {shipped.folder})")
        return shipped.name
    if config.student.source == "shipped":
        raise PeftTransferError(f"no shipped student for target {config.target!r} is installed (student.source: "
                                f"shipped); use student.source: auto or distill, or see the {REBUILD_HINT}.")
    folder = student_folder(config)
    s = config.student
    if compresses(config):
        if not (folder / SUMMARY_NAME).is_file():
            _say(f"student: no shipped student for {config.target}, so compressing it to {s.layers} layers on this "
                 f"machine without training (block chosen on {s.calibration} by angular distance, replaced by "
                 f"{s.method}; minutes, once per machine) into {folder}")
        else:
            _say(f"student: compressed on this machine earlier, cached at {folder}")
        run_compression(CompressJob(teacher=config.target, out=str(folder), keep=s.layers, method=s.method,
                                    calibration=s.calibration, calibration_tokens=s.calibration_tokens,
                                    seed=config.seed))
        return str(folder)
    recipe = recipe_settings(config.student.recipe)
    if (folder / "distillation_summary.json").is_file():
        _say(f"student: distilled on this machine earlier, cached at {folder}")
        return str(folder)
    _say(f"student: no shipped student for {config.target}, so distilling one on this machine: layers "
         f"{config.student.keep_layers} of {config.target} for {config.student.max_steps} steps, recipe "
         f"{config.student.recipe} (once per machine; resumable) into {folder}")
    run_distillation(DistillJob(teacher=config.target, corpus=s.corpus, out=str(folder), keep_layers=s.keep_layers,
                                max_steps=s.max_steps, batch_size=s.batch_size, block_size=s.block_size,
                                learning_rate=s.learning_rate, seed=config.seed, save_steps=25, recipe=s.recipe,
                                **recipe))
    return str(folder)


def _done(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file()


def _work(folder: Path) -> Path:
    """A stage's working folder (checkpoints, logs), next to its export."""
    return folder.with_name(folder.name + "-work")


def _has_checkpoint(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("checkpoint-") for p in folder.iterdir())


def _tune(model, tokenizer, task, train, config: PipelineConfig, epsilon: float, folder: Path) -> str:
    if _done(folder):
        return str(folder)
    t = config.tune
    planned = t.dp_plan and not math.isinf(epsilon)
    # tune.batch_size, max_steps and learning_rate: the DP plan's to choose when it is on, else used as given
    given = {} if planned else dict(
        batch_size=t.batch_size, learning_rate=t.learning_rate, max_steps=None if t.budget_examples else t.max_steps)
    budget = t.budget_examples or t.max_steps * t.batch_size
    if planned and not t.budget_examples:
        budget = max(budget, MIN_BUDGET)  # DP learns from more examples (dp_levers: BBC 78.7 % at 2,048, 83.7 at 4,096)
    if t.max_length and t.max_length < task.max_length:  # training texts cut shorter than evaluation's
        task = dataclasses.replace(task, max_length=t.max_length)
    settings = resolve_settings(len(train), hidden_size(model), task.max_length, epsilon, dp_plan=t.dp_plan,
                                budget_examples=budget, num_virtual_tokens=t.num_virtual_tokens,
                                round_steps_up=False, epsilon_key="config key 'epsilons'", **given)
    if settings.plan is not None:
        _say(settings.plan.describe(epsilon))
        warning = noise_warning(settings.plan)
        if warning:
            _say(warning.replace("--budget-examples", "tune.budget_examples"))
    args = PrivatePromptConfig(
        output_dir=str(_work(folder)), num_virtual_tokens=settings.num_virtual_tokens,
        learning_rate=settings.learning_rate, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size, physical_batch_size=settings.physical_batch_size,
        max_grad_norm=t.max_grad_norm, target_epsilon=None if math.isinf(epsilon) else epsilon, seed=config.seed,
        logging_steps=10, save_steps=25, **precision_args(config.precision),
    )
    tune_prompt(model, tokenizer, task, train, args, export_dir=str(folder),
                resume_from_checkpoint=True if _has_checkpoint(_work(folder)) else None)
    return str(folder)


def _transfer(source: str, student, target, tokenizer, public, config: PipelineConfig, folder: Path, alpha: float,
              public_name: str, alpha_source: str | None = None) -> str:
    """The provider's stage: reads only the export of p_s (`transfer_prompt` refuses anything else)."""
    if _done(folder):
        return str(folder)
    t = config.transfer
    args = TransferConfig(
        output_dir=str(_work(folder)), alpha=alpha, temperature=t.temperature, learning_rate=t.learning_rate,
        prompt_init=t.prompt_init, loss_over=t.loss_over,
        max_steps=t.max_steps, per_device_train_batch_size=t.batch_size, seed=config.seed,
        public_dataset_name=public_name, save_steps=25,
        **precision_args(config.precision), alpha_source=alpha_source,
    )
    transfer_prompt(source, student, target, tokenizer, public, args, resume=_has_checkpoint(_work(folder)),
                    export_dir=str(folder))
    return str(folder)


def check_distillation_corpus(config: PipelineConfig, tasks) -> None:
    """Refuse a distillation corpus (or a compressed student's calibration text) that overlaps a private task, by
    source and, when the student is built in this run, by content (the transfer sets are checked as each task
    is prepared: `pipeline.tasks`)."""
    shipped = config.student.source in ("auto", "shipped") and shipped_student_for(config.target) is not None
    if config.student.path or shipped:  # a student built elsewhere
        return
    compress = compresses(config)
    corpus_name = config.student.calibration if compress else config.student.corpus
    role = "calibration text" if compress else "distillation corpus"
    for prepared in tasks:
        check_source_overlap(corpus_name, prepared.name, role=role)
    built = student_folder(config) / (SUMMARY_NAME if compress else "distillation_summary.json")
    if not built.is_file():
        corpus = load_texts(corpus_name)["text"]
        for prepared in tasks:
            check_content_overlap(corpus, prepared.private_texts, corpus_name, prepared.name, role=role)


def _oracle_row(zs: dict, rows, source: str, student, target, tokenizer, task, test, public, config, stage: Path,
                public_name: str):
    """The Eq. 6 α oracle (evaluation side, uses test labels): transfer p_s again with it and score it."""
    row = row_type(task)
    compt = next(r for r in rows if r.method.startswith("CompPT"))
    try:
        alpha = eq6_alpha_oracle(zs[row.RESULT.headline_field()], compt.headline, scoring(task).chance(task))
    except PeftTransferError as exc:
        return row.empty("POST-oracle-α", model_id(target), None, len(test), compt.epsilon, f"not applicable: {exc}")
    _say(f"{task.name}: evaluation-side baseline, transfer with Eq. 6's α = {alpha:.3g} from test labels")
    folder = _transfer(source, student, target, tokenizer, public, config, stage / "post_oracle_alpha", alpha,
                       public_name, alpha_source="Eq. 6 oracle from labelled test accuracies, not POST")
    result = evaluate(load_prompt(target, folder), tokenizer, task, test)
    return row.scored("POST-oracle-α", model_id(target), folder, result, compt.epsilon,
                      f"α = {alpha:.3g} from ZS and CompPT on the test labels (Eq. 6)")


def _run_task(prepared: PreparedTask, out: Path, config: PipelineConfig, target, student, tokenizer) -> list[dict]:
    """Run (or resume) every stage of one task, any kind; returns its result records (`report.result_record`)."""
    name, task, train, test = prepared.name, prepared.task, prepared.train, prepared.test
    public_name, public = prepared.public_name, prepared.public
    spec = scoring(task)
    headline = spec.result.headline_field()
    zs_file = out / name / "zero_shot.json"
    if zs_file.is_file():
        zs = json.loads(zs_file.read_text())
    else:
        _say(f"{name}: zero-shot {spec.result.LABELS[headline]} of the target on {len(test)} test examples")
        with _timed(out, f"{name}/zero_shot"):
            zs = evaluate(target, tokenizer, task, test, use_prompt=False, progress="ZS").to_dict()
        zs_file.parent.mkdir(parents=True, exist_ok=True)
        zs_file.write_text(json.dumps(zs))
    results = [result_record(spec.result, name, math.inf, "ZS", zs)]
    for epsilon in config.epsilons:
        stage = out / name / _eps_tag(epsilon)
        comparison = stage / "comparison.json"
        key, say = f"{name}/{_eps_tag(epsilon)}", f"{name}, ε={epsilon:g}:"
        if not comparison.is_file():
            _say(f"{say} data owner tunes p_s on the student (private data)")
            with _timed(out, f"{key}/student_prompt", stage / "student_prompt"):
                source = _tune(student, tokenizer, task, train, config, epsilon, stage / "student_prompt")
            alpha = config.transfer.alpha
            _say(f"{say} provider transfers p_s to the target (public {public_name}, α={alpha:g})")
            with _timed(out, f"{key}/post_prompt", stage / "post_prompt"):
                post = _transfer(source, student, target, tokenizer, public, config, stage / "post_prompt", alpha,
                                 public_name)
            full = []
            if config.full_pt:
                _say(f"{say} FullPT upper bound, a prompt tuned on the target")
                with _timed(out, f"{key}/fullpt_prompt", stage / "fullpt_prompt"):
                    full = [_tune(target, tokenizer, task, train, config, epsilon, stage / "fullpt_prompt")]
            _say(f"{say} evaluating FullPT / CompPT / Direct / POST ({spec.result.LABELS[headline]})")
            with _timed(out, f"{key}/evaluation"):
                rows = compare_prompts(target, tokenizer, task, test, student=student, source_prompt=source,
                                       transferred_prompt=post, full_prompts=full, progress=True,
                                       include_zero_shot=False)
                if config.eq6_alpha_oracle and spec.chance is not None:  # Eq. 6 needs a chance level
                    rows.append(_oracle_row(zs, rows, source, student, target, tokenizer, task, test, public,
                                            config, stage, public_name))
            write_comparison(rows, str(stage), meta={"task": name, "epsilon": str(epsilon)})
        for row in json.loads(comparison.read_text())["rows"]:
            method = row["method"].split(" ")[0]
            if method in _METHODS and method != "ZS" and row[headline] is not None:
                results.append(result_record(spec.result, name, epsilon, method, row))
    return results


def check_student_tokenizer(config: PipelineConfig, tokenizer) -> None:
    """A student folder of your own (student.path) must share the target's tokenizer: POST compares the two
    models' outputs token by token. (Students made here or shipped are made from the target.)"""
    if config.student.path:
        try:
            own = AutoTokenizer.from_pretrained(resolve_model(config.student.path)[0])
        except (OSError, ValueError) as exc:
            raise PeftTransferError(f"config key 'student.path': cannot load a tokenizer from "
                                    f"{config.student.path} ({exc}).") from None
        check_same_tokenizer(tokenizer, own, f"config key 'target' ({config.target})",
                             f"'student.path' ({config.student.path})",
                             "use a student made from the target (student.source: compress or distill, no path).")


def fit_tasks_to_target(tasks: list[PreparedTask], config: PipelineConfig, target, tokenizer) -> None:
    """Each task's length cut to what fits beside the run's prompts in the target's positions (refused when the
    prompt leaves no room for text), once for every stage, so that ZS and the prompted rows read the same texts
    (the student is made from the target: the same positions)."""
    n = config.tune.num_virtual_tokens
    for i, prepared in enumerate(tasks):
        key = f"tasks[{i}].max_length" if not isinstance(config.tasks[i], str) else None
        prepared.task = fit_to_model(prepared.task, tokenizer, target, n, f"config key 'tune.num_virtual_tokens' ({n})",
                                     key)


def run_pipeline(config: PipelineConfig, out: str | Path) -> dict[str, Path]:
    """Run (or resume) the whole pipeline into `out`; returns the paths of results.md/json/png."""
    out = Path(out)
    validate_config(config)  # every setting checked before anything loads
    target, tokenizer = load_model(config.target)
    config = resolve_keep_layers(config, target)
    check_student_tokenizer(config, tokenizer)
    check_run_folder(out, config, write=False)  # another run's folder: refused before the data loads
    tasks = prepare_tasks(config, tokenizer, is_masked_lm(target))  # data, labels, label words, overlap checked
    fit_tasks_to_target(tasks, config, target, tokenizer)
    check_distillation_corpus(config, tasks)
    fingerprints = {t.name: t.data_fingerprint for t in tasks if t.data_fingerprint}
    check_run_folder(out, config, fingerprints or None)  # only now is run_config.json written
    started = time.perf_counter()
    student, _ = load_model(build_student(config))
    results: list[dict] = []
    for prepared in tasks:
        results += _run_task(prepared, out, config, target, student, tokenizer)
    minutes = (time.perf_counter() - started) / 60
    words = config.transfer.max_public_words
    cut = f" (first {words} words)" if words else ""
    t = config.tune
    tuning = (f"{t.budget_examples or t.max_steps * t.batch_size} examples per tuning stage ({t.batch_size} per "
              f"step, {t.num_virtual_tokens} virtual tokens, texts cut at {t.max_length or 'the task limit'} tokens")
    tuning += ("; DP stages as the DP plan chooses, at least 4,096 examples: see each prompt's provenance)"
               if t.dp_plan else ")")
    notes = (f"Target `{config.target}`; student `{student.name_or_path}`; {tuning}, "
             f"{config.transfer.max_steps} transfer steps of {config.transfer.batch_size} "
             f"on {config.transfer.num_public} public texts{cut}; seed {config.seed}. This invocation took "
             f"{minutes:.1f} min (stages already done were skipped; stage times in timings.json). Settings: "
             "run_config.json.\n")
    paths = write_report(results, out, notes)
    for plot in sorted(out.glob("*/eps-*/post_prompt-work/transfer_monitor.png")):  # the transfer curves, side by side
        task_name, tag = plot.parts[-4], plot.parts[-3]
        paths[f"transfer_{task_name}_{tag}"] = Path(shutil.copy(plot, out / f"transfer_curve_{task_name}_{tag}.png"))
    return paths
