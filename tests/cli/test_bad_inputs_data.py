"""Bad inputs about data files and the pipeline's YAML (issue #24, classes 1 and 7): column names and cells
(named otherwise, another delimiter, empty text, NaN or fractional labels) and run configs (task names that
leave --out, ambiguous test_size, model paths that do not exist). Same check as tests/cli/test_bad_inputs.py:
one line, exit status 2, nothing written; warnings: exit 0 and one `warning:` line; files that are legal but
were read wrong before are read right. The rows' extra files are built once for this module.
"""

from __future__ import annotations

import csv
import json
import re
import shlex
from pathlib import Path

import pytest
from bad_input_env import PROGRESS, TEXTS, assert_one_clear_line

from peft_transfer.cli import main

LABELS = [1, 0] * 12
TEMPLATE = '"Review: {text}\\nSentiment:"'


def _csv(path, header, rows, delimiter=",") -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def _jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def _task_yaml(env: dict[str, str], **task) -> str:
    """A run config with one task of your own on the tiny models (`task` overrides its keys)."""
    fields = {"name": "mine", "data": env["good_csv"], "template": TEMPLATE,
              "label_words": '[" negative", " positive"]', "public": env["public_csv"], **task}
    entry = ", ".join(f"{k}: {v}" for k, v in fields.items())
    return f"target: {env['target']}\nstudent: {{path: {env['student']}}}\ntasks:\n  - {{{entry}}}\n"


@pytest.fixture(scope="module")
def data_env(env, tmp_path_factory):
    """`env` plus the data files and run configs of these rows."""
    root = tmp_path_factory.mktemp("data")
    rows = list(zip(TEXTS, LABELS))
    _csv(root / "columns.csv", ["review", "sentiment"], rows)
    _csv(root / "semicolon.csv", ["text", "label"], rows, ";")
    _csv(root / "tab.csv", ["text", "label"], rows, "\t")
    _csv(root / "pipe.csv", ["text", "label"], rows, "|")
    _csv(root / "tabs.tsv", ["text", "label"], rows, "\t")
    _csv(root / "empty_cell.csv", ["text", "label"], [(t if i != 5 else "", y) for i, (t, y) in enumerate(rows)])
    _csv(root / "float_labels.csv", ["text", "label"], [(t, f"{y}.0") for t, y in rows])
    _csv(root / "nan_label.csv", ["text", "label"], [(t, y if i != 3 else "") for i, (t, y) in enumerate(rows)])
    _csv(root / "negative_label.csv", ["text", "label"], [(t, -1 if i in (1, 4) else y) for i, (t, y) in
                                                          enumerate(rows)])
    _csv(root / "one_class.csv", ["text", "label"], [(t, 1) for t in TEXTS])
    _csv(root / "labelled_public.csv", ["text", "label"], rows)
    _jsonl(root / "half_label.jsonl", [{"text": t, "label": 0.5 if i == 2 else y} for i, (t, y) in enumerate(rows)])
    _jsonl(root / "string_float_labels.jsonl", [{"text": t, "label": f"{y}.0"} for t, y in rows])
    _jsonl(root / "numbers_as_text.jsonl", [{"text": i, "label": y} for i, (_, y) in enumerate(rows)])
    _jsonl(root / "blank_texts.jsonl", [{"text": None if i == 0 else "   " if i == 9 else t, "label": y}
                                        for i, (t, y) in enumerate(rows)])
    corpus = [json.loads(line)["text"] for line in Path(env["corpus"]).read_text().splitlines()]
    _jsonl(root / "corpus_gaps.jsonl", [{"text": "" if i == 3 else None if i == 7 else t}
                                        for i, t in enumerate(corpus)])
    files = {p.stem: str(p) for p in root.iterdir()}
    yamls = {
        "name_up": _task_yaml(env, name="../escaped"), "name_slash": _task_yaml(env, name="sub/task"),
        "name_absolute": _task_yaml(env, name=str(root / "abs")), "name_dot": _task_yaml(env, name="."),
        "test_size_1_5": _task_yaml(env, test_size=1.5), "test_size_2_5": _task_yaml(env, test_size=2.5),
        "test_size_0": _task_yaml(env, test_size=0),
        "columns": _task_yaml(env, data=root / "columns.csv", text_column="review"),
        "empty_cell": _task_yaml(env, data=root / "empty_cell.csv"),
        "nan_label": _task_yaml(env, data=root / "nan_label.csv"),
        "public_gaps": _task_yaml(env, public=root / "corpus_gaps.jsonl"),
        "missing_target": f"target: {root / 'no-such-target'}\n",
        "missing_student": f"target: {env['target']}\nstudent: {{path: ./no/such/student}}\n",
        "target_file": f"target: {env['a_file']}\n",
        "empty": "", "comments": "# my settings, to be written\n",
    }
    for name, text in yamls.items():
        (root / f"{name}.yaml").write_text(text)
    return dict(env, **{f"{name}_file": path for name, path in files.items()},
                **{f"{name}_yaml": str(root / f"{name}.yaml") for name in yamls})


BAD_INPUTS = [
    # class 1: columns named otherwise (the flags name them), cells without text, labels that are no class
    ("tune-columns-named-otherwise", "tune --model {student} --data {columns_file} --out {tmp}/d1",
     r"columns\.csv has no 'text' column \(its columns: review, sentiment\); name its text column with --text-column"),
    ("tune-label-column-named-otherwise", "tune --model {student} --data {columns_file} --out {tmp}/d2 "
                                          "--text-column review", r"has no 'label' column .* with --label-column"),
    ("tune-text-column-typo", "tune --model {student} --data {columns_file} --out {tmp}/d3 --text-column reveiw "
                              "--label-column sentiment", r"has no 'reveiw' column \(its columns: review, sentiment\)"),
    ("evaluate-columns-named-otherwise", "evaluate --model {target} --data {columns_file}",
     r"has no 'text' column \(its columns: review, sentiment\); name its text column with --text-column"),
    ("compare-columns-named-otherwise", "compare --target {target} --data {columns_file} --text-column review",
     r"has no 'label' column \(its columns: review, sentiment\); name its label column with --label-column"),
    ("evaluate-text-column-absent", "evaluate --model {target} --data {good_csv} --text-column body",
     r"has no 'body' column \(its columns: text, label\)"),
    ("tune-empty-text-cell", "tune --model {student} --data {empty_cell_file} --out {tmp}/d4",
     r"empty_cell\.csv: column 'text' has no text at row 6 \(the first data row is row 1\)"),
    ("evaluate-empty-text-cell", "evaluate --model {target} --data {empty_cell_file}", r"has no text at row 6"),
    ("check-leaks-empty-text-cell", "check-leaks {p_s} --data {empty_cell_file}", r"has no text at row 6"),
    ("evaluate-null-and-blank-texts", "evaluate --model {target} --data {blank_texts_file}",
     r"blank_texts\.jsonl: column 'text' has no text at rows 1, 10"),
    ("evaluate-numbers-as-text", "evaluate --model {target} --data {numbers_as_text_file}",
     r"column 'text' holds int64 values, not text; name the text column with --text-column"),
    ("distill-corpus-empty-text", "distill --teacher {target} --corpus {corpus_gaps_file} --out {tmp}/d5",
     r"corpus_gaps\.jsonl: column 'text' has no text at rows 4, 8"),
    ("compress-calibration-empty-text", "compress --teacher {target} --calibration {corpus_gaps_file} "
                                        "--keep-layers 3 --out {tmp}/d6", r"has no text at rows 4, 8"),
    ("transfer-public-empty-text", "transfer --prompt {p_s} --student {student} --public {corpus_gaps_file} "
                                   "--out {tmp}/d7", r"--public .*corpus_gaps\.jsonl: column 'text' has no text"),
    ("transfer-public-columns-named-otherwise", "transfer --prompt {p_s} --student {student} --public "
                                                "{columns_file} --out {tmp}/d7b",
     r"--public .*columns\.csv has no 'text' column \(its columns: review, sentiment\); name the column of its "
     r"texts 'text'"),
    ("generation-target-column-named-otherwise", "evaluate --model {target} --task bbc_titles --data {columns_file} "
                                                 "--text-column review",
     r"has no 'target' column \(its columns: review, sentiment\); name its target column with --label-column"),
    ("evaluate-nan-label", "evaluate --model {target} --data {nan_label_file}",
     r"nan_label\.csv: Labels missing in column 'label' at row 4 \(the first data row is row 1\)"),
    ("tune-nan-label", "tune --model {student} --data {nan_label_file} --out {tmp}/d8", r"Labels missing .* row 4"),
    ("evaluate-fractional-label", "evaluate --model {target} --data {half_label_file}",
     r"Labels \[0\.5\] in column 'label' are neither class names .* nor class indices 0\.\.1 \(row 3\)"),
    ("evaluate-negative-label", "evaluate --model {target} --data {negative_label_file}",
     r"Labels \[-1\] in column 'label' \(rows 2, 5\) are outside the classes of task 'rotten_tomatoes'"),
    # class 7: the pipeline's YAML
    ("run-task-name-up", "run {name_up_yaml} --out {tmp}/d9", r"config key 'tasks\[0\]\.name' is the task's folder "
                                                              r"under --out, so it must be a plain folder name"),
    ("run-task-name-slash", "run {name_slash_yaml} --out {tmp}/d10", r"plain folder name .* got 'sub/task'"),
    ("run-task-name-absolute", "run {name_absolute_yaml} --out {tmp}/d11", r"'tasks\[0\]\.name' .* plain folder"),
    ("run-task-name-dot", "run {name_dot_yaml} --out {tmp}/d12", r"plain folder name .* got '\.'"),
    ("run-test-size-1.5", "run {test_size_1_5_yaml} --out {tmp}/d13", r"config key 'tasks\[0\]\.test_size' must be a "
                                                                      r"fraction .* below 1 .* or a whole number of "
                                                                      r"examples .* got 1\.5"),
    ("run-test-size-2.5", "run {test_size_2_5_yaml} --out {tmp}/d14", r"'tasks\[0\]\.test_size' .* got 2\.5"),
    ("run-test-size-0", "run {test_size_0_yaml} --out {tmp}/d15", r"'tasks\[0\]\.test_size' .* got 0"),
    ("run-columns-named-otherwise", "run {columns_yaml} --out {tmp}/d16",
     r"config key 'tasks\[0\]\.data' \(.*columns\.csv\) has no 'label' column \(its columns: review, sentiment\); "
     r"name its label column with tasks\[0\]\.label_column"),
    ("run-empty-text-cell", "run {empty_cell_yaml} --out {tmp}/d17", r"'tasks\[0\]\.data' .*: column 'text' has no "
                                                                     r"text at row 6"),
    ("run-nan-label", "run {nan_label_yaml} --out {tmp}/d18", r"'tasks\[0\]\.data' .*Labels missing .* row 4"),
    ("run-public-empty-text", "run {public_gaps_yaml} --out {tmp}/d18b",
     r"public set of task 'mine': tasks\[0\]\.public .*corpus_gaps\.jsonl: column 'text' has no text at rows 4, 8"),
    ("run-missing-target-path", "run {missing_target_yaml} --out {tmp}/d19",
     r"config key 'target': .*no-such-target: no such folder or file"),
    ("run-missing-student-path", "run {missing_student_yaml} --out {tmp}/d20",
     r"config key 'student\.path': \./no/such/student: no such folder or file"),
    ("run-target-is-a-file", "run {target_file_yaml} --out {tmp}/d21", r"config key 'target': .*a_file\.txt is a "
                                                                       r"file; give a model folder"),
]


@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(data_env, capsys, command, message):
    assert_one_clear_line(data_env, capsys, command, message)


def test_a_missing_model_path_in_yaml_is_refused_at_once(data_env, capsys):
    import time

    start = time.perf_counter()
    assert main(shlex.split(f"run {data_env['missing_target_yaml']} --out {data_env['tmp']}/d22")) == 2
    assert time.perf_counter() - start < 5 and "no such folder" in capsys.readouterr().err


WARNINGS = [
    ("tune-one-class", "tune --model {student} --data {one_class_file} --out {tmp}/w1 --max-steps 1",
     r"--data .*one_class\.csv: every training example has label 1 \(positive\), so the prompt learns to answer "
     r"that class always"),
    ("transfer-labelled-public", "transfer --prompt {p_s} --student {student} --target {target} --public "
                                 "{labelled_public_file} --out {tmp}/w2 --steps 1",
     r"--public .*labelled_public\.csv has a 'label' column, so it looks like labelled \(private\) data"),
    ("run-empty-config", "run {empty_yaml} --print-config", r"empty run config .*empty\.yaml, running the defaults"),
    ("run-comments-only-config", "run {comments_yaml} --print-config", r"empty run config .*comments\.yaml"),
]


@pytest.mark.parametrize("command, message", [row[1:] for row in WARNINGS], ids=[row[0] for row in WARNINGS])
def test_likely_mistake_is_one_warning(data_env, capsys, command, message):
    assert main(shlex.split(command.format(**data_env))) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("peft-transfer ") and not PROGRESS.search(line)]
    assert len(lines) == 1 and ": warning: " in lines[0], err
    assert re.search(message, lines[0].split(": warning: ", 1)[1]), lines[0]


READ_RIGHT = ["semicolon_file", "tab_file", "pipe_file", "tabs_file", "float_labels_file",
              "string_float_labels_file"]


@pytest.mark.parametrize("data", READ_RIGHT)
def test_other_delimiters_and_whole_float_labels_are_read_right(data_env, capsys, data):
    assert main(["evaluate", "--model", data_env["target"], "--data", data_env[data], "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 24


def test_tune_reads_the_columns_the_flags_name(data_env, capsys):
    out = f"{data_env['tmp']}/c1"
    assert main(["tune", "--model", data_env["student"], "--data", data_env["columns_file"], "--out", out,
                 "--text-column", "review", "--label-column", "sentiment", "--max-steps", "1"]) == 0
    assert "tuned without differential privacy" in capsys.readouterr().out


def test_the_pipeline_warns_once_about_one_class(data_env, tmp_path):
    from peft_transfer.errors import PeftTransferWarning
    from peft_transfer.pipeline.config import load_pipeline_config
    from peft_transfer.pipeline.tasks import prepare_task

    path = tmp_path / "one_class.yaml"
    path.write_text(_task_yaml(data_env, data=data_env["one_class_file"]))
    config = load_pipeline_config(path)
    with pytest.warns(PeftTransferWarning, match="task 'mine': every training example has label 1") as caught:
        prepare_task(config.tasks[0], config, "tasks[0]")
    assert len([w for w in caught if issubclass(w.category, PeftTransferWarning)]) == 1


def test_a_whole_test_size_is_a_count(data_env, tmp_path):
    from peft_transfer.pipeline.config import load_pipeline_config
    from peft_transfer.pipeline.tasks import prepare_task
    from peft_transfer.pipeline.validation import validate_config

    path = tmp_path / "count.yaml"
    path.write_text(_task_yaml(data_env, test_size=5))
    config = load_pipeline_config(path)
    validate_config(config)
    assert len(prepare_task(config.tasks[0], config, "tasks[0]").test) == 5


def test_the_tables_name_each_row_once():
    ids = [row[0] for row in BAD_INPUTS + WARNINGS]
    assert len(ids) == len(set(ids))
