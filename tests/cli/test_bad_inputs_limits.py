"""Bad inputs about limits: lengths against the model's positions, DP arguments, what the user typed against what
runs, and small settings that make nonsense (issue #24, classes 2, 3, 4 and 8). Same check as
tests/cli/test_bad_inputs.py: one line, exit status 2, nothing written; warnings: exit 0 and one `warning:` line.
The rows' extra models and files are built once for this module.
"""

from __future__ import annotations

import argparse
import json
import shlex

import pytest
from bad_input_env import assert_one_clear_line

from peft_transfer.cli import main

MINE = "tasks:\n  - {{name: mine, data: {good_csv}, template: '{{text}} is', public: {public_csv}, {extra}}}\n"
YAMLS = {
    "huge_eps": "epsilons: [inf, 1000000]\n",
    "tiny_eps": "epsilons: [0.001]\n",
    "shared_word": MINE.replace("{extra}", "label_words: [[' good', ' fine'], [' bad', ' good']]"),
    "shared_name": MINE.replace("{extra}", "label_words: [' good', ' bad'], class_names: [upbeat, upbeat]"),
}


@pytest.fixture(scope="module")
def lim(env, tmp_path_factory):
    """`env` plus the pipeline configs of these rows."""
    root = tmp_path_factory.mktemp("limits")
    for name, text in YAMLS.items():
        (root / f"{name}.yaml").write_text(text.format(**env))
    return dict(env, **{f"{name}_yaml": str(root / f"{name}.yaml") for name in YAMLS})


BAD_INPUTS = [
    # class 3: DP arguments
    ("tune-epsilon-too-small", "tune --model {student} --data {good_csv} --out {tmp}/l1 --epsilon 0.001",
     r"argument --epsilon: 0\.001 is below 0\.01, the smallest ε .* at least 0\.01"),
    ("tune-epsilon-huge", "tune --model {student} --data {good_csv} --out {tmp}/l2 --epsilon 1e6",
     r"argument --epsilon: 1e\+06 is above 50: .* use inf to train without DP, or an ε of at most 50"),
    ("tune-epsilon-51", "tune --model {student} --data {good_csv} --out {tmp}/l3 --epsilon 51", r"51 is above 50"),
    ("tune-stop-at-epsilon-huge", "tune --model {student} --data {good_csv} --out {tmp}/l4 --noise-multiplier 1 "
                                  "--stop-at-epsilon 1e9", r"argument --stop-at-epsilon: 1e\+09 is above 50"),
    ("audit-epsilon-huge", "audit --model {target} --data {good_csv} --out {tmp}/l5 --epsilon 500",
     r"argument --epsilon: 500 is above 50"),
    ("tune-delta-without-epsilon", "tune --model {student} --data {good_csv} --out {tmp}/l6 --delta 1e-5",
     r"--delta 1e-05 is a differential-privacy setting, but without --epsilon: the run would train without DP\. "
     r"Add --epsilon .* or --noise-multiplier"),
    ("tune-stop-at-epsilon-without-epsilon", "tune --model {student} --data {good_csv} --out {tmp}/l7 "
                                             "--stop-at-epsilon 3", r"--stop-at-epsilon 3 is a differential-privacy"),
    ("tune-delta-with-epsilon-inf", "tune --model {student} --data {good_csv} --out {tmp}/l8 --epsilon inf "
                                    "--delta 0.001", r"--delta 0\.001 .* but --epsilon inf means no DP"),
    ("audit-delta-with-epsilon-inf", "audit --model {target} --data {good_csv} --out {tmp}/l9 --epsilon inf "
                                     "--delta 1e-4", r"--delta 0\.0001 .*--epsilon inf means no DP.*drop --delta"),
    ("tune-epsilon-below-rdp-floor", "tune --model {student} --data {good_csv} --out {tmp}/l10 --epsilon 0.05 "
                                     "--accountant rdp --delta 1e-6 --max-steps 1",
     r"--epsilon 0\.05 cannot be reached: for 1 step .* the rdp accountant certifies no ε below 0\.14.* at least "
     r"0\.15 \(or the prv accountant\)"),
    ("tune-delta-tiny", "tune --model {student} --data {good_csv} --out {tmp}/l13 --epsilon 8 --delta 1e-20",
     r"argument --delta: 1e-20 is below 1e-10, where the privacy accountants' floating-point error dominates"),
    ("audit-delta-1", "audit --model {target} --data {good_csv} --out {tmp}/l14 --delta 1",
     r"argument --delta: must lie strictly between 0 and 1"),
    ("run-epsilon-huge", "run {huge_eps_yaml} --out {tmp}/l11", r"config key 'epsilons\[1\]': 1e\+06 is above 50"),
    ("run-epsilon-too-small", "run {tiny_eps_yaml} --out {tmp}/l12",
     r"config key 'epsilons\[0\]': 0\.001 is below 0\.01"),
    # class 4: what the user typed against what runs
    ("evaluate-two-classes-one-word", "evaluate --model {target} --data {good_csv} --template '{{text}} is' "
                                      "--label-words '[[\" good\"], [\" good\"]]'",
     r"Task 'custom': classes 0 and 1 share the label word ' good', so the model cannot tell them apart"),
    ("tune-classes-0-and-2-share-a-word", "tune --model {student} --data {good_csv} --out {tmp}/l15 --template "
                                          "'{{text}}\\nIt was' --label-words '[[\" great\", \" good\"], [\" bad\"], "
                                          "[\" fine\", \" great\"]]'",
     r"classes 0 and 2 share the label word ' great'"),
    ("run-two-classes-one-word", "run {shared_word_yaml} --out {tmp}/l16",
     r"config key 'tasks\[0\]': Task 'mine': classes 0 and 1 share the label word ' good'"),
    ("run-two-classes-one-name", "run {shared_name_yaml} --out {tmp}/l17",
     r"classes 0 and 1 share the class name 'upbeat', so labels given by name would be ambiguous"),
]


@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(lim, capsys, command, message):
    assert_one_clear_line(lim, capsys, command, message)


def test_the_table_names_each_row_once():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("typed, meant", [
    ("Review: {text}\\nSentiment:", "Review: {text}\nSentiment:"),  # as the help shows it, typed in a shell
    ("Q:\\t{text}\\nA:", "Q:\t{text}\nA:"),
    ("{text}\nis", "{text}\nis"),  # a real newline (YAML in double quotes) stays one
    ("a\\\\n {text}", "a\\n {text}"),  # an escaped backslash stays one backslash
    ("C:\\data {text}", "C:\\data {text}"),  # any other backslash stays as typed
])
def test_a_template_means_the_same_typed_or_in_yaml(typed, meant, tmp_path):
    from peft_transfer.cli.common import explicit_task
    from peft_transfer.pipeline.config import load_pipeline_config
    from peft_transfer.pipeline.tasks import prepare_task

    flags = argparse.Namespace(task=None, template=typed, label_words='[[" bad"], [" good"]]')
    assert explicit_task(flags).template == meant
    (tmp_path / "run.yaml").write_text(f"tasks:\n  - {{name: mine, data: {tmp_path}/d.csv, template: "
                                       f"{json.dumps(typed)}, label_words: [' bad', ' good'], public: movie_plots}}\n")
    (tmp_path / "d.csv").write_text("text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(20)))
    config = load_pipeline_config(tmp_path / "run.yaml")
    assert prepare_task(config.tasks[0], config, "tasks[0]").task.template == meant


def test_label_words_of_several_tokens_still_score(lim, capsys):
    """Words that split into several tokens are scored (label_scoring), not mistaken for shared words."""
    words = '[[\" thumbs down\"], [\" thumbs up\"]]'
    assert main(shlex.split(f"evaluate --model {lim['target']} --data {lim['good_csv']} --template '{{text}} gets' "
                            f"--label-words '{words}'")) == 0
    assert "accuracy" in capsys.readouterr().out
