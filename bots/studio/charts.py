"""The stats pictures, drawn on the server as SVG: geometry here, markup in charts.html.

No chart library and no script: the page works offline under a strict Content-Security-Policy.
Each series gets a CSS class (`series-0`, `series-1`...) that studio.css colours.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from core.questionlog.interface import LoggedQuestion

WIDTH, HEIGHT = 760, 240
LEFT, BOTTOM, TOP = 40, 40, 10  # room for the axis labels
BAR_HEIGHT = 22


@dataclass(frozen=True)
class Bar:
    """One rectangle, with the text a mouse-over shows."""

    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True)
class Label:
    """A text on the picture."""

    x: float
    y: float
    text: str
    anchor: str = "middle"


@dataclass(frozen=True)
class Chart:
    """What charts.html draws."""

    width: int
    height: int
    bars: list[Bar]
    labels: list[Label]
    legend: list[tuple[int, str]]  # (series, name)


def daily_series(entries: Sequence[LoggedQuestion],
                 key: str) -> tuple[list[str], dict[str, list[int]]]:
    """Days (UTC, every day from the first to the last) and, per value of the entries' `key`
    attribute (platform, kind), the count of each day."""
    if not entries:
        return [], {}
    counts = Counter((entry.at.date(), str(getattr(entry, key))) for entry in entries)
    first, last = min(day for day, _ in counts), max(day for day, _ in counts)
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    names = sorted({name for _, name in counts})
    return ([f"{day:%m-%d}" for day in days],
            {name: [counts[day, name] for day in days] for name in names})


def stacked_columns(days: list[str], series: dict[str, list[int]]) -> Chart:
    """One column per day, the series stacked in it."""
    totals = [sum(column) for column in zip(*series.values(), strict=True)] or [0]
    top = max(*totals, 1)
    plot_width, plot_height = WIDTH - LEFT, HEIGHT - BOTTOM - TOP
    step = plot_width / max(len(days), 1)
    bars, labels = [], [Label(LEFT - 6, TOP + 4, str(top), "end"),
                        Label(LEFT - 6, HEIGHT - BOTTOM, "0", "end")]
    for index, day in enumerate(days):
        x, base = LEFT + index * step + step * 0.1, HEIGHT - BOTTOM
        for number, (name, counts) in enumerate(series.items()):
            height = counts[index] / top * plot_height
            if height:
                base -= height
                bars.append(Bar(x, base, step * 0.8, height, number,
                                f"{day}: {name} {counts[index]}"))
        if index % max(len(days) // 10, 1) == 0:
            labels.append(Label(x + step * 0.4, HEIGHT - BOTTOM + 16, day))
    legend = [(number, name) for number, name in enumerate(series)]
    return Chart(WIDTH, HEIGHT, bars, labels, legend)


def horizontal_bars(items: list[tuple[str, int]]) -> Chart:
    """One bar per item, longest first as given."""
    top = max((count for _, count in items), default=1)
    name_width = 220
    bars, labels = [], []
    for index, (name, count) in enumerate(items):
        y = TOP + index * (BAR_HEIGHT + 6)
        width = count / top * (WIDTH - name_width - 60)
        bars.append(Bar(name_width, y, width, BAR_HEIGHT, 0, f"{name}: {count}"))
        labels.append(Label(name_width - 8, y + 16, name, "end"))
        labels.append(Label(name_width + width + 6, y + 16, str(count), "start"))
    height = TOP * 2 + len(items) * (BAR_HEIGHT + 6)
    return Chart(WIDTH, height, bars, labels, [])
