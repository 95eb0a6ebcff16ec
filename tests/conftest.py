"""Test-session set-up: offline settings before Prefect or GX load, one Prefect test server per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from din.settings import configure_environment

configure_environment()
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="din-test-prefect-"))

REPO = Path(__file__).resolve().parents[1]
# The sample exports (survey tools, and real Polis and Qualtrics exports with their licences), kept unmodified
# in the repository so that a clean clone tests the same files.
SAMPLES = REPO / "tests" / "fixtures" / "samples"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """Prefect's test harness (a real temporary API server), started once per test session.

    The flows the tests run in this process send no heartbeats: Prefect's heartbeat thread holds up the end
    of every flow run by up to a second (a fifth of `tests/flows/test_consolidate.py`'s time).
    `tests/flows/test_heartbeat.py` turns them on for its runs; `din` subprocesses have their own."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        yield
