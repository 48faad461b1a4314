"""The paper's comparison rows for a generation task: ZS, FullPT, CompPT, Direct, POST, scored by ROUGE.

Same rows and rules as `comparison.compare_prompts` (see there); the numbers are ROUGE-L / ROUGE-1 / ROUGE-2
F-measures of greedy continuations (`generation_eval`), and the gap closure G is taken on ROUGE-L.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from datasets import Dataset
from transformers import PreTrainedModel

from ..prompts.config import TransferablePromptConfig
from ..prompts.model import hidden_size, load_prompt, model_id
from ..tasks.generation import GenerationTask
from .comparison import _epsilon, _label
from .generation import evaluate_generation

METRIC = "ROUGE-L"


@dataclass
class GenerationRow:
    method: str
    model: str
    prompt: str | None
    rouge_l: float | None
    rouge_1: float | None
    rouge_2: float | None
    n: int
    epsilon: float | None = None
    note: str = ""


def compare_generation_prompts(
    target: PreTrainedModel,
    tokenizer,
    task: GenerationTask,
    test_set: Dataset,
    student: PreTrainedModel | None = None,
    source_prompt: str | None = None,
    transferred_prompt: str | None = None,
    full_prompts: list[str] | None = None,
    batch_size: int = 16,
    progress: bool = False,
    include_zero_shot: bool = True,
) -> list[GenerationRow]:
    """Score every row the given models and prompts allow (missing inputs give no row); models are only wrapped."""
    rows: list[GenerationRow] = []
    n = len(test_set)

    def score(model, method, prompt=None, use_prompt=True, note=""):
        eps = _epsilon(prompt) if prompt else None
        result = evaluate_generation(model, tokenizer, task, test_set, batch_size=batch_size, use_prompt=use_prompt,
                                     progress=method if progress else False)
        rows.append(GenerationRow(_label(method, eps), model_id(model.get_base_model() if prompt else model), prompt,
                                  result.rouge_l, result.rouge_1, result.rouge_2, result.n, eps, note))

    if include_zero_shot:
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
            rows.append(GenerationRow("Direct", model_id(target), source_prompt, None, None, None, n,
                                      _epsilon(source_prompt),
                                      f"not applicable: hidden size {config.token_dim} vs {hidden_size(target)}"))
    if transferred_prompt:
        score(load_prompt(target, transferred_prompt), "POST", transferred_prompt, note="p_t after transfer")
    return rows


def generation_gap_closure(rows: list[GenerationRow], zs: float | None = None) -> dict[str, float]:
    """G = (POST - ZS) / (FullPT - ZS) on ROUGE-L, for each FullPT row with the same ε as the POST row."""
    if zs is None:
        zs = next((r.rouge_l for r in rows if r.method == "ZS"), None)
    out = {}
    for post in (r for r in rows if r.method.startswith("POST") and r.rouge_l is not None):
        full = next((r for r in rows if r.method.startswith("FullPT") and r.epsilon == post.epsilon), None)
        if zs is not None and full and full.rouge_l != zs:
            out[post.method] = (post.rouge_l - zs) / (full.rouge_l - zs)
    return out


def generation_markdown(rows: list[GenerationRow]) -> str:
    def cell(v):
        return "–" if v is None else f"{100 * v:.2f}"

    lines = ["| method | model | n | ROUGE-L | ROUGE-1 | ROUGE-2 | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.method} | {r.model} | {r.n} | {cell(r.rouge_l)} | {cell(r.rouge_1)} | {cell(r.rouge_2)} "
                     f"| {r.note} |")
    for method, g in generation_gap_closure(rows).items():
        lines.append(f"\nGap closure G = ({method} − ZS) / (FullPT − ZS) on ROUGE-L = {g:.2f}")
    return "\n".join(lines) + "\n"


def write_generation_comparison(rows: list[GenerationRow], out_dir: str, meta: dict | None = None) -> tuple[Path, Path]:
    """comparison.md and comparison.json in `out_dir` (F-measures in [0, 1])."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {**(meta or {}), "metric": METRIC, "rows": [asdict(r) for r in rows],
            "gap_closure": generation_gap_closure(rows)}
    (out / "comparison.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "comparison.md").write_text(generation_markdown(rows))
    return out / "comparison.md", out / "comparison.json"
