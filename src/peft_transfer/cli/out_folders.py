"""Output folders that would destroy or leak, refused before any work: one set of rules for every command.

- an output folder that is an existing file, or cannot be created or written (`common.check_out_folder`), for
  --out and the work folder (--work-dir, default `<out>-work`) alike;
- an output folder that is an input folder (--prompt, --model, --data ...), lies inside one or holds one: the
  output would overwrite the input or mix with it (a rerun with --no-resume deletes what it finds there);
- a --work-dir that is --out or lies inside it: checkpoints and trainer state would sit in the hand-over folder;
- an --out that is an existing artifact folder of another kind (a prompt, a model, a pipeline run, a comparison,
  an audit, a work folder with checkpoints) than the one the command writes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import PeftTransferError
from .common import check_out_folder

# kind -> (what a folder of that kind is called, alternatives of marker names that must all be present)
_KINDS: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {
    "run": ("a pipeline run folder", (("run_config.json",),)),
    "comparison": ("a comparison folder", (("comparison.json",),)),
    "audit": ("an audit folder", (("audit.json",), ("audit_plan.json",))),
    "model": ("a model folder", (("config.json",), ("distillation_summary.json",), ("compress_summary.json",),
                                 ("checkpoints",), ("teacher_cache",))),
    "work": ("a work folder with checkpoints", (("checkpoint-*",), ("run_settings.json", "adapter_config.json"))),
    "prompt": ("a prompt folder", (("adapter_config.json",),)),
}
# what each command writes into its --out, in the words of the refusal
WRITES = {"prompt": "a prompt export", "prompts": "prompt exports (one sub-folder per target)",
          "work": "checkpoints and trainer state", "model": "a model", "run": "a pipeline run",
          "comparison": "comparison.md and comparison.json", "audit": "an audit"}


def default_work_dir(out: str) -> str:
    """Where checkpoints go when --work-dir is not given: next to --out, never inside it."""
    return f"{os.path.normpath(out)}-work"


def artifact_kind(folder: str | os.PathLike) -> tuple[str, str] | None:
    """(kind, the marker that gave it away) of an existing artifact folder, or None (new, empty or unknown)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    for kind, (_, alternatives) in _KINDS.items():
        for names in alternatives:
            if all(any(folder.glob(name)) for name in names):
                return kind, names[0]
    return None


def check_folders(out: str, writes: str, inputs: Iterable[tuple[str, object]] = (), work_dir: str | None = None,
                  uses_work_dir: bool = False, out_flag: str = "--out") -> None:
    """Refuse, before any work, output folders that would destroy or leak (see the module docstring).

    `writes`: the kind of artifact the command writes into `out` (a key of `WRITES`). `inputs`: (flag or YAML
    key, value) pairs; a value may be a list (--target a b), and values that are no local path (embedded names,
    Hub ids) are skipped. `uses_work_dir`: the command keeps checkpoints in `work_dir` (default `<out>-work`).
    """
    check_out_folder(out, out_flag)
    outputs = [(out_flag, out, writes)]
    if uses_work_dir:
        work_flag = "--work-dir" if work_dir else "the default work folder"
        work = work_dir or default_work_dir(out)
        check_out_folder(work, work_flag)
        _check_work_outside_out(work_flag, work, out_flag, out, explicit=bool(work_dir))
        outputs.append((work_flag, work, "work"))
    for flag, path, kind in outputs:
        for in_flag, in_path in _local_inputs(inputs):
            _check_apart(flag, path, in_flag, in_path)
        _check_kind(flag, path, kind)


def _local_inputs(inputs: Iterable[tuple[str, object]]) -> list[tuple[str, str]]:
    out = []
    for flag, value in inputs:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item and os.path.exists(os.path.expanduser(str(item))):
                out.append((flag, str(item)))
    return out


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


def _check_work_outside_out(work_flag: str, work: str, out_flag: str, out: str, explicit: bool) -> None:
    w, o = _resolved(work), _resolved(out)
    if w == o or o in w.parents:
        where = "is" if w == o else "lies inside"
        advice = (f"omit it: the default is {default_work_dir(out)}" if explicit else
                  f"name the output folder itself rather than {out!r}")
        raise PeftTransferError(
            f"{work_flag} {work} {where} {out_flag} {out}: checkpoints, optimizer and trainer state would sit in the "
            f"folder you hand over. Give a --work-dir outside {out_flag} (or {advice}).")


def _check_apart(flag: str, path: str, in_flag: str, in_path: str) -> None:
    """`path` (an output) must not be the input `in_path`, lie inside it, or (for an input folder) hold it."""
    o, i = _resolved(path), _resolved(in_path)
    if o == i:
        relation = f"is the folder given as {in_flag}"
    elif i in o.parents:
        relation = f"lies inside {in_flag} {in_path}"
    elif o in i.parents and i.is_dir():
        relation = f"holds {in_flag} {in_path}"
    else:
        return
    raise PeftTransferError(
        f"{flag} {path} {relation}: writing there would overwrite or mix with that input (and --no-resume deletes "
        f"what it finds there). Choose an output folder outside {in_flag}'s folder.")


def _check_kind(flag: str, path: str, writes: str) -> None:
    found = artifact_kind(path)
    if found is None:
        if writes == "prompt":
            _check_export_files(flag, path)
        return
    kind, marker = found
    if kind == writes:
        if writes == "prompt":
            _check_export_files(flag, path)
        return
    raise PeftTransferError(
        f"{flag} {path} is {_KINDS[kind][0]} (it holds {marker}); writing {WRITES[writes]} there would mix the two. "
        f"Choose a new or empty folder for {'--work-dir' if writes == 'work' else flag}.")


def _check_export_files(flag: str, path: str) -> None:
    """A prompt export folder holds the prompt and its record only: anything else is refused now, not after
    training."""
    from ..prompts.handover import check_export_destination  # heavy (peft): only for commands that export prompts

    try:
        check_export_destination(path)
    except PeftTransferError as exc:
        raise PeftTransferError(f"{flag} {exc}") from None
