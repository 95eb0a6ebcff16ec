"""The operator's path, end to end and offline: a Prefect server, the `din-process` work pool,
`prefect deploy` from prefect.yaml, `prefect deployment run`, and a process worker that runs it.

The deployment file is the repository's prefect.yaml with only the parameters changed to point at a
temporary site; both deployments are deployed and `consolidate` is run. The worker finds the code
through DIN_PROJECT_DIR, as docs/operations.md says.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import yaml

from reports.run_summary import artifact_key
from tests.support.ops import FIRST_ROWS, KEY_ID, REPO, PrefectServer, explain, prefect, read_published, write_site

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ops-server")]


def _deployment_file(target: Path, config: Path, data: Path) -> Path:
    """prefect.yaml as committed, with every deployment's parameters pointing at the test site."""
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))
    for deployment in spec["deployments"]:
        deployment["parameters"] = {"config_path": str(config), "data_dir": str(data)}
    target.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return target


def _read_back(server: PrefectServer, flow_run_id: UUID) -> dict[str, Any]:
    """The flow run, its task runs, the deployments and the run's artifacts, as the API reports them."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: server.api_url}), get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        deployment = client.read_deployment_by_name("consolidate/consolidate")
        rebuild = client.read_deployment_by_name("rebuild/rebuild")
        demo = client.read_deployment_by_name("consolidate/demo")
        docker = client.read_deployment_by_name("consolidate/docker")
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return {
        "flow_run": flow_run,
        "task_runs": sorted(t.name for t in task_runs),
        "deployment": deployment,
        "rebuild": rebuild,
        "demo": demo,
        "docker": docker,
        "artifacts": {a.key: a for a in artifacts},
    }


def _run_id_of(run: Any) -> UUID:
    match = re.search(r"UUID: ([0-9a-f-]{36})", run.stdout)
    assert match, run.stdout
    return UUID(match.group(1))


def test_deployment_runs_on_a_process_worker(server: PrefectServer, tmp_path: Path) -> None:
    config = write_site(tmp_path / "site")
    data = tmp_path / "warehouse-data"
    prefect_file = _deployment_file(tmp_path / "prefect.yaml", config, data)

    pool = prefect(server, "work-pool", "create", "din-process", "--type", "process")
    assert pool.returncode == 0, explain(pool)
    # the Docker pool as an operator creates it (no Docker daemon is needed to register the deployment)
    docker_pool = prefect(server, "work-pool", "create", "din-docker", "--type", "docker")
    assert docker_pool.returncode == 0, explain(docker_pool)
    deploy = prefect(server, "deploy", "--all", "--prefect-file", str(prefect_file))
    assert deploy.returncode == 0, explain(deploy)
    run = prefect(server, "deployment", "run", "consolidate/consolidate")
    assert run.returncode == 0, explain(run)
    # run the worker elsewhere: only the pull step (DIN_PROJECT_DIR) can lead it to the code
    worker = prefect(
        server, "worker", "start", "--pool", "din-process", "--run-once", cwd=tmp_path, DIN_PROJECT_DIR=str(REPO)
    )
    assert worker.returncode == 0, explain(worker)

    found = _read_back(server, _run_id_of(run))
    flow_run, deployment, artifacts = found["flow_run"], found["deployment"], found["artifacts"]
    assert flow_run.state.type.value == "COMPLETED", (flow_run.state, explain(worker))
    assert flow_run.parameters == {"config_path": str(config), "data_dir": str(data)}

    assert deployment.work_pool_name == "din-process"
    assert deployment.entrypoint == "flows/consolidate.py:consolidate"
    assert deployment.pull_steps == [{"flows.steps.enter_project": {}}]
    assert deployment.global_concurrency_limit is not None
    assert deployment.global_concurrency_limit.limit == 1  # concurrency_limit: one run at a time
    [schedule] = deployment.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 2 * * *", "Europe/London")
    assert schedule.active is False  # the production template runs nothing until it is configured
    demo = found["demo"]
    assert (demo.entrypoint, demo.schedules, demo.work_pool_name) == (
        "flows/consolidate.py:consolidate",
        [],
        "din-process",
    )
    docker = found["docker"]  # registered on the Docker pool with the image and the project's folder in it
    assert (docker.work_pool_name, docker.entrypoint) == ("din-docker", "flows/consolidate.py:consolidate")
    assert docker.job_variables["image"].endswith("/din-engagement:latest")
    assert docker.job_variables["env"] == {"DIN_PROJECT_DIR": "/opt/din-engagement"}
    rebuild = found["rebuild"]
    assert (rebuild.entrypoint, rebuild.work_pool_name, rebuild.schedules) == (
        "flows/rebuild.py:rebuild",
        "din-process",
        [],
    )
    assert rebuild.parameters == flow_run.parameters

    published = read_published(data)
    assert {t: len(published.rows(t)) for t in FIRST_ROWS} == FIRST_ROWS
    manifest = json.loads((data / "published" / "current" / "ops" / "publish.json").read_text())
    assert (manifest["mode"], manifest["demo_key"], manifest["pseudonym_key_id"]) == ("production", False, KEY_ID)

    assert flow_run.name == f"{published.version} · din-engagement operations test site"
    named = set(found["task_runs"])
    assert {"pull roster", "pull attendance", "pull responses", "merge level 2 (roster)", "publish"} <= named, named
    assert "validate roster: roster.csv" in named, named
    assert not any(re.search(r"-[0-9a-f]{3}$", name) for name in named), named  # none left with Prefect's suffix
    summary_key, sources_key = artifact_key("consolidate-summary", data), artifact_key("consolidate-sources", data)
    assert {summary_key, sources_key} <= set(artifacts)
    summary = artifacts[summary_key]
    assert summary.type == "markdown"
    assert f"# Consolidation run {published.version}" in summary.data
    assert "**Outcome:** succeeded" in summary.data
    assert "DEMO key" not in summary.data
    assert "file://" not in summary.data and f"--config {config}" in summary.data

    # a worker started without DIN_PROJECT_DIR (as `prefect deploy` suggests): one line names it
    second = prefect(server, "deployment", "run", "consolidate/consolidate")
    lost = prefect(server, "worker", "start", "--pool", "din-process", "--run-once", cwd=tmp_path)
    failed = _read_back(server, _run_id_of(second))["flow_run"]
    assert failed.state.type.value in ("FAILED", "CRASHED"), (failed.state, explain(lost))
    output = lost.stdout + lost.stderr
    assert "DIN_PROJECT_DIR is not set in the worker's environment" in output, explain(lost)
    assert "ProjectDirError" not in output and "StepExecutionError" not in output, explain(lost)
