"""What a speed run reports: figures measured beside their baselines, targets, the table.

Shared by the modules of the speed benchmark (`benchmarks.speed` and the measurements it
assembles: `engine_speed`, `startup`, `serving`), which import it and never the other way round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Target:
    """What must hold: on the ratio faqbot / baseline, or on faqbot's own figure."""

    on: Literal["ratio", "value"]
    op: Literal["<=", ">=", "<", "=="]
    limit: float

    def describe(self) -> str:
        """E.g. "ratio <= 0.5"."""
        return f"{self.on} {self.op} {self.limit:g}"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        """Whether the figure meets the target; None when it could not be measured."""
        measured = ratio if self.on == "ratio" else value
        if measured is None:
            return None
        checks: dict[str, Callable[[float, float], bool]] = {
            "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
            "<": lambda a, b: a < b, "==": lambda a, b: a == b}
        return checks[self.op](measured, self.limit)


@dataclass(frozen=True)
class Figure:
    """One measured figure, with its baseline measured in the same run when there is one."""

    key: str
    label: str
    unit: str
    value: float | None
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """faqbot / baseline."""
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the target holds (None without a target or a value)."""
        return self.target.met(self.value, self.ratio) if self.target else None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: every field, plus the ratio and the verdict."""
        data = asdict(self)
        data.update(target=self.target.describe() if self.target else None,
                    ratio=self.ratio, met=self.met)
        return data


@dataclass
class Report:
    """Every figure of one run, and what it ran on."""

    context: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """One JSON object: the context, the figures by key, and whether every target holds."""
        verdicts = [figure.met for figure in self.figures if figure.target]
        return {"context": self.context,
                "figures": {figure.key: figure.as_dict() for figure in self.figures},
                "all_targets_met": all(verdict is True for verdict in verdicts)}

    def as_table(self) -> str:
        """The figures as an aligned text table: faqbot, baseline, ratio, target, verdict."""
        header = ("measure", "unit", "faqbot", "baseline", "ratio", "target", "ok")
        rows = [header] + [
            (figure.label, figure.unit, _number(figure.value), _number(figure.baseline),
             _number(figure.ratio), figure.target.describe() if figure.target else "",
             {True: "yes", False: "NO", None: ""}[figure.met])
            for figure in self.figures]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                 .rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * width for width in widths))
        context = self.context
        lines.insert(0, f"python {context.get('python')} on {context.get('cpus')} cores; "
                        f"{context.get('questions_timed', 0):,} questions timed "
                        f"({context.get('distinct_questions', 0):,} distinct)")
        notes = [f"- {figure.label}: {figure.note}" for figure in self.figures if figure.note]
        baselines = sorted({f"- {figure.baseline_name}" for figure in self.figures
                            if figure.baseline_name})
        return "\n".join([*lines, "", "baselines:", *baselines, *(["notes:", *notes] if notes
                                                                else [])])


def percentile(values: Sequence[float], rank: float) -> float:
    """The `rank`-th percentile of a non-empty sequence (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(rank / 100 * len(ordered)) - 1))
    return ordered[index]


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"

