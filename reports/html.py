"""The panel report: one self-contained HTML file built from the open tier only.

Disclosure-safe by construction: the report reads `open/*.parquet` (aggregates that already passed
disclosure control, and reference tables), `ops/publish.json` (run id, demo flag, disclosure rule),
and, for the data-quality section, only *counts* from the ops delivery manifest and quarantine,
aggregated by organisation and rule inside DuckDB (no row, value or file name leaves the query).
Nothing under `restricted/` is opened. Charts are inline SVG; the page has no script and a
Content-Security-Policy that forbids fetching anything, so it works offline and leaks nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from reports.charts import (
    BarRow,
    Cell,
    Point,
    Series,
    ShareRow,
    cell_label,
    line_chart,
    percent,
    ratio,
    scatter,
    share_bars,
    stacked_bars,
)
from transforms.disclosure import (
    PROFILES,
    PUBLISHED,
    ROUNDED,
    SUPPRESSED,
    SUPPRESSED_SECONDARY,
    TOTAL_BY,
    ZERO,
    DisclosureRule,
    status_meaning,
)
from warehouse.mart_files import scan_table
from warehouse.marts import mart

DIMENSIONS = {
    "age_band": "Age band",
    "gender": "Gender",
    "ethnic_group": "Ethnic group",
    "simd_quintile": "SIMD quintile (1 = most deprived)",
    "urban_rural": "Urban / rural",
    "council_area": "Council area",
}
ACCEPTABILITY = (
    Series("acceptable", "Acceptable", "#1b7837"),
    Series("acceptable_with_conditions", "Acceptable with conditions", "#7fbf7b"),
    Series("unsure", "Unsure", "#c9b8d8"),
    Series("unacceptable", "Unacceptable", "#762a83"),
)
VOTES = (
    Series("for", "For", "#1b7837"),
    Series("against", "Against", "#762a83"),
    Series("abstain", "Abstain", "#c9c3b6"),
)
ATTENDANCE = (Series("attended", "Attended", "#2166ac"), Series("did_not_attend", "Did not attend", "#b7cfe6"))
SECTORS = {
    "health": "#0072b2",
    "social_care": "#009e73",
    "environment": "#56b4e9",
    "education": "#e69f00",
    "justice": "#d55e00",
    "third_sector": "#cc79a7",
    "other": "#7f7f7f",
}
RULE_COLOURS = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#7f7f7f",
    "#000000",
    "#a6761d",
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"


# ------------------------------------------------------------------------------------------------
# Reading the published folder


@dataclass(frozen=True)
class Published:
    """The parts of one published version a report may read."""

    current: Path
    metadata: dict[str, Any]

    @property
    def rule(self) -> DisclosureRule:
        return rule_from_label(str(self.metadata.get("disclosure_rule") or "suppress_under_5"))

    @property
    def demo(self) -> bool:
        return bool(self.metadata.get("demo_key")) or self.metadata.get("mode") == "demo"

    def open_table(self, name: str) -> pl.DataFrame:
        """An open-tier table; the only Parquet a report reads row by row."""
        table = mart(name).as_found(self.current)
        if table.tier != "open" or not table.relative_files(self.current):
            raise FileNotFoundError(f"{self.current / table.relative_path}: not published; run `din run` first")
        return scan_table(self.current / table.relative_path).collect()

    def with_totals(self, name: str) -> pl.DataFrame:
        """An open-tier table and its totals table in one frame, a total's summed-over columns empty (the
        shape the charts draw from: each bar's cells and the total it ends at)."""
        totals = self.open_table(f"{name}_totals").drop(TOTAL_BY)
        return pl.concat([self.open_table(name), totals], how="diagonal_relaxed")


def load_published(published_dir: Path) -> Published:
    """Accept `published/`, `published/current` or a version folder."""
    published_dir = Path(published_dir)
    for candidate in (published_dir / "current", published_dir):
        if (candidate / "open").is_dir():
            meta = candidate / "ops" / "publish.json"
            if not meta.is_file():
                raise FileNotFoundError(f"{meta}: missing; the folder is not a complete published version")
            return Published(candidate.resolve(), json.loads(meta.read_text(encoding="utf-8")))
    raise FileNotFoundError(f"{published_dir}: no published version here (expected open/ or current/open/)")


def rule_from_label(label: str) -> DisclosureRule:
    """The rule a `disclosure_rule` label names (e.g. `suppress_under_10`, `round_to_5_suppress_under_10`)."""
    if label.startswith("round_to_5"):
        tail = label.removeprefix("round_to_5").removeprefix("_suppress_under_")
        return DisclosureRule("round_to_5", int(tail) if tail else None)
    if label.startswith("suppress_under_"):
        threshold = int(label.removeprefix("suppress_under_"))
        profile = "suppress_under_10" if threshold >= PROFILES["suppress_under_10"] else "suppress_under_5"
        return DisclosureRule(profile, threshold)
    raise ValueError(f"unknown disclosure rule {label!r}")


def quality_counts(current: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Delivery and quarantine counts per organisation (and rule), aggregated inside DuckDB.

    Only counts leave the query: no row of the manifest or the quarantine, and no value, file name
    or reason text. Superseded deliveries are left out (their rows were replaced by a correction).
    """
    deliveries = current / "ops" / "deliveries.parquet"
    quarantine = current / "ops" / "quarantine.parquet"
    con = duckdb.connect()
    try:
        files = con.sql(
            """SELECT organisation,
                      count(*) FILTER (WHERE status <> 'superseded') AS files,
                      count(*) FILTER (WHERE status = 'superseded') AS superseded,
                      coalesce(sum(rows_read) FILTER (WHERE status <> 'superseded'), 0) AS rows_read,
                      coalesce(sum(rows_accepted) FILTER (WHERE status <> 'superseded'), 0) AS rows_accepted,
                      coalesce(sum(rows_quarantined) FILTER (WHERE status <> 'superseded'), 0) AS rows_quarantined
               FROM read_parquet(?) GROUP BY organisation ORDER BY organisation""",
            params=[str(deliveries)],
        ).pl()
        by_rule = con.sql(
            """SELECT organisation, rule, count(*) AS rows
               FROM (SELECT organisation, unnest(rules) AS rule FROM read_parquet(?) WHERE NOT delivery_superseded)
               GROUP BY ALL ORDER BY organisation, rule""",
            params=[str(quarantine)],
        ).pl()
    finally:
        con.close()
    return files, by_rule


# ------------------------------------------------------------------------------------------------
# HTML pieces shared with the project packs


def cell(row: dict[str, Any], column: str) -> Cell:
    """A value and its `<column>_status` (published when the table has no status for it)."""
    return Cell(row.get(column), str(row.get(f"{column}_status") or "published"))


def td(value: Cell | str, limit: int, fmt: Any = None) -> str:
    """A table cell; suppressed cells say so (never blank, never 0)."""
    if isinstance(value, str):
        return f"<td>{escape(value)}</td>"
    text = cell_label(value, limit, fmt) if fmt else cell_label(value, limit)
    klass = "suppressed" if value.suppressed else "num"
    return f'<td class="{klass}">{escape(text)}</td>'


def data_table(
    table_id: str, caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]], folded: bool = True
) -> str:
    """The numbers behind a chart, as an accessible table (folded under the chart unless `folded` is False)."""
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    table = (
        f'<table id="{escape(table_id)}"><caption>{escape(caption)}</caption><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )
    if not folded:
        return table
    return f'<details class="numbers"><summary>The numbers behind this chart</summary>{table}</details>'


def tables(*parts: str) -> str:
    """Several tables folded together under one chart."""
    inner = "".join(parts)
    return f'<details class="numbers"><summary>The numbers behind this chart</summary>{inner}</details>'


def figure(svg: str, caption: str, table: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>{table}"


def section(section_id: str, heading: str, lede: str, content: str) -> str:
    return (
        f'<section id="{section_id}" aria-labelledby="{section_id}-h"><h2 id="{section_id}-h">{escape(heading)}'
        f'</h2><p class="lede">{lede}</p>{content}</section>'
    )


def rule_box(rule: DisclosureRule) -> str:
    shown = [PUBLISHED, ZERO, SUPPRESSED, SUPPRESSED_SECONDARY] + ([ROUNDED] if rule.rounding else [])
    statuses = "".join(
        f"<dt><strong>{escape(s)}</strong></dt><dd>{escape(status_meaning(s, rule.limit))}</dd>" for s in shown
    )
    return (
        '<aside class="rule" aria-label="Disclosure control">'
        f"<h2>Disclosure control: <code>{escape(rule.label)}</code></h2><p>{escape(rule.description)}</p>"
        '<p><span class="swatch-hatch" aria-hidden="true"></span> In the charts a suppressed value is a grey '
        "hatched mark; in the tables it reads as its status in the published data (the <code>_status</code> "
        "column beside each count). A suppressed value is never shown as 0; a real 0 is shown as 0.</p>"
        f"<dl>{statuses}</dl></aside>"
    )


def page(title: str, published: Published, subtitle: str, body: str, notice: str = "") -> str:
    """The full HTML document around `body`: CSP, inline CSS, DEMO banner, provenance footer."""
    meta = published.metadata
    banner = ""
    if published.demo:
        text = meta.get("notice") or "DEMO OUTPUT: made with the public demo pseudonymisation key"
        banner = f'<div class="demo" role="note"><strong>DEMO</strong> {escape(str(text))}</div>'
    extra = f'<div class="notice" role="note">{notice}</div>' if notice else ""
    version, run_id, schema = (escape(str(meta.get(k, "?"))) for k in ("version", "run_id", "schema_version"))
    return f"""<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="din-engagement reports">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
{banner}
<header><div class="wrap"><p class="kicker">Data &amp; Intelligence Network · public engagement panel</p>
<h1>{escape(title)}</h1><p class="subtitle">{subtitle}</p></div></header>
<main class="wrap">{extra}{body}</main>
<footer class="wrap"><p>Built by din-engagement from published version <code>{version}</code>
(run <code>{run_id}</code>, schema {schema}),
disclosure rule <code>{escape(published.rule.label)}</code>. No scripts, fonts or images are loaded from anywhere:
this file is complete on its own.</p></footer>
</body>
</html>
"""


def write_html(out: Path, text: str, mode: int = 0o644) -> Path:
    """Write atomically (a reader never sees half a file) with the given permissions."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    temporary.write_text(text, encoding="utf-8")
    os.chmod(temporary, mode)
    os.replace(temporary, out)
    return out


def project_rows(published: Published) -> list[BarRow]:
    """One acceptability bar per project (those without published feedback say so), then all projects."""
    accept = published.with_totals("project_acceptability")
    projects = published.open_table("projects").sort("project_id")
    rows = []
    for project in projects.iter_rows(named=True):
        part = accept.filter(pl.col("project_id") == project["project_id"])
        rows.append(_acceptability_row(f"{project['project_id']} {project['title']}", part))
    total = _acceptability_row("All projects", accept.filter(pl.col("project_id").is_null()))
    rows.append(BarRow(total.label, total.cells, total.total, total.note, rule_above=True))
    return rows


def _acceptability_row(label: str, part: pl.DataFrame) -> BarRow:
    cells = {r["acceptability"]: cell(r, "panellists") for r in part.iter_rows(named=True) if r["acceptability"]}
    totals = [cell(r, "panellists") for r in part.iter_rows(named=True) if r["acceptability"] is None]
    if not totals:
        return BarRow(label, {}, Cell(None), note="no feedback published")
    return BarRow(label, cells, totals[0])


def acceptability_table(rows: Sequence[BarRow], limit: int, table_id: str) -> str:
    body = [
        [
            td(r.label, limit),
            *(td(r.cells.get(s.key, Cell(None)), limit) for s in ACCEPTABILITY),
            td(r.total, limit) if not r.note else td(r.note, limit),
        ]
        for r in rows
    ]
    return data_table(
        table_id, "Panellists' verdicts per project", ["Project", *(s.label for s in ACCEPTABILITY), "Total"], body
    )


def score_points(published: Published, highlight: str | None = None) -> tuple[list[Point], list[str], pl.DataFrame]:
    """Points for projects whose mean benefit and risk are both published, and the names of the others."""
    scores = published.open_table("project_scores").sort("project_id")
    sectors = dict(published.open_table("projects").select("project_id", "sector").iter_rows())
    points, hidden = [], []
    for r in scores.iter_rows(named=True):
        benefit, risk = cell(r, "mean_benefit"), cell(r, "mean_risk")
        if benefit.known and risk.known:
            points.append(
                Point(
                    r["project_id"],
                    float(risk.value or 0),
                    float(benefit.value or 0),
                    f"{r['project_id']} {r['project_title']}: benefit {benefit.value:.2f}, "
                    f"risk {risk.value:.2f} ({r['panellists']} panellists)",
                    sectors.get(r["project_id"], "other"),
                    r["project_id"] == highlight,
                )
            )
        else:
            hidden.append(f"{r['project_id']} {r['project_title']}")
    return points, hidden, scores


def scores_table(scores: pl.DataFrame, limit: int, table_id: str, folded: bool = True) -> str:
    body = [
        [
            td(f"{r['project_id']} {r['project_title']}", limit),
            td(cell(r, "panellists"), limit),
            td(cell(r, "mean_benefit"), limit, lambda v: f"{v:.2f}"),
            td(cell(r, "mean_risk"), limit, lambda v: f"{v:.2f}"),
        ]
        for r in scores.iter_rows(named=True)
    ]
    return data_table(
        table_id,
        "Mean perceived benefit and risk (1 = low, 5 = high)",
        ["Project", "Panellists", "Benefit", "Risk"],
        body,
        folded,
    )


def scores_desc(points: Sequence[Point]) -> str:
    if not points:
        return "No project has both mean benefit and mean risk published."
    best = max(points, key=lambda p: p.y - p.x)
    worst = min(points, key=lambda p: p.y - p.x)
    return (
        f"{len(points)} projects plotted by mean risk (x) and mean benefit (y), 1 to 5. Best balance: "
        f"{best.title}. Weakest balance: {worst.title}."
    )


# ------------------------------------------------------------------------------------------------
# Sections of the panel report


def summary_cards(published: Published, files: pl.DataFrame) -> str:
    """The headline figures, over every panel: a count of people is a count of people, never of rows."""
    comp = published.open_table("panel_composition")
    limit = published.rule.limit
    panels = comp.group_by("panel_id", maintain_order=True).first() if comp.height else comp
    size, sizes_partial = summed([cell(r, "panel_size") for r in panels.iter_rows(named=True)])
    attendance = published.with_totals("attendance_by_workshop")
    totals = [_attendance_totals(attendance.filter(pl.col("panel_id") == p)) for p in attendance["panel_id"].unique()]
    published_pairs = [(a, r) for a, r in totals if a.known and r.known]  # the rate of panels whose totals are out
    attended, _ = summed([a for a, _ in published_pairs])
    recorded, _ = summed([r for _, r in published_pairs])
    rate_partial = len(published_pairs) < len(totals)
    rate = (
        cell_label(ratio(attended, recorded), limit, percent)
        if published_pairs
        else cell_label(next((c for pair in totals for c in pair if c.suppressed), Cell(None)), limit)
    )
    scored = published.open_table("project_scores").height
    projects = published.open_table("projects").height
    recs = published.open_table("recommendation_support")["recommendation_id"].drop_nulls().n_unique()
    people = "panellists whose consent stands" + (f", on {panels.height} panels" if panels.height > 1 else "")
    cards = [
        (cell_label(size, limit) + ("+" if sizes_partial and size.known else ""), people + _partly(sizes_partial)),
        (str(published.open_table("workshops").height), "workshops"),
        (rate, "attendance across all workshops" + _partly(rate_partial)),
        (f"{scored} of {projects}", "projects with published feedback"),
        (str(recs), "recommendations voted on"),
        (
            f"{int(files['rows_quarantined'].sum()):,}",
            f"of {int(files['rows_read'].sum()):,} delivered rows quarantined",
        ),
    ]
    items = "".join(f'<li><span class="big">{escape(v)}</span><span>{escape(t)}</span></li>' for v, t in cards)
    return f'<ul class="cards" aria-label="Key figures">{items}</ul>'


def composition_section(published: Published) -> str:
    comp = published.open_table("panel_composition")
    population = published.open_table("population")
    limit = published.rule.limit
    parts = []
    panels = sorted(comp["panel_id"].unique().to_list())
    for p_index, panel in enumerate(panels):
        if len(panels) > 1:
            parts.append(f"<h3>Panel {escape(panel)}</h3>")
        grid = []
        for dimension, name in DIMENSIONS.items():
            rows = _share_rows(
                comp.filter((pl.col("panel_id") == panel) & (pl.col("dimension") == dimension)),
                population.filter(pl.col("dimension") == dimension),
            )
            if not rows:
                continue
            uid = f"composition-{p_index}-{dimension}"
            svg = share_bars(uid, f"Panel composition by {name.lower()}", _composition_desc(name, rows), rows, limit)
            table = data_table(
                f"table-{uid}",
                f"{name}: panel against population",
                ["Category", "Panellists", "Panel share", "Population share"],
                [
                    [
                        td(r.label, limit),
                        td(r.count, limit),
                        td(r.share, limit, percent),
                        td(percent(r.population) if r.population is not None else "no reference", limit),
                    ]
                    for r in rows
                ],
            )
            grid.append(f'<div class="cell"><h3>{escape(name)}</h3>{figure(svg, "", table)}</div>')
        parts.append(f'<div class="grid">{"".join(grid)}</div>')
    lede = (
        "Who is on the panel, against the population it should reflect. Bars are the panel's share, "
        "black ticks the population's. Categories with fewer than "
        f"{limit} panellists are suppressed; a category nobody on the panel belongs to shows 0%."
    )
    return section("composition", "Panel composition", lede, "".join(parts))


def _share_rows(comp: pl.DataFrame, population: pl.DataFrame) -> list[ShareRow]:
    reference = dict(population.select("category", "share").iter_rows())
    rows = {
        r["category"]: ShareRow(
            r["category"],
            cell(r, "share"),
            cell(r, "panellists"),
            r["population_share"] if r["population_share"] is not None else reference.get(r["category"]),
        )
        for r in comp.iter_rows(named=True)
    }
    for category, share in reference.items():
        rows.setdefault(category, ShareRow(category, Cell(0.0, "zero"), Cell(0, "zero"), share))
    ordered = sorted(rows.values(), key=lambda r: (r.population is None, -(r.population or 0), r.label))
    if all(r.label[:1].isdigit() for r in ordered):
        ordered.sort(key=lambda r: r.label)
    return ordered


def _composition_desc(name: str, rows: Sequence[ShareRow]) -> str:
    gaps = sorted(
        (r for r in rows if r.share.known and r.population is not None and r.share.value is not None),
        key=lambda r: -abs((r.share.value or 0) - (r.population or 0)),
    )
    hidden = sum(r.share.suppressed for r in rows)
    text = f"{name}: {len(rows)} categories, {hidden} suppressed."
    if gaps:
        g = gaps[0]
        text += (
            f" Largest published gap: {g.label}, panel {percent(g.share.value or 0)} against population "
            f"{percent(g.population or 0)}."
        )
    return text


def attendance_section(published: Published) -> str:
    table = published.with_totals("attendance_by_workshop")
    workshops = published.open_table("workshops")
    limit = published.rule.limit
    parts = []
    for p_index, panel in enumerate(sorted(table["panel_id"].unique().to_list())):
        part = table.filter(pl.col("panel_id") == panel)
        info = workshops.filter(pl.col("panel_id") == panel).sort("number")
        rows, retention, labels = [], [], []
        for w in info.iter_rows(named=True):
            here = part.filter(pl.col("workshop_id") == w["workshop_id"])
            cells = {r["attendance"]: cell(r, "panellists") for r in here.iter_rows(named=True) if r["attendance"]}
            total = [cell(r, "panellists") for r in here.iter_rows(named=True) if r["attendance"] is None]
            label = f"Workshop {w['number']} ({_day(w['held_on'])})"
            rows.append(BarRow(label, cells, total[0] if total else Cell(None)))
            attended = [
                cell(r, "retention_vs_first_workshop")
                for r in here.iter_rows(named=True)
                if r["attendance"] == "attended"
            ]
            retention.append(attended[0] if attended else Cell(None))
            labels.append(f"W{w['number']}")
        uid = f"attendance-{p_index}"
        hidden = sum(r.cells.get("attended", Cell(None)).suppressed for r in rows)
        desc = (
            f"Attendance at {len(rows)} workshops of panel {panel}; the attended count is suppressed at "
            f"{hidden} of them."
        )
        svg = stacked_bars(uid, f"Attendance per workshop, panel {panel}", desc, rows, ATTENDANCE, "Panellists")
        body = [
            [
                td(r.label, limit),
                td(r.cells.get("attended", Cell(None)), limit),
                td(r.cells.get("did_not_attend", Cell(None)), limit),
                td(r.total, limit),
                td(retention[i], limit, percent),
            ]
            for i, r in enumerate(rows)
        ]
        numbers = data_table(
            f"table-{uid}",
            "Attendance and retention per workshop",
            ["Workshop", "Attended", "Did not attend", "Recorded", "Retention vs workshop 1"],
            body,
        )
        parts.append(
            figure(
                svg,
                "Where both counts are suppressed the whole bar is hatched: "
                "the split would reveal a small count. " + _overall(part, limit),
                numbers,
            )
        )
        parts.append(_retention(uid, panel, labels, retention, limit))
    lede = (
        "How many panellists came to each of the workshops, and how many of those at the first one were "
        "still coming. Counts are of consented panellists only."
    )
    return section("attendance", "Attendance and retention", lede, "".join(parts))


def summed(cells: Sequence[Cell]) -> tuple[Cell, bool]:
    """The sum of the published cells, and whether some were suppressed and left out of it.

    A sum over every cell would let a reader subtract the published ones and recover a suppressed one,
    so only the published cells are added (and the figure says so)."""
    known = [c.value for c in cells if c.known and c.value is not None]
    partial = len(known) < len(cells)
    if not known:
        blocking = next((c for c in cells if c.suppressed), Cell(None))
        return Cell(None, blocking.status), partial
    return Cell(float(sum(known))), partial


def _partly(partial: bool) -> str:
    return " (panels with a suppressed figure left out)" if partial else ""


def _attendance_totals(part: pl.DataFrame) -> tuple[Cell, Cell]:
    """Attended and recorded over all workshops (the published grand totals)."""
    totals = {
        r["attendance"]: cell(r, "panellists")
        for r in part.filter(pl.col("workshop_id").is_null()).iter_rows(named=True)
    }
    return totals.get("attended", Cell(None)), totals.get(None, Cell(None))


def _overall(part: pl.DataFrame, limit: int) -> str:
    attended, recorded = _attendance_totals(part)
    share = ratio(attended, recorded)
    if not share.known:
        return ""
    return (
        f"Over all workshops: {cell_label(attended, limit)} attendances of {cell_label(recorded, limit)} "
        f"recorded ({cell_label(share, limit, percent)})."
    )


def _retention(uid: str, panel: str, labels: list[str], retention: list[Cell], limit: int) -> str:
    if not any(c.known for c in retention):
        return (
            f'<p class="callout">Retention against workshop 1 is suppressed at every workshop of panel '
            f"{escape(panel)}: it is worked out from attendance counts that are suppressed.</p>"
        )
    desc = "Retention: " + "; ".join(
        f"{label} {cell_label(c, limit, percent)}" for label, c in zip(labels, retention, strict=True)
    )
    svg = line_chart(
        f"{uid}-retention",
        f"Retention against workshop 1, panel {panel}",
        desc,
        labels,
        retention,
        "Retention vs workshop 1",
        limit,
    )
    return figure(svg, "Attendance at each workshop as a share of attendance at workshop 1.", "")


def _day(value: Any) -> str:
    return f"{value.day} {value:%b %Y}" if isinstance(value, date) else str(value or "")


def acceptability_section(published: Published) -> str:
    rows = project_rows(published)
    limit = published.rule.limit
    missing = [r.label for r in rows if r.note]
    desc = f"Verdicts of panellists on {len(rows) - 1 - len(missing)} projects. " + " ".join(
        f"{r.label}: {_verdict_text(r, limit)}." for r in rows if not r.note
    )
    svg = stacked_bars(
        "acceptability",
        "Acceptability per project",
        desc,
        rows,
        ACCEPTABILITY,
        "Share of the panellists who gave a verdict",
        proportional=True,
    )
    note = ""
    if missing:
        note = (
            '<p class="callout">No feedback was published for '
            + "; ".join(escape(m) for m in missing)
            + ". See the data-quality section for deliveries that were not accepted.</p>"
        )
    lede = (
        "Each panellist judged each project they discussed acceptable, acceptable with conditions, "
        "unacceptable, or said they were unsure. Each bar is one project's verdicts as shares of its total; "
        "suppressed verdicts are drawn together as one hatched segment, whose length is what the published "
        "total leaves over."
    )
    return section(
        "acceptability",
        "Acceptability of each project",
        lede,
        figure(
            svg,
            "Numbers in the bars are counts of panellists; the number at the end is the total.",
            acceptability_table(rows, limit, "table-acceptability"),
        )
        + note,
    )


def _verdict_text(row: BarRow, limit: int) -> str:
    return ", ".join(f"{s.label.lower()} {cell_label(row.cells.get(s.key, Cell(None)), limit)}" for s in ACCEPTABILITY)


def scores_section(published: Published) -> str:
    points, hidden, scores = score_points(published)
    svg = scatter(
        "scores",
        "Perceived benefit against risk per project",
        scores_desc(points),
        points,
        "Mean perceived risk (1 = low, 5 = high)",
        "Mean perceived benefit",
        SECTORS,
    )
    note = ""
    if hidden:
        note = '<p class="callout">Not plotted (mean suppressed): ' + "; ".join(escape(h) for h in hidden) + ".</p>"
    lede = (
        "Panellists scored each project's benefit and risk from 1 to 5. Projects towards the top left were "
        "seen as most worth their risk. Means from fewer than "
        f"{published.rule.limit} panellists are suppressed."
    )
    chart = figure(svg, "Colour shows the project's sector; labels are project ids (see the table).", "")
    table = scores_table(scores, published.rule.limit, "table-scores", folded=False)
    return section("scores", "Benefit against risk", lede, f'<div class="split">{chart}{table}</div>{note}')


def recommendations_section(published: Published) -> str:
    support = published.with_totals("recommendation_support")
    limit = published.rule.limit
    parts = []
    keys = support.filter(pl.col("workshop_id").is_not_null()).select("panel_id", "workshop_id").unique()
    for index, (panel, workshop) in enumerate(sorted(keys.iter_rows())):
        part = support.filter((pl.col("panel_id") == panel) & (pl.col("workshop_id") == workshop))
        rows = _recommendation_rows(part)
        if not rows:
            continue
        uid = f"recommendations-{index}"
        desc = f"Votes on {len(rows)} recommendations at {workshop}: " + " ".join(
            f"{r.label}: for {cell_label(r.cells.get('for', Cell(None)), limit)} of {cell_label(r.total, limit)}."
            for r in rows
        )
        svg = stacked_bars(uid, f"Support for each recommendation, {workshop}", desc, rows, VOTES, "Votes")
        body = [
            [
                td(r.label, limit),
                *(td(r.cells.get(s.key, Cell(None)), limit) for s in VOTES),
                td(r.total, limit),
                td(_support(r), limit, percent),
            ]
            for r in rows
        ]
        table = data_table(
            f"table-{uid}",
            f"Votes per recommendation at {workshop}",
            ["Recommendation", *(s.label for s in VOTES), "Total", "Support (for / total)"],
            body,
        )
        heading = f"Workshop {workshop}" + (f", panel {panel}" if keys["panel_id"].n_unique() > 1 else "")
        parts.append(f"<h3>{escape(heading)}</h3>{figure(svg, '', table)}")
    lede = (
        "Votes for, against and abstaining on each recommendation, at each workshop where it was put to the "
        "panel. Recommendations are labelled by id and theme; their wording is in the final report."
    )
    return section("recommendations", "Support for the recommendations", lede, "".join(parts))


def _recommendation_rows(part: pl.DataFrame) -> list[BarRow]:
    rows = []
    for rec in sorted(part["recommendation_id"].drop_nulls().unique().to_list()):
        here = part.filter(pl.col("recommendation_id") == rec)
        theme = next((t for t in here["theme"].to_list() if t), "")
        cells = {r["vote"]: cell(r, "votes") for r in here.iter_rows(named=True) if r["vote"]}
        total = [cell(r, "votes") for r in here.iter_rows(named=True) if r["vote"] is None]
        rows.append(BarRow(f"{rec} {theme.replace('_', ' ')}".strip(), cells, total[0] if total else Cell(None)))
    return rows


def _support(row: BarRow) -> Cell:
    return ratio(row.cells.get("for", Cell(None)), row.total)


def quality_section(published: Published, files: pl.DataFrame, by_rule: pl.DataFrame) -> str:
    names = dict(published.open_table("organisations").select("org_id", "name").iter_rows())
    rules = sorted(by_rule["rule"].unique().to_list())
    series = [Series(r, r.replace("_", " "), RULE_COLOURS[i % len(RULE_COLOURS)]) for i, r in enumerate(rules)]
    files = files.sort(["rows_quarantined", "organisation"], descending=[True, False])
    rows = []
    for f in files.iter_rows(named=True):
        mine = by_rule.filter(pl.col("organisation") == f["organisation"])
        cells = {r["rule"]: Cell(r["rows"]) for r in mine.iter_rows(named=True)}
        rows.append(
            BarRow(
                names.get(f["organisation"], f["organisation"]),
                cells,
                Cell(int(mine["rows"].sum())),
                note=f"{f['rows_quarantined']:,} of {f['rows_read']:,} rows quarantined",
            )
        )
    desc = "Quarantined rows per organisation by rule broken. " + " ".join(f"{r.label}: {r.note}." for r in rows)
    svg = stacked_bars(
        "quality",
        "Quarantined rows per organisation, by rule",
        desc,
        rows,
        series,
        "Rule breaks (a row that breaks two rules counts under both)",
    )
    deliveries = data_table(
        "table-quality",
        "Deliveries per organisation (current files; superseded files counted apart)",
        ["Organisation", "Id", "Files", "Superseded", "Rows read", "Accepted", "Quarantined"],
        [
            [
                td(names.get(f["organisation"], f["organisation"]), 0),
                td(f["organisation"], 0),
                *(td(Cell(f[k]), 0) for k in ("files", "superseded", "rows_read", "rows_accepted", "rows_quarantined")),
            ]
            for f in files.iter_rows(named=True)
        ],
        folded=False,
    )
    reasons = data_table(
        "table-quality-rules",
        "Quarantined rows per organisation and rule",
        ["Organisation", "Rule", "Rows"],
        [
            [td(names.get(r["organisation"], r["organisation"]), 0), td(r["rule"], 0), td(Cell(r["rows"]), 0)]
            for r in by_rule.iter_rows(named=True)
        ],
        folded=False,
    )
    lede = (
        "What partners delivered and what was not accepted, and why. This section shows only counts per "
        "organisation and rule, aggregated from the operations tier: no quarantined row, value or file name "
        "appears in this report. Partners see their rows in the quarantine report (<code>ops.quarantine</code>)."
    )
    return section(
        "quality", "Data quality", lede, figure(svg, "Counts of rows, not of people.", tables(deliveries, reasons))
    )


def build_report(published_dir: Path, out: Path, title: str) -> Path:
    """Write the panel report for the current published version to `out` (one HTML file)."""
    published = load_published(Path(published_dir))
    files, by_rule = quality_counts(published.current)
    body = "".join(
        [
            summary_cards(published, files),
            rule_box(published.rule),
            _contents(),
            composition_section(published),
            attendance_section(published),
            acceptability_section(published),
            scores_section(published),
            recommendations_section(published),
            quality_section(published, files, by_rule),
        ]
    )
    subtitle = (
        f"Panel report from the open tier · published version "
        f"<code>{escape(str(published.metadata.get('version', '?')))}</code>"
    )
    return write_html(Path(out), page(title, published, subtitle, body))


def _contents() -> str:
    links = [
        ("composition", "Panel composition"),
        ("attendance", "Attendance"),
        ("acceptability", "Acceptability"),
        ("scores", "Benefit and risk"),
        ("recommendations", "Recommendations"),
        ("quality", "Data quality"),
    ]
    items = "".join(f'<li><a href="#{i}">{escape(t)}</a></li>' for i, t in links)
    return f'<nav aria-label="Contents"><ol class="toc">{items}</ol></nav>'


CSS = """
:root{--ink:#1f2933;--muted:#4f5b66;--line:#e4e7eb;--bg:#f7f8fa;--accent:#2166ac}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--ink);background:var(--bg)}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header{background:#12355b;color:#fff;padding:28px 0 24px}
header h1{margin:.1em 0 .2em;font-size:30px;line-height:1.2}
.kicker{margin:0;text-transform:uppercase;letter-spacing:.08em;font-size:12px;opacity:.8}
.subtitle{margin:0;opacity:.9}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:rgba(127,127,127,.15);
 padding:0 4px;border-radius:3px}
.demo{background:repeating-linear-gradient(135deg,#ffd23f 0 18px,#ffdf70 18px 36px);color:#3b2f00;
 padding:10px 24px;text-align:center;font-weight:600;border-bottom:3px solid #b38600}
.demo strong{background:#3b2f00;color:#ffd23f;padding:2px 8px;margin-right:8px;border-radius:3px;letter-spacing:.1em}
.notice{background:#fff4e5;border-left:5px solid #d55e00;padding:10px 16px;margin:18px 0}
.cards{list-style:none;display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;
 padding:0;margin:24px 0}
.cards li{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px}
.cards .big{display:block;font-size:26px;font-weight:700;color:var(--accent);line-height:1.2}
.cards li span:last-child{color:var(--muted);font-size:13px}
.rule{background:#fff;border:1px solid var(--line);border-left:5px solid var(--accent);border-radius:8px;
 padding:6px 18px;margin:0 0 16px}
.rule h2{font-size:16px;margin:.6em 0 .2em}
.rule p{margin:.4em 0 .8em;font-size:14px}
.swatch-hatch{display:inline-block;width:22px;height:12px;vertical-align:middle;border:1px solid #8c8c8c;
 background:repeating-linear-gradient(45deg,#8c8c8c 0 2px,#f0f0f0 2px 6px)}
.toc{display:flex;flex-wrap:wrap;gap:6px 18px;list-style:none;padding:0;margin:0 0 8px;font-size:14px}
.toc a{color:var(--accent)}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:8px 24px 18px;margin:18px 0}
section h2{font-size:22px;margin:.6em 0 .1em}
section h3{font-size:16px;margin:1em 0 .2em}
.lede{color:var(--muted);max-width:75ch;margin-top:.2em}
.split{display:grid;grid-template-columns:minmax(0,620px) minmax(0,1fr);gap:8px 28px;align-items:start}
.split table{margin-top:40px}
@media (max-width:900px){.split{grid-template-columns:1fr}}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:4px 28px}
figure{margin:8px 0 4px}
figcaption{color:var(--muted);font-size:13px}
svg.chart{max-width:100%;height:auto;display:block}
svg text{font-family:inherit;font-size:12px;fill:var(--ink)}
svg .tick{fill:var(--muted);font-size:11px}
svg .axis-label{fill:var(--muted);font-size:12px}
svg .legend{font-size:12px}
svg .in-bar{fill:#fff;font-weight:600;font-size:11px}
svg .in-hatch{fill:#333;font-size:11px;font-style:italic}
svg .bar-end{fill:var(--muted);font-size:12px}
svg .suppressed-text{font-style:italic}
svg .quadrant{fill:#9aa5b1;font-size:11px;font-style:italic}
svg .point-label{font-size:12px;font-weight:600}
svg .point-label.strong{font-size:13px}
.callout{background:var(--bg);border-radius:6px;padding:8px 12px;font-size:14px}
details.numbers{margin:4px 0 14px}
details.numbers summary{cursor:pointer;color:var(--accent);font-size:13px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;min-width:50%}
caption{text-align:left;font-weight:600;padding:4px 0}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.suppressed{text-align:right;color:#616e7c;font-style:italic;
 background:repeating-linear-gradient(45deg,#f3f3f3 0 4px,#fff 4px 8px)}
.texts{columns:2 340px;column-gap:28px;padding-left:1.2em}
.texts li{break-inside:avoid;margin:0 0 8px}
footer{color:var(--muted);font-size:12px;padding:8px 24px 40px}
@media print{body{background:#fff}section{border:0}figure{break-inside:avoid}}
"""
