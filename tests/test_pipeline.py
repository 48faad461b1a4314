"""`peft-transfer run`: the whole pipeline on tiny models, its resume, its refusal of another run's folder,
and the YAML config's errors."""

import json
import math
from pathlib import Path

import pytest
import yaml
from tiny_models import make_model, make_tokenizer

from peft_transfer import PeftTransferError
from peft_transfer.pipeline.config import (
    PipelineConfig,
    StudentSettings,
    TransferSettings,
    TuneSettings,
    load_pipeline_config,
)
from peft_transfer.pipeline.runner import run_pipeline
from peft_transfer.student import make_student


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
        tune=TuneSettings(num_virtual_tokens=4, max_steps=2, batch_size=8, train_examples=64),
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
        for stage in ("student_prompt", "post_prompt", "fullpt_prompt"):
            assert (out / "rotten_tomatoes" / eps / stage / "adapter_config.json").is_file()

    # the provider's public texts are cut to max_public_words; the provenance fingerprints exactly those
    from peft_transfer import TransferablePromptConfig
    from peft_transfer.assets import load_public_texts
    from peft_transfer.provenance import text_fingerprint

    record = TransferablePromptConfig.from_pretrained(out / "rotten_tomatoes" / "eps-8" / "post_prompt").transfer
    full = load_public_texts("movie_plots", limit=16, seed=0)["text"]
    cut = [" ".join(t.split()[:tiny_config.transfer.max_public_words]) for t in full]
    assert record.num_public_examples == 16 and cut != full
    assert record.public_fingerprint in (text_fingerprint(cut), text_fingerprint(sorted(cut)))

    timings = json.loads((out / "timings.json").read_text())
    stages = ("student_prompt", "post_prompt", "fullpt_prompt", "evaluation")
    assert set(timings) == {"rotten_tomatoes/zero_shot"} | {f"rotten_tomatoes/{e}/{s}" for e in ("eps-inf", "eps-8")
                                                            for s in stages}
    assert all(seconds >= 0 for seconds in timings.values()) and sum(timings.values()) > 0  # tiny stages round to 0

    stamp = (out / "rotten_tomatoes" / "eps-8" / "post_prompt" / "adapter_model.safetensors").stat().st_mtime_ns
    again = run_pipeline(tiny_config, out)  # everything done: nothing is recomputed
    assert json.loads(again["json"].read_text())["results"] == results["results"]
    assert json.loads((out / "timings.json").read_text()) == timings  # skipped stages keep their times
    assert (out / "rotten_tomatoes" / "eps-8" / "post_prompt" / "adapter_model.safetensors").stat().st_mtime_ns == stamp

    tiny_config.seed = 1
    with pytest.raises(PeftTransferError, match="different run .*seed"):
        run_pipeline(tiny_config, out)


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
    assert config.epsilons == [math.inf, 8.0, 3.0] and config.tune.max_steps == 7 and config.tune.batch_size == 16
    assert load_pipeline_config(quick=True).tune.max_steps < PipelineConfig().tune.max_steps


def test_example_yaml_shows_the_defaults():
    """examples/pipeline.yaml lists every setting; apart from its second task it must be the defaults."""
    from pathlib import Path

    example = load_pipeline_config(Path(__file__).parents[1] / "examples" / "pipeline.yaml")
    defaults = PipelineConfig()
    assert example.tasks == ["rotten_tomatoes", "bbc_news"]
    example.tasks = defaults.tasks
    assert example == defaults


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
    assert "'tasks[0].data': Labels ['fine'] in column 'verdict' are neither class names" in capsys.readouterr().err
    assert not (out / "run_config.json").exists()
    path.write_text(path.read_text().replace("inf", "-1"))
    assert main(["run", str(path), "--out", str(out)]) == 2  # refused before anything loads
    assert "'epsilons[0]' must be positive" in capsys.readouterr().err and not out.exists()


def test_keep_layers_default_is_the_papers_rule_for_any_depth():
    from types import SimpleNamespace

    from peft_transfer.pipeline.runner import resolve_keep_layers, student_folder

    def target(depth):
        return SimpleNamespace(config=SimpleNamespace(num_hidden_layers=depth))

    default = PipelineConfig()
    assert default.student.keep_layers is None
    assert resolve_keep_layers(default, target(30)).student.keep_layers == [0, 1, 28, 29]
    assert resolve_keep_layers(default, target(6)).student.keep_layers == [0, 1, 4, 5]
    explicit = PipelineConfig(student=StudentSettings(keep_layers=[0, 29]))
    assert resolve_keep_layers(explicit, target(30)).student.keep_layers == [0, 29]
    # the embedded run's cached student is found under the same name as before the default changed
    before = PipelineConfig(student=StudentSettings(keep_layers=[0, 1, 28, 29]))
    assert student_folder(resolve_keep_layers(default, target(30))) == student_folder(before)
    with pytest.raises(PeftTransferError, match="'student.keep_layers': keep_layers \\[28\\] out of range"):
        resolve_keep_layers(PipelineConfig(student=StudentSettings(keep_layers=[0, 28])), target(12))


@pytest.mark.parametrize("quick", [False, True])
def test_print_config_writes_the_full_config(tmp_path, capsys, quick):
    from peft_transfer.cli import main

    assert main(["run", "--print-config", *(["--quick"] if quick else [])]) == 0
    path = tmp_path / "printed.yaml"
    path.write_text(capsys.readouterr().out)
    assert load_pipeline_config(path) == (PipelineConfig.quick() if quick else PipelineConfig())
    assert "# A task of your own" in path.read_text()
