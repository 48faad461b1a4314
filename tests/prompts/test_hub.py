"""Hub artifacts over real HTTP: the real huggingface_hub client against a loopback Hub (tests/hub_server.py).

The client side runs once in a fresh process (tests/hub_client.py: HF_ENDPOINT must be set before
huggingface_hub is imported); the tests below check what it saw, its logs and the files the Hub stored.
The card tests at the end run in-process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import dead_endpoint
from huggingface_hub import ModelCard
from tiny_models import make_model, make_tokenizer

from peft_transfer import DPRecord, TransferRecord, create_prompt_model, export_prompt, get_task, save_prompt
from peft_transfer.evaluation.comparison import ComparisonRow
from peft_transfer.prompts.card import render_prompt_card, results_markdown
from peft_transfer.prompts.handover import PROMPT_FILES, STUDENT_PATTERNS
from peft_transfer.prompts.hub import push_prompt_to_hub, push_student_to_hub

HERE = Path(__file__).parents[1]  # tests/: the Hub server and client scripts


@pytest.fixture(scope="module")
def hub_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hub")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    proc = subprocess.run([sys.executable, str(HERE / "hub_client.py"), str(out)], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    return results, proc.stdout + proc.stderr, out


def test_student_round_trip_by_hub_id(hub_run):
    results, _, _ = hub_run
    assert results["student_max_diff"] == 0.0  # AutoModelForCausalLM.from_pretrained("org/student")
    repo = results["repos"]["org/student"]
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json"} <= set(repo["files"])
    # a whitelist, not an ignore list: training state stays local, and is named; the distillation summary (public
    # corpus only) goes with the card
    assert set(repo["files"]) - {".gitattributes"} <= set(STUDENT_PATTERNS)
    assert results["student_push"]["refused"] == ["checkpoints/checkpoint-1/optimizer.pt"]
    assert "distillation_summary.json" in repo["files"]
    assert repo["private"] is True
    card = ModelCard(results["student_card"])
    assert card.data.base_model == "org/teacher" and card.data.library_name == "transformers"


def test_prompt_round_trip_with_stock_peft(hub_run):
    results, _, _ = hub_run
    assert results["prompt_max_diff"] == 0.0  # stock PeftModel.from_pretrained(target, "org/prompt")
    assert results["prompt_vs_no_prompt"] > 1e-3  # ... and the prompt does change the logits
    assert results["load_prompt_max_diff"] == 0.0  # peft_transfer.load_prompt(target, "org/prompt") too
    assert results["provenance_equal"] is True  # TransferablePromptConfig.from_pretrained("org/prompt")
    assert results["provenance_dp_epsilon"] == 3.0
    assert set(results["repos"]["org/prompt"]["files"]) == {
        ".gitattributes", "README.md", "adapter_config.json", "adapter_model.safetensors", "prompt_provenance.json"}
    assert results["prompt_push"]["local_dir"] == ""  # the temporary save of a PeftModel is cleaned up


def test_prompt_card_metadata_parsed_back(hub_run):
    results, _, _ = hub_run
    data = results["prompt_card"]["data"]
    assert data["base_model"] == "org/target"
    assert data["library_name"] == "peft"
    assert {"peft-transfer", "prompt-tuning", "post", "differential-privacy"} <= set(data["tags"])
    assert data["datasets"] == ["org/public-plots"]  # the public transfer set only
    assert data["license"] == "apache-2.0" and data["pipeline_tag"] == "text-generation"
    content = results["prompt_card"]["content"]
    for needed in ("| ε | 3 |", "| δ | 1e-05 |", "| Accountant | prv |", "sha256:00", "| Public examples | 64 |",
                   "| POST | 0.75 | 0.7 |", "` positive`"):
        assert needed in content, needed


def test_cli_helper_pushes_only_when_asked(hub_run):
    results, log, _ = hub_run
    assert results["maybe_push_none"] is None
    assert results["maybe_push"] == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "prompt_provenance.json"]
    assert "Pushed the prompt to" in log and results["repos"]["org/prompt-cli"]["private"] is True


def test_push_subcommand(hub_run):
    results, log, _ = hub_run
    assert results["cli_push_student"] == 0 and results["repos"]["org/student-cli"]["private"] is False
    assert "Kept local (not part of a student export): checkpoints/checkpoint-1/optimizer.pt" in log
    assert "model.safetensors" in results["repos"]["org/student-cli"]["files"]
    forbidden = results["cli_push_forbidden"]
    assert forbidden["rc"] == 2 and "peft-transfer push: error: No permission" in forbidden["stderr"]
    assert "Traceback" not in forbidden["stderr"]


def test_no_permission_bad_token_and_server_down_are_clear(hub_run):
    errors = hub_run[0]["errors"]
    assert "No permission" in errors["forbidden"]["message"] and "HTTP 403" in errors["forbidden"]["message"]
    assert "'other'" in errors["forbidden"]["message"]
    assert "HTTP 401" in errors["bad_token"]["message"]
    assert "Cannot reach the Hub" in errors["server_down"]["message"]
    for name in ("forbidden", "bad_token", "server_down", "commit_failed", "partial"):
        assert "local files are kept" in errors[name]["message"], name
    assert "not a saved prompt" in errors["not_a_prompt"]["message"]
    assert "other/prompt" not in hub_run[0]["repos"]


def test_failed_and_partial_uploads_name_the_missing_files(hub_run):
    results = hub_run[0]
    failed = results["errors"]["commit_failed"]["message"]
    assert "HTTP 422" in failed
    assert "Not on the Hub: README.md, adapter_config.json, adapter_model.safetensors" in failed
    partial = results["errors"]["partial"]["message"]
    assert "Partial upload" in partial and "1 of 4 files did not land" in partial
    assert partial.split("did not land")[1].count(".safetensors") == 1 and "adapter_model.safetensors" in partial
    # local files survive every failure
    assert results["prompt_dir_after_errors"] == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "prompt_provenance.json"]


def test_token_never_in_logs_errors_or_cards(hub_run):
    results, log, out = hub_run
    token, wrong = results["token"], results["wrong_token"]
    assert f"Bearer {token}" in results["auth_headers"]  # it was sent, so its absence below means something
    assert len(log) > 1000 and "HTTP Request" in log  # DEBUG logs were captured
    assert token not in log and wrong not in log
    for error in results["errors"].values():
        assert token not in json.dumps(error) and wrong not in json.dumps(error)
    for path in (out / "store").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    assert token not in results["prompt_card"]["content"] and token not in results["student_card"]


def test_scrubbed_error_when_the_hub_echoes_the_token(monkeypatch, tmp_path):
    """Even if an exception text carried the token, the PeftTransferError does not."""
    import peft_transfer.prompts.hub as hub

    secret = "hf_EchoedSecret123"

    class Boom(RuntimeError):
        pass

    def create_repo(self, *a, **k):
        raise Boom(f"server said: bad header Authorization: Bearer {secret}")

    monkeypatch.setattr(hub.HfApi, "create_repo", create_repo)
    folder = _saved_prompt(tmp_path)
    with pytest.raises(hub.PeftTransferError) as info:
        push_prompt_to_hub(folder, "org/x", token=secret)
    assert secret not in str(info.value) and "***" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_only_a_prompt_export_is_pushed(tmp_path, capsys):
    """A tune output folder with checkpoints, logs or training args is refused by name, before any network."""
    from peft_transfer.cli import main

    folder = _saved_prompt(tmp_path)
    (folder / "checkpoint-2").mkdir()
    (folder / "checkpoint-2" / "trainer_state.json").write_text('{"log_history": [{"loss": 0.69}]}')
    (folder / "training_args.bin").write_bytes(b"noise_seed")
    with pytest.raises(ValueError, match="not a prompt export: it also holds checkpoint-2/trainer_state.json, "
                                         "training_args.bin"):
        push_prompt_to_hub(folder, "org/p", token="x", endpoint="http://127.0.0.1:9")
    assert main(["push", str(folder), "org/p"]) == 2
    err = capsys.readouterr().err
    assert "checkpoint-2/trainer_state.json" in err and "Traceback" not in err
    export = export_prompt(folder, tmp_path / "export")  # the way out: an export of the same prompt
    assert sorted(os.listdir(export)) == sorted(PROMPT_FILES)


def test_bad_inputs_are_refused_before_any_network(tmp_path):
    with pytest.raises(ValueError, match="org/name"):
        push_prompt_to_hub(_saved_prompt(tmp_path), "no-namespace", token="x", endpoint="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="not a folder"):
        push_student_to_hub(tmp_path / "missing", "org/s", endpoint="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="not a saved model"):
        push_student_to_hub(tmp_path, "org/s", endpoint="http://127.0.0.1:9")


# -- the prompt card, in-process --------------------------------------------------------------------------
def _saved_prompt(tmp_path, **provenance) -> Path:
    folder = tmp_path / "prompt"
    prompt = create_prompt_model(make_model("llama"), make_tokenizer(), get_task("rotten_tomatoes"),
                                 num_virtual_tokens=2, **provenance)
    save_prompt(prompt, str(folder))
    return folder


def test_push_replaces_peft_placeholder_card_but_keeps_the_folder(tmp_path):
    folder = _saved_prompt(tmp_path, target="org/target")
    prompt = create_prompt_model(make_model("llama"), make_tokenizer(), get_task("rotten_tomatoes"),
                                 num_virtual_tokens=2)
    (folder / "README.md").unlink()
    prompt.save_pretrained(str(folder), save_embedding_layers=False)  # PEFT's own save: placeholder card
    assert "[More Information Needed]" in (folder / "README.md").read_text()
    with pytest.raises(ValueError, match="offline mode is on"):  # conftest sets HF_HUB_OFFLINE=1
        push_prompt_to_hub(folder, "org/p", token="t", endpoint=dead_endpoint())
    card = ModelCard.load(folder / "README.md")
    assert "peft-transfer" in card.data.tags and "[More Information Needed]" not in card.text
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(os.listdir(folder))


def test_save_prompt_replaces_peft_generic_card(tmp_path):
    folder = _saved_prompt(tmp_path, target="org/target")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "peft" and card.data.base_model == "org/target"
    assert "soft prompt" in card.text and "[More Information Needed]" not in card.text  # not PEFT's template
    assert "Not private" in card.text and "Not transferred" in card.text and "Not measured" in card.text
    assert "differential-privacy" not in card.data.tags and card.data.datasets is None


def test_card_for_masked_lm_with_local_target_and_comparison_rows(tmp_path):
    prompt = create_prompt_model(
        make_model("roberta"), make_tokenizer(), get_task("rotten_tomatoes"), num_virtual_tokens=2,
        dp=DPRecord(private=True, epsilon=8.0, delta=1e-5, accountant="rdp"),
        transfer=TransferRecord(source_model="s", public_dataset="movie_plots", public_fingerprint="sha256:1",
                                num_public_examples=10, alpha=0.3, temperature=1.5, steps=5, learning_rate=0.01,
                                seed=1))
    rows = [ComparisonRow("ZS", "t", None, 0.5, 0.4, 10), ComparisonRow("POST", "t", "p", 0.8, None, 10, 8.0)]
    card = render_prompt_card(prompt, results=rows)
    assert card.data.pipeline_tag == "fill-mask" and card.data.base_model is None  # a local name is no Hub id
    assert card.data.datasets == ["movie_plots"] and "differential-privacy" in card.data.tags
    assert "| POST | t | p | 0.8 | – | 10 | 8 |" in card.text and "| ε | 8 |" in card.text
    assert "AutoModelForMaskedLM" in card.text


def test_results_markdown_shapes():
    assert results_markdown(None) == ""
    flat = results_markdown({"accuracy": 0.91234, "epsilon": float("inf")})
    assert "| accuracy | 0.9123 |" in flat and "| epsilon | ∞ |" in flat
    assert "a \\| b" in results_markdown([{"note": "a | b"}])
