"""Reruns into an existing output folder resume only what the same settings produced.

A resumable job (transfer, distillation) records the settings that determine its artifact in
`<folder>/run_settings.json` before it trains. A rerun with the same settings resumes its checkpoints (a
larger step budget continues training: steps are not among the settings); a rerun with other settings
is refused, naming the settings that differ, unless it starts over (`--no-resume`, `resume=False`), which
deletes the old checkpoints and caches first. So a provenance record or model card never names settings
that did not produce the weights beside it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import PeftTransferError

SETTINGS_NAME = "run_settings.json"


def _plain(settings: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


# settings recorded under another name than the command-line flag that sets them
_FLAGS = {"per_device_train_batch_size": "--batch-size", "target_epsilon": "--epsilon", "target_delta": "--delta",
          "num_train_epochs": "--epochs", "public_fingerprint": "the --public texts",
          "data_fingerprint": "the --data rows", "corpus_fingerprint": "the --corpus texts",
          "source_prompt": "the --prompt weights"}
_WIDTH = 48


def _pair(old: Any, new: Any) -> str:
    """`old → new`, each cut to about `_WIDTH` characters around where the two first differ."""
    a, b = json.dumps(old, default=str, ensure_ascii=False), json.dumps(new, default=str, ensure_ascii=False)
    start = 0
    if max(len(a), len(b)) > _WIDTH:
        same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        start = max(0, same - 12)
    return f"{_window(a, start)} → {_window(b, start)}"


def _window(text: str, start: int) -> str:
    cut = text[start : start + _WIDTH]
    return ("…" if start else "") + cut + ("…" if start + _WIDTH < len(text) else "")


def _name(key: str) -> str:
    flag = _FLAGS.get(key.split(".")[0])
    return f"{key} ({flag})" if flag else key


def differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """`key: old → new` for each setting that differs; a nested setting (the task's template, say) by its
    dotted key, and long values around the place where they differ, so the difference itself is shown."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{key}.")
        elif all(isinstance(v, str) and v.startswith("sha256:") for v in (a, b)):
            out.append(f"{_name(prefix + key)}: changed")  # a content hash: its digits say nothing
        else:
            out.append(f"{_name(prefix + key)}: {_pair(a, b)}")
    return out


def guard_rerun(folder: str | Path, settings: dict[str, Any], resume: bool, leftovers: Iterable[Path],
                write: bool = True, what: str = "run") -> bool:
    """Check a (re)run into `folder` before any work; True when its `leftovers` may be resumed.

    `leftovers`: what a resume would reuse (checkpoint folders, caches). With `resume` and leftovers from
    other (or unrecorded) settings this raises; without `resume` the leftovers are deleted. `write` (the
    main process only) records `settings` in the folder.
    """
    folder = Path(folder)
    record = folder / SETTINGS_NAME
    new = _plain(settings)
    leftovers = [p for p in leftovers if p.exists()]
    if resume and leftovers:
        if not record.is_file():
            raise PeftTransferError(
                f"{folder} holds checkpoints of a {what} whose settings were not recorded (an older version?), so "
                "they cannot be resumed safely: rerun with --no-resume to start over there (deletes them), or use "
                "another --out.")
        old = json.loads(record.read_text())
        changed = differences(old, new)
        if changed:
            raise PeftTransferError(
                f"{folder} holds a {what} made with other settings ({'; '.join(changed)}): rerun with --no-resume to "
                "start over there (deletes its checkpoints), use another --out, or repeat the old settings to resume.")
    if write:
        if not resume:
            for path in leftovers:
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
    return resume and bool(leftovers)


def checkpoint_step(checkpoint: str | Path | None) -> int:
    """The global step a Trainer checkpoint was saved at (0 for none). A resumed Trainer always trains at least
    one more step, even when this already reaches `max_steps`: callers return their finished artifact instead."""
    state = Path(checkpoint) / "trainer_state.json" if checkpoint else None
    if state is None or not state.is_file():
        return 0
    return int(json.loads(state.read_text()).get("global_step", 0))
