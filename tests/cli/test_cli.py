"""The CLI itself: help on every option with its default, fast start (no heavy import for --help or argument
errors), Hub look-ups that fail fast offline, and precise warning filters. Bad inputs: test_bad_inputs.py."""

import argparse
import os
import subprocess
import sys
import time
import warnings

import pytest

from peft_transfer.cli import build_parser, main
from peft_transfer.cli.references import looks_like_path, use_hub
from peft_transfer.cli.warning_filters import quiet_library_warnings


def _commands():
    return build_parser()._subparsers._group_actions[0].choices


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_option_has_help_and_shows_its_default(command, capsys):
    parser = _commands()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help text"
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
            assert f"(default: {action.default})" in text, f"{command} {action.option_strings[0]}: default not shown"


def test_help_and_argument_errors_import_no_heavy_library():
    code = ("import sys; from peft_transfer.cli import main; main(['tune', '--batch-size', '0']); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets', 'opacus') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_run_help_lists_the_yaml_keys(capsys):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "keep_layers: null" in out and "max_public_words: 48" in out and "label_words" in out
    assert "examples/pipeline.yaml" not in out  # not a file of the installed package


@pytest.mark.parametrize("name, path", [
    ("./p_s", True), ("/abs/p_s", True), ("~/p_s", True), ("a/b/c", True), ("model.gguf", True), ("runs/", True),
    ("org/name", False), ("smollm2-135m", False), ("HuggingFaceTB/SmolLM2-135M", False),
])
def test_looks_like_path(name, path):
    assert looks_like_path(name) is path


def test_an_existing_first_folder_makes_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_like_path("runs/p_s")
    (tmp_path / "runs").mkdir()
    assert looks_like_path("runs/p_s")


def test_unreachable_hub_switches_to_the_cache_at_once(monkeypatch, capsys):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    use_hub("org/name", "--model")
    assert time.perf_counter() - start < 5 and constants.HF_HUB_OFFLINE is True
    assert "local Hugging Face cache only" in capsys.readouterr().err


@pytest.mark.parametrize("accountant, rdp_hidden", [("prv", True), ("rdp", False)])
def test_warning_filters_are_precise(accountant, rdp_hidden):
    def shown(message, category, module):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            quiet_library_warnings(accountant)
            warnings.warn_explicit(message, category, "x.py", 1, module=module)
        return bool(caught)

    assert not shown("`is_gradient_checkpointing` is deprecated and will be removed", FutureWarning,
                     "transformers.modeling_utils")
    assert not shown("Full backward hook is firing when gradients are computed with respect to module outputs",
                     UserWarning, "accelerate.accelerator")
    assert shown("Optimal order is the largest alpha.", UserWarning, "opacus.accountants.analysis.rdp") != rdp_hidden
    assert shown("`is_gradient_checkpointing` is deprecated", FutureWarning, "my_module")  # other modules: shown
    assert shown("something else", FutureWarning, "transformers.modeling_utils")  # other messages: shown


def test_console_help_is_fast():
    """`peft-transfer --help` in a fresh process (0.1 s here, 6 s before the lazy imports: cli_startup.md)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "peft_transfer.cli", "--help"], capture_output=True, check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert time.perf_counter() - start < 4


def test_a_user_warning_is_one_line_and_the_command_goes_on(monkeypatch, capsys):
    from peft_transfer.cli import assets_cmd  # the command whose function the test swaps
    from peft_transfer.errors import warn_user

    def command(args):
        warn_user("only one class in the data")
        return 0

    parser_register = assets_cmd.register

    def register(parser):
        parser_register(parser)
        parser.set_defaults(func=command)

    monkeypatch.setattr(assets_cmd, "register", register)
    assert main(["assets"]) == 0
    assert capsys.readouterr().err.strip() == "peft-transfer assets: warning: only one class in the data"
