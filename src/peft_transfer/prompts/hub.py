"""Publish students and prompts on the Hugging Face Hub as standard artifacts, whitelisted file by file.

A prompt goes up only as a prompt export (`handover.check_prompt_export`: adapter, provenance, card); any
other folder is refused with the files that may not leave named. A student goes up as a plain transformers
model repo made of the whitelisted files of its folder (`handover.split_student_files`: config, safetensors
weights, tokenizer, card); every other file (checkpoints, teacher cache, summaries) stays local and is named
in the log and in `PushResult.refused`. Both go up with huggingface_hub's `create_repo` + `upload_folder`
restricted to exactly those files (one atomic commit), then the remote file list is checked against them so
that a partial upload is reported by name.

Errors (no write permission, server down, failed commit) become one `PeftTransferError` that says what
to do; the local folder is always kept. The token is never logged, never put in a card and is scrubbed
from every error message (the original exception is not chained, as its text is not ours to vouch for).
"""

from __future__ import annotations

import glob
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from peft import PeftModel
from transformers import PreTrainedModel

from ..errors import PeftTransferError
from ..hub_ids import hub_id_problem
from .card import is_peft_generic_card, save_prompt_card
from .config import TransferablePromptConfig
from .handover import check_prompt_export, save_prompt, split_student_files

logger = logging.getLogger(__name__)


@dataclass
class PushResult:
    """Where an artifact landed: repo URL, commit URL and the files now on the Hub."""

    repo_id: str
    repo_url: str
    commit_url: str
    files: list[str] = field(default_factory=list)
    local_dir: str = ""
    refused: list[str] = field(default_factory=list)  # local files that were not uploaded (not whitelisted)


def push_prompt_to_hub(prompt_dir_or_peft_model: str | os.PathLike | PeftModel, repo_id: str, token: str | None = None,
                       private: bool = True, commit_message: str | None = None, results=None,
                       license: str | None = None, endpoint: str | None = None) -> PushResult:
    """Push a prompt export (or a PeftModel, exported first) as a PEFT adapter repo.

    The folder must be a prompt export (adapter, `prompt_provenance.json`, README.md card, nothing else):
    a folder with checkpoints, logs or training arguments is refused, naming them. An export whose card is
    missing or PEFT's placeholder gets its card rendered from its provenance; `results` / `license` only
    apply when the card is written here. Private by default: a prompt is tuned on private data, so
    publishing it is an explicit choice (`private=False`); an existing repo keeps its visibility.
    `endpoint` overrides HF_ENDPOINT.
    """
    message = commit_message or "Upload soft prompt (peft-transfer)"
    if isinstance(prompt_dir_or_peft_model, PeftModel):
        folder = Path(tempfile.mkdtemp(prefix="peft-transfer-prompt-"))
        save_prompt(prompt_dir_or_peft_model, folder, results=results, license=license)
        return _push_temporary(folder, repo_id, token, private, message, _prompt_files(folder), endpoint)
    folder = _existing_folder(prompt_dir_or_peft_model, "prompt")
    if not (folder / "adapter_config.json").is_file():
        raise PeftTransferError(f"{folder} is not a saved prompt: it has no adapter_config.json. "
                                "Pass the export that `peft-transfer tune` or `transfer` wrote as --out.")
    config = TransferablePromptConfig.from_pretrained(str(folder))  # also refuses non-prompt adapters
    check_prompt_export(folder)
    readme = folder / "README.md"
    if not readme.is_file() or is_peft_generic_card(readme):
        logger.info("Writing the prompt's model card to %s", readme)
        save_prompt_card(config, folder, results=results, license=license)
    return _push_folder(folder, repo_id, token, private, message, _prompt_files(folder), endpoint)


def _prompt_files(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in check_prompt_export(folder).iterdir() if p.is_file()]


def push_student_to_hub(student_dir_or_model: str | os.PathLike | PreTrainedModel, repo_id: str,
                        token: str | None = None, private: bool = True, commit_message: str | None = None,
                        tokenizer=None, endpoint: str | None = None) -> PushResult:
    """Push the whitelisted files of a student folder (config, safetensors weights, tokenizer, README.md card)
    as a transformers model repo; every other file stays local and is named (`PushResult.refused`).

    An in-memory model is saved first (with `tokenizer` if given) and has no card then (logged).
    """
    message = commit_message or "Upload distilled student (peft-transfer)"
    if isinstance(student_dir_or_model, PreTrainedModel):
        folder = Path(tempfile.mkdtemp(prefix="peft-transfer-student-"))
        student_dir_or_model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        return _push_temporary(folder, repo_id, token, private, message, split_student_files(folder)[0], endpoint)
    folder = _existing_folder(student_dir_or_model, "student")
    files, refused = split_student_files(folder)
    if "config.json" not in files or not any(f.endswith(".safetensors") for f in files):
        raise PeftTransferError(f"{folder} is not a saved model: it needs config.json and *.safetensors weights. "
                                "Pass the folder that `peft-transfer distill` (or save_pretrained) wrote.")
    if "README.md" not in files:
        logger.warning("%s has no README.md model card; the student repo will have none.", folder)
    if refused:
        logger.warning("Not uploaded from %s (not part of a student export): %s", folder, ", ".join(refused))
    result = _push_folder(folder, repo_id, token, private, message, files, endpoint)
    result.refused = refused
    return result


def _push_temporary(folder: Path, *args) -> PushResult:
    """Push a folder saved here for the upload: removed after success, kept (and named) after a failure."""
    result = _push_folder(folder, *args)
    shutil.rmtree(folder, ignore_errors=True)
    result.local_dir = ""
    return result


def _existing_folder(path: str | os.PathLike, kind: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise PeftTransferError(f"{folder} is not a folder: pass the saved {kind} folder (or the in-memory model).")
    return folder


def _local_files(folder: Path, files: list[str]) -> dict[str, int]:
    """Relative POSIX path -> size of the whitelisted files that will be sent."""
    return {f: (folder / f).stat().st_size for f in sorted(files)}


def _scrub(text: str, token: str | None) -> str:
    """The text with the token masked (strings too short to be a token are left alone: they would mangle it)."""
    return text.replace(token, "***") if token and len(token) >= 8 else text


def _push_folder(folder: Path, repo_id: str, token: str | None, private: bool, commit_message: str,
                 files: list[str], endpoint: str | None) -> PushResult:
    problem = hub_id_problem(repo_id)
    if problem:
        raise PeftTransferError(f"Cannot push: {problem}.")
    local = _local_files(folder, files)
    api = HfApi(endpoint=endpoint, token=token, library_name="peft-transfer")
    where = f"The local files are kept in {folder}."
    logger.info("Pushing %d files from %s to %s/%s (%s)", len(local), folder, api.endpoint, repo_id,
                "private" if private else "public")
    stage = "create the repo"
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        stage = "upload the files"
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message=commit_message,
                                   allow_patterns=[glob.escape(f) for f in local])
    except Exception as exc:  # one clear error for every way the Hub can fail
        landed = _remote_files(api, repo_id) if stage == "upload the files" else None
        raise PeftTransferError(_scrub(_explain(exc, repo_id, api.endpoint, stage, local, landed, where), token)) \
            from None
    remote = _remote_files(api, repo_id)
    if remote is None:
        raise PeftTransferError(f"The commit to {repo_id} returned but its file list cannot be read back, so the "
                                f"upload is unverified; check {repo_url} and push again if files are missing. {where}")
    missing = [p for p, size in local.items() if remote.get(p) != size]
    if missing:
        raise PeftTransferError(
            f"Partial upload to {repo_id}: {len(missing)} of {len(local)} files did not land (or differ in size): "
            f"{', '.join(missing)}. Push again to complete it. {where}")
    logger.info("Pushed %s (%d files)", commit.commit_url, len(local))
    return PushResult(repo_id=repo_id, repo_url=str(repo_url), commit_url=commit.commit_url, files=sorted(local),
                      local_dir=str(folder))


def _remote_files(api: HfApi, repo_id: str) -> dict[str, int] | None:
    """Path -> size of the files on the Hub now, or None when they cannot be listed."""
    try:
        return {f.path: f.lfs.size if getattr(f, "lfs", None) else f.size
                for f in api.list_repo_tree(repo_id, recursive=True) if hasattr(f, "size")}
    except Exception:  # the Hub is unreachable or the repo does not exist: nothing to compare
        return None


def _is_network_error(exc: Exception) -> bool:
    """Connection refused, DNS, timeouts (huggingface_hub's HTTP library varies across versions: match by class)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return isinstance(exc, (ConnectionError, TimeoutError)) or bool(
        names & {"ConnectError", "NetworkError", "TimeoutException", "TransportError", "ConnectionError"})


def _explain(exc: Exception, repo_id: str, endpoint: str, stage: str, local: dict[str, int],
             landed: dict[str, int] | None, where: str) -> str:
    status = exc.response.status_code if isinstance(exc, HfHubHTTPError) and exc.response is not None else None
    namespace = repo_id.split("/")[0]
    if isinstance(exc, OfflineModeIsEnabled):
        head = f"Cannot {stage} {repo_id}: offline mode is on (HF_HUB_OFFLINE=1); unset it to push to the Hub."
    elif status in (401, 403):
        head = (f"No permission to {stage} {repo_id} (HTTP {status}): the token is missing, invalid or has no "
                f"write access to '{namespace}'. Use a write token (HF_TOKEN or `hf auth login`) for that namespace.")
    elif _is_network_error(exc):
        head = f"Cannot reach the Hub at {endpoint} to {stage} {repo_id} ({type(exc).__name__}): is it up and online?"
    elif status is not None:
        server = (exc.server_message or "").strip() if isinstance(exc, HfHubHTTPError) else ""
        head = f"The Hub refused to {stage} {repo_id} (HTTP {status}{': ' + server if server else ''})."
    else:
        head = f"Failed to {stage} {repo_id}: {type(exc).__name__}: {exc}"
    if stage == "upload the files":
        if landed is None:
            head += f" Which of the {len(local)} files landed is unknown (the repo cannot be listed)."
        else:
            missing = [p for p, size in local.items() if landed.get(p) != size]
            if missing:
                head += f" Not on the Hub: {', '.join(missing)}."
            else:
                head += " All files are on the Hub nonetheless (from an earlier push)."
    return f"{head} {where}"
