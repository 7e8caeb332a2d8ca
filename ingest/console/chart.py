"""The overview's chart: settled events per time slot by final status, as a stacked SVG bar chart.

Drawn here, on the server, from the store's per-minute counters: no script, no chart library. The SVG uses
presentation attributes only (the console's Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape

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


def svg(bars: list[Slot], *, title: str, width: int = 720, height: int = 160) -> str:
    """A stacked bar chart of `bars`, with the peak and the time axis labelled."""
    pad_left, pad_bottom, pad_top = 36, 18, 8
    plot_w, plot_h = width - pad_left - 4, height - pad_bottom - pad_top
    peak = max((b.total for b in bars), default=0) or 1
    bar_w = plot_w / max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad_left}" y1="{pad_top + plot_h}" x2="{width - 4}" y2="{pad_top + plot_h}" '
        'stroke="#a0aec0" stroke-width="1"/>',
        f'<text x="{pad_left - 4}" y="{pad_top + 8}" text-anchor="end" font-size="10" fill="#4a5568">'
        f"{peak}</text>",
        f'<text x="{pad_left - 4}" y="{pad_top + plot_h}" text-anchor="end" font-size="10" '
        'fill="#4a5568">0</text>',
    ]
    for i, bar in enumerate(bars):
        x = pad_left + i * bar_w
        y = float(pad_top + plot_h)
        for status, colour in SERIES:
            n = bar.counts.get(status, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            label = f"{_hhmm(bar.start)} {status}: {n}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{escape(label)}</title></rect>'
            )
    if bars:
        # The axis: first, middle and last slot, anchored so none runs off the edge.
        for i, anchor in ((0, "start"), (len(bars) // 2, "middle"), (len(bars) - 1, "end")):
            x = pad_left + i * bar_w + (bar_w if anchor == "end" else 0)
            parts.append(
                f'<text x="{x:.1f}" y="{height - 4}" font-size="10" fill="#4a5568" text-anchor="{anchor}">'
                f"{_hhmm(bars[i].start)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _hhmm(ts: float) -> str:
    return time.strftime("%H:%M", time.gmtime(ts))
