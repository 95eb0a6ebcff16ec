"""Flow-run heartbeats as a Prefect server receives them: one per interval for every run, whether `din run`
sends it (Prefect's own thread off, so the run does not wait for it at the end) or Prefect does (a worker
calling the flow directly), and the same event either way, so an automation that marks dead runs as
Crashed treats both alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from din.config import load_config
from tests.support.network import write_network

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

HEARTBEAT = "prefect.flow-run.heartbeat"


@pytest.fixture(autouse=True)
def prefects_default_interval() -> Iterator[None]:
    """Heartbeats at Prefect's default interval (the suite's own flow runs go without: `tests/conftest.py`)."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 180}):
        yield


def _heartbeats(flow_run_id: str) -> list[dict[str, Any]]:
    """The heartbeat events the server stored for one flow run, read once it has stored the run's final
    state, which the run emits after its last heartbeat (the server's event persister writes in batches)."""
    from prefect.client.orchestration import get_client
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all()  # what the run queued is sent (called outside a loop, it waits)
    query = {
        "filter": {
            "event": {"name": [HEARTBEAT, "prefect.flow-run.Completed"]},
            "resource": {"id": [f"prefect.flow-run.{flow_run_id}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 50,
    }
    deadline = time.monotonic() + 60
    while True:
        with get_client(sync_client=True) as client:
            events = client.request("POST", "/events/filter", json=query).json()["events"]
        if any(e["event"] == "prefect.flow-run.Completed" for e in events):
            return [e for e in events if e["event"] == HEARTBEAT]
        assert time.monotonic() < deadline, f"the server stored no final state for {flow_run_id}: {events}"
        time.sleep(0.5)


def _flow_run(din_run_id: str) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        [flow_run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(like_=din_run_id)))
    return flow_run


def events_worker_started_in_a_task() -> None:
    """Prefect's events worker (re)started by an event a task sends: its thread then runs in that task's
    context, which shows through on any later event whose own context names no task run."""
    from prefect import flow, task
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    @task(name="first event")
    def first_event() -> None:
        EventsWorker.drain_all()  # the worker stopped here, the next event starts it in this task's context
        emit_event(event="din.test.first", resource={"prefect.resource.id": "din.test"})

    @flow(name="starts the events worker")
    def starts_the_events_worker() -> None:
        first_event()

    starts_the_events_worker()


def _shape(event: dict[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
    """What an automation matches on: the resource's labels and the related resources' roles and names."""
    related = [(r["prefect.resource.role"], r.get("prefect.resource.name", "")) for r in event["related"]]
    return sorted(event["resource"]), sorted(related)


def test_din_run_sends_one_heartbeat_like_prefects_own(tmp_path: Path) -> None:
    from prefect import tags

    from flows.consolidate import consolidate, run_flow

    network = write_network(tmp_path / "network")
    config = load_config(network.config)
    events_worker_started_in_a_task()
    with tags("din-test"):
        result = run_flow(consolidate, config)
    assert not [t.name for t in threading.enumerate() if t.name == "din-heartbeat"], (
        "the heartbeat thread outlived the run"
    )

    flow_run = _flow_run(result["run_id"])
    ours = _heartbeats(str(flow_run.id))
    assert len(ours) == 1, ours  # two: Prefect's own thread ran as well; none: din sent nothing
    [event] = ours
    assert event["resource"]["prefect.resource.name"] == flow_run.name
    related = {r["prefect.resource.role"]: r for r in event["related"]}
    assert related["flow"]["prefect.resource.id"] == f"prefect.flow.{flow_run.flow_id}"
    assert related["flow"]["prefect.resource.name"] == "consolidate"
    assert related["tag"]["prefect.resource.id"] == "prefect.tag.din-test"
    assert "task-run" not in related, related  # the events worker started in a task: its context stays out

    # As a worker runs a deployment: the flow called as it is, Prefect's own heartbeat and none of din's.
    with tags("din-test"):
        state = consolidate(config_path=str(network.config), return_state=True)
    prefects = _heartbeats(str(state.state_details.flow_run_id))
    assert len(prefects) == 1, prefects
    assert _shape(prefects[0]) == _shape(event)


def test_no_heartbeat_from_din_when_prefects_are_off(tmp_path: Path) -> None:
    """Heartbeats turned off (in code, as Prefect allows): din sends none either."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.consolidate import consolidate, run_flow

    network = write_network(tmp_path / "network")
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = run_flow(consolidate, load_config(network.config))
    assert _heartbeats(str(_flow_run(result["run_id"]).id)) == []
