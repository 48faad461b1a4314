"""The pipeline's stages for a generation task (e.g. `bbc_titles`): the same layout, stages and rows as a
classification task (`runner.run_pipeline`), scored by ROUGE-L instead of accuracy.

    <task>/zero_shot.json                ROUGE of the target without a prompt
    <task>/eps-<ε>/student_prompt/       p_s: DP tuning on the student, loss = each example's mean token loss
    <task>/eps-<ε>/post_prompt/          p_t: POST at every token of student+p_s's continuation of public inputs
    <task>/eps-<ε>/fullpt_prompt/        FullPT on the target
    <task>/eps-<ε>/comparison.{md,json}  ZS / FullPT / CompPT / Direct / POST
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..errors import PeftTransferError
from ..tasks.generation import GenerationTask
from .config import PipelineConfig

METRIC = "ROUGE-L"


def _record(task_name: str, epsilon: float, method: str, row: dict) -> dict:
    return {"task": task_name, "epsilon": epsilon, "method": method, "metric": METRIC, "score": row["rouge_l"],
            "rouge_1": row["rouge_1"], "rouge_2": row["rouge_2"], "n": row["n"]}


def run_generation_task(task: GenerationTask, out: Path, config: PipelineConfig, target, student,
                        tokenizer, prepared=None) -> list[dict]:
    """Run (or resume) every stage of one generation task; returns its result records (ROUGE-L as `score`).
    `prepared` (`pipeline.tasks.PreparedTask`): its data and public texts, already loaded and checked."""
    from ..assets import load_labelled_dataset
    from ..assets.data_files import load_texts
    from ..evaluation.generation import evaluate_generation
    from ..evaluation.generation_comparison import compare_generation_prompts, write_generation_comparison
    from .runner import _eps_tag, _say, _timed, _transfer, _tune

    name = task.name
    if prepared is not None:
        train, test, public_name, public = prepared.train, prepared.test, prepared.public_name, prepared.public
    else:
        public_name = config.public_sets.get(name)
        if public_name is None:
            raise PeftTransferError(f"public_sets has no entry for task {name!r}")
        data = load_labelled_dataset(name)
        train = data["train"].shuffle(seed=config.seed)
        if config.tune.train_examples:
            train = train.select(range(min(config.tune.train_examples, len(train))))
        test = data["test"].select(range(min(config.test_examples or len(data["test"]), len(data["test"]))))
        public = load_texts(public_name, limit=config.transfer.num_public, seed=config.seed,
                            max_words=config.transfer.max_public_words or None)
    zs_file = out / name / "zero_shot.json"
    if zs_file.is_file():
        zs = json.loads(zs_file.read_text())
    else:
        _say(f"{name}: zero-shot ROUGE of the target on {len(test)} test examples")
        with _timed(out, f"{name}/zero_shot"):
            zs = evaluate_generation(target, tokenizer, task, test, use_prompt=False, progress="ZS").to_dict()
        zs_file.parent.mkdir(parents=True, exist_ok=True)
        zs_file.write_text(json.dumps(zs))
    results = [_record(name, math.inf, "ZS", zs)]
    for epsilon in config.epsilons:
        stage = out / name / _eps_tag(epsilon)
        comparison = stage / "comparison.json"
        key = f"{name}/{_eps_tag(epsilon)}"
        if not comparison.is_file():
            _say(f"{name}, ε={epsilon:g}: data owner tunes p_s on the student (private data, mean token loss)")
            with _timed(out, f"{key}/student_prompt", stage / "student_prompt"):
                source = _tune(student, tokenizer, task, train, config, epsilon, stage / "student_prompt")
            alpha = config.transfer.alpha
            _say(f"{name}, ε={epsilon:g}: provider transfers p_s to the target at every token of the student's "
                 f"continuations of public {public_name} (α={alpha:g})")
            with _timed(out, f"{key}/post_prompt", stage / "post_prompt"):
                post = _transfer(source, student, target, tokenizer, public, config, stage / "post_prompt", alpha,
                                 public_name)
            full = []
            if config.full_pt:
                _say(f"{name}, ε={epsilon:g}: FullPT upper bound, a prompt tuned on the target")
                with _timed(out, f"{key}/fullpt_prompt", stage / "fullpt_prompt"):
                    full = [_tune(target, tokenizer, task, train, config, epsilon, stage / "fullpt_prompt")]
            _say(f"{name}, ε={epsilon:g}: evaluating FullPT / CompPT / Direct / POST (greedy, ROUGE)")
            with _timed(out, f"{key}/evaluation"):
                rows = compare_generation_prompts(target, tokenizer, task, test, student=student, source_prompt=source,
                                                  transferred_prompt=post, full_prompts=full, progress=True,
                                                  include_zero_shot=False)
            write_generation_comparison(rows, str(stage), meta={"task": name, "epsilon": str(epsilon)})
        for row in json.loads(comparison.read_text())["rows"]:
            method = row["method"].split(" ")[0]
            if method != "ZS" and row["rouge_l"] is not None:
                results.append(_record(name, epsilon, method, row))
    return results
