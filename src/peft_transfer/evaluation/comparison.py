"""The paper's comparison rows on one labelled test set: ZS, FullPT, CompPT, Direct, POST (+ gap closure).

- ZS: the target without a prompt.
- FullPT: a prompt tuned on the target itself with the private data (upper bound; DP or not).
- CompPT: the source prompt p_s on the student it was tuned on.
- Direct: p_s pasted into the target unchanged (only when hidden sizes match).
- POST: the transferred prompt p_t on the target.
Gap closure G = (POST - ZS) / (FullPT - ZS), on the headline metric (accuracy; ROUGE-L for generation).

One builder for every task: `compare_prompts` scores each row with `scoring.evaluate`, and the task's result
type picks the row type (`ComparisonRow`: accuracy, macro-F1; `GenerationRow`: ROUGE-L, -1, -2).

`eq6_alpha_oracle` is the paper's α heuristic (Eq. 6), an evaluation-side oracle: it needs the target's
zero-shot and the student prompt's accuracy on labelled task data, which the provider does not hold, so it
is a baseline to compare with (the paper's ablation), never part of the transfer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

from datasets import Dataset
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..prompts.config import TransferablePromptConfig
from ..prompts.fit import check_base_model
from ..prompts.model import hidden_size, load_prompt, model_id
from ..tasks.classification import ClassificationTask
from ..tasks.generation import GenerationTask
from ..tasks.position_limits import fit_to_model
from .classification import ClassificationResult
from .generation import GenerationResult
from .result import TaskResult
from .scoring import evaluate, scoring


class _Row:
    """What every comparison row type shares; `RESULT` is the result type whose metrics its fields hold."""

    RESULT: ClassVar[type[TaskResult]]

    method: str
    epsilon: float | None

    @classmethod
    def scored(cls, method: str, model: str, prompt: str | None, result: TaskResult, epsilon: float | None = None,
               note: str = "") -> _Row:
        """A row holding `result`'s metrics."""
        return cls(method=method, model=model, prompt=prompt, n=result.n, epsilon=epsilon, note=note,
                   **result.metrics())

    @classmethod
    def empty(cls, method: str, model: str, prompt: str | None, n: int, epsilon: float | None = None,
              note: str = "") -> _Row:
        """A row that could not be scored (`note` says why)."""
        return cls(method=method, model=model, prompt=prompt, n=n, epsilon=epsilon, note=note,
                   **dict.fromkeys(cls.RESULT.LABELS))

    @property
    def headline(self) -> float | None:
        return getattr(self, self.RESULT.headline_field())


@dataclass
class ComparisonRow(_Row):
    """A row of a classification task."""

    method: str
    model: str
    prompt: str | None
    accuracy: float | None
    macro_f1: float | None
    n: int
    epsilon: float | None = None
    note: str = ""

    RESULT: ClassVar[type[TaskResult]] = ClassificationResult


@dataclass
class GenerationRow(_Row):
    """A row of a generation task (ROUGE F-measures in [0, 1])."""

    method: str
    model: str
    prompt: str | None
    rouge_l: float | None
    rouge_1: float | None
    rouge_2: float | None
    n: int
    epsilon: float | None = None
    note: str = ""

    RESULT: ClassVar[type[TaskResult]] = GenerationResult


_ROWS: dict[type[TaskResult], type[_Row]] = {row.RESULT: row for row in (ComparisonRow, GenerationRow)}


def row_type(task: ClassificationTask | GenerationTask) -> type[_Row]:
    """The comparison row type of `task` (by the result its scoring returns)."""
    return _ROWS[scoring(task).result]


def _epsilon(path: str) -> float | None:
    dp = TransferablePromptConfig.from_pretrained(path).dp
    return dp.epsilon if dp is not None and dp.private else None


def _label(method: str, epsilon: float | None) -> str:
    return method if epsilon is None or math.isinf(epsilon) else f"{method} (ε={epsilon:g})"


def compare_prompts(
    target: PreTrainedModel,
    tokenizer,
    task: ClassificationTask | GenerationTask,
    test_set: Dataset,
    student: PreTrainedModel | None = None,
    source_prompt: str | None = None,
    transferred_prompt: str | None = None,
    full_prompts: list[str] | None = None,
    batch_size: int | None = None,
    progress: bool = False,
    include_zero_shot: bool = True,
) -> list[ComparisonRow] | list[GenerationRow]:
    """Score every row that the given models and prompts allow, for any task; missing inputs give no row.

    `full_prompts`: prompts tuned on the target with the private data (e.g. one non-DP, one DP). Rows carry
    the ε of the prompt they use (from its provenance). `batch_size`: default the task's (32 examples per
    forward pass for classification, 16 per generation batch). The models are only wrapped, never modified.
    """
    row = row_type(task)
    rows: list = []
    if source_prompt and student is not None:  # before anything is scored
        check_base_model(TransferablePromptConfig.from_pretrained(source_prompt), student,
                         f"the source prompt {source_prompt}", f"the student {model_id(student)!r}",
                         "score CompPT with the student it was tuned on (--student), or without a student.")
    task = _fit_every_row(task, tokenizer, target, student, source_prompt, transferred_prompt, full_prompts)

    def score(model, method, prompt=None, use_prompt=True, note=""):
        eps = _epsilon(prompt) if prompt else None
        result = evaluate(model, tokenizer, task, test_set, batch_size=batch_size, use_prompt=use_prompt,
                          progress=method if progress else False)
        rows.append(row.scored(_label(method, eps), model_id(model.get_base_model() if prompt else model), prompt,
                               result, eps, note))

    if include_zero_shot:  # a caller comparing several prompts on one test set scores ZS once
        score(target, "ZS", use_prompt=False)
    for path in full_prompts or []:
        score(load_prompt(target, path), "FullPT", path, note="tuned on the target with the private data")
    if source_prompt and student is not None:
        score(load_prompt(student, source_prompt), "CompPT", source_prompt, note="p_s on the student")
    if source_prompt:
        config = TransferablePromptConfig.from_pretrained(source_prompt)
        if config.token_dim in (None, hidden_size(target)):
            score(load_prompt(target, source_prompt), "Direct", source_prompt, note="p_s pasted into the target")
        else:
            rows.append(row.empty("Direct", model_id(target), source_prompt, len(test_set), _epsilon(source_prompt),
                                  f"not applicable: hidden size {config.token_dim} vs {hidden_size(target)}"))
    if transferred_prompt:
        score(load_prompt(target, transferred_prompt), "POST", transferred_prompt, note="p_t after transfer")
    return rows


def _fit_every_row(task, tokenizer, target, student, source_prompt, transferred_prompt, full_prompts):
    """`task` cut to what fits beside every row's prompt in its model (`position_limits.fit_to_model`), so that
    every row reads the same texts; the longest prompt first, so that one warning says it."""
    pairs = [(target, path) for path in [*(full_prompts or []), transferred_prompt] if path]
    if source_prompt:
        config = TransferablePromptConfig.from_pretrained(source_prompt)
        pairs += [(student, source_prompt)] if student is not None else []
        pairs += [(target, source_prompt)] if config.token_dim in (None, hidden_size(target)) else []
    sized = [(model, path, TransferablePromptConfig.from_pretrained(path).num_virtual_tokens) for model, path in pairs]
    for model, path, n in sorted(sized, key=lambda pair: -pair[2]):
        task = fit_to_model(task, tokenizer, model, n, f"the prompt {path} ({n} virtual tokens)")
    return fit_to_model(task, tokenizer, target, 0)


def compare_generation_prompts(target: PreTrainedModel, tokenizer, task: GenerationTask, test_set: Dataset,
                               **kwargs) -> list[GenerationRow]:
    """`compare_prompts` for a generation task (kept for the public API: the builder serves every task)."""
    return compare_prompts(target, tokenizer, task, test_set, **kwargs)


def gap_closure(rows: list[_Row], zs: float | None = None) -> dict[str, float]:
    """G = (POST - ZS) / (FullPT - ZS) on the headline metric, for each FullPT row with the same ε as the POST
    row; `zs`: the ZS number when `rows` have no ZS row."""
    if zs is None:
        zs = next((r.headline for r in rows if r.method == "ZS" and r.headline is not None), None)
    out = {}
    for post in (r for r in rows if r.method.startswith("POST") and r.headline is not None):
        full = next((r for r in rows if r.method.startswith("FullPT") and r.epsilon == post.epsilon), None)
        if zs is not None and full and full.headline != zs:
            out[post.method] = (post.headline - zs) / (full.headline - zs)
    return out


def _metric(rows: list[_Row]) -> type[TaskResult]:
    return rows[0].RESULT if rows else ClassificationResult


def comparison_markdown(rows: list[_Row]) -> str:
    """The rows as a markdown table (percentages), with the gap closure below."""
    result = _metric(rows)
    head = "| method | model | n | " + " | ".join(result.LABELS.values()) + " | note |"
    lines = [head, "|" + "---|" * (len(result.LABELS) + 4)]
    for r in rows:
        cells = ["–" if getattr(r, k) is None else f"{100 * getattr(r, k):.2f}{result.UNIT}" for k in result.LABELS]
        lines.append(f"| {r.method} | {r.model} | {r.n} | " + " | ".join(cells) + f" | {r.note} |")
    on = f" on {result.METRIC}" if result.METRIC else ""
    for method, g in gap_closure(rows).items():
        lines.append(f"\nGap closure G = ({method} − ZS) / (FullPT − ZS){on} = {g:.2f}")
    return "\n".join(lines) + "\n"


def write_comparison(rows: list[_Row], out_dir: str, meta: dict | None = None) -> tuple[Path, Path]:
    """comparison.md and comparison.json in `out_dir` (metrics as fractions in [0, 1])."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metric = _metric(rows).METRIC
    data = {**(meta or {}), **({"metric": metric} if metric else {}), "rows": [asdict(r) for r in rows],
            "gap_closure": gap_closure(rows)}
    (out / "comparison.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "comparison.md").write_text(comparison_markdown(rows))
    return out / "comparison.md", out / "comparison.json"


def eq6_alpha_oracle(zs: float, compt: float, random_guess: float) -> float:
    """Eq. 6 as an evaluation-side oracle: α = min((ZS - RG) / (C - RG), 1), clipped at 0.

    `zs` is the target's zero-shot accuracy and `compt` the student+p_s accuracy, both on labelled task data
    (so not available to the provider), `random_guess` the chance accuracy (1 / classes for balanced data).
    A target that is already as good as the prompted student gets α = 1 (transfer only the prompt's shift).
    """
    for name, value in (("zs", zs), ("compt", compt), ("random_guess", random_guess)):
        if not 0.0 <= value <= 1.0:
            raise PeftTransferError(f"eq6_alpha_oracle: {name} is an accuracy in [0, 1], got {value}.")
    if compt <= random_guess:
        raise PeftTransferError(
            f"eq6_alpha_oracle: the student prompt's accuracy ({compt}) is not above random guessing "
            f"({random_guess}); Eq. 6 is undefined there.")
    return float(min(max((zs - random_guess) / (compt - random_guess), 0.0), 1.0))
