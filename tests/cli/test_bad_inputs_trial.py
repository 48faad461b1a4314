"""Inputs from the independent trial (benchmarks/results/bad_inputs_trial.md) that were silently wrong or unclear:
each is now one clear line, exit 2, nothing written."""

from __future__ import annotations

import json

import pytest
from bad_input_env import assert_one_clear_line

ROWS = [
    ("push-id-checked-before-training", "tune --model {student} --data {good_csv} --max-steps 1 --out {tmp}/tr1 "
                                        "--push-to-hub not-a-repo-id", r"--push-to-hub: a Hub repo is 'org/name'"),
    ("push-command-bad-id", "push {p_s} org/name/extra", r"a Hub repo is 'org/name'"),
    ("prompt-folder-as-model", "tune --model {p_s} --data {good_csv} --out {tmp}/tr2",
     r"--model .*p_s is a saved prompt \(adapter_config.json\), not a model"),
    ("prompt-folder-as-target", "transfer --prompt {p_s} --student {student} --target {p_s} --out {tmp}/tr3",
     r"--target .*p_s is a saved prompt"),
    ("prompt-folder-as-teacher", "compress --teacher {p_s} --keep-layers 2 --out {tmp}/tr4", r"is a saved prompt"),
    ("plain-folder-as-model", "evaluate --model {plain} --data {good_csv}", r"is a folder but not a model"),
    ("distill-every-loss-weight-0", "distill --teacher {target} --corpus {corpus} --out {tmp}/tr5 --alpha-ce 0 "
                                    "--alpha-lm 0 --alpha-cos 0 --alpha-hidden 0", r"every loss weight is 0 "
                                                                                   r"\(--alpha-ce 0"),
    ("check-leaks-nothing-to-scan", "check-leaks {empty_dir} --data {good_csv}", r"no file to scan under"),
    ("json-one-object", "tune --model {student} --data {object_json} --out {tmp}/tr6",
     r"holds one JSON object, not rows"),
    ("run-task-twice", "run {twice_yaml} --out {tmp}/tr7", r"lists 'rotten_tomatoes' more than once"),
    ("out-empty", "tune --model {student} --data {good_csv} --out ''", r"--out is empty"),
]


@pytest.fixture(scope="module")
def trial_env(env, tmp_path_factory):
    root = tmp_path_factory.mktemp("trial")
    (root / "empty").mkdir()
    (root / "object.json").write_text(json.dumps({"text": "a fine film", "label": 1}))
    (root / "twice.yaml").write_text("tasks: [rotten_tomatoes, rotten_tomatoes]\n")
    return dict(env, empty_dir=str(root / "empty"), object_json=str(root / "object.json"),
                twice_yaml=str(root / "twice.yaml"))


@pytest.mark.parametrize("command, message", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_trial_input_is_one_clear_line(trial_env, capsys, command, message):
    assert_one_clear_line(trial_env, capsys, command, message)
