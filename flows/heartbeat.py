"""Flow-run heartbeats that do not hold up the end of a run.

Prefect emits a `prefect.flow-run.heartbeat` event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds
(180 by default) so that a server's automation can mark a run whose machine died as Crashed. Its
heartbeat thread sleeps in whole seconds and is joined when the flow ends, so every run waits for the
rest of the current second: about 0.75 s after a short run, half a second on average, a third of the
fixed cost of a run that has nothing to do.

When `din run` (or `din rebuild`) calls a flow, `din_heartbeats` turns Prefect's own heartbeat off for
that call and `flow_run_heartbeats`, entered by the flow, sends the same event at the same interval
from a thread that stops at once. A Prefect worker that runs a deployment calls the flow directly:
there Prefect's own heartbeat runs and din sends none, so a run never has two.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

# The interval `din_heartbeats` took over from Prefect; unset: Prefect's own heartbeat is running (or off).
_TAKEN_OVER: contextvars.ContextVar[int | None] = contextvars.ContextVar("din_heartbeat_seconds", default=None)


@contextmanager
def din_heartbeats() -> Iterator[None]:
    """Around a flow call: Prefect's heartbeat off, the interval it would have used handed to the flow."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    seconds = get_current_settings().flows.heartbeat_frequency
    if seconds is None:
        yield
        return
    token = _TAKEN_OVER.set(seconds)
    try:
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
    finally:
        _TAKEN_OVER.reset(token)


def heartbeat_event(flow_run: FlowRun, flow_name: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The event's resource and related resources, as Prefect's engine builds them (the automation that
    finds crashed runs matches `prefect.flow-run.*`)."""
    from prefect import __version__

    resource = {
        "prefect.resource.id": f"prefect.flow-run.{flow_run.id}",
        "prefect.resource.name": flow_run.name or "",
        "prefect.version": __version__,
    }
    related: list[dict[str, str]] = []
    if flow_run.flow_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.flow.{flow_run.flow_id}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow_name,
            }
        )
    if flow_run.deployment_id:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{flow_run.deployment_id}",
                "prefect.resource.role": "deployment",
            }
        )
    for tag in sorted(set(flow_run.tags or [])):
        related.append({"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"})
    return resource, related


@contextmanager
def flow_run_heartbeats() -> Iterator[None]:
    """Inside a flow: heartbeats for the current flow run while the block runs, when `din_heartbeats`
    took them over from Prefect; nothing otherwise."""
    seconds = _TAKEN_OVER.get()
    from prefect.context import FlowRunContext, TaskRunContext

    context = FlowRunContext.get()
    if seconds is None or context is None or context.flow_run is None:
        yield
        return
    from prefect.events import emit_event

    resource, related = heartbeat_event(context.flow_run, context.flow.name if context.flow else "")
    stop = threading.Event()

    def beat() -> None:
        # No task run: Prefect's events worker adds the sender's run context to an event, and where that
        # context says nothing of a task run, whatever task run its own thread started under shows through.
        TaskRunContext.__var__.set(None)  # type: ignore[arg-type]  # Prefect's own `get()` returns None then
        while True:
            try:
                emit_event(event="prefect.flow-run.heartbeat", resource=resource, related=related)
            except Exception:  # a missed heartbeat is the automation's business, never the run's
                logging.getLogger("din").debug("a flow-run heartbeat could not be sent", exc_info=True)
            if stop.wait(seconds):
                return

    # The thread sees this context's settings (the API the run reports to), as Prefect's own does.
    thread = threading.Thread(target=contextvars.copy_context().run, args=(beat,), daemon=True, name="din-heartbeat")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
