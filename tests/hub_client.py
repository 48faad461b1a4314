"""Client side of the Hub tests, run in a fresh process (`python hub_client.py OUT_DIR`).

huggingface_hub fixes its endpoint at import, so this script starts the loopback Hub (tests/hub_server.py)
first, sets HF_ENDPOINT to it, and only then imports huggingface_hub / transformers / peft-transfer. It
pushes a tiny student and prompt with a token, loads them back by Hub id with the stock classes, runs the
error cases, and writes what it saw to OUT_DIR/results.json, the stored repo files to OUT_DIR/store/, for
tests/test_hub.py to check. Logging goes to stderr at DEBUG level (the test scans it for the token).
"""

import json
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from hub_server import HubServer, dead_endpoint  # noqa: E402

TOKEN = "hf_TestSecretToken_" + os.urandom(8).hex()
WRONG_TOKEN = "hf_WrongToken_" + os.urandom(8).hex()
OUT = Path(sys.argv[1])
server = HubServer(tokens={TOKEN: {"org"}}).start()
os.environ["HF_ENDPOINT"] = server.endpoint
for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
    os.environ.pop(key, None)
os.environ["HF_HOME"] = str(OUT / "hf_home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402

import torch  # noqa: E402
from huggingface_hub import ModelCard, constants  # noqa: E402
from huggingface_hub.utils import logging as hf_logging  # noqa: E402
from peft import PeftModel  # noqa: E402
from tiny_models import make_model, make_tokenizer  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

from peft_transfer import (  # noqa: E402
    DPRecord,
    PeftTransferError,
    TransferablePromptConfig,
    TransferRecord,
    create_prompt_model,
    get_task,
    label_logits,
    load_prompt,
    save_prompt,
)
from peft_transfer.cli import main  # noqa: E402
from peft_transfer.cli.hub_args import add_hub_arguments, maybe_push  # noqa: E402
from peft_transfer.prompts.hub import push_prompt_to_hub, push_student_to_hub  # noqa: E402
from peft_transfer.student.card import DistillationSummary, save_student_card  # noqa: E402
from peft_transfer.student.layers import make_student  # noqa: E402

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
hf_logging.set_verbosity_debug()
assert server.endpoint == constants.ENDPOINT, "HF_ENDPOINT was not picked up"

results: dict = {"token": TOKEN, "wrong_token": WRONG_TOKEN, "errors": {}}
tok = make_tokenizer()
task = get_task("rotten_tomatoes")
batch = task.tokenized(tok, masked_lm=False).encode(["a great film", "a dull and boring mess"])


def expect_error(name: str, fn) -> None:
    try:
        fn()
    except PeftTransferError as exc:
        results["errors"][name] = {"message": str(exc), "repr": repr(exc),
                                   "traceback": "".join(traceback.format_exception(exc))}
    else:
        results["errors"][name] = None


# -- student: push a folder with its card (and a checkpoint that must stay local), load by hub id ---------
teacher = make_model("llama", num_layers=4)
teacher.name_or_path = teacher.config._name_or_path = "org/teacher"
student = make_student(teacher, [0, 3]).eval()
student_dir = OUT / "student"
student.save_pretrained(student_dir)
tok.save_pretrained(student_dir)
save_student_card(student, student_dir, DistillationSummary(corpus="movie_plots", steps=0, num_blocks=0, block_size=0,
                                                           datasets=["movie_plots"], license="apache-2.0"))
(student_dir / "checkpoints" / "checkpoint-1").mkdir(parents=True)
(student_dir / "checkpoints" / "checkpoint-1" / "optimizer.pt").write_bytes(b"not for the hub")
(student_dir / "distillation_summary.json").write_text('{"final_losses": {"kl": 0.5}}')
pushed = push_student_to_hub(student_dir, "org/student", token=TOKEN)
results["student_push"] = {"files": pushed.files, "commit_url": pushed.commit_url, "refused": pushed.refused}
loaded = AutoModelForCausalLM.from_pretrained("org/student", token=TOKEN).eval()
with torch.no_grad():
    ids = batch["input_ids"]
    results["student_max_diff"] = (loaded(ids).logits - student(ids).logits).abs().max().item()
results["student_card"] = ModelCard.load("org/student", token=TOKEN).content

# -- prompt: push a PeftModel (saved with its card), load with stock PEFT and with our config -------------
target = make_model("llama", seed=1)
prompt = create_prompt_model(
    target, tok, task, num_virtual_tokens=3, target="org/target",
    dp=DPRecord(private=True, epsilon=3.0, delta=1e-5, accountant="prv", noise_multiplier=1.1, max_grad_norm=1.0,
                sample_rate=0.02, steps=50, num_train_examples=500),
    transfer=TransferRecord(source_model="org/student", public_dataset="org/public-plots",
                            public_fingerprint="sha256:00", num_public_examples=64, alpha=0.5, temperature=2.0,
                            steps=10, learning_rate=1e-3, seed=0))
with torch.no_grad():
    prompt.prompt_encoder["default"].embedding.weight.normal_()
prompt.eval()
pushed = push_prompt_to_hub(prompt, "org/prompt", token=TOKEN, results={"POST": {"accuracy": 0.75, "macro_f1": 0.7}},
                            license="apache-2.0")
results["prompt_push"] = {"files": pushed.files, "local_dir": pushed.local_dir}
fresh = make_model("llama", seed=1)
stock = PeftModel.from_pretrained(fresh, "org/prompt", token=TOKEN).eval()
with torch.no_grad():
    args = (batch["input_ids"], batch["attention_mask"], batch["label_positions"])
    results["prompt_max_diff"] = (label_logits(stock, *args) - label_logits(prompt, *args)).abs().max().item()
    results["prompt_vs_no_prompt"] = (label_logits(prompt, *args) - label_logits(prompt, *args, use_prompt=False)
                                      ).abs().max().item()
    ours = load_prompt(make_model("llama", seed=1), "org/prompt", token=TOKEN).eval()
    results["load_prompt_max_diff"] = (label_logits(ours, *args) - label_logits(prompt, *args)).abs().max().item()
config = TransferablePromptConfig.from_pretrained("org/prompt", token=TOKEN)
results["provenance_equal"] = config.provenance_dict() == prompt.peft_config["default"].provenance_dict()
results["provenance_dp_epsilon"] = config.dp.epsilon
card = ModelCard.load("org/prompt", token=TOKEN)
results["prompt_card"] = {"data": card.data.to_dict(), "content": card.content}

# -- the CLI helper: --push-to-hub with the token from HF_TOKEN -----------------------------------------
prompt_dir = OUT / "prompt"
save_prompt(prompt, str(prompt_dir))
parser = argparse.ArgumentParser()
add_hub_arguments(parser)
os.environ["HF_TOKEN"] = TOKEN
results["maybe_push_none"] = maybe_push(parser.parse_args([]), prompt_dir, "prompt")
cli_pushed = maybe_push(parser.parse_args(["--push-to-hub", "org/prompt-cli"]), prompt_dir, "prompt")
results["maybe_push"] = cli_pushed.files if cli_pushed else None
results["cli_push_student"] = main(["push", str(student_dir), "org/student-cli", "--hub-public"])
err = io.StringIO()
with contextlib.redirect_stderr(err):
    results["cli_push_forbidden"] = {"rc": main(["push", str(prompt_dir), "other/cli"]), "stderr": err.getvalue()}
del os.environ["HF_TOKEN"]

# -- errors: no permission, bad token, server down, failed commit, partial upload ----------------------
expect_error("forbidden", lambda: push_prompt_to_hub(prompt_dir, "other/prompt", token=TOKEN))
expect_error("bad_token", lambda: push_prompt_to_hub(prompt_dir, "org/prompt-x", token=WRONG_TOKEN))
expect_error("server_down", lambda: push_prompt_to_hub(prompt_dir, "org/prompt-y", token=TOKEN,
                                                       endpoint=dead_endpoint()))
server.fail_commit = 422
expect_error("commit_failed", lambda: push_prompt_to_hub(prompt_dir, "org/prompt-fail", token=TOKEN))
server.fail_commit = None
server.drop_on_commit = {"adapter_model.safetensors"}
expect_error("partial", lambda: push_prompt_to_hub(prompt_dir, "org/prompt-partial", token=TOKEN))
server.drop_on_commit = set()
expect_error("not_a_prompt", lambda: push_prompt_to_hub(student_dir, "org/wrong", token=TOKEN))
results["prompt_dir_after_errors"] = sorted(os.listdir(prompt_dir))
results["repos"] = {repo_id: {"private": repo.private, "files": sorted(repo.commits[-1][1])}
                    for repo_id, repo in server.repos.items()}
results["auth_headers"] = sorted({auth for _, _, auth in server.requests if auth})

for repo_id, repo in server.repos.items():
    for path, data in repo.commits[-1][1].items():
        dest = OUT / "store" / repo_id / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
(OUT / "results.json").write_text(json.dumps(results, indent=2, default=str))
server.stop()
