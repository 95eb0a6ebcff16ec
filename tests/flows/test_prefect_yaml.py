"""prefect.yaml declares what an operator needs, and nothing that needs the network (no server here)."""

from __future__ import annotations

import re
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
    assert set(deployments) == {"consolidate", "rebuild", "demo", "docker"}
    for deployment in deployments.values():
        assert deployment["work_pool"]["name"] == ("din-docker" if deployment["name"] == "docker" else "din-process")
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


def test_the_docker_deployment_runs_the_image_the_dockerfile_builds_from_the_lock_file(
    deployments: dict[str, dict[str, Any]],
) -> None:
    docker = deployments["docker"]
    assert docker["entrypoint"] == "flows/consolidate.py:consolidate"
    assert docker["parameters"] == deployments["consolidate"]["parameters"]
    assert docker["schedules"] == []  # on demand until the operator schedules it
    job = docker["work_pool"]["job_variables"]
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    # the pull step enters DIN_PROJECT_DIR: the image installs the project there and says so
    project = job["env"]["DIN_PROJECT_DIR"]
    assert f"WORKDIR {project}" in dockerfile and f"DIN_PROJECT_DIR={project}" in dockerfile
    assert job["image"].rsplit(":", 1)[0].endswith("din-engagement")
    # the same pins as ./dev: the lock file, with the uv that ./dev uses
    uv_pin = re.search(r'"uv==([0-9.]+)"', (REPO / "dev").read_text(encoding="utf-8"))
    assert uv_pin and f'"uv=={uv_pin.group(1)}"' in dockerfile
    assert (
        "COPY requirements.lock" in dockerfile
        and "uv pip sync --system --compile-bytecode requirements.lock" in dockerfile
    )
    assert re.search(r"(?m)^USER (?!root)\w+", dockerfile)  # never runs as root
    assert "DO_NOT_TRACK=1" in dockerfile  # nothing phones home from a container either
    ignored = (REPO / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv", "data", "bench/work"} <= set(ignored)  # no data or secrets in the image
