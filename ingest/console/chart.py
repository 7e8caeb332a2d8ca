"""The overview's chart: settled events per time slot by final status, as a stacked SVG bar chart.

Laid out here and drawn by a template, on the server, from the store's per-minute counters: no script, no
chart library. The SVG uses presentation attributes only (the CSP allows no inline style), and the template
escapes every label like any other text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

# Final statuses, bottom to top, with their colours (the same as the status badges in console.css).
SERIES = (("processed", "#2f855a"), ("ignored", "#718096"), ("invalid", "#b7791f"), ("dead", "#c53030"))


@dataclass(frozen=True)
class Slot:
    """One bar: its start (epoch seconds) and the count per status."""

    start: float
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def slots(per_minute: dict[int, dict[str, int]], *, until: float, span_s: int, slot_s: int) -> list[Slot]:
    """Group per-minute counts into `span_s / slot_s` slots ending with the one that holds `until`."""
    last = int(until // slot_s) * slot_s
    starts = [last - i * slot_s for i in range(span_s // slot_s - 1, -1, -1)]
    out = {s: dict.fromkeys((name for name, _ in SERIES), 0) for s in starts}
    for minute, counts in per_minute.items():
        start = (minute * 60 // slot_s) * slot_s
        if start in out:
            for status, n in counts.items():
                if status in out[start]:
                    out[start][status] += n
    return [Slot(float(s), out[s]) for s in starts]


@dataclass(frozen=True)
class Chart:
    """What templates/console/_chart.html draws: the bars' rectangles and the labels, in SVG units."""

    title: str
    width: int
    height: int
    peak: int
    rects: list[dict[str, Any]]
    ticks: list[dict[str, Any]]
    plot: dict[str, int]


def layout(bars: list[Slot], *, title: str, width: int = 720, height: int = 160) -> Chart:
    """A stacked bar chart of `bars`, with the peak and the time axis labelled."""
    pad_left, pad_bottom, pad_top = 36, 18, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    peak = max((b.total for b in bars), default=0) or 1
    bar_w = plot_w / max(len(bars), 1)
    rects = []
    for i, bar in enumerate(bars):
        x = pad_left + i * bar_w
        y = float(pad_top + plot_h)
        for status, colour in SERIES:
            n = bar.counts.get(status, 0)
            if n:
                h = plot_h * n / peak
                y -= h
                rects.append(
                    {
                        "x": round(x, 1),
                        "y": round(y, 1),
                        "w": round(max(bar_w - 1, 1), 1),
                        "h": round(h, 1),
                        "fill": colour,
                        "label": f"{_hhmm(bar.start)} {status}: {n}",
                    }
                )
    ticks = []
    if bars:
        # The axis: first, middle and last slot, anchored so none runs off the edge.
        for i, anchor in ((0, "start"), (len(bars) // 2, "middle"), (len(bars) - 1, "end")):
            x = pad_left + i * bar_w + (bar_w if anchor == "end" else 0)
            ticks.append({"x": round(x, 1), "anchor": anchor, "text": _hhmm(bars[i].start)})
    plot = {"left": pad_left, "top": pad_top, "bottom": pad_top + plot_h, "right": width - 4}
    return Chart(title, width, height, peak, rects, ticks, plot)


def _hhmm(ts: float) -> str:
    return time.strftime("%H:%M", time.gmtime(ts))
