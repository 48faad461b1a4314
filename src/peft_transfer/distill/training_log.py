"""`JsonlLogCallback`: every Trainer log line appended to a JSON-lines file (a loss log that survives the run)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback


class JsonlLogCallback(TrainerCallback):
    """Appends `{"step", "wall_s", **logs}` for each log event of the main process to `path`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._start = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"step": state.global_step, "wall_s": round(time.perf_counter() - self._start, 2), **logs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
