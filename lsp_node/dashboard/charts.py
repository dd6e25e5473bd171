"""Charts drawn on the server as inline SVG: line charts of recorded samples over time and the
capacity bar of a channel. No script and no inline style, so the page's Content-Security-Policy
can forbid both; colours come from CSS classes (static/dashboard.css)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from markupsafe import Markup, escape

Point = tuple[float, float]

#: Room around the plot for the axis labels, in SVG units.
LEFT: Final = 56
RIGHT: Final = 12
TOP: Final = 30  # the title and the legend sit above the plot
BOTTOM: Final = 24
#: Width of a character of the legend's text, roughly (11 px sans-serif), to lay out its items.
CHAR_W: Final = 6.4
#: At most this many points are drawn per series (a week of 10-second samples would be 60,000):
#: the rest are dropped evenly, keeping the first and the last.
MAX_POINTS: Final = 400


def nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) that cuts `span` into about `ticks` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * power:
            return float(m * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def nice_range(lo: float, hi: float, ticks: int = 4, *, whole: bool = False) -> tuple[float, float, float]:
    """(bottom, top, step) of a value axis that holds [lo, hi] with round ticks. The axis starts at
    zero for non-negative data, so that the height of a line means its size. `whole`: the values
    are counts, so no tick falls between two whole numbers."""
    lo = min(lo, 0.0)
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo, ticks)
    if whole:
        step = max(1.0, float(math.ceil(step)))
    bottom = math.floor(lo / step) * step
    top = math.ceil(hi / step) * step
    if top <= bottom:
        top = bottom + step
    return bottom, top, step


def short_number(v: float) -> str:
    """A tick label: 950, 1.5k, 20M, 3G; negative values keep their sign."""
    a = abs(v)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= limit:
            text = f"{v / limit:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    if a == int(a):
        return str(int(v))
    return f"{v:.2g}"


def time_label(ts: float, span: float) -> str:
    """A time tick (local time): with seconds for a span of minutes, hours and minutes within a day,
    else day and hour."""
    t = time.localtime(ts)
    if span <= 600:
        return time.strftime("%H:%M:%S", t)
    if span <= 86_400:
        return time.strftime("%H:%M", t)
    return time.strftime("%d %b %Hh", t)


def thin(points: Sequence[Point], limit: int = MAX_POINTS) -> list[Point]:
    if len(points) <= limit:
        return list(points)
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]


@dataclass(frozen=True)
class Line:
    """One series of a chart: its label in the legend and its points (unix seconds, value)."""

    label: str
    points: Sequence[Point]
    #: The colour's index (CSS class s0..s5); by default the line's position in the chart.
    colour: int | None = None


def line_chart(
    title: str,
    lines: Sequence[Line],
    *,
    unit: str = "",
    whole: bool = False,
    width: int = 480,
    height: int = 190,
    now: float | None = None,
    window: float | None = None,
) -> Markup:
    """An SVG line chart of `lines` over time. The x axis runs up to `now` over `window` seconds
    when given (at most: it starts at the first sample if that is later), else over the data's own
    span; the y axis starts at zero. A chart with no point says so instead of drawing empty axes."""
    pw, ph = width - LEFT - RIGHT, height - TOP - BOTTOM
    caption = f"{title} ({unit})" if unit else title
    head = (
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(caption)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(caption)}</title>"
    )
    finite = [[(float(t), float(v)) for t, v in ln.points if math.isfinite(t) and math.isfinite(v)] for ln in lines]
    all_points = [p for pts in finite for p in pts]
    if not all_points:
        return Markup(
            head
            + _legend(caption, lines, finite, width)
            + f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>'
            f'<text class="empty" x="{LEFT + pw / 2:.1f}" y="{TOP + ph / 2:.1f}" text-anchor="middle">'
            "no samples yet</text></svg>"
        )

    if now is not None and window is not None:
        # Up to now; from the window's start, or from the first sample when the data is younger
        # (a node that started ten minutes ago fills its chart rather than a sliver at the right).
        x0, x1 = max(now - window, min(t for t, _ in all_points)), now
    else:
        x0 = min(t for t, _ in all_points)
        x1 = max(t for t, _ in all_points)
    if x1 <= x0:
        x0, x1 = x0 - 30.0, x0 + 30.0  # one instant: centre it in a minute
    bottom, top, step = nice_range(min(v for _, v in all_points), max(v for _, v in all_points), whole=whole)

    def sx(t: float) -> float:
        return LEFT + (t - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return TOP + ph - (v - bottom) / (top - bottom) * ph

    out = [head, f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}"/>']
    # Value axis: a grid line and a label per tick.
    n = round((top - bottom) / step)
    for i in range(n + 1):
        v = bottom + i * step
        y = sy(v)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick y" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{short_number(v)}</text>')
    # Time axis: the two ends and the middle.
    for frac, anchor in ((0.0, "start"), (0.5, "middle"), (1.0, "end")):
        t = x0 + frac * (x1 - x0)
        out.append(
            f'<text class="tick x" x="{LEFT + frac * pw:.1f}" y="{height - 6}" text-anchor="{anchor}">'
            f"{time_label(t, x1 - x0)}</text>"
        )
    for i, (ln, pts) in enumerate(zip(lines, finite, strict=True)):
        visible = thin(sorted(p for p in pts if x0 <= p[0] <= x1))
        cls = f"series s{_colour(ln, i)}"
        if len(visible) == 1:
            t, v = visible[0]
            out.append(f'<circle class="{cls}" cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="3"/>')
        elif visible:
            d = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in visible)
            out.append(f'<polyline class="{cls}" points="{d}"/>')
    out.append(_legend(caption, lines, finite, width))
    out.append("</svg>")
    return Markup("".join(out))


def _colour(line: Line, i: int) -> int:
    return (line.colour if line.colour is not None else i) % 6


def _legend(title: str, lines: Sequence[Line], finite: Sequence[Sequence[Point]], width: int) -> str:
    """The chart's title on the left above the plot; on the right, a coloured mark and label per
    series with its latest value."""
    out = [f'<text class="chart-title" x="{LEFT - 48}" y="18">{escape(title)}</text>']
    items = []
    for i, (ln, pts) in enumerate(zip(lines, finite, strict=True)):
        last = f" {short_number(max(pts, key=lambda p: p[0])[1])}" if pts else ""
        items.append((_colour(ln, i), f"{ln.label}{last}"))
    x = width - RIGHT - sum(18 + CHAR_W * len(label) for _, label in items)
    for i, label in items:
        out.append(f'<rect class="key s{i}" x="{x:.1f}" y="11" width="10" height="4"/>')
        out.append(f'<text class="legend" x="{x + 13:.1f}" y="17">{escape(label)}</text>')
        x += 18 + CHAR_W * len(label)
    return "".join(out)


def capacity_bar(outbound_msat: int, inbound_msat: int, *, width: int = 220, height: int = 14) -> Markup:
    """Our side (outbound) from the left, theirs (inbound) from the right; an empty channel is a
    grey bar."""
    total = max(outbound_msat, 0) + max(inbound_msat, 0)
    label = f"outbound {outbound_msat // 1000:,} sat, inbound {inbound_msat // 1000:,} sat"
    out = [
        f'<svg class="capbar" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{label}" xmlns="http://www.w3.org/2000/svg"><title>{label}</title>'
        f'<rect class="cap-none" x="0" y="0" width="{width}" height="{height}" rx="3"/>'
    ]
    if total > 0:
        w_out = width * max(outbound_msat, 0) / total
        out.append(f'<rect class="cap-out" x="0" y="0" width="{w_out:.1f}" height="{height}" rx="3"/>')
        out.append(f'<rect class="cap-in" x="{w_out:.1f}" y="0" width="{width - w_out:.1f}" height="{height}" rx="3"/>')
    out.append("</svg>")
    return Markup("".join(out))
