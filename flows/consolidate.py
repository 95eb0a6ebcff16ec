"""The consolidate flow: pull → validate → merge → publish.

    partner sources ──pull──▶ landing ──parse──▶ canonical frames
       ──validate (GX suites)──▶ valid rows │ quarantine
       ──merge (DuckDB)──▶ warehouse ──publish──▶ Parquet + catalog

Prefect only: each task calls one plain function of the layers beneath (`warehouse.pull`,
`expectations.gate`, `warehouse.merge`, `warehouse.publish`, `reports.feedback`). A task runs per
source (pull, with retries for transient network errors) and per batch of files (validate), never
per row or per tiny file. The warehouse has one writer: this flow, under a file lock.
"""

from __future__ import annotations

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
from din.config import DEMO_CONFIG, Config, RemoteStorage, SourceConfig, load_config
from din.contract import kinds_by_level
from din.exit_codes import run_outcome
from din.keys import PseudonymKey, resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from expectations.gate import BatchResult, BatchSpec, process_batch
from reports.feedback import Drift, OrgReport, feedback_markdown, write_missing_feedback, write_run_feedback
from reports.run_summary import source_rows, summary_markdown
from sources import SourceError
from sources.credentials import resolve_credential
from transforms.blocklist import Blocklist
from warehouse.batches import plan_level
from warehouse.erasure import before_run, redact_blocked
from warehouse.manifest import KnownFile, PendingDelivery, known_files
from warehouse.merge import merge_level
from warehouse.publish import publish_new_version, published_is_current
from warehouse.pull import SourcePull, pull_source, record_pulled
from warehouse.remote import push_current, push_landing
from warehouse.runs import (
    RunSummary,
    SourceSummary,
    clear_leftovers,
    count_deliveries,
    mark_abandoned_runs,
    new_run_id,
    record_run,
    start_run,
)
from warehouse.schema import connect, create_schema

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
    result: dict[str, Any] = flow_object.with_options(task_runner=task_runner_for(config))(
        config_path=str(config.path), data_dir=str(config.data_dir)
    )
    return result


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
def pull_source_task(source: SourceConfig, known: dict[str, KnownFile], landing_dir: Path) -> SourcePull:
    return pull_source(source, known, landing_dir, resolve_credential)


@task(name="validate-batch", cache_policy=NO_CACHE)
def validate_batch_task(spec: BatchSpec) -> BatchResult:
    return process_batch(spec)


@task(name="merge", cache_policy=NO_CACHE)
def merge_task(
    con: duckdb.DuckDBPyConnection, results: list[BatchResult], pending: list[PendingDelivery], run_id: str
) -> list[str]:
    conflicts = merge_level(con, results, pending, run_id)
    faults.checkpoint("merge")
    return conflicts


@task(name="redact-blocked", cache_policy=NO_CACHE)
def redact_blocked_task(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, key: PseudonymKey, blocklist: Blocklist
) -> int:
    """Landing copies that hold rows of erased panellists (sent again) are redacted; returns how many."""
    return redact_blocked(con, config, paths, key, blocklist)


@task(name="publish", cache_policy=NO_CACHE)
def publish_task(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary, key: PseudonymKey
) -> None:
    publish_new_version(con, config, paths, summary, key)


@task(name="push-landing", cache_policy=NO_CACHE)
def push_landing_task(storage: RemoteStorage, landing_dir: Path) -> int:
    """Mirror new landing objects and the delivery log to the bucket (storage.landing)."""
    return push_landing(storage, landing_dir)


@task(name="push-published", cache_policy=NO_CACHE)
def push_published_task(storage: RemoteStorage, paths: DataPaths) -> str | None:
    """Mirror the current version to the bucket (storage.published) unless it holds it already."""
    return push_current(storage, paths)


@task(name="feedback-reports", cache_policy=NO_CACHE)
def feedback_task(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """Each organisation's feedback on this run, and the run's schema drift (reads the warehouse only)."""
    return write_run_feedback(paths, run_id)


@task(name="missing-feedback-reports", cache_policy=NO_CACHE)
def missing_feedback_task(paths: DataPaths, run_id: str) -> list[str]:
    """Feedback of earlier runs that never got written (killed after publishing): the runs written for."""
    return write_missing_feedback(paths, run_id)


def feedback(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """After publishing: a failure here is logged, never fails the run (the next run writes what is missing)."""
    faults.checkpoint("feedback")
    logger = _logger()
    try:
        reports = feedback_task(paths, run_id)
    except Exception as error:
        logger.error("feedback reports for run %s could not be written: %s", run_id, error)
        reports = [], []
    try:
        for earlier in missing_feedback_task(paths, run_id):
            logger.warning("feedback reports of run %s were missing (interrupted run): written now", earlier)
    except Exception as error:
        logger.error("missing feedback reports of earlier runs could not be written: %s", error)
    return reports


@flow(name="consolidate", description="Pull partner deliveries, validate, merge and publish.")
def consolidate(config_path: str = str(DEMO_CONFIG), data_dir: str | None = None) -> dict[str, Any]:
    """Consolidate every configured source into the warehouse and publish the result."""
    config = load_config(config_path, data_dir)
    key = resolve_key(config)  # before any work: a production run without a key stops here
    paths = DataPaths(config.data_dir)
    with writer_lock(paths.lock, config.lock_timeout_seconds):
        summary = run_consolidation(config, paths, key)
        reports, drift = feedback(paths, summary.run_id)
    summary_artifacts(summary)
    _feedback_artifact(summary.run_id, reports, drift, config.portal.url)
    result = summary.as_dict()
    result["feedback_reports"] = [
        {**r.__dict__, "html_path": str(r.html_path), "csv_path": str(r.csv_path)} for r in reports
    ]
    result["schema_drift"] = [d.as_dict() for d in drift]
    return result


def run_consolidation(config: Config, paths: DataPaths, key: PseudonymKey, pull_sources: bool = True) -> RunSummary:
    """The stages in order, recording the run (and its failure, if it fails) in ops.runs."""
    logger = _logger()
    con = connect(paths.warehouse)
    try:
        blocklist = before_run(config, paths, key)  # no erasure half done; erased panellists stay out
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
                validate_and_merge(con, config, paths, summary, key, blocklist)
            if blocklist:
                with _stage(summary, "redact_blocked"):
                    redact_blocked_task(con, config, paths, key, blocklist)
            with _stage(summary, "publish"):
                if not published_is_current(con, config, paths, summary, key):  # unchanged: not even a task run
                    publish_task(con, config, paths, summary, key)
            if config.storage is not None and config.storage.published:
                with _stage(summary, "push_published"):
                    push_published_task(config.storage, paths)
            summary.outcome = run_outcome(bool(summary.source_errors), bool(summary.warnings))
        except BaseException as error:
            summary.outcome = "failed"
            summary.message = f"{type(error).__name__}: {error}"
            record_run(con, summary, finished=True)
            raise
        record_run(con, summary, finished=True)
        shutil.rmtree(paths.run_work(summary.run_id), ignore_errors=True)
        for warning in summary.warnings:
            logger.warning("needs attention: %s", warning)
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


def pull(con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary) -> None:
    """Land new and changed files from every source; a failing source is reported, the rest go on."""
    logger = _logger()
    futures = {s.name: pull_source_task.submit(s, known_files(con, s.name), paths.landing) for s in config.all_sources}
    pulled: dict[str, SourcePull] = {}
    by_name = {s.source: s for s in summary.sources}
    for name, future in futures.items():
        try:
            pulled[name] = future.result()
        except Exception as error:
            by_name[name].error = _source_error_text(error)
            logger.error("source %s failed: %s", name, by_name[name].error)
            continue
        by_name[name].files_unchanged = pulled[name].unchanged
        by_name[name].files_skipped = len(pulled[name].skipped)
        by_name[name].warnings.extend(pulled[name].attention)
        for warning in pulled[name].attention:
            logger.warning("source %s: %s", name, warning)
    faults.checkpoint("pull")
    new_ids = record_pulled(con, config, pulled, summary.run_id, paths.landing)
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
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    summary: RunSummary,
    key: PseudonymKey,
    blocklist: Blocklist | None = None,
) -> None:
    """Level by level (reference data first, then the roster, then what refers to it)."""
    logger = _logger()
    for level, kinds in enumerate(kinds_by_level()):
        pending, specs = plan_level(con, config, paths, summary.run_id, level, kinds, key, blocklist)
        if not pending:
            continue
        futures = validate_batch_task.map(specs)
        results = [f.result() for f in futures]
        faults.checkpoint("validate")
        for conflict in merge_task(con, results, pending, summary.run_id):
            logger.warning("key conflict: %s", conflict)
            summary.run_warnings.append(conflict)
        count_deliveries(summary, con, [p.delivery_id for p in pending])
        logger.info(
            "validate+merge level %d (%s): %d deliveries in %d batch(es)",
            level,
            ", ".join(k.name for k in kinds),
            len(pending),
            len(specs),
        )


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


def summary_artifacts(summary: RunSummary) -> None:
    """The run's table (per source) and markdown (summary) artifacts in the Prefect UI."""
    create_table_artifact(
        key="consolidate-sources", table=source_rows(summary), description=f"Run {summary.run_id} per source"
    )
    create_markdown_artifact(
        key="consolidate-summary", markdown=summary_markdown(summary), description=f"Consolidation run {summary.run_id}"
    )


def _feedback_artifact(run_id: str, reports: list[OrgReport], drift: list[Drift], portal_url: str | None) -> None:
    if not reports:
        return
    create_markdown_artifact(
        key="consolidate-feedback",
        markdown=f"# Feedback to organisations, run {run_id}\n\n"
        + feedback_markdown(reports, drift, portal_url, run_id),
        description=f"Run {run_id}: one feedback report per organisation, and schema drift",
    )
