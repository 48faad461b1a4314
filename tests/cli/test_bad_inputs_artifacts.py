"""Bad inputs about artifacts: mismatched models, prompts and tokenizers; output folders that would destroy or
leak; messages in the user's words (issue #24, classes 5, 6 and 9). Same check as tests/cli/test_bad_inputs.py:
one line, exit status 2, nothing written; the rows' extra models and folders are built once for this module.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from bad_input_env import assert_one_clear_line
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from peft_transfer.cli import main
from peft_transfer.rerun_guard import differences
from peft_transfer.student.layers import make_student


def _swap_two_tokens(folder: Path) -> None:
    """The same vocabulary size, but two tokens trade ids: a tokenizer that is not the target's."""
    path = folder / "tokenizer.json"
    data = json.loads(path.read_text())
    vocab = data["model"]["vocab"]
    vocab["!"], vocab['"'] = vocab['"'], vocab["!"]
    path.write_text(json.dumps(data))


@pytest.fixture(scope="module")
def art(env, tmp_path_factory):
    """`env` plus: another student of the target, the target with another tokenizer (same size, other ids; other
    size), a wider model, p_s as an older prompt (no fingerprints), a copy of p_s to put in harm's way, artifact
    folders of each kind, and pipeline configs."""
    root = tmp_path_factory.mktemp("artifacts")
    target = Path(env["target"])
    tokenizer = AutoTokenizer.from_pretrained(target)
    teacher = LlamaForCausalLM.from_pretrained(target)
    make_student(teacher, [0, 1]).save_pretrained(root / "student01")
    tokenizer.save_pretrained(root / "student01")
    shutil.copytree(target, root / "swapped")
    _swap_two_tokens(root / "swapped")
    other = AutoTokenizer.from_pretrained(env["other_tokenizer"])
    LlamaForCausalLM(LlamaConfig.from_pretrained(target, vocab_size=len(other))).save_pretrained(root / "other_vocab")
    other.save_pretrained(root / "other_vocab")
    wide = LlamaConfig.from_pretrained(target, hidden_size=64, num_hidden_layers=2, head_dim=16)
    LlamaForCausalLM(wide).save_pretrained(root / "wide")
    tokenizer.save_pretrained(root / "wide")
    shutil.copytree(env["p_s"], root / "p_old")
    record = json.loads((root / "p_old" / "prompt_provenance.json").read_text())
    for key in ("base_model_weights", "vocabulary"):
        record.pop(key)
    (root / "p_old" / "prompt_provenance.json").write_text(json.dumps(record))
    shutil.copytree(env["p_s"], root / "p_copy")
    kinds = {"work": ["checkpoint-3/trainer_state.json", "run_settings.json"], "run": ["run_config.json"],
             "comparison": ["comparison.json"], "audit": ["audit.json"], "distilling": ["checkpoints/x"]}
    for kind, files in kinds.items():
        for name in files:
            (root / kind / name).parent.mkdir(parents=True, exist_ok=True)
            (root / kind / name).write_text("{}")
    (root / "run.yaml").write_text(f"target: {target}\n")
    (root / "own_student.yaml").write_text(f"target: {target}\nstudent: {{path: {root / 'swapped'}}}\n")
    paths = {"tmp2": root, "student01": root / "student01", "swapped": root / "swapped", "wide": root / "wide",
             "other_vocab": root / "other_vocab", "p_old": root / "p_old", "p_copy": root / "p_copy",
             "run_yaml": root / "run.yaml", "own_student_yaml": root / "own_student.yaml",
             **{f"{kind}_folder": root / kind for kind in kinds}}
    return dict(env, **{k: str(v) for k, v in paths.items()})


TRANSFER = "transfer --public {public_csv} --steps 1"
BAD_INPUTS = [
    # 5. mismatched artifacts: the prompt's own model, tokenizers compared by their ids
    ("transfer-student-is-the-target", TRANSFER + " --prompt {p_s} --student {target} --target {target} "
                                                  "--out {tmp2}/a1",
     r"--prompt .*p_s was tuned on 'tiny-llama:student-layers-0-3', not --student .*target \(other weights\): "
     r"give the model it was made on as --student"),
    ("transfer-another-student", TRANSFER + " --prompt {p_s} --student {student01} --target {target} --out {tmp2}/a2",
     r"not --student .*student01 \(other weights\)"),
    ("transfer-old-prompt-other-depth", TRANSFER + " --prompt {p_old} --student {target} --target {target} "
                                                   "--out {tmp2}/a3", r"not --student .*target \(2 vs 4 layers\)"),
    ("transfer-old-prompt-other-lineage", TRANSFER + " --prompt {p_old} --student {student01} --target {target} "
                                                     "--out {tmp2}/a4", r"\(another student lineage\)"),
    ("transfer-student-of-other-width", TRANSFER + " --prompt {p_old} --student {wide} --target {target} "
                                                   "--out {tmp2}/a5", r"\(hidden size 32 vs 64\): give the model"),
    ("transfer-target-same-size-other-ids", TRANSFER + " --prompt {p_s} --student {student} --target {swapped} "
                                                       "--out {tmp2}/a6",
     r"--student .* and --target .*swapped have different tokenizers \(both have 480 tokens, but 2 of them map to "
     r"other ids or are missing \(e\.g\. '!'\)\): .*use a student made from the target"),
    ("transfer-target-other-vocabulary", TRANSFER + " --prompt {p_s} --student {student} --target {target} "
                                                    "{other_vocab} --out {tmp2}/a7",
     r"--target .*other_vocab have different tokenizers \(480 vs \d+ tokens\)"),
    ("compare-comppt-on-another-student", "compare --target {target} --student {student01} --source-prompt {p_s} "
                                          "--data {good_csv}",
     r"the source prompt .*p_s was tuned on .*, not the student .*student01.* \(other weights\): score CompPT"),
    ("compare-student-other-tokenizer", "compare --target {swapped} --student {student} --source-prompt {p_s} "
                                        "--data {good_csv}", r"--target .*swapped and --student .* have different "
                                                             r"tokenizers"),
    ("run-student-path-other-tokenizer", "run {own_student_yaml} --out {tmp2}/a8",
     r"config key 'target' \(.*\) and 'student.path' \(.*swapped\) have different tokenizers "
     r".*\(student\.source: compress"),
    # 9. words: the flags, not the settings' internal names; a hidden-size mismatch outside transfer names the
    # model it was made on and the command
    ("tune-stop-at-epsilon-above-epsilon", "tune --model {student} --data {good_csv} --out {tmp2}/c1 --epsilon 8 "
                                           "--stop-at-epsilon 10",
     r"^--stop-at-epsilon \(stop_at_epsilon\) 10 is above --epsilon \(target_epsilon\) 8"),
    ("tune-delta-not-below-one-over-n", "tune --model {student} --data {good_csv} --out {tmp2}/c2 --epsilon 8 "
                                        "--delta 0.1", r"^--delta \(target_delta\) 0\.1 is not below 1/N = 0\.0416667 "
                                                       r"for the 24 training examples: .* or omit --delta\.$"),
    ("audit-delta-not-below-one-over-n", "audit --model {target} --data {good_csv} --out {tmp2}/c3 --delta 0.5 "
                                         "--shadows 4 --pool-size 24 --batch-size 4",
     r"^--delta \(target_delta\) 0\.5 is not below"),
    ("audit-shadow-batch-larger-than-its-half", "audit --model {target} --data {good_csv} --out {tmp2}/c4 "
                                                "--shadows 4 --pool-size 24",
     r"Each shadow trains on \d+ examples \(about half the pool\), fewer than a batch of 16: use a smaller "
     r"--batch-size"),
    ("distill-num-keep-too-many", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d1 --num-keep 3",
     r"^--num-keep 3 keeps 6 layers but the teacher has only 4; use --num-keep 2 or less, or give --keep-layers"),
    ("distill-keep-layers-backwards", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d2 --keep-layers 3,0",
     r"^--keep-layers must be in increasing order"),
    ("distill-keep-layers-and-init-student", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d3 "
                                             "--keep-layers 0,3 --init-student {student}",
     r"^give either --keep-layers \(a new student from the teacher\) or --init-student"),
    ("distill-init-student-not-a-model", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d4 "
                                         "--init-student {plain}", r"^--init-student \(init_student\) .*plain: no "
                                                                   r"such student folder"),
    ("distill-top-k-above-vocabulary", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d5 --top-k 100000",
     r"^--top-k 100000 is more than the teacher's vocabulary \(480 tokens\)"),
    ("distill-cut-terms-without-a-cut", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d6 "
                                        "--keep-layers 0,1 --alpha-hidden 1",
     r"^--alpha-hidden above 0 and --train-below-cut match .* kept layers \[0, 1\] skip none"),
    ("distill-recipe-cut-terms-without-a-cut", "distill --teacher {target} --corpus {corpus} --out {tmp2}/d7 "
                                               "--keep-layers 2,3 --recipe cut-mse",
     r"--train-below-cut \(--recipe cut-mse turns them on\)"),
    ("compress-keep-layers-out-of-range", "compress --teacher {target} --keep-layers 0,9 --calibration {corpus} "
                                          "--out {tmp2}/d8", r"^--keep-layers 0,9: layers \[9\] out of range"),
    ("compress-keeps-everything", "compress --teacher {target} --keep-layers 4 --calibration {corpus} "
                                  "--out {tmp2}/d9", r"^--keep-layers 4: keep 4 layers of a 4-layer teacher removes "
                                                     r"nothing"),
    ("compress-too-many-blocks", "compress --teacher {target} --keep-layers 2 --num-blocks 2 --calibration {corpus} "
                                 "--out {tmp2}/d10", r"no room for 2 removed blocks .* \(--num-blocks\)"),
    ("audit-keep-layers-out-of-range", "audit --model {target} --keep-layers 0,9 --data {good_csv} --out {tmp2}/d11",
     r"^--keep-layers \[9\] out of range"),
    ("evaluate-prompt-of-other-width", "evaluate --model {wide} --prompt {p_s} --data {good_csv}",
     r"hidden size 32 but the model .*wide has 64: .*Use it with the model it was made on "
     r"\(tiny-llama:student-layers-0-3\), or move it to this model first with `peft-transfer transfer`"),
    # 6. folders that destroy or leak: inputs, the work folder, artifacts of another kind, unwritable
    ("transfer-out-is-the-prompt", TRANSFER + " --prompt {p_copy} --student {student} --out {p_copy} --no-resume",
     r"--out .*p_copy is the folder given as --prompt: writing there would overwrite"),
    ("transfer-out-inside-the-prompt", TRANSFER + " --prompt {p_copy} --student {student} --out {p_copy}/p_t",
     r"--out .*p_copy/p_t lies inside --prompt .*p_copy"),
    ("transfer-work-dir-is-the-prompt", TRANSFER + " --prompt {p_copy} --student {student} --out {tmp2}/b1 "
                                                   "--work-dir {p_copy}", r"--work-dir .* is the folder given as "
                                                                          r"--prompt"),
    ("transfer-out-is-the-target", TRANSFER + " --prompt {p_s} --student {student} --target {target} "
                                              "--out {target}", r"is the folder given as --target"),
    ("transfer-out-holds-the-student", TRANSFER + " --prompt {p_s} --student {student} --out {tmp}",
     r"--out .* holds --prompt .*p_s"),
    ("tune-out-is-the-model", "tune --model {student01} --data {good_csv} --out {student01}",
     r"is the folder given as --model"),
    ("tune-out-is-the-data-folder", "tune --model {student} --data {dict_folder} --out {dict_folder}",
     r"is the folder given as --data"),
    ("tune-work-dir-is-out", "tune --model {student} --data {good_csv} --out {tmp2}/b2 --work-dir {tmp2}/b2",
     r"--work-dir .*b2 is --out .*b2: checkpoints, optimizer and trainer state would sit in the folder you hand "
     r"over\. Give a --work-dir outside --out \(or omit it"),
    ("tune-work-dir-inside-out", "tune --model {student} --data {good_csv} --out {tmp2}/b3 --work-dir {tmp2}/b3/w",
     r"--work-dir .*b3/w lies inside --out"),
    ("transfer-work-dir-is-out", TRANSFER + " --prompt {p_s} --student {student} --out {tmp2}/b4 "
                                            "--work-dir {tmp2}/b4", r"--work-dir .* is --out"),
    ("tune-work-dir-unwritable", "tune --model {student} --data {good_csv} --out {tmp2}/b5 "
                                 "--work-dir /proc/peft-transfer-work", r"--work-dir /proc/peft-transfer-work: "
                                                                        r"cannot write there"),
    ("transfer-work-dir-is-a-file", TRANSFER + " --prompt {p_s} --student {student} --out {tmp2}/b6 "
                                               "--work-dir {good_csv}", r"--work-dir .*good\.csv is an existing file"),
    ("tune-out-is-a-work-folder", "tune --model {student} --data {good_csv} --out {work_folder}",
     r"--out .*work is a work folder with checkpoints \(it holds checkpoint-\*\); writing a prompt export there"),
    ("tune-work-dir-is-a-prompt", "tune --model {student} --data {good_csv} --out {tmp2}/b7 --work-dir {p_s}",
     r"--work-dir .*p_s is a prompt folder \(it holds adapter_config\.json\); writing checkpoints and trainer state"),
    ("tune-out-holds-other-files", "tune --model {student} --data {good_csv} --out {plain}",
     r"--out .*plain holds notes\.txt: an export folder holds only the prompt"),
    ("compare-out-is-a-prompt", "compare --target {target} --transferred-prompt {p_s} --data {good_csv} "
                                "--out {p_copy}", r"--out .*p_copy is a prompt folder \(it holds "
                                                  r"adapter_config\.json\); writing comparison\.md and comparison"),
    ("compare-out-is-the-source-prompt", "compare --target {target} --source-prompt {p_copy} --data {good_csv} "
                                         "--out {p_copy}", r"is the folder given as --source-prompt"),
    ("compare-out-is-a-model", "compare --target {target} --data {good_csv} --out {student01}",
     r"--out .*student01 is a model folder \(it holds config\.json\)"),
    ("compare-out-is-a-run", "compare --target {target} --data {good_csv} --out {run_folder}",
     r"is a pipeline run folder \(it holds run_config\.json\)"),
    ("distill-out-is-a-prompt", "distill --teacher {target} --corpus {corpus} --out {p_copy}",
     r"--out .*p_copy is a prompt folder .* writing a model there"),
    ("distill-out-is-the-teacher", "distill --teacher {target} --corpus {corpus} --out {target}",
     r"is the folder given as --teacher"),
    ("compress-out-inside-the-teacher", "compress --teacher {target} --keep-layers 3 --calibration {corpus} "
                                        "--out {target}/small", r"lies inside --teacher"),
    ("audit-out-is-a-comparison", "audit --model {target} --out {comparison_folder}",
     r"is a comparison folder \(it holds comparison\.json\); writing an audit there"),
    ("run-out-is-a-prompt", "run {run_yaml} --out {p_copy}", r"--out .*p_copy is a prompt folder"),
    ("run-out-is-the-target", "run {run_yaml} --out {target}", r"is the folder given as config key 'target'"),
    ("run-out-is-a-student-being-distilled", "run {run_yaml} --out {distilling_folder}",
     r"is a model folder \(it holds checkpoints\)"),
]


@pytest.mark.parametrize("command, message", [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_clear_line(art, capsys, command, message):
    assert_one_clear_line(art, capsys, command, message)


def test_the_table_names_each_row_once():
    ids = [row[0] for row in BAD_INPUTS]
    assert len(ids) == len(set(ids))


def test_the_inputs_a_refusal_protected_are_intact(art, capsys):
    """After the table: the prompt that --out / --work-dir pointed at still holds the prompt, nothing else."""
    assert sorted(p.name for p in Path(art["p_copy"]).iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "prompt_provenance.json"]


def test_a_prompt_scored_through_another_vocabulary_warns(art, capsys):
    """Legal (the hidden sizes match) but likely a mistake: the score comes, with one warning line."""
    assert main(["evaluate", "--model", art["swapped"], "--prompt", art["p_s"], "--data", art["good_csv"]]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if ": warning: " in line]
    assert len(warnings) == 1, warnings
    assert re.search(r"peft-transfer evaluate: warning: the prompt for 'tiny-llama:student-layers-0-3' was tuned "
                     r"with another vocabulary \(480 tokens, sha256:\w+\) than the tokenizer it is scored with "
                     r"\(480 tokens, sha256:\w+\).*peft-transfer transfer", warnings[0])


def test_a_prompt_scored_through_its_own_vocabulary_does_not_warn(art, capsys):
    assert main(["evaluate", "--model", art["student"], "--prompt", art["p_s"], "--data", art["good_csv"]]) == 0
    assert ": warning: " not in capsys.readouterr().err


def test_a_moved_student_is_still_the_student(art, capsys, tmp_path):
    """The prompt's model is known by its weights, not by its path: a copied student folder transfers."""
    moved = shutil.copytree(art["student"], tmp_path / "moved")
    argv = ["transfer", "--prompt", art["p_s"], "--student", str(moved), "--target", art["target"], "--public",
            art["public_csv"], "--steps", "1", "--monitor-size", "0", "--out", str(tmp_path / "p_t")]
    assert main(argv) == 0, capsys.readouterr().err


def test_a_rerun_shows_the_part_of_each_setting_that_differs():
    """Nested settings by their dotted key, long values around the change, renamed settings with their flag."""
    task = {"name": "rotten_tomatoes", "class_names": ["negative", "positive"],
            "label_words": [[" negative"], [" positive"]], "template": "Review: {text}\nSentiment:"}
    old = {"task": task, "per_device_train_batch_size": 8, "public_fingerprint": "sha256:" + "a" * 64,
           "student": "runs/students/" + "x" * 60 + "/a"}
    new = {"task": dict(task, template="Review: {text}\nVerdict:"), "per_device_train_batch_size": 4,
           "public_fingerprint": "sha256:" + "b" * 64, "student": "runs/students/" + "x" * 60 + "/b"}
    assert differences(old, new) == [
        "per_device_train_batch_size (--batch-size): 8 → 4",
        "public_fingerprint (the --public texts): changed",
        f'student: …{"x" * 11}/a" → …{"x" * 11}/b"',
        'task.template: "Review: {text}\\nSentiment:" → "Review: {text}\\nVerdict:"',
    ]


def test_a_refused_rerun_names_the_setting_that_changed(art, capsys, tmp_path):
    """tune reruns into its work folder with another template: the one line shows the template's change."""
    base = ["tune", "--model", art["student"], "--data", art["good_csv"], "--out", str(tmp_path / "p"),
            "--max-steps", "1"]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--template", "Review: {text}\\nVerdict:", "--label-words", '[[" negative"], [" positive"]]',
                 "--task", "rotten_tomatoes"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and 'task.template: "Review: {text}\\nSentiment:" → "Review: {text}\\nVerdict:"' in lines[0]
