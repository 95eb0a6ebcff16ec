"""A run's summary for the people who watch runs: text for the terminal, rows and markdown for the
Prefect UI's artifacts, the per-source log line, and `din runs`' history table. Counts, and for a file
refused whole the reason recorded in `ops.deliveries` (which names columns and quotes at most a few
dates or codes): no row's data, no identifier, no secret.

Links in artifacts are http(s) links to the portal when `portal.url` is configured, or none: a path
on the worker is shown as text (a `file://` link opens nothing in a browser elsewhere)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from din.contract import (
    DATE_ORDER_AMBIGUOUS,
    DATE_ORDER_CONFLICT,
    DUPLICATE_COLUMNS,
    FILE_HAS_NO_ROWS,
    FILE_UNREADABLE,
    KINDS,
    SURVEY_EXPORT_UNREADABLE,
)
from din.progress import duration
from transforms.column_mapping import MAPPING_INVALID
from warehouse.runs import RunSummary, SourceSummary
from warehouse.schema import KEY_CONFLICT

#: Stages in the order a run goes through them, and how `din runs` and the summary name them.
STAGES = {
    "pull": "pull",
    "validate_and_merge": "validate+merge",
    "redact_blocked": "redact",
    "publish": "publish",
    "push_published": "push",
}
#: Rules that are not a suite's expectation: about a file as a whole, or between organisations.
OTHER_RULES = {
    FILE_UNREADABLE: "the file could not be read (empty, binary, or not the format it claims to be)",
    FILE_HAS_NO_ROWS: "the file has no data rows",
    DUPLICATE_COLUMNS: "two columns of the file have the same name",
    SURVEY_EXPORT_UNREADABLE: "not the survey or deliberation tool's export the source's mapping reads",
    DATE_ORDER_AMBIGUOUS: "slashed dates read day- or month-first alike, and nothing decides (format.date_order)",
    DATE_ORDER_CONFLICT: "dates that contradict each other or the source's declared date order",
    MAPPING_INVALID: "the organisation's saved column mapping could not be used",
    KEY_CONFLICT: "another organisation delivered the same key with other values; the owner's row is published",
    "key_unique": "the same key appears more than once in one file",
}


# --- words -----------------------------------------------------------------------------------


def rule_words(rule: str) -> str:
    """What a quarantine rule means, in words (from the suites' messages, without any value)."""
    return OTHER_RULES.get(rule) or _suite_rules().get(rule) or rule.replace("_", " ")


@cache
def _suite_rules() -> dict[str, str]:
    from expectations.suites import load_suite

    words: dict[str, str] = {}
    for kind in KINDS:
        for expectation in load_suite(kind)["expectations"]:
            meta = expectation.get("meta", {})
            if "rule" in meta and "message" in meta:
                words.setdefault(meta["rule"], _without_value(meta["message"]))
    return words


def _without_value(message: str) -> str:
    """`share` is {value}; expected ... -> `share`: expected ...; `a + b {value}: must ...` -> `a + b: must ...`."""
    text = re.sub(r"\s+is \{value\};\s*", ": ", message)
    return re.sub(r"\s*\{value\}", "", text)


def source_line(s: SourceSummary) -> str:
    """The per-source line of the log: what it delivered and what became of it."""
    files = f"{s.files_new} new file(s)"
    extras = [f"{n} {what}" for n, what in ((s.files_superseded, "superseding"), (s.files_refused, "refused")) if n]
    if extras:
        files += f" ({', '.join(extras)})"
    line = (
        f"source {s.source} ({s.organisation}, {s.kind}): {files}, {s.files_unchanged} unchanged, "
        f"{s.files_skipped} skipped; rows {s.rows_read} read, {s.rows_accepted} accepted, "
        f"{s.rows_quarantined} quarantined"
    )
    if s.rows_blocked:
        line += f", {s.rows_blocked} of erased panellists dropped"
    return line + (f"; ERROR {s.error}" if s.error else "")


def stage_times(stage_seconds: Mapping[str, float]) -> str:
    """`pull 0.4 s, validate+merge 3.1 s, publish 1.2 s`, in the order of the run."""
    ordered = [name for name in STAGES if name in stage_seconds] + [n for n in stage_seconds if n not in STAGES]
    return ", ".join(f"{STAGES.get(name, name)} {duration(stage_seconds[name])}" for name in ordered)


def next_commands(summary: RunSummary) -> list[str]:
    """What to run next, with the registry (and data folder) this run used, as the operator started `din`:
    `./dev` says `./dev din` (DIN_INVOKED_AS), because a fresh checkout has no `din` on its PATH."""
    din = os.environ.get("DIN_INVOKED_AS") or "din"
    options = f"--config {shlex.quote(summary.config_path)}" if summary.config_path else ""
    if summary.data_dir_option:
        options += f" --data-dir {shlex.quote(summary.data_dir_option)}"
    if summary.outcome == "failed":
        return [f"{din} runs {options}".strip(), f"{din} run {options}".strip()]
    return [
        f"{din} tables {options}".strip(),
        f'{din} query "SELECT * FROM ops.quarantine" {options}'.strip(),
        f"{din} report {options}".strip(),
        f"{din} runs {options}".strip(),
    ]


# --- the terminal ---------------------------------------------------------------------------


def summary_text(summary: RunSummary, with_next: bool = True) -> str:
    """The summary a terminal shows at the end of `din run` (`with_next`: and the commands to run next)."""
    lines = [_headline(summary)]
    if summary.outcome == "failed":
        lines.append(f"ERROR {summary.message or 'no reason was recorded'}")
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
    scrubbed = _scrubbed(summary)
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
    if summary.quarantine_reasons:
        lines.append("quarantined rows by rule (in ops.quarantine, with each row's reason):")
        lines += [f"  {count:>7}  {rule}: {rule_words(rule)}" for rule, count in summary.quarantine_reasons.items()]
    published = summary.published_version or "(none)"
    if summary.publish_held:
        published = "NOT PUBLISHED this run (see WARNING above): the previous version stays current"
    lines.append(f"published version: {published}; withdrawn panellists excluded: {summary.withdrawn_panellists}")
    if summary.feedback_dir:
        lines.append(f"feedback reports (one per organisation): {summary.feedback_dir}")
    if with_next:
        lines += [f"next: {command}" for command in next_commands(summary)]
    return "\n".join(lines)


def _headline(summary: RunSummary) -> str:
    title = f" ({summary.title})" if summary.title else ""
    timing = []
    if summary.elapsed_seconds is not None:
        timing.append(f"in {duration(summary.elapsed_seconds)}")
    if summary.stage_seconds:
        timing.append(f"stages: {stage_times(summary.stage_seconds)}")
    where = f" in stage {STAGES.get(summary.failed_stage, summary.failed_stage)}" if summary.failed_stage else ""
    return (
        f"run {summary.run_id}{title}: {summary.outcome}{where}"
        + (f" {'; '.join(timing)}" if timing else "")
        + (" (DEMO key: outputs are demo only)" if summary.demo_key else "")
    )


def _scrubbed(summary: RunSummary) -> dict[str, int]:
    scrubbed: dict[str, int] = {}
    for source in summary.sources:
        for placeholder, count in source.identifiers_scrubbed.items():
            scrubbed[placeholder] = scrubbed.get(placeholder, 0) + count
    return scrubbed


# --- the Prefect UI's artifacts -------------------------------------------------------------


def artifact_key(name: str, data_dir: Path | str) -> str:
    """`consolidate-summary-demo-1a2b3c4d`: one artifact history per data folder on a shared server.

    Prefect allows lowercase letters, digits and dashes: the folder's name in those, and a digest of
    its full path so that two folders of the same name stay apart."""
    resolved = str(Path(data_dir).resolve())
    label = re.sub(r"[^a-z0-9]+", "-", Path(resolved).name.lower()).strip("-")[:24].strip("-") or "data"
    return f"{name}-{label}-{hashlib.sha256(resolved.encode()).hexdigest()[:8]}"


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
            "rows read": s.rows_read,
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


def summary_markdown(summary: RunSummary, portal_url: str | None = None) -> str:
    """The run's summary artifact: outcome and times, what needs attention, the per-source text, the
    quarantine by rule in words, where the feedback is, and what to run next."""
    parts = [f"# Consolidation run {summary.run_id}" + (f": {_md(summary.title)}" if summary.title else "")]
    facts = [f"**Outcome:** {summary.outcome}"]
    if summary.outcome == "failed":
        where = f" in stage {STAGES.get(summary.failed_stage, summary.failed_stage)}" if summary.failed_stage else ""
        facts.append(f"**Error{where}:** {_md(summary.message or 'no reason was recorded')}")
    if summary.elapsed_seconds is not None:
        facts.append(f"**Elapsed:** {duration(summary.elapsed_seconds)}")
    if summary.stage_seconds:
        facts.append(f"**Stages:** {stage_times(summary.stage_seconds)}")
    if summary.demo_key:
        facts.append("**DEMO key**: pseudonyms protect nothing; demo data only.")
    parts.append("  \n".join(facts))
    if summary.warnings:
        parts.append("## Needs attention\n\n" + "\n".join(f"- {_md(w)}" for w in summary.warnings))
    parts.append(f"```\n{summary_text(summary, with_next=False)}\n```")
    if summary.quarantine_reasons:
        rows = "\n".join(
            f"| `{rule}` | {_md(rule_words(rule))} | {count} |" for rule, count in summary.quarantine_reasons.items()
        )
        parts.append("## Quarantine by rule\n\n| rule | what it means | rows |\n|---|---|---:|\n" + rows)
    parts.append("## Feedback and report\n\n" + _where_markdown(summary, portal_url))
    parts.append("## Next\n\n" + "\n".join(f"- {_code(command)}" for command in next_commands(summary)))
    return "\n\n".join(parts) + "\n"


def _where_markdown(summary: RunSummary, portal_url: str | None) -> str:
    lines = []
    if portal_url and summary.feedback_dir:
        lines.append(f"- [feedback of this run in the portal]({portal_url}/feedback/{summary.run_id})")
    if summary.feedback_dir:
        lines.append(f"- feedback reports on the worker: {_code(summary.feedback_dir)}")
    elif summary.outcome != "failed":
        lines.append("- no feedback reports were written by this run")
    if portal_url:
        lines.append(f"- [the panel report]({portal_url}/report) and [the published tables]({portal_url}/catalog)")
    config = f" --config {shlex.quote(summary.config_path)}" if summary.config_path else ""
    command = _code(f"din report{config}")
    lines.append(f"- the panel report as a file: {command} writes it (one HTML file, open tier only)")
    return "\n".join(lines)


def _code(text: str) -> str:
    """A code span (markdown escapes do not apply inside one; a backtick would end it)."""
    return "`" + text.replace("`", "'") + "`"


def _md(text: str) -> str:
    return re.sub(r"([\\`*_|\[\]<>])", r"\\\1", text)


# --- `din runs` -----------------------------------------------------------------------------


def history_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The run history: one line per run with its duration, each stage's time in its own column, and
    the error (a failed run's message, or the sources that could not be pulled)."""
    stages = [name for name in STAGES if any(name in _stages(row) for row in rows)]
    head = (
        f"{'run':<30} {'started':<19} {'outcome':<28} {'duration':>11} {'new':>4} {'accepted':>9} "
        f"{'quarant.':>9} {'published':>10}" + "".join(f" {STAGES[name]:>14}" for name in stages) + "  error"
    )
    lines = [head]
    for row in rows:
        seconds = _stages(row)
        line = (
            f"{row['run_id']:<30} {str(row['started_at'])[:19]:<19} {row['outcome']:<28} {_duration(row):>11} "
            f"{row['deliveries_new'] or 0:>4} {row['rows_accepted'] or 0:>9} {row['rows_quarantined'] or 0:>9} "
            f"{row['rows_published'] or 0:>10}"
            + "".join(f" {duration(seconds[name]) if name in seconds else '-':>14}" for name in stages)
            + f"  {_error(row)}"
        )
        lines.append(line.rstrip())
    return "\n".join(lines)


def _stages(row: Mapping[str, Any]) -> dict[str, float]:
    try:
        stages = json.loads(row.get("stage_seconds") or "{}")
    except ValueError:
        return {}
    return {str(k): float(v) for k, v in stages.items()} if isinstance(stages, dict) else {}


def _duration(row: Mapping[str, Any]) -> str:
    started, finished = row.get("started_at"), row.get("finished_at")
    if isinstance(started, datetime) and isinstance(finished, datetime):
        return duration((finished - started).total_seconds())
    return "-"


def _error(row: Mapping[str, Any]) -> str:
    """One line: a failed or interrupted run's message, else the sources that could not be pulled."""
    if row["outcome"] not in ("succeeded", "succeeded_with_warnings") and row.get("message"):
        return " ".join(str(row["message"]).split())
    try:
        errors = json.loads(row.get("source_errors") or "{}")
    except ValueError:
        errors = {}
    return "; ".join(f"{source}: {' '.join(str(text).split())}" for source, text in sorted(errors.items()))
