"""After an erasure: every report the network generated is made again without the person, and what an
erasure did is told in words (`erasure_text`).

Reports are generated files, so they are regenerated rather than edited:

- `reports/feedback/<run>/`: each run's feedback pages and rejected-rows CSVs, from the warehouse
  (whose operations tables no longer hold the person), written aside and swapped in;
- `reports/report.html`, `reports/project-<ID>.html`, `reports/exports/<table>.<csv|xlsx>`: what
  `din report` and `din export` write by default, from the new published version;
- anything else under `reports/` cannot be regenerated (it was not made by `din`, or not where `din`
  puts it): it is deleted, and listed.

Copies written elsewhere (`--out` outside the data folder) are beyond the network's storage: the
privacy statement says so.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from din.config import Config
from din.paths import DataPaths
from reports.feedback import safe_name, write_feedback_reports
from warehouse.erasure import ErasureContext, ErasureReport
from warehouse.schema import connect

_PACK = re.compile(r"project-(?P<project>.+)\.html")
_EXPORT = re.compile(r"(?P<table>[a-z_]+)\.(?P<fmt>csv|xlsx)")


def refresh_reports(ctx: ErasureContext) -> dict[str, Any]:
    """The erasure step `reports`: every generated report made again, or deleted when it cannot be."""
    feedback = refresh_feedback(ctx.paths)
    regenerated, removed = refresh_published_reports(ctx.paths, ctx.config)
    return {"feedback_runs": feedback, "regenerated": regenerated, "removed": removed}


def refresh_feedback(paths: DataPaths) -> int:
    """Each run's feedback folder written again from the warehouse and swapped in; returns how many."""
    folder = paths.reports / "feedback"
    if not folder.is_dir():
        return 0
    con = connect(paths.warehouse, read_only=True)
    try:
        runs = {safe_name(run_id): run_id for (run_id,) in con.execute("SELECT run_id FROM ops.runs").fetchall()}
        aside = folder / ".erasure"
        shutil.rmtree(aside, ignore_errors=True)
        for stale in folder.glob(".stale-*"):  # an interrupted refresh: put back what it had moved aside
            original = folder / stale.name.removeprefix(".stale-")
            if original.exists():
                shutil.rmtree(stale)
            else:
                stale.rename(original)
        rewritten = 0
        for run_folder in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            run_id = runs.get(run_folder.name)
            if run_id is not None:
                write_feedback_reports(con, run_id, aside)
            fresh = aside / run_folder.name
            stale = folder / f".stale-{run_folder.name}"
            run_folder.rename(stale)
            if fresh.is_dir():
                fresh.rename(run_folder)
                rewritten += 1
            shutil.rmtree(stale)
        shutil.rmtree(aside, ignore_errors=True)
        return rewritten
    finally:
        con.close()


def refresh_published_reports(paths: DataPaths, config: Config) -> tuple[list[str], list[str]]:
    """`din report` and `din export` outputs in reports/ made again from the current version; others deleted."""
    from reports.export import export_table
    from reports.html import build_report
    from reports.packs import build_project_pack

    regenerated: list[str] = []
    removed: list[str] = []
    if not paths.reports.is_dir():
        return regenerated, removed
    for path in sorted(p for p in paths.reports.rglob("*") if p.is_file()):
        relative = path.relative_to(paths.reports)
        if relative.parts[0] == "feedback":
            continue
        pack = _PACK.fullmatch(path.name)
        export = _EXPORT.fullmatch(path.name)
        try:
            if relative == Path("report.html"):
                build_report(paths.published, path, config.title)
            elif len(relative.parts) == 1 and pack:
                build_project_pack(paths.published, pack["project"], path)
            elif relative.parts[0] == "exports" and len(relative.parts) == 2 and export:
                export_table(paths.published, export["table"], export["fmt"], path)
            else:
                raise LookupError("not a report din makes")
            regenerated.append(relative.as_posix())
        except (LookupError, ValueError, FileNotFoundError):
            path.unlink()
            removed.append(relative.as_posix())
    return regenerated, removed


def erasure_text(report: ErasureReport) -> str:
    """What `din forget` prints: what was (or would be) erased where, in counts and file names only."""
    if report.already_erased:
        return (
            f"nobody with that reference is left on panel {report.panel_id}: they were erased before, and the "
            "blocklist keeps their rows out of later deliveries. Nothing was changed."
        )
    would = report.dry_run
    head = (
        f"dry run: nothing was changed. Erasing this panellist of panel {report.panel_id} would:"
        if would
        else f"{report.erasure_id}: erased a panellist of panel {report.panel_id} "
        f"(requested by {report.requested_by}, {report.requested_at[:16].replace('T', ' ')} UTC)"
        + (", finishing an interrupted erasure" if report.resumed else "")
    )
    lines = [head]
    rows = sum(f["rows_blanked"] for f in report.files)
    mentions = sum(f["mentions_replaced"] for f in report.files)
    lines.append(
        f"  landing: {'redact' if would else 'redacted'} {len(report.files)} file(s): {rows} of their row(s) "
        f"blanked (row numbers kept), {mentions} mention(s) of them in other people's answers replaced"
    )
    for entry in report.files:
        lines.append(
            f"    {entry['file']}"
            + (f" ({entry['source']})" if entry.get("source") else "")
            + f": {entry['rows_blanked']} row(s), {entry['mentions_replaced']} mention(s)"
            + (f", {entry['counts_recomputed']} count(s) made without them" if entry.get("counts_recomputed") else "")
        )
    for note in report.notes:
        source = f" ({note['source']})" if note.get("source") else ""
        lines.append(f"    {'NEEDS ATTENTION ' if note.get('unchecked') else ''}{note['file']}{source}: {note['note']}")
    removed = report.rows_removed
    if removed:
        lines.append(
            f"  warehouse: {'remove' if would else 'removed'} "
            + ", ".join(f"{table} {count}" for table, count in sorted(removed.items()))
        )
    versions = (report.results.get("versions") or {}).get("deleted", 0)
    if would:
        lines.append(f"  published: publish a version without them; delete the other {versions} version(s)")
    else:
        lines.append(f"  published: version {report.version} without them; {versions} other version(s) deleted")
    found = report.results.get("reports") or {}
    if would:
        lines.append("  reports: every run's feedback pages, and what din report and din export wrote, made again")
        lines.append("  prefect: Prefect's records searched for them, and their mentions replaced")
    elif found and not found.get("skipped"):
        lines.append(
            f"  reports: feedback of {found.get('feedback_runs', 0)} run(s) rewritten; "
            f"{len(found.get('regenerated', []))} report(s) regenerated"
            + (f"; removed {', '.join(found['removed'])}" if found.get("removed") else "")
        )
    remote = report.results.get("remote") or {}
    if remote.get("configured"):
        lines.append(
            "  object storage: "
            + (
                "the bucket's copies would be replaced the same way"
                if would
                else f"{remote.get('landing_objects_deleted', 0)} landing object(s) deleted; only version "
                f"{remote.get('version_kept')} kept"
            )
        )
    prefect = report.results.get("prefect") or {}
    if prefect and not prefect.get("skipped"):
        lines.append(
            f"  prefect: {prefect.get('records', 0)} record(s) mentioning them "
            + ("would be " if would else "")
            + "redacted"
            + (f" in {prefect['database']}" if prefect.get("database") else "")
            + (f"; {prefect['note']}" if prefect.get("note") else "")
        )
    if not would:
        lines.append(
            "  recorded in ops.erasures (by erasure token, never reference or pseudonym); the blocklist keeps "
            "their rows out of later deliveries"
        )
    return "\n".join(lines)
