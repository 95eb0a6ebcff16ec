"""What an operator sees of a real run on the Prefect server: the flow run's and task runs' names, the log
lines per stage and per source, the ERROR line of a failed run, and the artifacts (failed runs too), keyed
per data folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from din.paths import DataPaths
from reports.run_summary import artifact_key, history_table
from tests.support.network import environment, write_network
from warehouse.runs import run_history

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

REFUSED = "alpha/feedback-w3.csv"


def _run(config: Path, **env: str) -> Any:
    from flows.consolidate import consolidate

    with environment(**env):
        return consolidate(config_path=str(config), return_state=True)


def _read_back(flow_run_id: UUID) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # the log lines a run sent are on the server, as the UI shows them
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    lines: dict[int, list[str]] = {}
    for log in logs:
        lines.setdefault(log.level, []).append(log.message)
    return {
        "name": flow_run.name,
        "tasks": {t.name for t in task_runs},
        "artifacts": {a.key: a for a in artifacts},
        "log": lines,
    }


def test_a_run_is_named_logged_per_stage_and_source_and_summarised(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    config = network.config.read_text().replace("mode: demo", "mode: demo\ntitle: Tayside panel <test>")
    network.config.write_text(config)
    network.deliver(REFUSED, "nothing,like,feedback\n1,2,3\n")

    state = _run(network.config)
    result = state.result()
    found = _read_back(state.state_details.flow_run_id)

    run_id = result["run_id"]
    assert found["name"] == f"{run_id} · Tayside panel <test>"
    assert {
        "pull recruiter-roster",
        "pull university-responses",
        "pull alpha-feedback",
        "pull organisations",
        "validate recruiter-roster: roster.csv",
        "merge level 0 (organisations)",
        "merge level 2 (roster)",
        "publish",
        "feedback reports",
    } <= found["tasks"], "; ".join(sorted(found["tasks"]))
    assert any(
        name.startswith("validate alpha-feedback: feedback-w") and name.endswith(" +1 more") for name in found["tasks"]
    )

    info = found["log"].get(logging.INFO, [])
    assert "pull: 7 sources" in info
    assert any(line.startswith("validate level 0 (organisations): 1 files in 1 batch(es), ") for line in info), info
    assert any(line.startswith("publish version ") and line.endswith(" tables") for line in info), info
    assert any(line.startswith("publish version ") and " done: " in line for line in info), info
    assert (
        "source university-responses (ORG-UNI, responses): 1 new file(s), 0 unchanged, 0 skipped; "
        "rows 4 read, 4 accepted, 0 quarantined" in info
    )
    assert "source alpha-feedback (ORG-A, project_feedback): 2 new file(s) (1 refused), 0 unchanged, 0 skipped; " in (
        " ".join(info)
    )
    warnings = found["log"].get(logging.WARNING, [])
    assert any("alpha-feedback: " in w and "feedback-w3.csv was refused whole: " in w for w in warnings), warnings

    summary_key = artifact_key("consolidate-summary", network.data_dir)
    assert {summary_key, artifact_key("consolidate-sources", network.data_dir)} <= set(found["artifacts"])
    markdown = found["artifacts"][summary_key].data
    assert f"# Consolidation run {run_id}: Tayside panel \\<test\\>" in markdown
    assert "**Outcome:** succeeded_with_warnings" in markdown
    assert "**Elapsed:** " in markdown and "**Stages:** pull " in markdown and ", publish " in markdown
    assert "feedback reports on the worker: `" + str(network.data_dir / "reports" / "feedback" / run_id) in markdown
    assert f"- `din tables --config {network.config}`" in markdown
    assert "file://" not in markdown
    feedback = found["artifacts"][artifact_key("consolidate-feedback", network.data_dir)].data
    assert "file://" not in feedback and str(network.data_dir / "reports" / "feedback" / run_id) in feedback


def test_a_failed_run_logs_its_cause_writes_its_artifacts_and_shows_in_din_runs(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    _run(network.config)
    network.deliver("university/more.csv", "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n")

    state = _run(network.config, DIN_INJECT_FAILURE="publish")
    assert state.is_failed()
    found = _read_back(state.state_details.flow_run_id)
    run_id = found["name"].split(" · ")[0]

    errors = found["log"].get(logging.ERROR, [])
    assert f"run {run_id} failed in stage publish: InjectedFailure: injected failure during publish" in (errors), errors
    markdown = found["artifacts"][artifact_key("consolidate-summary", network.data_dir)].data
    assert "**Outcome:** failed" in markdown
    assert "**Error in stage publish:** InjectedFailure: injected failure during publish" in markdown
    assert f"- `din runs --config {network.config}`" in markdown

    table = history_table(run_history(DataPaths(network.data_dir)))
    last = table.splitlines()[-1]
    assert last.startswith(run_id) and " failed " in last
    assert last.endswith("  InjectedFailure: injected failure during publish")


def test_two_data_folders_keep_their_own_latest_summary(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    first, second = write_network(tmp_path / "one"), write_network(tmp_path / "two")
    first_id = _run(first.config).result()["run_id"]
    second_id = _run(second.config).result()["run_id"]
    with get_client(sync_client=True) as client:
        by_key = {a.key: a for a in client.read_latest_artifacts()}  # the "latest" of every key
    assert f"# Consolidation run {first_id}" in by_key[artifact_key("consolidate-summary", first.data_dir)].data
    assert f"# Consolidation run {second_id}" in by_key[artifact_key("consolidate-summary", second.data_dir)].data
