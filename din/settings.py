"""Process settings that must be in place before Prefect or GX is imported: no telemetry, no
analytics, a project-local Prefect home, and our logger routed into Prefect's run logs."""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "din",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    # A busy 2-core machine can take over 20 s (the default) to start the ephemeral server.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def configure_environment(data_dir: Path | None = None) -> None:
    """Turn off everything that would phone home; keep Prefect's ephemeral state beside the data."""
    for name, value in OFFLINE.items():
        os.environ.setdefault(name, value)
    if data_dir is not None and "PREFECT_HOME" not in os.environ:
        home = data_dir / ".prefect"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["PREFECT_HOME"] = str(home)
