"""Bad inputs about limits: lengths against the model's positions, DP arguments, what the user typed against what
runs, and small settings that make nonsense (issue #24, classes 2, 3, 4 and 8). Same check as
tests/cli/test_bad_inputs.py: one line, exit status 2, nothing written; warnings: exit 0 and one `warning:` line.
The rows' extra models and files are built once for this module.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io
import json
import lzma
import os
import re
import shlex
import tarfile
import zipfile
from pathlib import Path

import pytest
from bad_input_env import assert_one_clear_line
from datasets import Dataset
from tiny_models import make_model, make_tokenizer

from peft_transfer import create_prompt_model, get_task, save_prompt
from peft_transfer.cli import main

MINE = "tasks:\n  - {{name: mine, data: {good_csv}, template: '{{text}} is', public: {public_csv}, {extra}}}\n"
ON_GPT2 = "target: {gpt2}\nstudent: {{path: {gpt2}}}\nepsilons: [inf]\n"
YAMLS = {
    "huge_eps": "epsilons: [inf, 1000000]\n",
    "tiny_eps": "epsilons: [0.001]\n",
    "shared_word": MINE.replace("{extra}", "label_words: [[' good', ' fine'], [' bad', ' good']]"),
    "shared_name": MINE.replace("{extra}", "label_words: [' good', ' bad'], class_names: [upbeat, upbeat]"),
    "prompt_fills_gpt2": ON_GPT2 + "tune: {{num_virtual_tokens: 300}}\n"
                         + MINE.replace("{extra}", "label_words: [' bad', ' good']"),
    "block_size_4": "student: {{source: distill, block_size: 4}}\n",
}
TEXTS = ["a wonderful moving film", "a dull boring mess"]
LONG = [" ".join([text] * 120) for text in TEXTS] * 12  # 480 words: more than the 256 positions of the tiny models


def _write_prompt(model, folder: Path, num_virtual_tokens: int) -> None:
    save_prompt(create_prompt_model(model, make_tokenizer(), get_task("rotten_tomatoes"),
                                    num_virtual_tokens=num_virtual_tokens), str(folder))


def _leak_files(root: Path) -> None:
    """A training text inside each kind of compressed file check-leaks reads, one clean file, and one folder each
    for what it cannot read (a broken link, a pipe, a corrupt .gz)."""
    leak = ("notes\n" + TEXTS[0] + " in the log\n").encode()
    for name, pack in (("log.gz", gzip.compress), ("log.bz2", bz2.compress), ("log.xz", lzma.compress)):
        (root / "leaky" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "leaky" / name).write_bytes(pack(leak))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        info = tarfile.TarInfo("run/trainer_log.txt")
        info.size = len(leak)
        archive.addfile(info, io.BytesIO(leak))
    (root / "leaky" / "logs.tar.gz").write_bytes(gzip.compress(tar.getvalue()))
    with zipfile.ZipFile(root / "leaky" / "logs.zip", "w") as archive:
        archive.writestr("log.txt", leak)
    (root / "clean").mkdir()
    (root / "clean" / "log.gz").write_bytes(gzip.compress(b"step 1 loss 0.69\n"))
    for name in ("broken_link", "pipe", "corrupt"):
        (root / name).mkdir()
    (root / "broken_link" / "card.md").symlink_to(root / "nowhere.md")
    os.mkfifo(root / "pipe" / "fifo")
    (root / "corrupt" / "log.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")


@pytest.fixture(scope="module")
def lim(env, tmp_path_factory):
    """`env` plus: a tiny GPT-2 and BERT of 256 positions (learned: longer inputs fail), GPT-2 prompts of 200
    and 250 virtual tokens, a file of long texts, files for check-leaks, and the pipeline configs of these rows."""
    root = tmp_path_factory.mktemp("limits")
    paths = {}
    for arch in ("gpt2", "bert"):
        model = make_model(arch, num_layers=4)
        model.save_pretrained(root / arch)
        make_tokenizer().save_pretrained(root / arch)
        paths[arch] = root / arch
    gpt2 = make_model("gpt2", num_layers=4)
    for n in (200, 250):
        _write_prompt(gpt2, root / f"p_gpt2_{n}", n)
        paths[f"p_gpt2_{n}"] = root / f"p_gpt2_{n}"
    Dataset.from_dict({"text": LONG, "label": [1, 0] * 12}).to_csv(root / "long.csv")
    Dataset.from_dict({"text": LONG}).to_csv(root / "long_public.csv")
    paths.update(long_csv=root / "long.csv", long_public=root / "long_public.csv")
    _leak_files(root)
    paths.update({name: root / name for name in ("leaky", "clean", "broken_link", "pipe", "corrupt")})
    out = dict(env, **{k: str(v) for k, v in paths.items()})
    for name, text in YAMLS.items():
        (root / f"{name}.yaml").write_text(text.format(**out))
        out[f"{name}_yaml"] = str(root / f"{name}.yaml")
    return out


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
    ("tune-noise-multiplier-tiny", "tune --model {student} --data {good_csv} --out {tmp}/l18 --noise-multiplier "
                                   "0.01 --max-steps 1 --batch-size 8",
     r"^--noise-multiplier 0\.01 spends ε up to 5\.54e\+03 over 1 step at sampling rate 0\.333 .* above 50 the DP "
     r"guarantee bounds nothing: raise --noise-multiplier"),
    ("tune-noise-multiplier-small-for-many-steps", "tune --model {student} --data {good_csv} --out {tmp}/l19 "
                                                   "--noise-multiplier 0.3 --max-steps 100 --batch-size 8",
     r"--noise-multiplier 0\.3 spends ε up to 2\d\d over 100 steps"),
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
    # class 2: lengths against the model's positions
    ("tune-prompt-fills-gpt2", "tune --model {gpt2} --data {good_csv} --out {tmp}/m1 --num-virtual-tokens 300",
     r"^--num-virtual-tokens 300: with the template's \d+ tokens, no text fits in the 256 positions of the model "
     r".*gpt2; use at most \d+ virtual tokens\.$"),
    ("tune-max-length-over-gpt2", "tune --model {gpt2} --data {good_csv} --out {tmp}/m2 --max-length 400",
     r"^--max-length 400 does not fit beside the prompt's 20 virtual tokens \(--num-virtual-tokens\) in the 256 "
     r"positions of the model .*gpt2; use --max-length 232 or less"),
    ("tune-max-length-and-prompt-over-bert", "tune --model {bert} --data {good_csv} --out {tmp}/m3 --max-length 200 "
                                             "--num-virtual-tokens 60",
     r"--max-length 200 does not fit beside --num-virtual-tokens 60 in the 256 positions .* --max-length 192 or less"),
    ("tune-max-length-over-rotary-llama", "tune --model {student} --data {good_csv} --out {tmp}/m4 --max-length 300",
     r"--max-length 300 does not fit .* 256 positions of the model .*student; use --max-length 236 or less"),
    ("tune-dp-prompt-and-max-length-over-gpt2", "tune --model {gpt2} --data {good_csv} --out {tmp}/m5 --epsilon 8 "
                                                "--max-length 254",
     r"--max-length 254 does not fit beside the prompt's 4 virtual tokens .* use --max-length 248 or less"),
    ("evaluate-prompt-fills-gpt2", "evaluate --model {gpt2} --prompt {p_gpt2_250} --data {good_csv}",
     r"the prompt's 250 virtual tokens: with the template's \d+ tokens, no text fits in the 256 positions"),
    ("compare-prompt-fills-gpt2", "compare --target {gpt2} --full-prompt {p_gpt2_250} --data {good_csv} "
                                  "--out {tmp}/m7", r"the prompt .*p_gpt2_250 \(250 virtual tokens\): .* no text fits"),
    ("transfer-prompt-fills-student", "transfer --prompt {p_gpt2_250} --student {gpt2} --target {gpt2} "
                                      "--public {public_csv} --out {tmp}/m8",
     r"\(250 virtual tokens\): .* no text fits"),
    ("audit-prompt-fills-gpt2", "audit --model {gpt2} --data {good_csv} --out {tmp}/m17 --num-virtual-tokens 300 "
                                "--pool-size 24 --shadows 4 --batch-size 4",
     r"^--num-virtual-tokens 300: with the template's \d+ tokens, no text fits in the 256 positions"),
    ("run-prompt-fills-target", "run {prompt_fills_gpt2_yaml} --out {tmp}/m9",
     r"config key 'tune\.num_virtual_tokens' \(300\): with the template's \d+ tokens, no text fits in the 256"),
    # class 8: small settings that make nonsense
    ("distill-block-size-1", "distill --teacher {target} --corpus {corpus} --out {tmp}/m10 --block-size 1",
     r"argument --block-size: a block needs at least 8 tokens \(one token predicts nothing: loss 0 and perplexity "
     r"nan\), got 1"),
    ("compress-block-size-4", "compress --teacher {target} --keep-layers 3 --calibration {corpus} --out {tmp}/m11 "
                              "--block-size 4", r"argument --block-size: a block needs at least 8 tokens"),
    ("distill-block-size-over-positions", "distill --teacher {gpt2} --corpus {corpus} --out {tmp}/m12 --block-size 300",
     r"block size 300 \(--block-size; .*\) is longer than the 256 positions of the teacher .*gpt2; use --block-size "
     r"256 or less"),
    ("compress-block-size-over-positions", "compress --teacher {gpt2} --keep-layers 3 --calibration {corpus} "
                                           "--out {tmp}/m13 --block-size 1000", r"256 positions of the teacher"),
    ("run-student-block-size-4", "run {block_size_4_yaml} --out {tmp}/m14",
     r"config key 'student\.block_size' must be at least 8 tokens"),
    ("transfer-monitor-size-over-public", "transfer --prompt {p_s} --student {student} --target {target} --public "
                                          "{public_csv} --out {tmp}/m15 --monitor-size 100",
     r"^--monitor-size 100 is more than the monitor may hold out of 30 public texts \(a quarter: 7; .*\); use "
     r"--monitor-size 7 or less"),
    ("transfer-monitor-size-8-of-30", "transfer --prompt {p_s} --student {student} --target {target} --public "
                                      "{public_csv} --out {tmp}/m16 --monitor-size 8", r"a quarter: 7"),
    ("check-leaks-broken-link", "check-leaks {broken_link} --data {good_csv}",
     r"card\.md cannot be read \(No such file or directory\): a broken link\?"),
    ("check-leaks-pipe", "check-leaks {pipe} --data {good_csv}", r"fifo is not a regular file \(a pipe"),
    ("check-leaks-corrupt-gz", "check-leaks {corrupt} --data {good_csv}",
     r"log\.gz looks gzip-compressed but cannot be decompressed"),
]

WARNINGS = [
    ("evaluate-prompt-near-gpt2-limit", "evaluate --model {gpt2} --prompt {p_gpt2_200} --data {good_csv}",
     r"the prompt's 200 virtual tokens and the 256 positions of the model .*gpt2 leave 52 tokens per example of "
     r"task 'rotten_tomatoes' \(template included\), fewer than its 128: longer texts are cut at their end\.$"),
    ("evaluate-long-texts-own-task-gpt2", "evaluate --model {gpt2} --data {long_csv} --template '{{text}} is' "
                                          "--label-words '[[\" bad\"], [\" good\"]]'",
     r"the 256 positions of the model .*gpt2 leave 252 tokens per example of task 'custom' .* fewer than its 256"),
    ("tune-prompt-near-gpt2-limit", "tune --model {gpt2} --data {long_csv} --out {tmp}/w3 --num-virtual-tokens 200 "
                                    "--max-steps 1", r"^--num-virtual-tokens 200 and the 256 positions .* leave 52 "
                                                     r"tokens .*; set --max-length to choose\.$"),
    ("transfer-prompt-near-gpt2-limit", "transfer --prompt {p_gpt2_200} --student {gpt2} --target {gpt2} --public "
                                        "{long_public} --out {tmp}/w4 --steps 1 --public-limit 12",
     r"the prompt .*p_gpt2_200 \(200 virtual tokens\) and the 256 positions .* leave 52 tokens"),
]


@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(lim, capsys, command, message):
    assert_one_clear_line(lim, capsys, command, message)


def test_the_table_names_each_row_once():
    ids = [row[0] for row in BAD_INPUTS + WARNINGS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("command, message", [row[1:] for row in WARNINGS], ids=[row[0] for row in WARNINGS])
def test_likely_mistake_is_one_warning_and_the_command_goes_on(lim, capsys, command, message):
    assert main(shlex.split(command.format(**lim))) == 0
    err = capsys.readouterr().err
    warnings = [line.split(": warning: ", 1)[1] for line in err.splitlines() if ": warning: " in line]
    assert len(warnings) == 1 and re.search(message, warnings[0]), err


@pytest.mark.parametrize("name", ["log.gz", "log.bz2", "log.xz", "logs.tar.gz", "logs.zip"])
def test_check_leaks_reads_compressed_files(lim, capsys, name):
    """A leak inside a compressed log is found (exit 1), a clean compressed log is not (exit 0)."""
    assert main(["check-leaks", f"{lim['leaky']}/{name}", "--data", lim["good_csv"]]) == 1
    assert TEXTS[0][:10] in capsys.readouterr().err
    assert main(["check-leaks", lim["clean"], "--data", lim["good_csv"]]) == 0


def test_check_leaks_own_failure_is_status_2(lim, capsys, monkeypatch):
    """Exit status 1 means a leak: an unexpected failure of the scan itself is 2 with one line."""
    from peft_transfer.audit import leakage

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(leakage, "find_leaks", broken)
    assert main(["check-leaks", lim["clean"], "--data", lim["good_csv"]]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "the scan could not finish (RuntimeError: disk on fire)" in lines[0]


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
