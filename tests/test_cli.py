"""The CLI: help, and bad input as one clear line (exit 2), never a traceback."""

import pytest

from peft_transfer.cli import build_parser, main


def test_every_registered_command_has_help(capsys):
    parser = build_parser()
    for command in parser._subparsers._group_actions[0].choices:
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_unknown_task_is_one_clear_error(capsys):
    assert main(["evaluate", "--task", "nope", "--data", "rotten_tomatoes"]) == 2
    err = capsys.readouterr().err
    assert "error: Unknown task 'nope'" in err and "Traceback" not in err


def test_unknown_model_is_one_clear_error(capsys, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"text": "a", "label": 0}\n')
    assert main(["evaluate", "--model", str(tmp_path / "no-such-model"), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "no such folder or file" in err and "Traceback" not in err


def test_custom_task_needs_template_and_label_words(capsys):
    assert main(["evaluate", "--template", "{text} is"]) == 2
    assert "needs both --template and --label-words" in capsys.readouterr().err
