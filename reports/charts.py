"""Inline SVG chart builders: no scripts, no fonts or images to fetch, one `<svg>` string per chart.

Every chart carries a `<title>` and `<desc>` (its text alternative) and draws a suppressed cell as a
grey hatched mark labelled "suppressed", never as an empty or zero-length bar. Geometry is computed
here; colours and fonts come from the page's CSS where possible so the charts print well.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from transforms.disclosure import SUPPRESSED, SUPPRESSED_SECONDARY

SUPPRESSED_STATUSES = frozenset({SUPPRESSED, SUPPRESSED_SECONDARY})
CHAR_WIDTH = 7.0  # approximate width of one 12px sans-serif character (DejaVu Sans is widest), for layout
HATCH = "#8c8c8c"
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
PANEL_BLUE = "#2166ac"


@dataclass(frozen=True)
class Cell:
    """One published value and its disclosure status."""

    value: float | None
    status: str = "published"

    @property
    def suppressed(self) -> bool:
        return self.status in SUPPRESSED_STATUSES

    @property
    def known(self) -> bool:
        return self.value is not None and not self.suppressed


def cell_label(cell: Cell, limit: int, fmt: Callable[[float], str] = lambda v: f"{v:,.0f}") -> str:
    """How a cell reads in a table: its value, or why it is not shown, in the words of its status column
    (`suppressed`, `suppressed_secondary`: one vocabulary in the data and the report)."""
    if cell.suppressed:
        return cell.status
    if cell.value is None:
        return "–"
    return fmt(cell.value)


def ratio(part: Cell, whole: Cell) -> Cell:
    """`part / whole` from two published cells; suppressed (with the blocking status) when either is."""
    if part.known and whole.known and part.value is not None and whole.value:
        return Cell(part.value / whole.value)
    blocking = part if part.suppressed else whole
    return Cell(None, blocking.status if blocking.suppressed else "published")


def percent(value: float) -> str:
    """A share as a percentage; shares under 1% keep one decimal so they do not read as 0%."""
    return f"{value * 100:.1f}%" if 0 < abs(value) < 0.01 else f"{value * 100:.0f}%"


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str


@dataclass(frozen=True)
class BarRow:
    """One stacked bar: its label, a cell per series key, and its total."""

    label: str
    cells: dict[str, Cell]
    total: Cell
    note: str = ""
    rule_above: bool = False


@dataclass(frozen=True)
class ShareRow:
    """One category of a composition chart: the panel's share against the population's."""

    label: str
    share: Cell
    count: Cell
    population: float | None


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    title: str
    group: str = ""
    highlight: bool = False


@dataclass
class _Svg:
    """Accumulates the elements of one chart."""

    uid: str
    width: float
    title: str
    desc: str
    parts: list[str] = field(default_factory=list)

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def render(self, height: float) -> str:
        uid = escape(self.uid)
        return (
            f'<svg class="chart" viewBox="0 0 {self.width:.0f} {height:.0f}" '
            f'width="{self.width:.0f}" height="{height:.0f}" role="img" '
            f'aria-labelledby="{uid}-title {uid}-desc">'
            f'<title id="{uid}-title">{escape(self.title)}</title><desc id="{uid}-desc">{escape(self.desc)}</desc>'
            f"<defs>{hatch_pattern(self.uid)}</defs>{''.join(self.parts)}</svg>"
        )


def hatch_pattern(uid: str) -> str:
    return (
        f'<pattern id="{escape(uid)}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f0f0f0"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HATCH}" stroke-width="2.2"/></pattern>'
    )


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "", extra: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{klass}{extra}>{escape(text)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", extra: str = "") -> str:
    inner = f"<title>{escape(tip)}</title>" if tip else ""
    return f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" fill="{fill}"{extra}>{inner}</rect>'


def _truncate(text: str, width: float) -> str:
    fits = max(int(width / CHAR_WIDTH), 4)
    return text if len(text) <= fits else text[: fits - 1] + "…"


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about `ticks` intervals."""
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return float(next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw))


def _nice_max(value: float, ticks: int = 5) -> tuple[float, float]:
    step = nice_step(value, ticks)
    return max(step, math.ceil(value / step) * step), step


def _legend(svg: _Svg, items: Sequence[tuple[str, str]], y: float, x0: float = 0) -> float:
    """Swatches with labels in a wrapping row; items are (label, fill or 'hatch' or 'tick'); returns the y below."""
    x = x0
    for label, fill in items:
        need = 22 + len(label) * CHAR_WIDTH + 16
        if x + need > svg.width and x > x0:
            x, y = x0, y + 20
        if fill == "tick":
            svg.add(
                f'<line x1="{x + 7:.1f}" y1="{y - 11:.1f}" x2="{x + 7:.1f}" y2="{y + 3:.1f}" '
                f'stroke="{INK}" stroke-width="2.5"/>'
            )
        else:
            paint = f"url(#{escape(svg.uid)}-hatch)" if fill == "hatch" else fill
            svg.add(_rect(x, y - 10, 14, 12, paint, extra=f' stroke="{HATCH if fill == "hatch" else "none"}"'))
        svg.add(_text(x + 20, y, label, cls="legend"))
        x += need
    return y + 14


def _x_axis(
    svg: _Svg,
    left: float,
    plot_w: float,
    top: float,
    bottom: float,
    maximum: float,
    step: float,
    label: str,
    fmt: Callable[[float], str],
) -> None:
    """Vertical grid lines with tick labels under the plot, and the axis label."""
    ticks = round(maximum / step)
    for i in range(ticks + 1):
        value = i * step
        x = left + plot_w * value / maximum
        svg.add(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>')
        svg.add(_text(x, bottom + 14, fmt(value), "middle", "tick"))
    svg.add(_text(left + plot_w / 2, bottom + 32, label, "middle", "axis-label"))


def stacked_bars(
    uid: str,
    title: str,
    desc: str,
    rows: Sequence[BarRow],
    series: Sequence[Series],
    axis_label: str,
    width: float = 980,
    proportional: bool = False,
) -> str:
    """Horizontal stacked bars, to one count scale or (`proportional`) each bar to its own total.

    Suppressed cells of a row are drawn together as one hatched segment whose length is what the
    published total leaves over (already public), never split into the individual cells.
    """
    svg = _Svg(uid, width, title, desc)
    legend = [(s.label, s.colour) for s in series]
    if any(c.suppressed for r in rows for c in (*r.cells.values(), r.total)):
        legend.append(("suppressed", "hatch"))
    top = _legend(svg, legend, 16) + 8
    left = min(max((len(r.label) for r in rows), default=10) * CHAR_WIDTH + 16, width * 0.38)
    plot_w = width - left - 130.0
    row_h, bar_h = 26.0, 16.0
    if proportional:
        maximum, step, fmt = 1.0, 0.25, percent
    else:
        maximum, step = _nice_max(max([_row_extent(r) for r in rows] + [1.0]))
        fmt = _count
    bottom = top + row_h * len(rows)
    _x_axis(svg, left, plot_w, top, bottom, maximum, step, axis_label, fmt)
    for i, row in enumerate(rows):
        y = top + i * row_h + (row_h - bar_h) / 2
        if row.rule_above:
            svg.add(f'<line x1="0" y1="{y - 5:.1f}" x2="{width:.0f}" y2="{y - 5:.1f}" stroke="{GRID}"/>')
        svg.add(_text(left - 8, y + bar_h - 4, _truncate(row.label, left - 16), "end", "row-label"))
        if proportional:
            scale = plot_w / row.total.value if row.total.known and row.total.value else None
        else:
            scale = plot_w / maximum
        _stack(svg, row, series, left, y, bar_h, scale, plot_w)
    return svg.render(bottom + 44)


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _row_extent(row: BarRow) -> float:
    known = sum(c.value or 0 for c in row.cells.values() if c.known)
    return max(row.total.value if row.total.known and row.total.value else 0, known)


def _ink_on(fill: str) -> str:
    """Dark or white text, whichever reads better on `fill` (#rrggbb)."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def _stack(
    svg: _Svg,
    row: BarRow,
    series: Sequence[Series],
    left: float,
    y: float,
    h: float,
    scale: float | None,
    plot_w: float,
) -> None:
    """One bar: published segments in series order, then one hatched segment for the suppressed ones."""
    x = left
    hidden = [s.label for s in series if s.key in row.cells and row.cells[s.key].suppressed]
    if scale is None and row.cells:  # proportional bar without a published total: nothing can be drawn to scale
        hidden = [s.label for s in series if s.key in row.cells]
    for s in series:
        cell = row.cells.get(s.key)
        if scale is None or cell is None or not cell.known or not cell.value:
            continue
        w = cell.value * scale
        svg.add(_rect(x, y, w, h, s.colour, f"{row.label}: {s.label}: {_count(cell.value)}"))
        if w >= 8 + len(_count(cell.value)) * CHAR_WIDTH:
            svg.add(
                _text(
                    x + w / 2, y + h - 4, _count(cell.value), "middle", "in-bar", f' style="fill:{_ink_on(s.colour)}"'
                )
            )
        x += w
    if hidden:
        known = sum(c.value or 0 for c in row.cells.values() if c.known)
        if scale is None:
            w = plot_w if row.total.suppressed else 36.0
        else:
            w = (row.total.value - known) * scale if row.total.known and row.total.value is not None else 36.0
        w = max(w, 8.0)
        tip = f"{row.label}: suppressed: {', '.join(hidden)}"
        svg.add(_rect(x, y, w, h, f"url(#{escape(svg.uid)}-hatch)", tip, f' stroke="{HATCH}" class="suppressed"'))
        if w >= 80:
            svg.add(_text(x + w / 2, y + h - 4, "suppressed", "middle", "in-hatch"))
        x += w
    end = row.note or (
        _count(row.total.value)
        if row.total.known and row.total.value is not None
        else ("total suppressed" if row.total.suppressed else "")
    )
    svg.add(_text(x + 6, y + h - 4, end, cls="bar-end"))


def share_bars(uid: str, title: str, desc: str, rows: Sequence[ShareRow], limit: int, width: float = 560) -> str:
    """Panel share per category as a bar, the population share as a black tick on the same row."""
    svg = _Svg(uid, width, title, desc)
    top = _legend(svg, [("Panel", PANEL_BLUE), ("Population", "tick"), ("suppressed", "hatch")], 16) + 22
    left = min(max((len(r.label) for r in rows), default=10) * CHAR_WIDTH + 16, width * 0.34)
    right = 168.0
    plot_w = width - left - right
    row_h, bar_h = 24.0, 12.0
    largest = max([r.share.value or 0 for r in rows if r.share.known] + [r.population or 0 for r in rows] + [0.1])
    maximum, step = _nice_max(largest, 4)
    bottom = top + row_h * len(rows)
    _x_axis(svg, left, plot_w, top, bottom, maximum, step, "Share of panel / population", percent)
    svg.add(_text(width - 58, top - 6, "panel", "end", "axis-label"))
    svg.add(_text(width - 4, top - 6, "pop.", "end", "axis-label"))
    scale = plot_w / maximum
    for i, row in enumerate(rows):
        y = top + i * row_h + (row_h - bar_h) / 2
        svg.add(_text(left - 8, y + bar_h - 2, _truncate(row.label, left - 16), "end", "row-label"))
        if row.share.suppressed:
            svg.add(
                _rect(
                    left,
                    y,
                    22,
                    bar_h,
                    f"url(#{escape(uid)}-hatch)",
                    f"{row.label}: panel share suppressed",
                    f' stroke="{HATCH}" class="suppressed"',
                )
            )
        elif row.share.known and row.share.value:
            svg.add(
                _rect(
                    left,
                    y,
                    row.share.value * scale,
                    bar_h,
                    PANEL_BLUE,
                    f"{row.label}: panel {percent(row.share.value)}",
                )
            )
        if row.population is not None:
            x = left + row.population * scale
            svg.add(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x:.1f}" y2="{y + bar_h + 4:.1f}" stroke="{INK}" '
                f'stroke-width="2.5"><title>{escape(row.label)}: population {percent(row.population)}</title></line>'
            )
        panel = cell_label(row.share, limit, percent)
        svg.add(
            _text(
                width - 58,
                y + bar_h - 2,
                panel,
                "end",
                "bar-end suppressed-text" if row.share.suppressed else "bar-end",
            )
        )
        population = percent(row.population) if row.population is not None else "–"
        svg.add(_text(width - 4, y + bar_h - 2, population, "end", "bar-end"))
    return svg.render(bottom + 44)


def scatter(
    uid: str,
    title: str,
    desc: str,
    points: Sequence[Point],
    x_label: str,
    y_label: str,
    colours: dict[str, str],
    domain: tuple[float, float] = (1.0, 5.0),
    width: float = 620,
) -> str:
    """A labelled scatter on a fixed domain with quadrant guides at its midpoint."""
    svg = _Svg(uid, width, title, desc)
    focus = any(p.highlight for p in points)  # one highlighted point: the others are grey context
    groups = [(g.replace("_", " "), c) for g, c in colours.items() if any(p.group == g for p in points)]
    groups = [] if focus else groups
    top = _legend(svg, groups, 16, 60) + 10 if groups else 20
    left, plot = 60.0, width - 84.0
    plot_h = plot * 0.72
    lo, hi = domain

    def sx(v: float) -> float:
        return left + (v - lo) / (hi - lo) * plot

    def sy(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    _scatter_frame(svg, sx, sy, domain, left, top, plot, plot_h, x_label, y_label)
    placed: list[tuple[float, float, float, float]] = [(sx(p.x) - 6, sy(p.y) - 6, 12, 12) for p in points]
    for p in sorted(points, key=lambda q: q.highlight):
        colour = INK if p.highlight else ("#b0b7c0" if focus else colours.get(p.group, MUTED))
        radius = 8 if p.highlight else 6
        svg.add(
            f'<circle cx="{sx(p.x):.1f}" cy="{sy(p.y):.1f}" r="{radius}" fill="{colour}" fill-opacity="0.9" '
            f'stroke="#fff" stroke-width="1.5"><title>{escape(p.title)}</title></circle>'
        )
    for p in points:
        x, y, anchor = _place_label(sx(p.x), sy(p.y), p.label, placed, (left, top, left + plot, top + plot_h))
        svg.add(_text(x, y, p.label, anchor, "point-label strong" if p.highlight else "point-label"))
    return svg.render(top + plot_h + 50)


def _scatter_frame(
    svg: _Svg,
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    domain: tuple[float, float],
    left: float,
    top: float,
    plot: float,
    plot_h: float,
    x_label: str,
    y_label: str,
) -> None:
    lo, hi = domain
    mid = (lo + hi) / 2
    for v in range(int(lo), int(hi) + 1):
        svg.add(f'<line x1="{sx(v):.1f}" y1="{top:.1f}" x2="{sx(v):.1f}" y2="{top + plot_h:.1f}" stroke="{GRID}"/>')
        svg.add(f'<line x1="{left:.1f}" y1="{sy(v):.1f}" x2="{left + plot:.1f}" y2="{sy(v):.1f}" stroke="{GRID}"/>')
        svg.add(_text(sx(v), top + plot_h + 16, str(v), "middle", "tick"))
        svg.add(_text(left - 8, sy(v) + 4, str(v), "end", "tick"))
    dash = f'stroke="{MUTED}" stroke-dasharray="4 4"'
    svg.add(f'<line x1="{sx(mid):.1f}" y1="{top:.1f}" x2="{sx(mid):.1f}" y2="{top + plot_h:.1f}" {dash}/>')
    svg.add(f'<line x1="{left:.1f}" y1="{sy(mid):.1f}" x2="{left + plot:.1f}" y2="{sy(mid):.1f}" {dash}/>')
    for text, x, y, anchor in (
        ("higher benefit, lower risk", left + 6, top + 14, "start"),
        ("higher benefit, higher risk", left + plot - 6, top + 14, "end"),
        ("lower benefit, lower risk", left + 6, top + plot_h - 8, "start"),
        ("lower benefit, higher risk", left + plot - 6, top + plot_h - 8, "end"),
    ):
        svg.add(_text(x, y, text, anchor, "quadrant"))
    svg.add(_text(left + plot / 2, top + plot_h + 38, x_label, "middle", "axis-label"))
    cy = top + plot_h / 2
    svg.add(_text(16, cy, y_label, "middle", "axis-label", f' transform="rotate(-90 16 {cy:.1f})"'))


def _place_label(
    x: float,
    y: float,
    label: str,
    placed: list[tuple[float, float, float, float]],
    bounds: tuple[float, float, float, float],
) -> tuple[float, float, str]:
    """The first of right/left/above/below where the label overlaps nothing placed so far (else right)."""
    w, h = len(label) * CHAR_WIDTH + 2, 12.0
    options = [
        (x + 10, y + 4, "start", x + 10),
        (x - 10, y + 4, "end", x - 10 - w),
        (x, y - 11, "middle", x - w / 2),
        (x, y + 19, "middle", x - w / 2),
        (x + 10, y - 9, "start", x + 10),
        (x + 10, y + 17, "start", x + 10),
    ]
    for tx, ty, anchor, bx in options:
        box = (bx, ty - h + 2, w, h)
        inside = bounds[0] <= bx and bx + w <= bounds[2] and bounds[1] <= ty - h and ty <= bounds[3]
        if inside and not any(_overlap(box, other) for other in placed):
            placed.append(box)
            return tx, ty, anchor
    tx, ty, anchor, bx = options[0]
    placed.append((bx, ty - h + 2, w, h))
    return tx, ty, anchor


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def line_chart(
    uid: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    cells: Sequence[Cell],
    y_label: str,
    limit: int,
    width: float = 620,
) -> str:
    """Shares (0..1) over ordered steps; a suppressed step is a hatched band, and the line breaks there."""
    svg = _Svg(uid, width, title, desc)
    top = _legend(svg, [(y_label, PANEL_BLUE), ("suppressed", "hatch")], 16, 56) + 10
    left, plot_w, plot_h = 56.0, width - 80.0, 180.0
    maximum = max([1.0] + [c.value for c in cells if c.known and c.value is not None])
    maximum, step = _nice_max(maximum, 4)
    slot = plot_w / max(len(labels), 1)

    def sx(i: int) -> float:
        return left + slot * (i + 0.5)

    def sy(v: float) -> float:
        return top + plot_h - v / maximum * plot_h

    for i in range(round(maximum / step) + 1):
        v = i * step
        svg.add(f'<line x1="{left:.1f}" y1="{sy(v):.1f}" x2="{left + plot_w:.1f}" y2="{sy(v):.1f}" stroke="{GRID}"/>')
        svg.add(_text(left - 8, sy(v) + 4, percent(v), "end", "tick"))
    run: list[str] = []
    for i, (label, cell) in enumerate(zip(labels, cells, strict=True)):
        svg.add(_text(sx(i), top + plot_h + 16, label, "middle", "tick"))
        if cell.suppressed:
            svg.add(
                _rect(
                    sx(i) - slot * 0.3,
                    top,
                    slot * 0.6,
                    plot_h,
                    f"url(#{escape(uid)}-hatch)",
                    f"{label}: {cell_label(cell, limit)}",
                    ' opacity="0.6" class="suppressed"',
                )
            )
            svg.add(
                _text(
                    sx(i),
                    top + plot_h / 2,
                    "suppressed",
                    "middle",
                    "in-hatch",
                    f' transform="rotate(-90 {sx(i):.1f} {top + plot_h / 2:.1f})"',
                )
            )
        if cell.known and cell.value is not None:
            run.append(f"{sx(i):.1f},{sy(cell.value):.1f}")
            svg.add(
                f'<circle cx="{sx(i):.1f}" cy="{sy(cell.value):.1f}" r="4.5" fill="{PANEL_BLUE}">'
                f"<title>{escape(label)}: {percent(cell.value)}</title></circle>"
            )
        else:
            _flush_line(svg, run)
    _flush_line(svg, run)
    return svg.render(top + plot_h + 30)


def _flush_line(svg: _Svg, run: list[str]) -> None:
    if len(run) > 1:
        svg.add(f'<polyline points="{" ".join(run)}" fill="none" stroke="{PANEL_BLUE}" stroke-width="2.5"/>')
    run.clear()
