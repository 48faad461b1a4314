"""Shared helpers for benchmark scripts: the header every results file carries."""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"


def run_header() -> dict:
    """Command, date, machine and load: what a reader needs to judge the numbers."""
    return {
        "command": "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
                   f"{torch.get_num_threads()} threads, cuda={torch.cuda.is_available()}",
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_results(name: str, header: dict, rows: list[dict], markdown: str) -> Path:
    """Write results/<name>.json and results/<name>.md (markdown = the body under the header)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n")
    head = "\n".join(f"- {k}: `{v}`" if k == "command" else f"- {k}: {v}" for k, v in header.items())
    path = RESULTS / f"{name}.md"
    path.write_text(f"# {name}\n\n{head}\n\n{markdown}\n")
    return path


def cached_student() -> str | None:
    """The pipeline's cached distilled student folder (`student.source: distill`), if this machine has built it."""
    from peft_transfer.pipeline.config import PipelineConfig, StudentSettings
    from peft_transfer.pipeline.runner import student_folder

    # the default run's student: keep_layers resolved as the pipeline does for the 30-layer embedded target
    folder = student_folder(PipelineConfig(student=StudentSettings(keep_layers=[0, 1, 28, 29], source="distill")))
    return str(folder) if (folder / "config.json").exists() else None


def load_student(path: str | None, keep_layers: list[int]):
    """(model, tokenizer, folder): `path`, else the pipeline's cached distilled student (folder set), else
    the embedded LLM's `keep_layers` without distillation (folder None)."""
    from peft_transfer.assets import load_model
    from peft_transfer.student.layers import make_student

    folder = path or cached_student()
    if folder:
        return (*load_model(folder), folder)
    target, tokenizer = load_model("smollm2-135m")
    return make_student(target, keep_layers=keep_layers), tokenizer, None


def pyplot():
    """matplotlib.pyplot with the file-only Agg backend, or None where matplotlib is not installed (then the
    results files are written without their plot)."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
