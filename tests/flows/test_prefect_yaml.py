"""prefect.yaml declares what an operator needs, and nothing that needs the network (no server here)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.ops import REPO

PARAMETERS = {"config_path", "data_dir"}
PROJECT_STEP = "flows.steps.enter_project"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((REPO / "prefect.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def deployments(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in spec["deployments"]}


def test_no_build_or_push_steps_and_pull_only_enters_the_project(spec: dict[str, Any]) -> None:
    assert spec.get("build") is None
    assert spec.get("push") is None
    assert spec["pull"] == [{PROJECT_STEP: {}}]
    from flows.steps import enter_project  # the step Prefect imports by that name

    assert callable(enter_project)


def test_every_deployment_runs_on_the_process_pool_with_the_flow_parameters(
    deployments: dict[str, dict[str, Any]],
) -> None:
    assert set(deployments) == {"consolidate", "rebuild", "demo"}
    for deployment in deployments.values():
        assert deployment["work_pool"]["name"] == "din-process"
        assert set(deployment["parameters"]) == PARAMETERS
        assert deployment["concurrency_limit"] == 1
        assert "pull" not in deployment and "build" not in deployment and "push" not in deployment


def test_the_production_template_is_scheduled_nightly_in_uk_time_but_inactive(
    deployments: dict[str, dict[str, Any]],
) -> None:
    production = deployments["consolidate"]
    assert production["entrypoint"] == "flows/consolidate.py:consolidate"
    assert production["schedules"] == [{"cron": "30 2 * * *", "timezone": "Europe/London", "active": False}]
    assert "demo" not in production["parameters"]["config_path"]  # a registry of your own, not the demo's
    assert deployments["rebuild"]["parameters"] == production["parameters"]


def test_the_demo_is_its_own_deployment_and_never_scheduled(deployments: dict[str, dict[str, Any]]) -> None:
    demo = deployments["demo"]
    assert demo["entrypoint"] == "flows/consolidate.py:consolidate"
    assert demo["parameters"] == {"config_path": "examples/demo/din.yaml", "data_dir": None}
    assert (REPO / demo["parameters"]["config_path"]).is_file()
    assert not demo.get("schedules")


def test_rebuild_runs_only_on_demand(deployments: dict[str, dict[str, Any]]) -> None:
    assert deployments["rebuild"]["entrypoint"] == "flows/rebuild.py:rebuild"
    assert not deployments["rebuild"].get("schedules")


def _flow_parameters(entrypoint: str) -> set[str]:
    from prefect.flows import load_flow_from_entrypoint

    path, name = entrypoint.split(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{name}")
    return set(flow.parameters.properties)


def test_consolidate_entrypoint_takes_the_deployment_parameters(deployments: dict[str, dict[str, Any]]) -> None:
    # `accept_drop` (din run --accept-drop) is the operator's call on one run, never a deployment default
    assert _flow_parameters(deployments["consolidate"]["entrypoint"]) == PARAMETERS | {"accept_drop"}


def test_rebuild_entrypoint_takes_the_deployment_parameters(deployments: dict[str, dict[str, Any]]) -> None:
    assert _flow_parameters(deployments["rebuild"]["entrypoint"]) == PARAMETERS
