"""Check a `PipelineConfig` before any work: every bad value is one error naming its YAML key."""

from __future__ import annotations

import math
import re

from ..assets.model_refs import is_local_model
from ..distill.recipes import COMPRESS_METHODS, MIN_BLOCK_SIZE, RECIPES
from ..errors import PeftTransferError
from ..precision import PRECISIONS
from ..tasks.classification import ClassificationTask
from ..tasks.template_escapes import typed_template
from ..transfer.loss_over import LOSS_OVER
from ..transfer.prompt_init import PROMPT_INITS
from ..tune.dp_plan import epsilon_problem
from .config import EMBEDDED_TASK_NAMES, PipelineConfig, TaskSettings

_FOLDER_NAME = re.compile(r"\w[\w .+-]*")  # a task's name is its folder under --out: no slash, no ..


def _require(ok: bool, key: str, rule: str, value) -> None:
    if not ok:
        raise PeftTransferError(f"config key {key!r} {rule}, got {value!r}")


def _at_least_one(section, names: tuple[str, ...], prefix: str, optional: tuple[str, ...] = ()) -> None:
    for name in names:
        value = getattr(section, name)
        if value is None and name in optional:
            continue
        _require(value is not None and value >= 1, f"{prefix}.{name}", "must be at least 1", value)


def _positive(section, names: tuple[str, ...], prefix: str) -> None:
    for name in names:
        value = getattr(section, name)
        _require(0 < value < math.inf, f"{prefix}.{name}", "must be a positive number", value)


def validate_config(config: PipelineConfig) -> None:
    """Raise `PeftTransferError` for the first setting that cannot work (ranges, names, duplicates)."""
    is_local_model(config.target, "config key 'target':")  # a path that is not there: refused now, not after the Hub
    if config.student.path is not None:
        is_local_model(config.student.path, "config key 'student.path':")
    _require(bool(config.tasks), "tasks", "must name at least one task", config.tasks)
    _require(config.precision in PRECISIONS, "precision", f"must be one of {list(PRECISIONS)}", config.precision)
    names = config.task_names()
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PeftTransferError(f"config key 'tasks' lists {', '.join(map(repr, duplicates))} more than once; name "
                                "each task once.")
    for i, task in enumerate(config.tasks):
        if isinstance(task, str):
            if task not in EMBEDDED_TASK_NAMES:
                raise PeftTransferError(
                    f"config key 'tasks[{i}]': {task!r} is not an embedded task ({', '.join(EMBEDDED_TASK_NAMES)}); "
                    "write your own task as a mapping with name, data, template, label_words and public (see "
                    "`peft-transfer run --print-config`).")
            _require(task in config.public_sets, "public_sets", f"needs an entry for task {task!r}",
                     config.public_sets)
        else:
            _validate_task(task, f"tasks[{i}]")
    _require(bool(config.epsilons), "epsilons", "must list at least one privacy level (inf: no DP)", config.epsilons)
    for i, eps in enumerate(config.epsilons):
        _require(eps > 0, f"epsilons[{i}]", "must be positive (or inf for no DP)", eps)
        problem = epsilon_problem(eps)
        if problem:
            raise PeftTransferError(f"config key 'epsilons[{i}]': {problem}")
    _require(config.test_examples is None or config.test_examples >= 1, "test_examples", "must be at least 1 or null",
             config.test_examples)
    s, t, x = config.student, config.tune, config.transfer
    if s.path is None:
        _at_least_one(s, ("max_steps", "batch_size"), "student")
        _require(s.block_size >= MIN_BLOCK_SIZE, "student.block_size", f"must be at least {MIN_BLOCK_SIZE} tokens "
                 "(one token predicts nothing: loss 0 and perplexity nan)", s.block_size)
        _positive(s, ("learning_rate",), "student")
        _require(s.recipe in RECIPES, "student.recipe", f"must be one of {sorted(RECIPES)}", s.recipe)
        _require(s.keep_layers is None or len(s.keep_layers) > 0, "student.keep_layers",
                 "must list at least one layer, or be null", s.keep_layers)
        _require(s.method in COMPRESS_METHODS, "student.method", f"must be one of {list(COMPRESS_METHODS)}", s.method)
        _at_least_one(s, ("layers", "calibration_tokens"), "student", optional=("layers",))
    _at_least_one(t, ("num_virtual_tokens", "max_steps", "batch_size", "train_examples"), "tune",
                  optional=("train_examples",))
    _positive(t, ("learning_rate", "max_grad_norm"), "tune")
    _require(t.max_length is None or t.max_length >= 8, "tune.max_length", "must be at least 8 tokens or null",
             t.max_length)
    _at_least_one(x, ("num_public", "max_public_words", "max_steps", "batch_size"), "transfer",
                  optional=("max_public_words",))
    _positive(x, ("learning_rate", "temperature"), "transfer")
    _require(x.alpha is None or 0 <= x.alpha <= 1, "transfer.alpha", "must lie in [0, 1] or be null (Eq. 6)",
             x.alpha)
    _require(x.prompt_init in PROMPT_INITS, "transfer.prompt_init", f"must be one of {list(PROMPT_INITS)}",
             x.prompt_init)
    _require(x.loss_over in LOSS_OVER, "transfer.loss_over", f"must be one of {list(LOSS_OVER)}", x.loss_over)


def _validate_task(task: TaskSettings, key: str) -> None:
    _require(task.name not in EMBEDDED_TASK_NAMES, f"{key}.name", "must not be an embedded task's name", task.name)
    _require(bool(_FOLDER_NAME.fullmatch(task.name)) and ".." not in task.name, f"{key}.name",
             "is the task's folder under --out, so it must be a plain folder name (letters, digits, _ - . + and "
             "spaces; no / nor ..)", task.name)
    _require(0 < task.test_size < 1 or (task.test_size >= 1 and float(task.test_size).is_integer()),
             f"{key}.test_size", "must be a fraction of the data below 1 (0.2: a fifth held out) or a whole number "
             "of examples (50)", task.test_size)
    _require(task.max_length >= 8, f"{key}.max_length", "must be at least 8 tokens", task.max_length)
    try:
        ClassificationTask(name=task.name, template=typed_template(task.template), label_words=task.label_words,
                           class_names=task.class_names, max_length=task.max_length)
    except PeftTransferError as exc:
        raise PeftTransferError(f"config key {key!r}: {exc}") from None
