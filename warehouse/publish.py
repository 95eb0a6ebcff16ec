"""Publish the marts as tidy Parquet, atomically, with a DuckDB catalog over them.

Each publish writes a complete new version folder (`published/versions/<run_id>/`) beside the old
one, then swaps the `published/current` symlink with one atomic rename. A reader sees the old
version or the new one, never a mix; a failure before the swap leaves the previous version as it
was. The catalog file is rebuilt the same way (written aside, then renamed over the old one).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from din import faults
from din.config import Config
from din.keys import PseudonymKey
from din.paths import DataPaths
from din.progress import Progress, silent
from transforms.disclosure import DisclosureRule
from warehouse.catalog import build_catalog
from warehouse.datapackage import write_datapackage
from warehouse.guard import record_published_rows
from warehouse.mart_files import Built, file_metadata, write_mart
from warehouse.marts import SCHEMA_VERSION, TIERS, Mart, published_marts
from warehouse.publish_reuse import (
    CONTENT_KEY,
    content_fingerprint,
    link_partitions,
    link_previous,
    part_name,
    partition_fingerprints,
    previous_content,
)
from warehouse.runs import RunSummary, record_run
from warehouse.verify import recorded_hashes, verify_published

log = logging.getLogger("din")

KEEP_VERSIONS = 3
TIER_MODES = {"open": (0o755, 0o644), "restricted": (0o750, 0o640), "ops": (0o750, 0o640)}


@dataclass(frozen=True)
class PublishedTable:
    name: str
    tier: str
    path: str
    rows: int


@dataclass(frozen=True)
class PublishResult:
    version: str
    tables: tuple[PublishedTable, ...]

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)


def publish(
    con: duckdb.DuckDBPyConnection,
    paths: DataPaths,
    version: str,
    marts: Sequence[Mart],
    metadata: dict[str, Any],
    rule: Any = None,
    progress: Progress | None = None,
) -> PublishResult:
    """Write every mart into a new version folder, then make it current in one atomic step (`progress`
    hears of each table written, and of the catalog).

    A table whose content is what the current version holds is hard-linked from it, not written again
    (warehouse.publish_reuse)."""
    progress = progress or silent()
    versions = paths.published / "versions"
    final = versions / version
    partial = versions / f".{version}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    for tier in TIERS:
        (partial / tier).mkdir(parents=True, exist_ok=True)
    previous_dir = paths.current.resolve() if paths.current.is_dir() else None
    previous, previous_rows = previous_content(previous_dir)
    tables: list[PublishedTable] = []
    content: dict[str, Any] = {}
    linked: list[str] = []
    parts_linked = parts_written = 0
    built: Built = {}  # a table and its totals are computed once, written one after the other
    progress.start(f"publish version {version}", len(marts), "tables")
    for mart in marts:
        target = partial / mart.relative_path
        documentation = file_metadata(mart, metadata)
        parts = partition_fingerprints(con, mart, documentation)
        if parts == {}:  # an empty partitioned table, one zero-row file: fingerprinted and linked as a whole
            parts = None
        if parts is not None:  # partitioned: each part's file is linked when its rows are as they were
            folders = {part_name(mart, v): v for v in parts}
            content[mart.name] = {folder: parts[v] for folder, v in folders.items()}
            before = previous.get(mart.name)
            same = [f for f, fp in content[mart.name].items() if isinstance(before, dict) and before.get(f) == fp]
            kept = link_partitions(previous_dir, mart, same, partial) if previous_dir is not None and same else set()
            changed = [v for folder, v in folders.items() if folder not in kept]
            if not changed:
                linked.append(mart.name)
            else:
                write_mart(con, mart, target, rule, metadata, built, partitions=changed)
            parts_linked, parts_written = parts_linked + len(kept), parts_written + len(changed)
            rows = _rows(con, mart, partial)
        else:
            fingerprint = content_fingerprint(con, mart, documentation, rule)
            if fingerprint is not None:
                content[mart.name] = fingerprint
            if (
                previous_dir is not None
                and fingerprint is not None
                and previous.get(mart.name) == fingerprint
                and mart.name in previous_rows
                and link_previous(previous_dir, mart, partial)
            ):
                rows = previous_rows[mart.name]
                linked.append(mart.name)
            else:
                write_mart(con, mart, target, rule, metadata, built)
                rows = _rows(con, mart, partial)
        tables.append(PublishedTable(mart.name, mart.tier, mart.relative_path, int(rows)))
        progress.advance(1, int(rows))
        faults.checkpoint("publish")
    partitions = (
        f"; of the tables partitioned by panel, {parts_written} part(s) written and {parts_linked} linked"
        if parts_written or parts_linked
        else ""
    )
    log.info(
        "publish: %d table(s) written, %d unchanged since %s (linked, not rewritten)%s",
        len(tables) - len(linked),
        len(linked),
        previous_dir.name if previous_dir else "-",
        partitions,
    )
    manifest = {
        "version": version,
        "schema_version": SCHEMA_VERSION,
        **metadata,
        "tables": [t.__dict__ for t in tables],
        CONTENT_KEY: content,
    }
    (partial / "ops" / "publish.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    write_datapackage(partial, tables, version=version, known_hashes=linked_hashes(previous_dir, partial))
    _set_permissions(partial)
    _fsync_tree(partial)
    os.replace(partial, final)
    swap_current(paths, final)
    build_catalog(paths, marts, metadata)
    prune_versions(versions, keep=KEEP_VERSIONS, current=final)
    progress.finish("made current; catalog rebuilt")
    return PublishResult(version, tuple(tables))


def linked_hashes(previous_dir: Path | None, version_dir: Path) -> dict[str, str]:
    """The recorded SHA-256 of every file of `version_dir` that is a hard link to the same file of the previous
    version (checked against that version's datapackage.json when it was linked)."""
    if previous_dir is None:
        return {}
    found = {}
    for relative, digest in recorded_hashes(previous_dir).items():
        new, old = version_dir / relative, previous_dir / relative
        if new.is_file() and old.is_file() and os.path.samefile(new, old):
            found[relative] = digest
    return found


def _rows(con: duckdb.DuckDBPyConnection, mart: Mart, version_dir: Path) -> int:
    """The rows of one table as written into `version_dir` (every file of a partitioned table)."""
    files = [str(version_dir / f) for f in mart.relative_files(version_dir)]
    return int(con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall()[0][0])


def publish_if_changed(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    summary: RunSummary,
    key: PseudonymKey,
    progress: Progress | None = None,
) -> None:
    """Publish a new version unless nothing that feeds the published data has changed."""
    if not published_is_current(con, config, paths, summary, key):
        publish_new_version(con, config, paths, summary, key, progress)


def published_is_current(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary, key: PseudonymKey
) -> bool:
    """True when the current version was published from exactly what the warehouse and config hold now
    and its files are intact: then the run keeps it (and the summary names it). A damaged version is a
    warning on the summary and False, so that it is published again."""
    withdrawn = con.execute("SELECT count(*) FROM core.roster WHERE consent = 'withdrawn'").fetchall()[0][0]
    summary.withdrawn_panellists = int(withdrawn)
    summary.withdrawn_rows_excluded = _withdrawn_rows(con)
    last = con.execute("SELECT fingerprint, version FROM ops.publishes ORDER BY published_at DESC LIMIT 1").fetchall()
    if not (last and last[0][0] == publish_fingerprint(con, config, key) and current_version(paths) == last[0][1]):
        return False
    check = verify_published(paths)
    if check.ok:
        summary.published_version = last[0][1]
        log.info("publish: nothing changed since version %s; published data left as it was", last[0][1])
        return True
    damage = "; ".join(str(p) for p in check.problems[:3]) + (" ..." if len(check.problems) > 3 else "")
    warning = f"published version {last[0][1]} was damaged ({damage}): published again from the warehouse"
    log.warning("publish: %s", warning)
    summary.run_warnings.append(warning)
    return False


def publish_new_version(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    summary: RunSummary,
    key: PseudonymKey,
    progress: Progress | None = None,
) -> None:
    """Publish every mart as version `summary.run_id` and record it with the fingerprint it came from."""
    fingerprint = publish_fingerprint(con, config, key)
    record_run(con, summary, finished=False)
    rule = DisclosureRule.from_config(config.disclosure)
    metadata = release_metadata(config, key, summary.run_id, rule)
    result = publish(
        con,
        paths,
        summary.run_id,
        published_marts(config.partition_by_panel, config.panel_buckets),
        metadata,
        rule,
        progress,
    )
    con.execute(
        "INSERT INTO ops.publishes VALUES (?, now()::TIMESTAMP, ?, ?)", [summary.run_id, result.version, fingerprint]
    )
    record_published_rows(con, summary.run_id)  # what the next publish's guard compares with
    summary.published_version = result.version
    summary.published_tables = {t.name: t.rows for t in result.tables}
    summary.quarantine_reasons = dict(
        con.execute("SELECT unnest(rules) AS rule, count(*) FROM ops.quarantine GROUP BY rule ORDER BY rule").fetchall()
    )


def publish_fingerprint(con: duckdb.DuckDBPyConnection, config: Config, key: PseudonymKey) -> str:
    """What the published data depends on: the deliveries' states, the key and the publishing rules."""
    state = con.execute(
        "SELECT coalesce(max(delivery_id), 0), count(*) FILTER (status = 'superseded'), "
        "count(*) FILTER (status = 'processed'), coalesce(sum(rows_accepted), 0), "
        # a delivery read again (its source's reading options changed) changes what is published
        "md5(coalesce(string_agg(delivery_id || ':' || coalesce(read_options, ''), ',' ORDER BY delivery_id), '')) "
        "FROM ops.deliveries"
    ).fetchall()[0]
    basis = {
        "deliveries": list(state),
        "key": key.key_id,
        "disclosure": dict(config.disclosure),
        "schema_version": SCHEMA_VERSION,
        # what the release says about itself (publish.json, catalog, datapackage) and its tables' docs
        "release": {"title": config.title, "mode": config.mode},
        "marts": [
            [m.sql, m.description, {c: repr(doc) for c, doc in m.columns.items()}, m.partition_by]
            + ([m.buckets] if m.buckets else [])  # (a fingerprint recorded before buckets existed still holds)
            for m in published_marts(config.partition_by_panel, config.panel_buckets)
        ],
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()


def _withdrawn_rows(con: duckdb.DuckDBPyConnection) -> int:
    total = 0
    for table in ("attendance", "responses", "project_feedback"):
        total += con.execute(
            f"""SELECT count(*) FROM core."{table}" WHERE (panel_id, panellist_ref) IN
                (SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'withdrawn')"""
        ).fetchall()[0][0]
    return int(total)


def release_metadata(
    config: Config, key: PseudonymKey, version: str, rule: DisclosureRule, reason: str | None = None
) -> dict[str, Any]:
    """What a published version says about itself (publish.json, the catalog): run, mode, key id, rule."""
    metadata: dict[str, Any] = {
        "run_id": version,
        "mode": config.mode,
        "demo_key": key.is_demo,
        "pseudonym_key_id": key.key_id,
        "schema_version": SCHEMA_VERSION,
        "title": config.title,
        "notice": (
            "DEMO OUTPUT: pseudonyms were made with the public demo key and protect nothing"
            if key.is_demo
            else "pseudonyms made with the deployment's secret key"
        ),
        "disclosure_rule": rule.label,
    }
    if reason:
        metadata["reason"] = reason
    return metadata


def swap_current(paths: DataPaths, target: Path) -> None:
    """Point `published/current` at `target` with an atomic rename of a fresh symlink."""
    link = paths.current
    temporary = link.with_name(f".current.{os.getpid()}")
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(target, link.parent), temporary)
    os.replace(temporary, link)


def prune_versions(versions: Path, keep: int, current: Path) -> None:
    """Delete all but the newest `keep` versions (never the current one)."""
    finished = sorted(
        (p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )
    for old in finished[:-keep]:
        if old.resolve() != current.resolve():
            shutil.rmtree(old, ignore_errors=True)


def current_version(paths: DataPaths) -> str | None:
    return os.path.basename(os.readlink(paths.current)) if paths.current.is_symlink() else None


def _set_permissions(root: Path) -> None:
    """Restricted and ops files are not world-readable; open files are."""
    os.chmod(root, 0o755)
    for tier, (dir_mode, file_mode) in TIER_MODES.items():
        folder = root / tier
        os.chmod(folder, dir_mode)
        for path in folder.rglob("*"):
            os.chmod(path, dir_mode if path.is_dir() else file_mode)


def _fsync_tree(root: Path) -> None:
    """Make the new version durable before it is renamed into place: every file written for it (a file
    linked from the previous version, with more than one link, is on disk already) and every folder."""
    for path in sorted(root.rglob("*"), reverse=True):  # a folder after what it holds
        if path.is_file() and path.stat().st_nlink > 1:
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(root, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
