"""The handover format: what may leave a machine, as a whitelist of files.

A **prompt export** (p_s handed over by the data owner, or p_t published by the provider) holds exactly the
stock PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`), the provenance with the DP record
(`prompt_provenance.json`) and the model card (`README.md`): no checkpoints, trainer state, logged losses,
optimizer state, training arguments or accountant state. `save_prompt` is the one place that writes a
prompt; `export_prompt` writes an export into a folder that holds nothing else; `check_prompt_export`
refuses any other folder, naming the files that must not leave.

A **student export** is a stock transformers model folder: config, safetensors weights, tokenizer files and
the card. `split_student_files` tells the whitelisted files from the rest (checkpoints, caches, summaries).
"""

from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Iterable
from pathlib import Path

from peft import PeftModel
from peft.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME

from ..errors import PeftTransferError
from .card import Results, is_peft_generic_card, save_prompt_card
from .config import PROVENANCE_NAME, TransferablePromptConfig

CARD_NAME = "README.md"
PROMPT_REQUIRED = (CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME, PROVENANCE_NAME)
PROMPT_FILES = (*PROMPT_REQUIRED, CARD_NAME)
STUDENT_PATTERNS = (
    "config.json", "generation_config.json", "model.safetensors", "model-*-of-*.safetensors",
    "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    "tokenizer.model", "vocab.json", "vocab.txt", "merges.txt", "added_tokens.json", "chat_template.jinja",
    "chat_template.json", CARD_NAME,
    # distillation records (public corpus only): the summary and the shipped student's build record
    "distillation_summary.json", "student_build.json",
)


def save_prompt(peft_model: PeftModel, save_directory: str | Path, results: Results = None,
                license: str | None = None, **kwargs) -> Path:
    """Write the prompt's export files: the stock PROMPT_TUNING adapter, its provenance (never the embeddings:
    prompt tuning does not change them, and PEFT's check for it would query the Hub) and its model card
    (replacing PEFT's generic README.md) with optional measured `results`. Returns the folder."""
    kwargs.setdefault("save_embedding_layers", False)
    peft_model.save_pretrained(str(save_directory), **kwargs)
    if kwargs.get("is_main_process", True):
        save_prompt_card(peft_model, save_directory, results=results, license=license)
    return Path(save_directory)


def folder_files(folder: Path) -> list[str]:
    """Every file under `folder`, as sorted relative POSIX paths (hidden ones included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _listing(paths: Iterable[str], limit: int = 8) -> str:
    paths = list(paths)
    more = f" and {len(paths) - limit} more" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def check_prompt_export(folder: str | Path) -> Path:
    """Refuse a folder that is not exactly a prompt export, naming the files that may not leave and the
    missing ones; returns the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PeftTransferError(f"{folder} is not a folder: pass a prompt export (the folder `peft-transfer tune` "
                                "or `transfer` wrote as --out).")
    files = folder_files(folder)
    refused = [f for f in files if f not in PROMPT_FILES]
    if refused:
        raise PeftTransferError(
            f"{folder} is not a prompt export: it also holds {_listing(refused)}, which must not leave this "
            f"machine (only {', '.join(PROMPT_FILES)} do). Pass the export that `peft-transfer tune`/`transfer` "
            "wrote as --out, or make one with peft_transfer.prompts.handover.export_prompt(folder, new_folder).")
    # a stock adapter from another tool (e.g. TRL) has no provenance: it carries no DP record, which the
    # transfer records; everything else that could leave with it is refused above
    missing = [f for f in (CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME) if f not in files]
    if missing:
        raise PeftTransferError(f"{folder} is not a prompt export: it has no {', '.join(missing)}.")
    return folder


def check_export_destination(folder: str | Path) -> None:
    """Refuse to write an export into a folder that already holds other files (e.g. checkpoints)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise PeftTransferError(f"{folder} is a file; an export is a folder.")
    refused = [f for f in folder_files(folder) if f not in PROMPT_FILES] if folder.is_dir() else []
    if refused:
        raise PeftTransferError(
            f"{folder} holds {_listing(refused)}: an export folder holds only the prompt and its record, so it "
            "cannot be written there. Choose a new (or empty) output folder.")


def export_prompt(prompt: PeftModel | str | Path, export_dir: str | Path, results: Results = None,
                  license: str | None = None) -> Path:
    """Write the prompt export of a PeftModel, or of a saved prompt folder (e.g. a checkpoint or an older
    output folder: only its adapter and provenance are copied, the card is rendered anew if it has none)."""
    export_dir = Path(export_dir)
    check_export_destination(export_dir)
    if isinstance(prompt, PeftModel):
        save_prompt(prompt, export_dir, results=results, license=license)
        return check_prompt_export(export_dir)
    source = Path(prompt)
    config = TransferablePromptConfig.from_pretrained(str(source))  # refuses anything but a prompt
    missing = [f for f in PROMPT_REQUIRED if not (source / f).is_file()]
    if missing:
        raise PeftTransferError(f"{source} is not a saved prompt: it has no {', '.join(missing)}.")
    if source.resolve() != export_dir.resolve():
        export_dir.mkdir(parents=True, exist_ok=True)
        for name in PROMPT_REQUIRED:
            shutil.copyfile(source / name, export_dir / name)
    card = source / CARD_NAME
    if results is None and license is None and card.is_file() and not is_peft_generic_card(card):
        if source.resolve() != export_dir.resolve():
            shutil.copyfile(card, export_dir / CARD_NAME)
    else:
        save_prompt_card(config, export_dir, results=results, license=license)
    return check_prompt_export(export_dir)


def split_student_files(folder: str | Path) -> tuple[list[str], list[str]]:
    """(files of a student export, every other file) in a saved model folder, as relative paths."""
    files = folder_files(Path(folder))
    kept = [f for f in files if "/" not in f and any(fnmatch.fnmatchcase(f, p) for p in STUDENT_PATTERNS)]
    return kept, [f for f in files if f not in kept]
