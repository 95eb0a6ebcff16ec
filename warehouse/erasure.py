"""Erasure requests (`din forget`): remove one panellist from everything we hold.

Landing is immutable except here: the right to erasure outranks keeping files as delivered. Every
landing copy that holds the person's rows is rewritten without them (as a new content-addressed
object; the old one is deleted), the warehouse loses their rows, a new version is published and
older published versions are deleted. The audit entry records what was removed, never who.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from din.config import Config
from din.contract import KINDS, normalise_header
from din.keys import resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from din.sql import quote
from transforms.disclosure import DisclosureRule
from transforms.pseudonymise import pseudonym
from transforms.readers import ROW, ReadError, decode_text, read_table, sniff_delimiter
from warehouse.landing import LandedFile, land_local_file
from warehouse.manifest import LANDING_LOG, json_text, now, read_landing_log
from warehouse.marts import marts
from warehouse.publish import publish, release_metadata
from warehouse.remote import forget_remote
from warehouse.runs import new_run_id
from warehouse.schema import connect, create_schema

PERSONAL_KINDS = tuple(name for name, kind in KINDS.items() if "panellist_ref" in kind.column_names)


@dataclass
class ErasureReport:
    erasure_id: str
    panel_id: str
    rows_removed: dict[str, int] = field(default_factory=dict)
    landing_files_redacted: int = 0


def forget(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    panel_id: str,
    panellist_ref: str,
    pseudonym: str,
    run_id: str | None = None,
) -> ErasureReport:
    """Remove the panellist from landing copies and the warehouse; record an audit entry."""
    report = ErasureReport("erasure-" + secrets.token_hex(6), panel_id)
    redacted_rows: dict[int, list[int]] = {}
    deliveries = con.execute(
        "SELECT delivery_id, kind, original_path, landing_path, sha256 FROM ops.deliveries "
        "WHERE list_contains(?, kind)",
        [list(PERSONAL_KINDS)],
    ).fetchall()
    replacements: dict[str, tuple[str, str, int]] = {}
    rows_by_sha: dict[str, list[int]] = {}
    for delivery_id, _kind, original_path, landing_path, sha in deliveries:
        if sha not in rows_by_sha:  # the same content may have come from two sources: redact it once
            rows_by_sha[sha] = _person_rows(Path(landing_path), original_path, panel_id, panellist_ref)
            if rows_by_sha[sha]:
                new = _redact(Path(landing_path), original_path, rows_by_sha[sha], landing_dir)
                replacements[sha] = (new.sha256, str(new.path), new.size)
                report.landing_files_redacted += 1
        if not rows_by_sha[sha]:
            continue
        redacted_rows[delivery_id] = rows_by_sha[sha]
        new_sha, new_path, size = replacements[sha]
        con.execute(
            "UPDATE ops.deliveries SET sha256 = ?, landing_path = ?, size = ? WHERE delivery_id = ?",
            [new_sha, new_path, size, delivery_id],
        )
        con.execute("UPDATE ops.source_files SET sha256 = ? WHERE delivery_id = ?", [new_sha, delivery_id])
    _rewrite_landing_log(landing_dir, replacements)
    con.execute("BEGIN TRANSACTION")
    for name in PERSONAL_KINDS:
        removed = 0
        for schema in ("stg", "core"):
            before = con.sql(f"SELECT count(*) FROM {schema}.{quote(name)}").fetchall()[0][0]
            con.execute(
                f"DELETE FROM {schema}.{quote(name)} WHERE panel_id = ? AND panellist_ref = ?", [panel_id, pseudonym]
            )
            after = con.sql(f"SELECT count(*) FROM {schema}.{quote(name)}").fetchall()[0][0]
            if schema == "core":
                removed = before - after
        report.rows_removed[name] = removed
    quarantined = 0
    for delivery_id, rows in redacted_rows.items():
        before = con.sql("SELECT count(*) FROM ops.quarantine").fetchall()[0][0]
        con.execute(
            "DELETE FROM ops.quarantine WHERE delivery_id = ? AND list_contains(?, source_row)", [delivery_id, rows]
        )
        quarantined += before - con.sql("SELECT count(*) FROM ops.quarantine").fetchall()[0][0]
        # a key conflict names the person's key (their pseudonym): it goes with their rows
        con.execute(
            "DELETE FROM ops.key_conflicts WHERE delivery_id = ? AND list_contains(?, source_row)", [delivery_id, rows]
        )
    report.rows_removed["quarantine"] = quarantined
    con.execute(
        "INSERT INTO ops.erasures VALUES (?, ?, ?, ?, ?, ?)",
        [report.erasure_id, now(), panel_id, json_text(report.rows_removed), report.landing_files_redacted, run_id],
    )
    con.execute("COMMIT")
    return report


def _person_rows(path: Path, original_path: str, panel_id: str, panellist_ref: str) -> list[int]:
    """Spreadsheet row numbers of the person's records in a landing copy."""
    try:
        raw = read_table(path, original_path)
    except ReadError:
        return []
    by_key = {normalise_header(h): h for h in raw.headers}
    panel, ref = by_key.get("panelid"), by_key.get("panellistref")
    if panel is None or ref is None:
        return []
    hits = raw.frame.filter(
        (pl.col(panel).str.strip_chars() == panel_id) & (pl.col(ref).str.strip_chars() == panellist_ref.strip())
    )
    return hits[ROW].to_list()


def _redact(path: Path, original_path: str, rows: list[int], landing_dir: Path) -> LandedFile:
    """Write the landing copy without `rows` as a new object; delete the old object."""
    temporary = landing_dir / f".redacting-{secrets.token_hex(4)}"
    suffix = Path(original_path).suffix.lower()
    drop = set(rows)
    if suffix in (".csv", ".tsv", ".txt"):
        text, encoding = decode_text(path.read_bytes())
        delimiter = sniff_delimiter(text)
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        kept = [record for number, record in enumerate(records, start=1) if number not in drop]
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(kept)
        temporary.write_bytes(buffer.getvalue().encode(encoding))
    else:
        raw = read_table(path, original_path)
        frame = raw.frame.filter(~pl.col(ROW).is_in(sorted(drop))).drop(ROW)
        if raw.format == "xlsx":
            frame.write_excel(temporary)
        elif raw.format == "json":
            temporary.write_text(json.dumps(frame.to_dicts(), ensure_ascii=False), encoding="utf-8")
        elif raw.format == "ndjson":
            temporary.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in frame.to_dicts()), encoding="utf-8"
            )
        else:
            frame.write_parquet(temporary)
    landed = land_local_file(landing_dir, temporary, path.suffix)
    temporary.unlink()
    if path.exists() and path != landed.path:
        os.chmod(path, 0o640)
        path.unlink()
    return landed


def _rewrite_landing_log(landing_dir: Path, replacements: dict[str, tuple[str, str, int]]) -> None:
    if not replacements:
        return
    entries = read_landing_log(landing_dir)
    for entry in entries:
        if entry["sha256"] in replacements:
            new_sha, new_path, size = replacements[entry["sha256"]]
            entry.update(sha256=new_sha, landing_path=str(Path(new_path).relative_to(landing_dir)), size=size)
    temporary = landing_dir / f".{LANDING_LOG}.rewrite"
    temporary.write_text("".join(json_text(e) + "\n" for e in entries), encoding="utf-8")
    os.replace(temporary, landing_dir / LANDING_LOG)


def drop_old_versions(published_dir: Path, keep: Path) -> int:
    """Delete every published version but `keep`: older versions still hold the erased person."""
    removed = 0
    versions = published_dir / "versions"
    for version in versions.iterdir():
        if version.is_dir() and version.resolve() != keep.resolve():
            shutil.rmtree(version)
            removed += 1
    return removed


def forget_panellist(config: Config, panel_id: str, panellist_ref: str) -> ErasureReport:
    """Erase one panellist from landing, warehouse and published data (older versions deleted)."""
    key = resolve_key(config)
    paths = DataPaths(config.data_dir)
    rule = DisclosureRule.from_config(config.disclosure)
    with writer_lock(paths.lock, config.lock_timeout_seconds):
        con = connect(paths.warehouse)
        try:
            create_schema(con)
            version = new_run_id()
            report = forget(
                con,
                paths.landing,
                panel_id,
                panellist_ref,
                pseudonym(key.secret, panel_id, panellist_ref),
                run_id=version,
            )
            metadata = release_metadata(config, key, version, rule, reason=f"erasure {report.erasure_id}")
            result = publish(con, paths, version, marts(), metadata, rule)
            con.execute("INSERT INTO ops.publishes VALUES (?, now()::TIMESTAMP, ?, 'erasure')", [version, version])
        finally:
            con.close()
        drop_old_versions(paths.published, paths.published / "versions" / result.version)
        if config.storage is not None:  # the bucket's copies hold the person too
            forget_remote(config.storage, paths.landing, paths.published, result.version)
    return report
