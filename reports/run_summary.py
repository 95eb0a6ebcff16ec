"""A run's summary for the people who watch runs: text for the terminal, rows and markdown for the
Prefect UI's artifacts. Counts, and for a file refused whole the reason recorded in `ops.deliveries`
(which names columns and quotes at most a few dates or codes): no row's data, no identifier, no secret."""

from __future__ import annotations

from typing import Any

from warehouse.runs import RunSummary


def summary_text(summary: RunSummary) -> str:
    lines = [
        f"run {summary.run_id}: {summary.outcome}" + (" (DEMO key: outputs are demo only)" if summary.demo_key else "")
    ]
    lines.append(
        f"{'source':<28} {'kind':<17} {'new':>4} {'same':>5} {'supers.':>7} {'refused':>7} {'read':>8} "
        f"{'accepted':>9} {'quarant.':>9}"
    )
    for s in summary.sources:
        lines.append(
            f"{s.source[:28]:<28} {s.kind:<17} {s.files_new:>4} {s.files_unchanged:>5} {s.files_superseded:>7} "
            f"{s.files_refused:>7} {s.rows_read:>8} {s.rows_accepted:>9} {s.rows_quarantined:>9}"
            + (f"  ERROR {s.error}" if s.error else "")
        )
    for warning in summary.warnings:  # one greppable line each
        lines.append(f"WARNING {warning}")
    reread = {s.source: s.files_reread for s in summary.sources if s.files_reread}
    if reread:
        lines.append(
            "reading options changed, deliveries read again: "
            + ", ".join(f"{source} {count}" for source, count in sorted(reread.items()))
        )
    scrubbed: dict[str, int] = {}
    for source in summary.sources:
        for placeholder, count in source.identifiers_scrubbed.items():
            scrubbed[placeholder] = scrubbed.get(placeholder, 0) + count
    if scrubbed:
        lines.append(
            "identifiers scrubbed from free text: " + ", ".join(f"{k} {v}" for k, v in sorted(scrubbed.items()))
        )
    blocked = {s.source: s.rows_blocked for s in summary.sources if s.rows_blocked}
    if blocked:
        lines.append(
            f"ATTENTION: {sum(blocked.values())} row(s) of erased panellists were dropped unread ("
            + ", ".join(f"{source} {count}" for source, count in sorted(blocked.items()))
            + "): the organisations still send them; their landing copies were redacted, and their feedback "
            "pages ask them to delete those rows"
        )
    published = summary.published_version or "(none)"
    if summary.publish_held:
        published = "NOT PUBLISHED this run (see WARNING above): the previous version stays current"
    lines.append(f"published version: {published}; withdrawn panellists excluded: {summary.withdrawn_panellists}")
    return "\n".join(lines)


def source_rows(summary: RunSummary) -> list[dict[str, Any]]:
    """One row per source, for the run's table artifact."""
    return [
        {
            "source": s.source,
            "organisation": s.organisation,
            "kind": s.kind,
            "files new": s.files_new,
            "files unchanged": s.files_unchanged,
            "files superseded": s.files_superseded,
            "files refused": s.files_refused,
            "files read again": s.files_reread,
            "rows accepted": s.rows_accepted,
            "rows quarantined": s.rows_quarantined,
            "rows of erased panellists dropped": s.rows_blocked,
            "files skipped": s.files_skipped,
            "identifiers scrubbed": ", ".join(f"{k} {v}" for k, v in sorted(s.identifiers_scrubbed.items())),
            "warnings": "; ".join(s.warnings),
            "error": s.error or "",
        }
        for s in summary.sources
    ]


def summary_markdown(summary: RunSummary) -> str:
    """The run's summary artifact: outcome, the per-source text, and the quarantine by rule."""
    reasons = "\n".join(f"| {rule} | {count} |" for rule, count in summary.quarantine_reasons.items())
    return (
        f"# Consolidation run {summary.run_id}\n\n**Outcome:** {summary.outcome}"
        + ("  \n**DEMO key**: pseudonyms protect nothing; demo data only." if summary.demo_key else "")
        + _warnings_markdown(summary)
        + f"\n\n```\n{summary_text(summary)}\n```\n\n## Quarantine by rule\n\n| rule | rows |\n|---|---|\n"
        + reasons
        + "\n"
    )


def _warnings_markdown(summary: RunSummary) -> str:
    if not summary.warnings:
        return ""
    return "\n\n## Needs attention\n\n" + "\n".join(f"- {w}" for w in summary.warnings)
