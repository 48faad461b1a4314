"""The comparison table of a run (markdown + JSON) and its bar chart, in the paper's layout:
one row per task and privacy level, columns ZS / FullPT / CompPT / Direct / POST, plus gap closure
G = (POST - ZS) / (FullPT - ZS). A record's number is its `accuracy`, or its `score` under `metric`
(ROUGE-L for generation tasks, named next to the task)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure

from ..evaluation.metrics import wilson_interval
from ..evaluation.result import TaskResult

METHODS = ("ZS", "FullPT", "CompPT", "Direct", "POST")
ORACLE = "POST-oracle-α"  # evaluation-side baseline (Eq. 6's α from test labels), shown only when run


def _methods(rows: list[dict]) -> tuple[str, ...]:
    return METHODS + ((ORACLE,) if any(ORACLE in row for row in rows) else ())


def _eps_label(epsilon: float) -> str:
    return "∞ (no DP)" if math.isinf(epsilon) else f"{epsilon:g}"


def _value(record: dict) -> float:
    return record["score"] if "score" in record else record["accuracy"]


def result_record(result: type[TaskResult], task: str, epsilon: float, method: str, values: dict) -> dict:
    """One record of results.json from a result's numbers (`values`: its `to_dict()` or a comparison row): the
    headline as its field (`accuracy`), or as `score` with its `metric` name (ROUGE-L), then the rest and n."""
    head = result.headline_field()
    headline = {"metric": result.METRIC, "score": values[head]} if result.METRIC else {head: values[head]}
    rest = {name: values[name] for name in result.LABELS if name != head}
    return {"task": task, "epsilon": epsilon, "method": method, **headline, **rest, "n": values["n"]}


def table_rows(results: list[dict]) -> list[dict]:
    """Pivot result records {task, epsilon, method, accuracy | score + metric, n} into one row per (task, ε)."""
    keys: list[tuple[str, float]] = []
    for r in results:
        if r["method"] != "ZS" and (r["task"], r["epsilon"]) not in keys:
            keys.append((r["task"], r["epsilon"]))
    rows = []
    for task, epsilon in keys:
        row: dict = {"task": task, "epsilon": epsilon}
        for r in results:
            if r["task"] == task and (r["method"] == "ZS" or r["epsilon"] == epsilon):
                row[r["method"]] = _value(r)
                row["n"] = r["n"]
                if "metric" in r:
                    row["metric"] = r["metric"]
        zs, full, post = row.get("ZS"), row.get("FullPT"), row.get("POST")
        if None not in (zs, full, post) and full != zs:
            row["gap_closure"] = (post - zs) / (full - zs)
        rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    methods = _methods(rows)
    head = "| task | ε | n test | " + " | ".join(methods) + " | G |"
    lines = [head, "|" + "---|" * (len(methods) + 4)]
    for row in rows:
        cells = [f"{100 * row[m]:.1f}" if row.get(m) is not None else "–" for m in methods]
        g = f"{row['gap_closure']:.2f}" if "gap_closure" in row else "–"
        task = f"{row['task']} ({row['metric']})" if "metric" in row else row["task"]
        lines.append(f"| {task} | {_eps_label(row['epsilon'])} | {row.get('n', '–')} | "
                     + " | ".join(cells) + f" | {g} |")
    return "\n".join(lines)


def interval_table(rows: list[dict]) -> str:
    """Each accuracy with its 95 % Wilson interval (test-set sampling only: one seed, one training run)."""
    methods = _methods(rows)
    lines = ["| task | ε | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 2)]
    for row in rows:
        cells = []
        for m in methods:
            if row.get(m) is None or not row.get("n"):
                cells.append("–")
                continue
            lo, hi = wilson_interval(row[m], int(row["n"]))
            cells.append(f"{100 * row[m]:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]")
        lines.append(f"| {row['task']} | {_eps_label(row['epsilon'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bar_chart(rows: list[dict], path: Path) -> Path:
    methods = _methods(rows)
    fig = Figure(figsize=(1.8 + 2.2 * len(rows), 3.6))  # no pyplot: no backend or global figure state
    ax = fig.subplots()
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        xs = [j + (i - (len(methods) - 1) / 2) * width for j in range(len(rows))]
        ys = [100 * (row.get(method) if row.get(method) is not None else float("nan")) for row in rows]
        bars = ax.bar(xs, ys, width, label=method)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(range(len(rows)), [f"{r['task']}\nε={_eps_label(r['epsilon'])}" for r in rows])
    metrics = sorted({row.get("metric", "accuracy") for row in rows})
    ax.set_ylabel(f"test {' / '.join(metrics)} (%)")
    ax.set_ylim(0, 100)
    ax.legend(ncol=len(methods), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.15), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(results: list[dict], out: Path, notes: str = "") -> dict[str, Path]:
    """Write results.json, results.md and results.png into `out`; returns their paths."""
    rows = table_rows(results)
    paths = {"json": out / "results.json", "md": out / "results.md", "png": out / "results.png"}
    serial = [{**r, "epsilon": "inf" if math.isinf(r["epsilon"]) else r["epsilon"]} for r in results]
    paths["json"].write_text(json.dumps({"results": serial, "table": [
        {**r, "epsilon": "inf" if math.isinf(r["epsilon"]) else r["epsilon"]} for r in rows]}, indent=2) + "\n")
    intervals = ("\n\nAccuracy (%) with its 95 % Wilson interval over the test examples (the test sample only; "
                 "training seeds are not varied):\n\n" + interval_table(rows) + "\n") if rows else ""
    paths["md"].write_text("# POST results\n\n" + markdown_table(rows) + intervals + "\n" + notes)
    if rows:
        bar_chart(rows, paths["png"])
    return paths
