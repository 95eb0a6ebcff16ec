"""prefect.yaml declares what an operator needs, and nothing that needs the network (no server here)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.ops import REPO

PARAMETERS = {"config_path", "data_dir"}
WORKING_DIRECTORY_STEP = "prefect.deployments.steps.set_working_directory"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def deployments(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in spec["deployments"]}


def test_no_build_or_push_steps_and_pull_only_sets_the_working_directory(spec: dict[str, Any]) -> None:
    assert spec.get("build") is None
    assert spec.get("push") is None
    assert spec["pull"] == [{WORKING_DIRECTORY_STEP: {"directory": "{{ $DIN_PROJECT_DIR }}"}}]


def test_both_deployments_run_on_the_process_pool_with_the_flow_parameters(
    deployments: dict[str, dict[str, Any]],
) -> None:
    assert set(deployments) == {"consolidate", "rebuild"}
    for deployment in deployments.values():
        assert deployment["work_pool"]["name"] == "din-process"
        assert set(deployment["parameters"]) == PARAMETERS
        assert "pull" not in deployment and "build" not in deployment and "push" not in deployment


def test_consolidate_runs_nightly_in_uk_time(deployments: dict[str, dict[str, Any]]) -> None:
    assert deployments["consolidate"]["entrypoint"] == "flows/consolidate.py:consolidate"
    assert deployments["consolidate"]["schedules"] == [
        {"cron": "30 2 * * *", "timezone": "Europe/London", "active": True}
    ]


def test_rebuild_runs_only_on_demand(deployments: dict[str, dict[str, Any]]) -> None:
    assert deployments["rebuild"]["entrypoint"] == "flows/rebuild.py:rebuild"
    assert not deployments["rebuild"].get("schedules")


def _flow_parameters(entrypoint: str) -> set[str]:
    from prefect.flows import load_flow_from_entrypoint

    path, name = entrypoint.split(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{name}")
    return set(flow.parameters.properties)


def test_consolidate_entrypoint_takes_the_deployment_parameters(deployments: dict[str, dict[str, Any]]) -> None:
    assert _flow_parameters(deployments["consolidate"]["entrypoint"]) == PARAMETERS


def test_rebuild_entrypoint_takes_the_deployment_parameters(deployments: dict[str, dict[str, Any]]) -> None:
    assert _flow_parameters(deployments["rebuild"]["entrypoint"]) == PARAMETERS
