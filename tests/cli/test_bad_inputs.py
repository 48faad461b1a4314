"""Every bad input is one clear line and exit status 2, never a traceback: one table, one row per input.

To cover a new bad input, add a row: (id, command line with {placeholders} from the `env` fixture, a regex
the one error line must match). Rows run in-process (`cli.main`) on tiny models, so the table stays fast.
Other tables (tests/cli/test_bad_inputs_*.py) use the same `env` and check (tests/cli/bad_input_env.py).
"""

from __future__ import annotations

import pytest
from bad_input_env import assert_one_clear_line

BAD_INPUTS = [
    # data files
    ("empty-csv", "evaluate --model {target} --data {empty_csv}", r"empty\.csv is empty"),
    ("header-only-csv", "evaluate --model {target} --data {header_csv}", r"header\.csv has no rows"),
    ("non-utf8-csv", "evaluate --model {target} --data {latin_csv}", r"latin\.csv is not UTF-8 text .*line 2"),
    ("broken-jsonl", "tune --model {student} --data {broken_jsonl} --out {tmp}/t1", r"broken\.jsonl line 2 is not "
                                                                                   "valid JSON"),
    ("plain-folder-as-data", "evaluate --model {target} --data {plain}", r"a folder but not a saved data set"),
    ("missing-split", "evaluate --model {target} --data {dict_folder} --split validation",
     r"no 'validation' split; its splits: train, test"),
    ("split-of-a-single-file", "evaluate --model {target} --data {good_csv} --split test",
     r"single file, so it has no 'test' split"),
    ("unknown-label-names", "evaluate --model {target} --data {odd_labels_csv}",
     r"Labels \['great', 'meh'\] .* neither class names of task 'rotten_tomatoes' \(negative, positive\)"),
    ("no-text-column", "check-leaks {tmp} --data {good_csv} --text-column body", r"has no 'body' column"),
    ("scan-path-missing", "check-leaks {tmp}/nothing-here --data {good_csv}", r"no such file or folder to scan"),
    # numbers
    ("tune-batch-size-0", "tune --model {student} --data {good_csv} --out {tmp}/t2 --batch-size 0",
     r"argument --batch-size: must be at least 1, got 0"),
    ("transfer-batch-size-0", "transfer --prompt {p_s} --student {student} --target {target} --out {tmp}/t3 "
                              "--batch-size 0", r"argument --batch-size: must be at least 1"),
    ("distill-batch-size-0", "distill --teacher {target} --out {tmp}/t4 --batch-size 0",
     r"argument --batch-size: must be at least 1"),
    ("evaluate-batch-size-0", "evaluate --data {good_csv} --batch-size 0", r"argument --batch-size: must be at least"),
    ("tune-epochs-0", "tune --model {student} --data {good_csv} --out {tmp}/t5 --epochs 0",
     r"argument --epochs: must be a positive number, got 0"),
    ("tune-max-steps-minus-1", "tune --model {student} --data {good_csv} --out {tmp}/t6 --max-steps -1",
     r"argument --max-steps: must be at least 1, got -1"),
    ("tune-epsilon-negative", "tune --model {student} --data {good_csv} --out {tmp}/t7 --epsilon -1",
     r"argument --epsilon: must be positive \(or inf"),
    ("tune-epsilon-and-sigma", "tune --model {student} --data {good_csv} --out {tmp}/t8 --epsilon 8 "
                               "--noise-multiplier 1", r"either --epsilon .* or --noise-multiplier"),
    ("tune-batch-larger-than-data", "tune --model {student} --data {good_csv} --out {tmp}/t9 --batch-size 64",
     r"Only 24 training examples for a batch size of 64; use a smaller batch size \(--batch-size"),
    ("tune-budget-0", "tune --model {student} --data {good_csv} --out {tmp}/t9b --budget-examples 0",
     r"argument --budget-examples: must be at least 1, got 0"),
    ("tune-budget-and-epochs", "tune --model {student} --data {good_csv} --out {tmp}/t9c --budget-examples 64 "
                               "--epochs 2", r"give the compute once: --budget-examples, or --epochs, or --max-steps"),
    ("tune-max-length-too-short", "tune --model {student} --data {good_csv} --out {tmp}/t9d --max-length 3",
     r"a limit of 3 tokens per example leaves no room for text \(the template alone takes \d+\)\. Raise "
     r"--max-length 3 above the template's own tokens"),
    ("tune-dp-batch-larger-than-data", "tune --model {student} --data {good_csv} --out {tmp}/t9e --epsilon 8 "
                                       "--batch-size 64", r"batch size 64 is larger than the 24 training examples"),
    ("transfer-alpha-2", "transfer --prompt {p_s} --student {student} --out {tmp}/t10 --alpha 2",
     r"argument --alpha: must lie between 0 and 1, got 2"),
    ("audit-epsilon-word", "audit --out {tmp}/t11 --epsilon eight", r"argument --epsilon: expected a number, got "
                                                                     "'eight'"),
    ("distill-layer-out-of-range", "distill --teacher {target} --corpus {corpus} --out {tmp}/t12 --keep-layers 0,9 "
                                   "--block-size 24", r"--keep-layers \[9\] out of range: the teacher has 4 layers"),
    ("distill-keep-layers-words", "distill --teacher {target} --out {tmp}/t13 --keep-layers first,last",
     r"argument --keep-layers: expected comma-separated layer numbers"),
    # --out: an existing file, or a place that cannot be written (checked before any work)
    ("distill-out-is-file", "distill --teacher {target} --out {a_file}", r"--out .*a_file\.txt is an existing file"),
    ("tune-out-is-file", "tune --model {student} --data {good_csv} --out {a_file}", r"is an existing file"),
    ("audit-out-is-file", "audit --model {target} --out {a_file}", r"is an existing file"),
    ("compare-out-is-file", "compare --target {target} --transferred-prompt {p_s} --data {good_csv} --out {a_file}",
     r"is an existing file"),
    ("compare-out-unwritable", "compare --target {target} --data {good_csv} --out /proc/peft-transfer-out",
     r"--out /proc/peft-transfer-out: cannot write there"),
    ("distill-out-below-a-file", "distill --teacher {target} --out {a_file}/student", r"a_file\.txt is a file, so "
                                                                                     "the folder cannot be created"),
    # models and prompts
    ("missing-prompt-folder", "evaluate --model {target} --data {good_csv} --prompt {tmp}/no-such-prompt",
     r"--prompt .*no-such-prompt: no such folder\.$"),
    ("missing-relative-prompt", "transfer --prompt ./no/such/p_s --student {student} --out {tmp}/t14",
     r"--prompt ./no/such/p_s: no such folder"),
    ("missing-model-folder", "evaluate --model {tmp}/no-such-model --data {good_csv}", r"no such folder or file"),
    ("hub-model-offline", "evaluate --model no-such-org/no-such-model --data {good_csv}",
     r"Unknown model 'no-such-org/no-such-model'"),
    ("model-is-a-file", "evaluate --model {good_csv} --data {good_csv}", r"--model .* is a file"),
    ("gguf-unsupported-arch", "distill --teacher {rwkv_gguf} --out {tmp}/t15",
     r"cannot load GGUF models of architecture 'rwkv6'"),
    ("distill-foreign-tokenizer", "distill --teacher {target} --tokenizer {other_tokenizer} --corpus {corpus} "
                                  "--out {tmp}/t16", r"--tokenizer .* is not the teacher's tokenizer"),
    # tasks
    ("unknown-task", "evaluate --task nope --data {good_csv}", r"Unknown task 'nope'; embedded tasks"),
    ("template-without-label-words", "evaluate --template '{{text}} is' --data {good_csv}",
     r"needs both --template and --label-words"),
    ("label-words-not-json", "evaluate --template '{{text}} is' --label-words '[bad' --data {good_csv}",
     r"--label-words is not valid JSON"),
    ("evaluate-prompt-of-another-task", "evaluate --model {student} --prompt {p_s} --task bbc_news --data {good_csv}",
     r"the prompt .* was tuned for task 'rotten_tomatoes' .* not 'bbc_news'.*--force-task"),
    ("compare-prompt-of-another-task", "compare --target {target} --source-prompt {p_s} --task bbc_news "
                                       "--data {good_csv}", r"was tuned for task 'rotten_tomatoes'"),
    ("transfer-prompt-of-another-task", "transfer --prompt {p_s} --student {student} --target {target} "
                                        "--task bbc_news --public {public_csv} --out {tmp}/t17",
     r"was tuned for task 'rotten_tomatoes'"),
    ("transfer-push-several-targets", "transfer --prompt {p_s} --student {student} --target {target} {target} --out "
                                      "{tmp}/t18 --push-to-hub org/x", r"--push-to-hub takes one target"),
    # the pipeline's YAML, validated before anything loads
    ("run-negative-epsilon", "run {bad_eps_yaml} --out {tmp}/run1", r"config key 'epsilons\[0\]' must be positive"),
    ("run-unknown-task", "run {imdb_yaml} --out {tmp}/run2", r"'imdb' is not an embedded task .* as a mapping"),
    ("run-custom-task-without-template", "run {no_template_yaml} --out {tmp}/run3",
     r"config key 'tasks\[0\]\.template' is required"),
    ("run-yaml-syntax", "run {broken_yaml} --out {tmp}/run4", r"not valid YAML \(line 2, column"),
    ("run-alpha-2", "run {alpha_yaml} --out {tmp}/run5", r"config key 'transfer\.alpha' must lie in \[0, 1\]"),
]



@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(env, capsys, command, message):
    assert_one_clear_line(env, capsys, command, message)


def test_the_table_names_each_row_once():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))
