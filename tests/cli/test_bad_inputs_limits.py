"""Bad inputs about limits: lengths against the model's positions, DP arguments, what the user typed against what
runs, and small settings that make nonsense (issue #24, classes 2, 3, 4 and 8). Same check as
tests/cli/test_bad_inputs.py: one line, exit status 2, nothing written; warnings: exit 0 and one `warning:` line.
The rows' extra models and files are built once for this module.
"""

from __future__ import annotations

import pytest
from bad_input_env import assert_one_clear_line

YAMLS = {
    "huge_eps": "epsilons: [inf, 1000000]\n",
    "tiny_eps": "epsilons: [0.001]\n",
}


@pytest.fixture(scope="module")
def lim(env, tmp_path_factory):
    """`env` plus the pipeline configs of these rows."""
    root = tmp_path_factory.mktemp("limits")
    for name, text in YAMLS.items():
        (root / f"{name}.yaml").write_text(text)
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
]


@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(lim, capsys, command, message):
    assert_one_clear_line(lim, capsys, command, message)


def test_the_table_names_each_row_once():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))
