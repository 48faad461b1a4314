"""`peft-transfer run`: the whole pipeline on tiny models, its resume, its refusal of another run's folder,
and the YAML config's errors."""

import json
import math
import os
from pathlib import Path

import pytest
import yaml
from tiny_models import make_model, make_tokenizer

from peft_transfer import PeftTransferError, TransferablePromptConfig, get_task
from peft_transfer.assets import load_labelled_dataset
from peft_transfer.pipeline.config import (
    PipelineConfig,
    StudentSettings,
    TransferSettings,
    TuneSettings,
    load_pipeline_config,
)
from peft_transfer.pipeline.runner import run_pipeline
from peft_transfer.prompts.handover import PROMPT_FILES
from peft_transfer.student.layers import make_student


@pytest.fixture
def tiny_config(tmp_path):
    teacher = make_model("llama", num_layers=4)
    tok = make_tokenizer()
    teacher.save_pretrained(tmp_path / "target")
    tok.save_pretrained(tmp_path / "target")
    student = make_student(teacher, [0, 3])
    student.save_pretrained(tmp_path / "student")
    tok.save_pretrained(tmp_path / "student")
    return PipelineConfig(
        target=str(tmp_path / "target"), tasks=["rotten_tomatoes"], epsilons=[math.inf, 8.0], test_examples=12,
        student=StudentSettings(path=str(tmp_path / "student")),
        tune=TuneSettings(num_virtual_tokens=4, max_steps=2, batch_size=8, train_examples=64, budget_examples=16),
        transfer=TransferSettings(num_public=16, max_steps=2, batch_size=4),
    )


def test_pipeline_runs_resumes_and_refuses_another_run(tiny_config, tmp_path):
    out = tmp_path / "run"
    paths = run_pipeline(tiny_config, out)
    results = json.loads(paths["json"].read_text())
    methods = {(r["method"], r["epsilon"]) for r in results["results"]}
    for method in ("FullPT", "CompPT", "Direct", "POST"):
        assert (method, "inf") in methods and (method, 8.0) in methods
    assert ("ZS", "inf") in methods
    assert paths["png"].stat().st_size > 0 and "| rotten_tomatoes |" in paths["md"].read_text()
    assert (out / "transfer_curve_rotten_tomatoes_eps-8.png").is_file()
    for eps in ("eps-inf", "eps-8"):
        for stage in ("student_prompt", "post_prompt", "fullpt_prompt"):  # exports; the rest stays in -work
            assert sorted(os.listdir(out / "rotten_tomatoes" / eps / stage)) == sorted(PROMPT_FILES)
            assert (out / "rotten_tomatoes" / eps / f"{stage}-work" / "adapter_config.json").is_file()

    # the provider's public texts are cut to max_public_words; the provenance fingerprints exactly those
    from peft_transfer.assets import load_public_texts
    from peft_transfer.provenance import text_fingerprint

    record = TransferablePromptConfig.from_pretrained(out / "rotten_tomatoes" / "eps-8" / "post_prompt").transfer
    assert record.alpha == 0.5 and record.alpha_source is None  # the provider's α, set without labels
    full = load_public_texts("movie_plots", limit=16, seed=0)["text"]
    cut = [" ".join(t.split()[:tiny_config.transfer.max_public_words]) for t in full]
    assert record.num_public_examples == 16 and cut != full
    assert record.public_fingerprint in (text_fingerprint(cut), text_fingerprint(sorted(cut)))

    timings = json.loads((out / "timings.json").read_text())
    stages = ("student_prompt", "post_prompt", "fullpt_prompt", "evaluation")
    assert set(timings) == {"rotten_tomatoes/zero_shot"} | {f"rotten_tomatoes/{e}/{s}" for e in ("eps-inf", "eps-8")
                                                            for s in stages}
    assert all(seconds >= 0 for seconds in timings.values()) and sum(timings.values()) > 0  # tiny stages round to 0

    # the DP stage spends the run's budget (2 steps x 8 = 16 examples) as the DP plan says, the non-DP one as given
    from peft_transfer.tune.dp_plan import plan_dp

    plan = plan_dp(64, 8.0, 1 / 640, 4 * 32, budget_examples=16)
    dp = TransferablePromptConfig.from_pretrained(out / "rotten_tomatoes" / "eps-8" / "student_prompt").dp
    assert dp.steps == plan.steps and dp.sample_rate == pytest.approx(plan.batch_size / 64) and dp.epsilon <= 8.0
    assert plan.batch_size * plan.steps <= 16 and plan.steps > 2

    stamp = (out / "rotten_tomatoes" / "eps-8" / "post_prompt" / "adapter_model.safetensors").stat().st_mtime_ns
    again = run_pipeline(tiny_config, out)  # everything done: nothing is recomputed
    assert json.loads(again["json"].read_text())["results"] == results["results"]
    assert json.loads((out / "timings.json").read_text()) == timings  # skipped stages keep their times
    assert (out / "rotten_tomatoes" / "eps-8" / "post_prompt" / "adapter_model.safetensors").stat().st_mtime_ns == stamp

    # a run folder from before a new setting existed is still this run's, when the setting is at its default
    settings = json.loads((out / "run_config.json").read_text())
    del settings["eq6_alpha_oracle"]
    (out / "run_config.json").write_text(json.dumps(settings))
    run_pipeline(tiny_config, out)

    # Eq. 6 only as an evaluation-side oracle row: its own transfer, α from (here made-up) labelled accuracies
    from peft_transfer.assets import load_model
    from peft_transfer.assets.data_files import load_texts
    from peft_transfer.evaluation.comparison import ComparisonRow
    from peft_transfer.pipeline.runner import _oracle_row

    target, tok = load_model(tiny_config.target)
    student, _ = load_model(tiny_config.student.path)
    stage = out / "rotten_tomatoes" / "eps-8"
    test = load_labelled_dataset("rotten_tomatoes")["test"].select(range(8))
    rows = [ComparisonRow("CompPT (ε=8)", "s", "p", 0.9, 0.9, 8, 8.0)]
    row = _oracle_row({"accuracy": 0.7}, rows, str(stage / "student_prompt"), student, target, tok,
                      get_task("rotten_tomatoes"), test, load_texts("movie_plots", limit=16), tiny_config, stage,
                      "movie_plots")
    assert row.method == "POST-oracle-α" and row.epsilon == 8.0 and "test labels" in row.note
    oracle = TransferablePromptConfig.from_pretrained(stage / "post_oracle_alpha").transfer
    assert oracle.alpha == pytest.approx(0.5) and "oracle" in oracle.alpha_source  # (0.7 - 0.5) / (0.9 - 0.5)
    rows = [ComparisonRow("CompPT", "s", "p", 0.5, 0.3, 8)]  # a student prompt at chance: Eq. 6 is undefined
    undefined = _oracle_row({"accuracy": 0.7}, rows, None, None, target, None, get_task("rotten_tomatoes"), test,
                            None, None, None, None)
    assert undefined.accuracy is None and "not above random" in undefined.note

    tiny_config.seed = 1
    with pytest.raises(PeftTransferError, match="different run .*seed"):
        run_pipeline(tiny_config, out)


@pytest.mark.parametrize("field, value, message", [
    ("public_sets", {"rotten_tomatoes": "bbc_articles", "bbc_news": "bbc_articles"},
     "'bbc_articles' comes from the same source as the private task 'bbc_news'"),
    ("corpus", "wikipedia+bbc_articles", "distillation corpus 'bbc_articles' comes from the same source"),
    ("calibration", "lee_news+bbc_articles", "calibration text 'bbc_articles' comes from the same source"),
    ("public_file", None, "16 of the 16 texts of the public set .* also occur in the private task 'rotten_tomatoes'"),
])
def test_public_sets_that_overlap_a_private_task_are_refused(tiny_config, tmp_path, field, value, message):
    tiny_config.tasks = ["rotten_tomatoes", "bbc_news"]
    if field == "public_sets":
        tiny_config.public_sets = value
    elif field == "corpus":  # the student is distilled by the run
        tiny_config.student.path, tiny_config.student.source, tiny_config.student.corpus = None, "distill", value
    elif field == "calibration":  # the student is compressed by the run (the default with no shipped student)
        tiny_config.student.path, tiny_config.student.calibration = None, value
    else:  # a file of review sentences, cut to their first 12 words like the transfer's public texts
        texts = [" ".join(t.split()[:12]) for t in load_labelled_dataset("rotten_tomatoes")["test"]["text"][:16]]
        (tmp_path / "public.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        tiny_config.public_sets = {"rotten_tomatoes": str(tmp_path / "public.jsonl"), "bbc_news": "lee_news"}
    with pytest.raises(PeftTransferError, match=message) as info:
        run_pipeline(tiny_config, tmp_path / "run")
    assert "Review" not in str(info.value) and not list((tmp_path / "run").glob("*/eps-*"))  # nothing trained


def test_alpha_from_labels_is_refused_in_the_provider_stage(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("transfer: {alpha: null}")
    with pytest.raises(PeftTransferError, match="eq6_alpha_oracle"):
        load_pipeline_config(path)


def test_non_run_folder_is_refused(tiny_config, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(PeftTransferError, match="not a peft-transfer run folder"):
        run_pipeline(tiny_config, tmp_path / "busy")


@pytest.mark.parametrize("text, message", [
    ("tune: {max_step: 5}", "unknown config key 'max_step' in section 'tune'"),
    ("bogus: 1", "unknown config key 'bogus'"),
    ("tasks: rotten_tomatoes", "'tasks' must be a list"),
    ("tune: {max_steps: five}", "'tune.max_steps' must be an integer"),
    ("epsilons: [inf, eight]", r"'epsilons\[1\]' must be a number"),
    ("[1, 2]", "must hold a mapping"),
])
def test_yaml_errors_name_the_key(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(PeftTransferError, match=message):
        load_pipeline_config(path)


def test_yaml_overrides_and_quick_preset(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epsilons: [inf, 8, 3]\ntune: {max_steps: 7}\n")
    config = load_pipeline_config(path)
    assert config.epsilons == [math.inf, 8.0, 3.0] and config.tune.max_steps == 7 and config.tune.batch_size == 128
    assert load_pipeline_config(quick=True).tune.max_steps < PipelineConfig().tune.max_steps


def test_example_yaml_shows_the_defaults():
    """examples/pipeline.yaml lists every setting; apart from its second task it must be the defaults."""
    from pathlib import Path

    example = load_pipeline_config(Path(__file__).parents[2] / "examples" / "pipeline.yaml")
    defaults = PipelineConfig()
    assert example.tasks == ["rotten_tomatoes", "bbc_news"]
    example.tasks = defaults.tasks
    assert example == defaults


def test_student_choice_shipped_first_then_distilled_and_said(monkeypatch, tmp_path, capsys):
    from peft_transfer.assets import shipped_students
    from peft_transfer.pipeline import runner

    assert shipped_students.shipped_student_for("smollm2-135m") is None or \
        shipped_students.shipped_student_for("smollm2-135m").available()
    shipped = shipped_students.ShippedStudent("smollm2-135m-student", teacher="smollm2-135m")
    monkeypatch.setattr(runner, "shipped_student_for", lambda target: shipped)
    assert runner.build_student(PipelineConfig()) == "smollm2-135m-student"
    assert "shipped with peft-transfer" in capsys.readouterr().out
    # `source: distill` distils on this machine and says so
    jobs = []
    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path))
    monkeypatch.setattr(runner, "run_distillation", lambda job: jobs.append(job))
    config = PipelineConfig(student=StudentSettings(source="distill", max_steps=3))
    assert runner.build_student(config) == str(runner.student_folder(config))
    assert jobs[0].max_steps == 3 and jobs[0].recipe == config.student.recipe
    assert "no shipped student" in capsys.readouterr().out
    monkeypatch.setattr(runner, "shipped_student_for", lambda target: None)
    with pytest.raises(PeftTransferError, match="no shipped student"):
        runner.build_student(PipelineConfig(student=StudentSettings(source="shipped")))
    with pytest.raises(PeftTransferError, match="student.source"):
        (tmp_path / "bad.yaml").write_text("student: {source: gpu}\n")
        load_pipeline_config(tmp_path / "bad.yaml")


def test_compressed_student_source_builds_once_in_its_own_folder(monkeypatch, tmp_path, capsys):
    """`student.source: compress` cuts the target without training (never the shipped student), in a cache
    folder of its own whose name depends on the compression settings only; a bad method or size is refused."""
    from peft_transfer.assets import shipped_students
    from peft_transfer.pipeline import runner
    from peft_transfer.pipeline.validation import validate_config

    monkeypatch.setenv("PEFT_TRANSFER_CACHE", str(tmp_path))
    monkeypatch.setattr(runner, "shipped_student_for",
                        lambda target: shipped_students.ShippedStudent("smollm2-135m-student", "smollm2-135m"))
    jobs = []
    monkeypatch.setattr(runner, "run_compression", lambda job: jobs.append(job))
    config = PipelineConfig(student=StudentSettings(source="compress", layers=12, method="drop"))
    assert runner.build_student(config) == str(runner.student_folder(config))
    assert (jobs[0].keep, jobs[0].method, jobs[0].calibration) == (12, "drop", config.student.calibration)
    assert "without training" in capsys.readouterr().out
    distilled = PipelineConfig(student=StudentSettings(source="distill"))
    assert runner.student_folder(config) != runner.student_folder(distilled)
    # a distilled student's folder is the one it had before the compression settings existed
    other_size = PipelineConfig(student=StudentSettings(source="distill", layers=8))
    assert runner.student_folder(other_size) == runner.student_folder(distilled)
    assert runner.student_folder(PipelineConfig(student=StudentSettings(source="compress", layers=16))) != \
        runner.student_folder(config)
    with pytest.raises(PeftTransferError, match="student.method"):
        validate_config(PipelineConfig(student=StudentSettings(source="compress", method="prune")))
    with pytest.raises(PeftTransferError, match="'precision' must be one of"):
        validate_config(PipelineConfig(precision="fp16"))
    with pytest.raises(PeftTransferError, match="'transfer.loss_over' must be one of"):
        validate_config(PipelineConfig(transfer=TransferSettings(loss_over="labels")))
    with pytest.raises(PeftTransferError, match="student.layers"):
        runner.resolve_keep_layers(config, make_model("llama", num_layers=4))
    # `auto` with no shipped student compresses, keeping two thirds of the target's layers unless told
    monkeypatch.setattr(runner, "shipped_student_for", lambda target: None)
    auto = runner.resolve_keep_layers(PipelineConfig(), make_model("llama", num_layers=6))
    assert auto.student.layers == 4 and runner.compresses(auto)
    runner.build_student(auto)
    assert (jobs[-1].keep, jobs[-1].method) == (4, "linear-cos")
    assert not runner.compresses(PipelineConfig(student=StudentSettings(source="distill")))


def _custom_yaml(tmp_path, tiny_config, labels) -> Path:
    from datasets import Dataset

    texts = ["a wonderful moving film", "a dull boring mess", "great acting", "the worst of times"] * 10
    Dataset.from_dict({"review": texts, "verdict": labels}).to_csv(tmp_path / "mine.csv")
    config = {
        "target": tiny_config.target, "epsilons": ["inf"], "full_pt": False, "test_examples": 8,
        "student": {"path": tiny_config.student.path},
        "tune": {"num_virtual_tokens": 4, "max_steps": 2, "batch_size": 8},
        "transfer": {"num_public": 16, "max_steps": 2, "batch_size": 4},
        "tasks": [{"name": "verdicts", "data": str(tmp_path / "mine.csv"), "text_column": "review",
                   "label_column": "verdict", "template": "Opinion: {text}\nVerdict:",
                   "label_words": [[" bad"], [" good"]], "public": "movie_plots", "test_size": 0.25}],
    }
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_task_of_your_own_runs_from_the_yaml(tiny_config, tmp_path, capsys):
    from peft_transfer import TransferablePromptConfig
    from peft_transfer.cli import main

    path = _custom_yaml(tmp_path, tiny_config, ["good", "bad", "Good", "bad"] * 10)  # labels as class names
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())["results"]
    assert {r["method"] for r in results if r["task"] == "verdicts"} >= {"ZS", "CompPT", "Direct", "POST"}
    assert {r["n"] for r in results} == {8}  # 40 rows, 10 held out by the split rule, first 8 scored
    record = TransferablePromptConfig.from_pretrained(str(out / "verdicts" / "eps-inf" / "post_prompt")).task
    assert record.template == "Opinion: {text}\nVerdict:" and record.label_words == [[" bad"], [" good"]]
    assert set(json.loads((out / "run_config.json").read_text())["data_fingerprints"]) == {"verdicts"}


def test_a_run_refused_by_validation_leaves_no_run_config(tiny_config, tmp_path, capsys):
    from peft_transfer.cli import main

    path = _custom_yaml(tmp_path, tiny_config, ["good", "bad", "fine", "bad"] * 10)  # 'fine' is no class
    out = tmp_path / "run"
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "mine.csv): Labels ['fine'] in column 'verdict' are neither class names" in capsys.readouterr().err
    assert not (out / "run_config.json").exists()
    path.write_text(path.read_text().replace("inf", "-1"))
    assert main(["run", str(path), "--out", str(out)]) == 2  # refused before anything loads
    assert "'epsilons[0]' must be positive" in capsys.readouterr().err and not out.exists()


def test_keep_layers_default_is_the_papers_rule_for_any_depth():
    """A distilled student (`source: distill`) keeps the paper's first 2 + last 2 layers unless told."""
    from types import SimpleNamespace

    from peft_transfer.pipeline.runner import resolve_keep_layers, student_folder

    def target(depth):
        return SimpleNamespace(config=SimpleNamespace(num_hidden_layers=depth))

    default = PipelineConfig(student=StudentSettings(source="distill"))
    assert default.student.keep_layers is None
    assert resolve_keep_layers(default, target(30)).student.keep_layers == [0, 1, 28, 29]
    assert resolve_keep_layers(default, target(6)).student.keep_layers == [0, 1, 4, 5]
    explicit = PipelineConfig(student=StudentSettings(source="distill", keep_layers=[0, 29]))
    assert resolve_keep_layers(explicit, target(30)).student.keep_layers == [0, 29]
    # the embedded run's cached student is found under the same name as before the default changed
    before = PipelineConfig(student=StudentSettings(keep_layers=[0, 1, 28, 29], source="distill"))
    assert student_folder(resolve_keep_layers(default, target(30))) == student_folder(before)
    with pytest.raises(PeftTransferError, match="'student.keep_layers': keep_layers \\[28\\] out of range"):
        resolve_keep_layers(PipelineConfig(student=StudentSettings(source="distill", keep_layers=[0, 28])),
                            target(12))


@pytest.mark.parametrize("quick", [False, True])
def test_print_config_writes_the_full_config(tmp_path, capsys, quick):
    from peft_transfer.cli import main

    assert main(["run", "--print-config", *(["--quick"] if quick else [])]) == 0
    path = tmp_path / "printed.yaml"
    path.write_text(capsys.readouterr().out)
    assert load_pipeline_config(path) == (PipelineConfig.quick() if quick else PipelineConfig())
    assert "# A task of your own" in path.read_text()


def test_generation_task_through_the_pipeline(tiny_config, tmp_path, one_thread):
    """tasks: [bbc_titles]: the same stages and rows, scored by ROUGE-L; POST at the student's continuations."""
    from peft_transfer import TransferablePromptConfig

    tiny_config.tasks, tiny_config.epsilons, tiny_config.test_examples = ["bbc_titles"], [8.0], 4
    tiny_config.transfer.num_public = 12
    out = tmp_path / "run"
    paths = run_pipeline(tiny_config, out)
    results = json.loads(paths["json"].read_text())["results"]
    assert {r["method"] for r in results} == {"ZS", "FullPT", "CompPT", "Direct", "POST"}
    assert all(r["metric"] == "ROUGE-L" and 0.0 <= r["score"] <= 1.0 and r["n"] == 4 for r in results)
    assert "| bbc_titles (ROUGE-L) | 8 |" in paths["md"].read_text()
    stage = out / "bbc_titles" / "eps-8"
    assert "ROUGE-L" in (stage / "comparison.md").read_text()
    post = TransferablePromptConfig.from_pretrained(stage / "post_prompt")
    assert post.task.kind == "generation" and post.dp.private and "continuation" in post.transfer.distilled_positions
    assert post.transfer.public_dataset == "lee_news"
    assert TransferablePromptConfig.from_pretrained(stage / "student_prompt").dp.private
