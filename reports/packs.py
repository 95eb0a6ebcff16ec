"""Project feedback packs: one HTML file for the team behind one project (issue 7.6).

Counts come from the open tier with their suppression, exactly as published. The conditions and
comments panellists attached come from `restricted/project_feedback` (already scrubbed of
identifiers) and are handled as follows:

* only the text is used: no pseudonym, row id, workshop, verdict or score travels with it;
* a list is shown only when at least `threshold` panellists wrote one (else "withheld");
* identical texts (ignoring case and spacing) appear once, and no count is given, so the list does
  not state how many panellists gave a condition (a count the open tier may have suppressed);
* the order is a hash of the text itself, so it is deterministic and carries no trace of the
  row order of any table.

A pack holds panellists' own words: it is written with mode 0640 and says it is for the project
team only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from html import escape
from pathlib import Path

import polars as pl

from reports.charts import BarRow, scatter, stacked_bars
from reports.html import (
    ACCEPTABILITY,
    SECTORS,
    Published,
    acceptability_table,
    figure,
    load_published,
    page,
    project_rows,
    rule_box,
    score_points,
    scores_desc,
    scores_table,
    section,
    write_html,
)
from warehouse.mart_files import scan_table
from warehouse.marts import mart

DEFAULT_THRESHOLD = 5
PACK_MODE = 0o640


@dataclass(frozen=True)
class FreeText:
    """Distinct texts for one project and column, and how many panellists wrote any."""

    texts: tuple[str, ...]
    panellists: int


def shuffled(texts: list[str], salt: str) -> list[str]:
    """Distinct texts in an order fixed by a hash of each text (not by any row order)."""
    variants: dict[str, set[str]] = {}
    for text in texts:
        tidy = " ".join(text.split())
        variants.setdefault(tidy.casefold(), set()).add(tidy)
    distinct = [min(forms) for forms in variants.values()]  # the same pick whatever the input order
    return sorted(distinct, key=lambda t: hashlib.sha256(f"{salt}\0{t}".encode()).hexdigest())


def free_text(current: Path, project_id: str, column: str) -> FreeText:
    """The non-empty `column` texts for a project from the restricted feedback table."""
    frame = (
        scan_table(current / mart("project_feedback").as_found(current).relative_path)
        .filter(pl.col("project_id") == project_id)
        .select("panellist_pseudonym", pl.col(column).str.strip_chars().alias("text"))
        .filter(pl.col("text").is_not_null() & (pl.col("text") != ""))
        .collect()
    )
    texts = shuffled(frame["text"].to_list(), f"{project_id}:{column}")
    return FreeText(tuple(texts), frame["panellist_pseudonym"].n_unique())


def _text_block(
    heading: str, noun: str, found: FreeText, threshold: int, lede: str, withheld: str | None = None
) -> str:
    if withheld is not None:
        body = f'<p class="callout"><strong>Withheld.</strong> {escape(withheld)}</p>'
    elif found.panellists == 0:
        body = f'<p class="callout">No {noun} were published for this project.</p>'
    elif found.panellists < threshold:
        body = (
            f'<p class="callout"><strong>Fewer than {threshold} {noun}: withheld.</strong> So that no text can '
            f"be traced to one of the few panellists who wrote one, these are not shown.</p>"
        )
    else:
        items = "".join(f"<li>{escape(t)}</li>" for t in found.texts)
        body = f'<ul class="texts">{items}</ul>'
    return f'<h3>{escape(heading)}</h3><p class="lede">{lede}</p>{body}'


def _project(published: Published, project_id: str) -> dict[str, str]:
    projects = published.open_table("projects")
    match = projects.filter(pl.col("project_id") == project_id)
    if match.is_empty():
        known = ", ".join(sorted(projects["project_id"].to_list()))
        raise ValueError(f"unknown project {project_id!r}; the published projects are {known}")
    row = match.row(0, named=True)
    names = dict(published.open_table("organisations").select("org_id", "name").iter_rows())
    row["lead_name"] = names.get(row["lead_org_id"], row["lead_org_id"])
    return row


def _acceptability(published: Published, project: dict[str, str]) -> str:
    label = f"{project['project_id']} {project['title']}"
    rows = [r for r in project_rows(published) if r.label in (label, "All projects")]
    limit = published.rule.limit
    if rows and rows[0].note:
        return section("acceptability", "Acceptability", "No feedback on this project was published.", "")
    rows = [BarRow(r.label, r.cells, r.total, r.note, rule_above=r.label == "All projects") for r in rows]
    svg = stacked_bars(
        "pack-acceptability",
        f"Acceptability of {project['project_id']}",
        f"Verdicts on {label}, with all projects for comparison.",
        rows,
        ACCEPTABILITY,
        "Share of the panellists who gave a verdict",
        proportional=True,
    )
    lede = (
        "Panellists' verdicts on this project, next to the verdicts on all projects discussed. "
        f"Counts under {limit} are suppressed (hatched)."
    )
    return section(
        "acceptability",
        "Acceptability",
        lede,
        figure(
            svg,
            "Numbers in the bars are counts of panellists.",
            acceptability_table(rows, limit, "table-acceptability"),
        ),
    )


def _scores(published: Published, project_id: str) -> str:
    points, _hidden, scores = score_points(published, highlight=project_id)
    mine = scores.filter(pl.col("project_id") == project_id)
    if mine.is_empty():
        return section("scores", "Benefit and risk", "No benefit or risk scores for this project were published.", "")
    svg = scatter(
        "pack-scores",
        f"Benefit against risk: {project_id} among all projects",
        scores_desc(points),
        points,
        "Mean perceived risk (1 = low, 5 = high)",
        "Mean perceived benefit",
        SECTORS,
    )
    lede = "Mean scores from 1 (low) to 5 (high). This project is the large dark point; the others are for context."
    table = scores_table(mine, published.rule.limit, "table-scores", folded=False)
    return section("scores", "Benefit and risk", lede, f'<div class="split">{figure(svg, "", "")}{table}</div>')


def _conditions_withheld(published: Published, project_id: str) -> str | None:
    """Why conditions must not be listed: their number would reveal a count the open tier suppresses."""
    cells = published.open_table("project_acceptability").filter(
        (pl.col("project_id") == project_id) & (pl.col("acceptability") == "acceptable_with_conditions")
    )
    if cells.height and str(cells["panellists_status"][0]).startswith("suppressed"):
        return (
            "The published count of panellists who found this project acceptable with conditions is "
            "suppressed; listing their conditions would reveal it."
        )
    return None


def build_project_pack(published_dir: Path, project_id: str, out: Path, threshold: int = DEFAULT_THRESHOLD) -> Path:
    """Write the feedback pack for one project; texts need at least `threshold` panellists (and the rule's)."""
    published = load_published(Path(published_dir))
    project = _project(published, project_id)
    limit = max(threshold, published.rule.limit)
    conditions = free_text(published.current, project_id, "conditions")
    comments = free_text(published.current, project_id, "comment")
    words = section(
        "texts",
        "In panellists' words",
        "Scrubbed of names, contact details and health numbers before they were stored. Identical texts are "
        "shown once, in an order that carries no information.",
        _text_block(
            "Conditions panellists attached",
            "conditions",
            conditions,
            limit,
            "What would make the project acceptable to them.",
            _conditions_withheld(published, project_id),
        )
        + _text_block("Comments", "comments", comments, limit, "Anything else they wanted the team to know."),
    )
    body = "".join(
        [rule_box(published.rule), _acceptability(published, project), _scores(published, project_id), words]
    )
    title = f"Panel feedback: {project['title']}"
    subtitle = (
        f"{escape(project['project_id'])} · led by {escape(project['lead_name'])} · "
        f"{escape(str(project['sector']).replace('_', ' '))} · {escape(str(project['stage']))} project"
    )
    notice = (
        "<strong>For the project team only.</strong> This pack quotes panellists' own words. Do not publish "
        "it or pass it on; the published panel report is the public account."
    )
    return write_html(Path(out), page(title, published, subtitle, body, notice), PACK_MODE)
