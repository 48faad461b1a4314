"""The paper's comparison rows on one labelled test set: ZS, FullPT, CompPT, Direct, POST (+ gap closure).

- ZS: the target without a prompt.
- FullPT: a prompt tuned on the target itself with the private data (upper bound; DP or not).
- CompPT: the source prompt p_s on the student it was tuned on.
- Direct: p_s pasted into the target unchanged (only when hidden sizes match).
- POST: the transferred prompt p_t on the target.
Gap closure G = (POST - ZS) / (FullPT - ZS), on accuracy.

`eq6_alpha_oracle` is the paper's α heuristic (Eq. 6), an evaluation-side oracle: it needs the target's
zero-shot and the student prompt's accuracy on labelled task data, which the provider does not hold, so it
is a baseline to compare with (the paper's ablation), never part of the transfer.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..prompts.config import TransferablePromptConfig
from ..prompts.model import hidden_size, load_prompt, model_id
from ..tasks.classification import ClassificationTask
from .classification import evaluate_classification


@dataclass
class ComparisonRow:
    method: str
    model: str
    prompt: str | None
    accuracy: float | None
    macro_f1: float | None
    n: int
    epsilon: float | None = None
    note: str = ""


def _epsilon(path: str) -> float | None:
    dp = TransferablePromptConfig.from_pretrained(path).dp
    return dp.epsilon if dp is not None and dp.private else None


def _label(method: str, epsilon: float | None) -> str:
    return method if epsilon is None or math.isinf(epsilon) else f"{method} (ε={epsilon:g})"


def compare_prompts(
    target: PreTrainedModel,
    tokenizer,
    task: ClassificationTask,
    test_set: Dataset,
    student: PreTrainedModel | None = None,
    source_prompt: str | None = None,
    transferred_prompt: str | None = None,
    full_prompts: list[str] | None = None,
    batch_size: int = 32,
    progress: bool = False,
    include_zero_shot: bool = True,
) -> list[ComparisonRow]:
    """Score every row that the given models and prompts allow; missing inputs give no row.

    `full_prompts`: prompts tuned on the target with the private data (e.g. one non-DP, one DP). Rows carry
    the ε of the prompt they use (from its provenance). The models are only wrapped, never modified.
    """
    rows: list[ComparisonRow] = []
    n = len(test_set)
    tid = model_id(target)

    def score(model, method, prompt=None, use_prompt=True, note=""):
        eps = _epsilon(prompt) if prompt else None
        result = evaluate_classification(model, tokenizer, task, test_set, batch_size=batch_size, use_prompt=use_prompt,
                                         progress=f"{method}" if progress else False)
        rows.append(ComparisonRow(_label(method, eps), model_id(model.get_base_model() if prompt else model), prompt,
                                  result.accuracy, result.macro_f1, result.n, eps, note))

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
            rows.append(ComparisonRow("Direct", tid, source_prompt, None, None, n, _epsilon(source_prompt),
                                      f"not applicable: hidden size {config.token_dim} vs {hidden_size(target)}"))
    if transferred_prompt:
        score(load_prompt(target, transferred_prompt), "POST", transferred_prompt, note="p_t after transfer")
    return rows


def gap_closure(rows: list[ComparisonRow]) -> dict[str, float]:
    """G = (POST - ZS) / (FullPT - ZS) for each FullPT row with the same ε as the POST row."""
    by = {r.method: r for r in rows if r.accuracy is not None}
    zs = by.get("ZS")
    out = {}
    for post in (r for r in rows if r.method.startswith("POST") and r.accuracy is not None):
        full = next((r for r in rows if r.method.startswith("FullPT") and r.epsilon == post.epsilon), None)
        if zs and full and full.accuracy != zs.accuracy:
            out[post.method] = (post.accuracy - zs.accuracy) / (full.accuracy - zs.accuracy)
    return out


def comparison_markdown(rows: list[ComparisonRow]) -> str:
    lines = ["| method | model | n | accuracy | macro-F1 | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        acc = "–" if r.accuracy is None else f"{100 * r.accuracy:.2f} %"
        f1 = "–" if r.macro_f1 is None else f"{100 * r.macro_f1:.2f} %"
        lines.append(f"| {r.method} | {r.model} | {r.n} | {acc} | {f1} | {r.note} |")
    for method, g in gap_closure(rows).items():
        lines.append(f"\nGap closure G = ({method} − ZS) / (FullPT − ZS) = {g:.2f}")
    return "\n".join(lines) + "\n"


def write_comparison(rows: list[ComparisonRow], out_dir: str, meta: dict | None = None) -> tuple[Path, Path]:
    """comparison.md and comparison.json in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {**(meta or {}), "rows": [asdict(r) for r in rows], "gap_closure": gap_closure(rows)}
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
