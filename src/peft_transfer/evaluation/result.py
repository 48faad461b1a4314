"""What every evaluation result reports: a headline number plus its other metrics, named for tables and records.

`ClassificationResult` (accuracy, macro-F1) and `GenerationResult` (ROUGE-L, -1, -2) subclass `TaskResult`;
the comparison table, the CLI and the pipeline read a result only through these names, never by task kind.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import ClassVar


class TaskResult:
    """Base of the result dataclasses: `LABELS` maps each metric field to its printed name, headline first."""

    LABELS: ClassVar[dict[str, str]] = {}
    UNIT: ClassVar[str] = ""  # after a percentage in the comparison table
    METRIC: ClassVar[str | None] = None  # the headline's name in reports, where it is not plain accuracy

    n: int

    @classmethod
    def headline_field(cls) -> str:
        """The field of the headline number (accuracy, ROUGE-L): the one gap closure and Eq. 6 read."""
        return next(iter(cls.LABELS))

    @property
    def headline(self) -> float:
        return getattr(self, self.headline_field())

    def metrics(self) -> dict[str, float]:
        """Every metric of the result by field name, headline first (not `n`)."""
        return {name: getattr(self, name) for name in self.LABELS}

    def describe(self) -> str:
        """'accuracy 0.8125, macro-F1 0.8000': each metric with its printed name."""
        return ", ".join(f"{label} {getattr(self, name):.4f}" for name, label in self.LABELS.items())

    def to_dict(self) -> dict:
        return asdict(self)
