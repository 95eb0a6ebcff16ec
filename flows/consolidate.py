"""The consolidate flow: pull → validate → merge → publish.

    partner sources ──pull──▶ landing ──parse──▶ canonical frames
       ──validate (GX suites)──▶ valid rows │ quarantine
       ──merge (DuckDB)──▶ warehouse ──publish──▶ Parquet + catalog

Tasks are thin wrappers over the plain functions in `flows.stages` and `warehouse`; a task runs
per source (pull, with retries for transient network errors) and per batch of files (validate),
never per row or per tiny file. The warehouse has one writer: this flow, under a file lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from din import faults
from din.config import Config, SourceConfig, load_config
from din.contract import kinds_by_level
from din.disclosure_config import disclosure_rule
from din.keys import PseudonymKey, resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from din.sources import SourceError
from din.sources.credentials import resolve_credential
from flows.stages import (
    BatchResult,
    BatchSpec,
    SourcePull,
    merge_level,
    plan_batches,
    process_batch,
    pull_source,
    write_known_references,
)
from transforms.disclosure import DisclosureRule
from warehouse.feedback import Drift, OrgReport, feedback_markdown, schema_drift, write_feedback_reports
from warehouse.manifest import active_landing_paths, known_files, pending_deliveries, record_pulls
from warehouse.marts import SCHEMA_VERSION, marts
from warehouse.publish import current_version, publish
from warehouse.remote import RemoteStorage, current_remote_version, push_landing, push_published
from warehouse.runs import RunSummary, SourceSummary, mark_abandoned_runs, new_run_id, record_run, start_run
from warehouse.schema import connect, create_schema

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "demo" / "din.yaml"
log = logging.getLogger("din")


def task_runner_for(config: Config) -> Any:
    """The task runner a config asks for: parse/validate batches run in parallel threads or processes."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    if config.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=config.max_workers)
    if config.task_runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    return ThreadPoolTaskRunner(max_workers=config.max_workers)


def run_flow(flow_object: Any, config: Config) -> dict[str, Any]:
    """Run a flow with the task runner the config asks for (deployments set it the same way)."""
    return flow_object.with_options(task_runner=task_runner_for(config))(
        config_path=str(config.path), data_dir=str(config.data_dir)
    )


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a pull only when the source said the failure may pass (network, 5xx, timeouts)."""
    try:
        state.result()
    except SourceError as error:
        return error.transient
    except Exception:
        return False
    return False


@task(
    name="pull-source",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)
def pull_source_task(source: SourceConfig, known: dict[str, Any], landing_dir: Path) -> SourcePull:
    return pull_source(source, known, landing_dir, resolve_credential)


@task(name="validate-batch", cache_policy=NO_CACHE)
def validate_batch_task(spec: BatchSpec) -> BatchResult:
    return process_batch(spec)


@task(name="merge", cache_policy=NO_CACHE)
def merge_task(con: duckdb.DuckDBPyConnection, results: list[BatchResult], pending: list[Any], run_id: str) -> None:
    merge_level(con, results, pending, run_id)
    faults.checkpoint("merge")


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(
    con: duckdb.DuckDBPyConnection, paths: DataPaths, version: str, metadata: dict[str, Any], rule: DisclosureRule
) -> Any:
    return publish(con, paths, version, marts(), metadata, rule)


@task(name="push-landing", cache_policy=NO_CACHE)
def push_landing_task(storage: RemoteStorage, landing_dir: Path) -> int:
    """Mirror new landing objects and the delivery log to the bucket (storage.landing)."""
    return push_landing(storage, landing_dir)


@task(name="push-published", cache_policy=NO_CACHE)
def push_published_task(storage: RemoteStorage, paths: DataPaths) -> str | None:
    """Mirror the current version unless the bucket's CURRENT names it already (so a run after a
    failed push catches up even when it publishes nothing new). Returns the version pushed, or None."""
    version = current_version(paths)
    if version is None or current_remote_version(storage) == version:
        return None
    push_published(storage, paths.published, version)
    return version


@task(name="feedback-reports", cache_policy=NO_CACHE)
def feedback_task(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """Each organisation's feedback on this run, and the run's schema drift (reads the warehouse only)."""
    con = connect(paths.warehouse, read_only=True)
    try:
        return write_feedback_reports(con, run_id, paths.reports / "feedback"), schema_drift(con, run_id)
    finally:
        con.close()


def feedback(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """After publishing: a failure here is logged, never fails the run (reports can be written again)."""
    try:
        return feedback_task(paths, run_id)
    except Exception as error:
        _logger().error("feedback reports for run %s could not be written: %s", run_id, error)
        return [], []


@flow(name="consolidate", description="Pull partner deliveries, validate, merge and publish.")
def consolidate(config_path: str = str(DEFAULT_CONFIG), data_dir: str | None = None) -> dict[str, Any]:
    """Consolidate every configured source into the warehouse and publish the result."""
    config = load_config(config_path, data_dir)
    key = resolve_key(config)  # before any work: a production run without a key stops here
    paths = DataPaths(config.data_dir)
    with writer_lock(paths.lock, config.lock_timeout_seconds):
        summary = run_consolidation(config, paths, key)
        reports, drift = feedback(paths, summary.run_id)
    _artifacts(summary)
    _feedback_artifact(summary.run_id, reports, drift)
    result = summary.as_dict()
    result["feedback_reports"] = [
        {**r.__dict__, "html_path": str(r.html_path), "csv_path": str(r.csv_path)} for r in reports
    ]
    result["schema_drift"] = [d.as_dict() for d in drift]
    return result


def run_consolidation(config: Config, paths: DataPaths, key: PseudonymKey, pull_sources: bool = True) -> RunSummary:
    logger = _logger()
    con = connect(paths.warehouse)
    try:
        create_schema(con)
        mark_abandoned_runs(con)
        for leftover in clear_leftovers(paths):
            logger.info("removed %s, left behind by an interrupted run", leftover)
        summary = RunSummary(new_run_id(), config.mode, key.is_demo, key.key_id)
        summary.sources = [SourceSummary(s.name, s.organisation, s.kind) for s in config.all_sources]
        start_run(con, summary, str(config.path))
        if key.is_demo:
            logger.warning("demo mode: pseudonyms use the public DEMO key; outputs are marked as demo")
        try:
            if pull_sources:
                with _stage(summary, "pull"):
                    pull(con, config, paths, summary)
            with _stage(summary, "validate_and_merge"):
                validate_and_merge(con, config, paths, summary, key)
            with _stage(summary, "publish"):
                publish_if_changed(con, config, paths, summary, key)
            if config.storage is not None and config.storage.published:
                with _stage(summary, "push_published"):
                    push_published_task(config.storage, paths)
            summary.outcome = "succeeded_with_source_errors" if summary.source_errors else "succeeded"
        except BaseException as error:
            summary.outcome = "failed"
            summary.message = f"{type(error).__name__}: {error}"
            record_run(con, summary, finished=True)
            raise
        record_run(con, summary, finished=True)
        shutil.rmtree(paths.run_work(summary.run_id), ignore_errors=True)
        logger.info(
            "run %s %s: %d new deliveries, %d rows accepted, %d quarantined",
            summary.run_id,
            summary.outcome,
            summary.deliveries_new,
            summary.rows_accepted,
            summary.rows_quarantined,
        )
        return summary
    finally:
        con.close()


def clear_leftovers(paths: DataPaths) -> list[Path]:
    """Delete what interrupted runs left: their work folders and half-written published versions.

    Only called under the writer lock, so no live run can own any of them."""
    leftovers = sorted(p for p in paths.work.glob("*") if p.is_dir())
    leftovers += sorted((paths.published / "versions").glob(".*.partial"))
    for folder in leftovers:
        shutil.rmtree(folder, ignore_errors=True)
    return leftovers


def pull(con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary) -> None:
    """Land new and changed files from every source; a failing source is reported, the rest go on."""
    logger = _logger()
    futures = {s.name: pull_source_task.submit(s, known_files(con, s.name), paths.landing) for s in config.all_sources}
    pulled = []
    by_name = {s.source: s for s in summary.sources}
    for name, future in futures.items():
        try:
            result: SourcePull = future.result()
        except Exception as error:
            by_name[name].error = _source_error_text(error)
            logger.error("source %s failed: %s", name, by_name[name].error)
            continue
        by_name[name].files_unchanged = result.unchanged
        pulled.extend(result.files)
    faults.checkpoint("pull")
    new_ids = record_pulls(
        con,
        pulled,
        {s.name: s.organisation for s in config.all_sources},
        {s.name: s.kind for s in config.all_sources},
        summary.run_id,
        paths.landing,
    )
    if config.storage is not None and config.storage.landing:
        push_landing_task(config.storage, paths.landing)
    logger.info(
        "pull: %d source(s), %d new deliveries, %d unchanged file(s)",
        len(config.all_sources),
        len(new_ids),
        sum(s.files_unchanged for s in summary.sources),
    )


def _source_error_text(error: BaseException) -> str:
    kind = "unreachable" if getattr(error, "transient", False) else "failed"
    return f"{kind}: {error}"


def validate_and_merge(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary, key: PseudonymKey
) -> None:
    """Level by level (reference data first, then the roster, then what refers to it)."""
    logger = _logger()
    formats = {s.name: s.format for s in config.all_sources}
    work = paths.run_work(summary.run_id)
    for level, kinds in enumerate(kinds_by_level()):
        pending = pending_deliveries(con, [k.name for k in kinds])
        if not pending:
            continue
        references = write_known_references(con, kinds, work / f"references-{level}.parquet")
        roster = tuple(str(p) for p in active_landing_paths(con, "roster"))
        specs = [
            BatchSpec(
                f"l{level}-b{index:04d}",
                batch[0].kind,
                tuple(batch),
                work,
                references,
                roster,
                key.secret,
                config.validation_engine,
            )
            for index, batch in enumerate(plan_batches(pending, formats))
        ]
        futures = validate_batch_task.map(specs)
        results = [f.result() for f in futures]
        faults.checkpoint("validate")
        merge_task(con, results, pending, summary.run_id)
        _count(summary, con, [p.delivery_id for p in pending])
        logger.info(
            "validate+merge level %d (%s): %d deliveries in %d batch(es)",
            level,
            ", ".join(k.name for k in kinds),
            len(pending),
            len(specs),
        )


def _count(summary: RunSummary, con: duckdb.DuckDBPyConnection, delivery_ids: list[int]) -> None:
    rows = con.execute(
        """SELECT source, supersedes IS NOT NULL, coalesce(rows_read, 0), coalesce(rows_accepted, 0),
                  coalesce(rows_quarantined, 0), scrub_counts
           FROM ops.deliveries WHERE list_contains(?, delivery_id)""",
        [delivery_ids],
    ).fetchall()
    by_name = {s.source: s for s in summary.sources}
    for source, superseding, read, accepted, quarantined, scrubbed in rows:
        entry = by_name.get(source)
        if entry is None:
            continue
        entry.files_new += 1
        entry.files_superseded += int(superseding)
        entry.rows_read += int(read)
        entry.rows_accepted += int(accepted)
        entry.rows_quarantined += int(quarantined)
        for placeholder, count in json.loads(scrubbed or "{}").items():
            if count:
                entry.identifiers_scrubbed[placeholder] = entry.identifiers_scrubbed.get(placeholder, 0) + count


def publish_if_changed(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary, key: PseudonymKey
) -> None:
    """Publish a new version unless nothing that feeds the published data has changed."""
    fingerprint = publish_fingerprint(con, config, key)
    last = con.execute("SELECT fingerprint, version FROM ops.publishes ORDER BY published_at DESC LIMIT 1").fetchall()
    withdrawn = con.execute("SELECT count(*) FROM core.roster WHERE consent = 'withdrawn'").fetchall()[0][0]
    summary.withdrawn_panellists = int(withdrawn)
    summary.withdrawn_rows_excluded = _withdrawn_rows(con)
    if last and last[0][0] == fingerprint and current_version(paths) == last[0][1]:
        summary.published_version = last[0][1]
        _logger().info("publish: nothing changed since version %s; published data left as it was", last[0][1])
        return
    record_run(con, summary, finished=False)
    metadata = {
        "run_id": summary.run_id,
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
    }
    rule = disclosure_rule(config)
    metadata["disclosure_rule"] = rule.label
    result = publish_task(con, paths, summary.run_id, metadata, rule)
    con.execute(
        "INSERT INTO ops.publishes VALUES (?, now()::TIMESTAMP, ?, ?)", [summary.run_id, result.version, fingerprint]
    )
    summary.published_version = result.version
    summary.published_tables = {t.name: t.rows for t in result.tables}
    summary.quarantine_reasons = dict(
        con.execute("SELECT unnest(rules) AS rule, count(*) FROM ops.quarantine GROUP BY rule ORDER BY rule").fetchall()
    )


def publish_fingerprint(con: duckdb.DuckDBPyConnection, config: Config, key: PseudonymKey) -> str:
    """What the published data depends on: the deliveries' states, the key and the publishing rules."""
    state = con.execute(
        "SELECT coalesce(max(delivery_id), 0), count(*) FILTER (status = 'superseded'), "
        "count(*) FILTER (status = 'processed') FROM ops.deliveries"
    ).fetchall()[0]
    basis = {
        "deliveries": list(state),
        "key": key.key_id,
        "disclosure": dict(config.disclosure),
        "schema_version": SCHEMA_VERSION,
        "marts": [m.sql for m in marts()],
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


@contextmanager
def _stage(summary: RunSummary, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        summary.stage_seconds[name] = round(time.perf_counter() - started, 3)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except Exception:
        return log


def summary_text(summary: RunSummary) -> str:
    lines = [
        f"run {summary.run_id}: {summary.outcome}" + (" (DEMO key: outputs are demo only)" if summary.demo_key else "")
    ]
    lines.append(
        f"{'source':<28} {'kind':<17} {'new':>4} {'same':>5} {'supers.':>7} {'read':>8} {'accepted':>9} {'quarant.':>9}"
    )
    for s in summary.sources:
        lines.append(
            f"{s.source[:28]:<28} {s.kind:<17} {s.files_new:>4} {s.files_unchanged:>5} "
            f"{s.files_superseded:>7} {s.rows_read:>8} {s.rows_accepted:>9} {s.rows_quarantined:>9}"
            + (f"  ERROR {s.error}" if s.error else "")
        )
    scrubbed: dict[str, int] = {}
    for source in summary.sources:
        for placeholder, count in source.identifiers_scrubbed.items():
            scrubbed[placeholder] = scrubbed.get(placeholder, 0) + count
    if scrubbed:
        lines.append(
            "identifiers scrubbed from free text: " + ", ".join(f"{k} {v}" for k, v in sorted(scrubbed.items()))
        )
    lines.append(
        f"published version: {summary.published_version or '(none)'}; "
        f"withdrawn panellists excluded: {summary.withdrawn_panellists}"
    )
    return "\n".join(lines)


def _artifacts(summary: RunSummary) -> None:
    rows = [
        {
            "source": s.source,
            "organisation": s.organisation,
            "kind": s.kind,
            "files new": s.files_new,
            "files unchanged": s.files_unchanged,
            "files superseded": s.files_superseded,
            "rows accepted": s.rows_accepted,
            "rows quarantined": s.rows_quarantined,
            "identifiers scrubbed": ", ".join(f"{k} {v}" for k, v in sorted(s.identifiers_scrubbed.items())),
            "error": s.error or "",
        }
        for s in summary.sources
    ]
    create_table_artifact(key="consolidate-sources", table=rows, description=f"Run {summary.run_id} per source")
    reasons = "\n".join(f"| {rule} | {count} |" for rule, count in summary.quarantine_reasons.items())
    create_markdown_artifact(
        key="consolidate-summary",
        markdown=(
            f"# Consolidation run {summary.run_id}\n\n**Outcome:** {summary.outcome}"
            + ("  \n**DEMO key**: pseudonyms protect nothing; demo data only." if summary.demo_key else "")
            + f"\n\n```\n{summary_text(summary)}\n```\n\n## Quarantine by rule\n\n| rule | rows |\n|---|---|\n"
            + reasons
            + "\n"
        ),
        description=f"Consolidation run {summary.run_id}",
    )


def _feedback_artifact(run_id: str, reports: list[OrgReport], drift: list[Drift]) -> None:
    if not reports:
        return
    create_markdown_artifact(
        key="consolidate-feedback",
        markdown=f"# Feedback to organisations, run {run_id}\n\n" + feedback_markdown(reports, drift),
        description=f"Run {run_id}: one feedback report per organisation, and schema drift",
    )
