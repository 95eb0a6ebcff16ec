"""Start a deployment's run through Prefect's API (the portal's "Process now" button)."""

from __future__ import annotations

from typing import Any


def deployment_trigger(name: str) -> str:
    """Schedule a run of deployment `name` (FLOW/DEPLOYMENT) now, without waiting; returns its id.

    Call it from a worker thread (no running event loop), where Prefect runs it synchronously."""
    from prefect.deployments import run_deployment

    flow_run: Any = run_deployment(name=name, timeout=0, tags=["portal"])
    return str(flow_run.id)
