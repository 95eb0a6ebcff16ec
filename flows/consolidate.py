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
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

import duckdb
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.tasks import exponential_backoff

from din import faults
from din.config import DEMO_CONFIG, Config, RemoteStorage, SourceConfig, load_config
from din.contract import Kind, kinds_by_level
from din.exit_codes import run_outcome
from din.keys import PseudonymKey, resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from din.progress import Progress, for_run, silent
from expectations.batch import BatchResult, BatchSpec
from expectations.gate import process_batch
from expectations.remote_batch import saved
from flows.heartbeat import din_heartbeats, flow_run_heartbeats
from reports.feedback import Drift, OrgReport, feedback_markdown, write_missing_feedback, write_run_feedback
from reports.run_summary import artifact_key, source_line, source_rows, summary_markdown
from sources import SourceError
from sources.credentials import resolve_credential
from transforms.blocklist import Blocklist
from warehouse.batches import plan_level
from warehouse.erasure import before_run, redact_blocked
from warehouse.guard import check_publish
from warehouse.manifest import KnownFile, PendingDelivery, known_files
from warehouse.merge import merge_level
from warehouse.publish import publish_new_version, published_is_current
from warehouse.pull import SourcePull, pull_source, record_pulled
from warehouse.remote import push_current, push_landing
from warehouse.reread import requeue_changed_sources
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
    """The task runner a config asks for: parse/validate batches run in parallel threads, processes, or on
    Dask workers (an existing cluster's scheduler, or a local cluster of worker processes)."""
    from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

    if config.task_runner == "dask":
        from prefect_dask.task_runners import DaskTaskRunner

        if config.dask_address:
            return DaskTaskRunner(address=config.dask_address)
        return DaskTaskRunner(
            cluster_class="distributed.LocalCluster",
            # one thread per worker process: a batch's polars and DuckDB work uses the cores itself;
            # no dashboard, so a run opens no port beyond the cluster's own on 127.0.0.1
            cluster_kwargs={
                "n_workers": config.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "host": "127.0.0.1",
                "dashboard_address": None,
            },
        )
    if config.task_runner == "processes":
        return ProcessPoolTaskRunner(max_workers=config.max_workers)
    if config.task_runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    return ThreadPoolTaskRunner(max_workers=config.max_workers)


def pull_runner_for(config: Config) -> Any:
    """The flow's own task runner, for pulls and the other small tasks: threads (one, when the config asks
    for sequential work). The validate batches run on `task_runner_for(config)`, entered by the flow."""
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=1 if config.task_runner == "sequential" else config.max_workers)


def run_flow(flow_object: Any, config: Config, data_dir_given: bool = True, **parameters: Any) -> dict[str, Any]:
    """Run a flow as `din run` does; the data folder is passed on only when it was given besides the registry
    (`--data-dir`). The batches' runner comes from the config inside the flow, so a deployment's worker,
    which calls the flow as it is, runs them the same way."""
    with din_heartbeats():
        result: dict[str, Any] = flow_object.with_options(task_runner=pull_runner_for(config))(
            config_path=str(config.path), data_dir=str(config.data_dir) if data_dir_given else None, **parameters
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
    task_run_name="pull {source.name}",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
)
def pull_source_task(source: SourceConfig, known: dict[str, KnownFile], landing_dir: Path) -> SourcePull:
    return pull_source(source, known, landing_dir, resolve_credential)


def batch_label(spec: BatchSpec) -> str:
    """`validate university-responses: responses-w1.csv +10 more`: where a batch's files come from (the
    file's name only: the source says where, and a full path would bury the name in the UI)."""
    if not spec.deliveries:
        return f"validate {spec.kind}: no files"
    first = spec.deliveries[0]
    more = len(spec.deliveries) - 1
    name = PurePosixPath(first.original_path.replace("\\", "/")).name or first.original_path
    return f"validate {first.source}: {name}" + (f" +{more} more" if more else "")


def _batch_run_name() -> str:
    from prefect.runtime import task_run

    return batch_label(task_run.parameters["spec"])


@task(name="validate-batch", task_run_name=_batch_run_name, cache_policy=NO_CACHE)
def validate_batch_task(spec: BatchSpec) -> BatchResult:
    return process_batch(spec)


@task(name="merge", task_run_name="merge level {level} ({kinds})", cache_policy=NO_CACHE)
def merge_task(
    con: duckdb.DuckDBPyConnection,
    results: list[BatchResult],
    pending: list[PendingDelivery],
    run_id: str,
    level: int,
    kinds: str,
) -> list[str]:
    """Merge one level's accepted rows (`level` and `kinds` name the task run)."""
    conflicts = merge_level(con, results, pending, run_id)
    faults.checkpoint("merge")
    return conflicts


@task(name="redact-blocked", task_run_name="redact erased panellists", cache_policy=NO_CACHE)
def redact_blocked_task(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, key: PseudonymKey, blocklist: Blocklist
) -> int:
    """Landing copies that hold rows of erased panellists (sent again) are redacted; returns how many."""
    return redact_blocked(con, config, paths, key, blocklist)


@task(name="requeue-changed-sources", task_run_name="requeue changed sources", cache_policy=NO_CACHE)
def requeue_task(con: duckdb.DuckDBPyConnection, config: Config) -> dict[str, list[int]]:
    """Deliveries of sources whose reading options changed go back for reading (`warehouse.reread`)."""
    return requeue_changed_sources(con, config)


@task(name="check-publish", task_run_name="check publish", cache_policy=NO_CACHE)
def check_publish_task(con: duckdb.DuckDBPyConnection, config: Config, accept_drop: bool) -> tuple[list[str], bool]:
    """References and the roster against the published version (`warehouse.guard`): warnings, and whether to hold."""
    return check_publish(con, config, accept_drop)


@task(name="publish", task_run_name="publish", cache_policy=NO_CACHE)
def publish_task(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    paths: DataPaths,
    summary: RunSummary,
    key: PseudonymKey,
    progress: Progress,
) -> None:
    publish_new_version(con, config, paths, summary, key, progress)


@task(name="push-landing", task_run_name="push landing", cache_policy=NO_CACHE)
def push_landing_task(storage: RemoteStorage, landing_dir: Path) -> int:
    """Mirror new landing objects and the delivery log to the bucket (storage.landing)."""
    return push_landing(storage, landing_dir)


@task(name="push-published", task_run_name="push published", cache_policy=NO_CACHE)
def push_published_task(storage: RemoteStorage, paths: DataPaths) -> str | None:
    """Mirror the current version to the bucket (storage.published) unless it holds it already."""
    return push_current(storage, paths)


@task(name="feedback-reports", task_run_name="feedback reports", cache_policy=NO_CACHE)
def feedback_task(paths: DataPaths, run_id: str) -> tuple[list[OrgReport], list[Drift]]:
    """Each organisation's feedback on this run, and the run's schema drift (reads the warehouse only)."""
    return write_run_feedback(paths, run_id)


@task(name="missing-feedback-reports", task_run_name="missing feedback reports", cache_policy=NO_CACHE)
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


NAME_SEPARATOR = " · "
_RUN_ID = re.compile(r"\d{8}T\d{9}-[0-9a-f]{6}")  # warehouse.runs.new_run_id


def flow_run_name() -> str:
    """A flow run's name from its start, so every log line carries it: a new din run id (the one the run
    then records) and the registry's title. Prefect's own names are random words."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    config_path = str(parameters.get("config_path") or DEMO_CONFIG)
    try:
        title = load_config(config_path, parameters.get("data_dir")).title
    except Exception:  # the flow itself stops on a bad registry, with the reason; the name needs none
        title = Path(config_path).name
    return f"{new_run_id()}{NAME_SEPARATOR}{title}"


def run_id_in_flow_run_name() -> str | None:
    """The din run id `flow_run_name` put in the current flow run's name, if it is there."""
    from prefect.runtime import flow_run

    first = str(flow_run.get_name() or "").split(NAME_SEPARATOR)[0]
    return first if _RUN_ID.fullmatch(first) else None


@flow(
    name="consolidate",
    description="Pull partner deliveries, validate, merge and publish.",
    flow_run_name=flow_run_name,
)
def consolidate(
    config_path: str = str(DEMO_CONFIG), data_dir: str | None = None, accept_drop: bool = False
) -> dict[str, Any]:
    """Consolidate every configured source into the warehouse and publish the result.

    `accept_drop`: publish even when a reference or the roster lost most of its rows (`din run --accept-drop`)."""
    config = load_config(config_path, data_dir)
    paths = DataPaths(config.data_dir)
    reports: list[OrgReport] = []
    drift: list[Drift] = []
    with observed_run(config, paths, data_dir) as (summary, progress):
        key = resolve_key(config)  # before any work: a production run without a key stops here
        summary.demo_key, summary.pseudonym_key_id = key.is_demo, key.key_id
        with writer_lock(paths.lock, config.lock_timeout_seconds):
            run_consolidation(config, paths, key, summary, progress, accept_drop=accept_drop)
            reports, drift = feedback(paths, summary.run_id)
        if reports:
            summary.feedback_dir = str(paths.reports / "feedback" / summary.run_id)
    _feedback_artifact(summary.run_id, reports, drift, config.portal.url, paths)
    result = summary.as_dict()
    result["feedback_reports"] = [
        {**r.__dict__, "html_path": str(r.html_path), "csv_path": str(r.csv_path)} for r in reports
    ]
    result["schema_drift"] = [d.as_dict() for d in drift]
    return result


@contextmanager
def observed_run(config: Config, paths: DataPaths, data_dir: str | None) -> Iterator[tuple[RunSummary, Progress]]:
    """A run as operators see it: the flow run named by the din run id and the registry's title, the
    progress (logged; live on a terminal), an ERROR line with the cause when it fails, and the summary
    artifacts in every case, keyed by the data folder; heartbeats while it runs (`flows.heartbeat`)."""
    started = time.perf_counter()
    run_id = run_id_in_flow_run_name()
    summary = RunSummary(
        run_id or new_run_id(), config.mode, False, "", config_path=str(config.path), title=config.title
    )
    summary.data_dir_option = data_dir
    summary.sources = [SourceSummary(s.name, s.organisation, s.kind) for s in config.all_sources]
    if run_id is None:  # named otherwise (a custom name, or no flow run): the din run id goes in now
        name_flow_run(f"{summary.run_id}{NAME_SEPARATOR}{config.title}")
    logger = _logger()
    progress = for_run(logger)
    with flow_run_heartbeats():
        try:
            yield summary, progress
        except BaseException as error:
            if summary.outcome != "failed":  # failed before the run was recorded (busy warehouse, no key)
                summary.outcome, summary.message = "failed", f"{type(error).__name__}: {error}"
            where = f" in stage {summary.failed_stage}" if summary.failed_stage else ""
            logger.error("run %s failed%s: %s", summary.run_id, where, summary.message)
            raise
        finally:
            progress.close()
            summary.elapsed_seconds = round(time.perf_counter() - started, 3)
            try:
                summary_artifacts(summary, paths, config.portal.url)
            except Exception as error:  # the run's own outcome stands; the operator is told why the UI lacks it
                logger.error("the run's summary artifacts could not be written: %s", error)


def name_flow_run(name: str) -> None:
    """Give the current flow run (if any) a name people can find: Prefect's own are random words."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    flow_run_id = flow_run.get_id()
    if flow_run_id is None:
        return
    try:
        with get_client(sync_client=True) as client:
            client.update_flow_run(UUID(flow_run_id), name=name)
    except Exception as error:  # a name is a convenience: never the reason a run fails
        _logger().warning("the flow run could not be named %r: %s", name, error)


def run_consolidation(
    config: Config,
    paths: DataPaths,
    key: PseudonymKey,
    summary: RunSummary,
    progress: Progress | None = None,
    pull_sources: bool = True,
    accept_drop: bool = False,
) -> RunSummary:
    """The stages in order, recording the run (and its failure, if it fails) in ops.runs."""
    logger = _logger()
    progress = progress or silent()
    con = connect(paths.warehouse)
    try:
        blocklist = before_run(config, paths, key)  # no erasure half done; erased panellists stay out
        create_schema(con)
        mark_abandoned_runs(con)
        for leftover in clear_leftovers(paths):
            logger.info("removed %s, left behind by an interrupted run", leftover)
        start_run(con, summary, str(config.path))
        if key.is_demo:
            logger.warning("demo mode: pseudonyms use the public DEMO key; outputs are marked as demo")
        try:
            if pull_sources:
                with _stage(summary, "pull"):
                    pull(con, config, paths, summary, progress)
            with _stage(summary, "validate_and_merge"):
                validate_and_merge(con, config, paths, summary, key, blocklist, progress)
            for source in summary.sources:
                logger.info("%s", source_line(source))
            if blocklist:
                with _stage(summary, "redact_blocked"):
                    redact_blocked_task(con, config, paths, key, blocklist)
            with _stage(summary, "publish"):
                guard_warnings, summary.publish_held = check_publish_task(con, config, accept_drop)
                summary.run_warnings.extend(guard_warnings)
                # unchanged: not even a task run
                if not summary.publish_held and not published_is_current(con, config, paths, summary, key):
                    publish_task(con, config, paths, summary, key, progress)
            if config.storage is not None and config.storage.published and not summary.publish_held:
                with _stage(summary, "push_published"):
                    push_published_task(config.storage, paths)
            summary.outcome = run_outcome(bool(summary.source_errors), bool(summary.warnings), summary.publish_held)
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


def pull(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, summary: RunSummary, progress: Progress
) -> None:
    """Land new and changed files from every source; a failing source is reported, the rest go on."""
    logger = _logger()
    progress.start("pull", len(config.all_sources), "sources")
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
        finally:
            progress.advance(1)
        by_name[name].files_unchanged = pulled[name].unchanged
        by_name[name].files_skipped = len(pulled[name].skipped)
        by_name[name].warnings.extend(pulled[name].attention)
        for warning in pulled[name].attention:
            logger.warning("source %s: %s", name, warning)
    faults.checkpoint("pull")
    new_ids = record_pulled(con, config, pulled, summary.run_id, paths.landing)
    if config.storage is not None and config.storage.landing:
        push_landing_task(config.storage, paths.landing)
    progress.finish(
        f"{len(new_ids)} new deliveries, {sum(s.files_unchanged for s in summary.sources)} unchanged file(s), "
        f"{len(summary.source_errors)} source(s) failed"
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
    progress: Progress | None = None,
) -> None:
    """Level by level (reference data first, then the roster, then what refers to it); first, the deliveries
    of sources whose reading options changed go back for reading."""
    logger = _logger()
    progress = progress or silent()
    requeued = requeue_task(con, config)
    for source, ids in requeued.items():
        logger.info("source %s: reading options changed: %d delivery(ies) read again", source, len(ids))
    reread = {delivery for ids in requeued.values() for delivery in ids}
    with ExitStack() as stack:
        runner: Any = None  # started when a level has files: a Dask cluster is not started for nothing
        for level, kinds in enumerate(kinds_by_level()):
            pending, specs = plan_level(con, config, paths, summary.run_id, level, kinds, key, blocklist)
            if not pending:
                continue
            runner = runner or stack.enter_context(task_runner_for(config))
            _validate_and_merge_level(con, config, summary, runner, level, kinds, pending, specs, reread, progress)


def _validate_and_merge_level(
    con: duckdb.DuckDBPyConnection,
    config: Config,
    summary: RunSummary,
    runner: Any,
    level: int,
    kinds: Sequence[Kind],
    pending: list[PendingDelivery],
    specs: list[BatchSpec],
    reread: set[int],
    progress: Progress,
) -> None:
    """One level: its batches validated in parallel on `runner`, then merged in the planned order."""
    logger = _logger()
    delivered = {p.kind for p in pending}
    names = ", ".join(k.name for k in kinds if k.name in delivered)  # the kinds this run has files of
    size = sum(p.size for p in pending)
    progress.start(
        f"validate level {level} ({names})", len(pending), "files", f"in {len(specs)} batch(es), {size:,} bytes"
    )
    futures = runner.map(validate_batch_task, {"spec": specs})
    order = {future: index for index, future in enumerate(futures)}
    done: dict[int, BatchResult] = {}
    for future in as_completed(list(futures)):
        index = order[future]
        result = saved(future.result(), specs[index].work_dir)  # a remote worker's files, kept here
        done[index] = result
        progress.advance(len(result.deliveries), sum(d.rows_read for d in result.deliveries))
    results = [done[index] for index in range(len(specs))]  # merged in the planned order, as before
    progress.finish()
    faults.checkpoint("validate")
    progress.start(f"merge level {level} ({names})", len(pending), "deliveries")
    for conflict in merge_task(con, results, pending, summary.run_id, level, names):
        logger.warning("key conflict: %s", conflict)
        summary.run_warnings.append(conflict)
    count_deliveries(summary, con, [p.delivery_id for p in pending], reread, config.attention.quarantined_share)
    progress.advance(len(pending), sum(d.rows_accepted for r in results for d in r.deliveries))
    progress.finish()


@contextmanager
def _stage(summary: RunSummary, name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except BaseException:
        summary.failed_stage = name
        raise
    finally:
        summary.stage_seconds[name] = round(time.perf_counter() - started, 3)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except Exception:
        return log


def summary_artifacts(summary: RunSummary, paths: DataPaths, portal_url: str | None = None) -> None:
    """The run's table (per source) and markdown (summary) artifacts in the Prefect UI, for failed runs too,
    keyed by the data folder (two folders on one server keep their own "latest")."""
    create_table_artifact(
        key=artifact_key("consolidate-sources", paths.root),
        table=source_rows(summary),
        description=f"Run {summary.run_id} per source ({paths.root})",
    )
    create_markdown_artifact(
        key=artifact_key("consolidate-summary", paths.root),
        markdown=summary_markdown(summary, portal_url),
        description=f"Consolidation run {summary.run_id}: {summary.outcome} ({paths.root})",
    )


def _feedback_artifact(
    run_id: str, reports: list[OrgReport], drift: list[Drift], portal_url: str | None, paths: DataPaths
) -> None:
    if not reports:
        return
    create_markdown_artifact(
        key=artifact_key("consolidate-feedback", paths.root),
        markdown=f"# Feedback to organisations, run {run_id}\n\n"
        + feedback_markdown(reports, drift, portal_url, run_id),
        description=f"Run {run_id}: one feedback report per organisation, and schema drift ({paths.root})",
    )
