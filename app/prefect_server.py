"""The temporary Prefect server of a `din run` or `din rebuild` when no PREFECT_API_URL is set.

Prefect's ephemeral mode starts its API server as a subprocess that outlives a run killed by SIGKILL (an
OOM kill, a pulled plug): nothing is left to stop it. So `din` starts the same server itself (the
command Prefect runs, in ephemeral mode) as a child the kernel stops when its parent dies
(`PR_SET_PDEATHSIG` on Linux), records it under PREFECT_HOME, and on every start stops any recorded
server whose `din` is gone (the safety net where the kernel cannot do it). The server's own output
goes to `<PREFECT_HOME>/din-server.log`, never to a pipe a killed run's caller would wait on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from din.errors import DinError

APP = "prefect.server.api.server:create_app"  # what Prefect's own ephemeral server runs
RECORDS = "din-servers"  # one JSON file per running server, named after its pid
LOG = "din-server.log"
STOP_SECONDS = 10.0
#: Run before the server, in the child: ask the kernel to SIGKILL it when its parent dies (Linux's
#: PR_SET_PDEATHSIG, kept across exec), give up if the parent is already gone, then become the server.
#: A small program of its own rather than a preexec_fn, which is unsafe once threads run.
DIE_WITH_PARENT = """
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass  # not Linux: the next din stops it instead (stop_orphans)
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


class ServerError(DinError):
    """The temporary Prefect server did not start."""


@contextlib.contextmanager
def temporary_server(home: Path, timeout: float = 120.0) -> Iterator[str]:
    """Start a Prefect API server for this process only; yields its API URL; stops it on the way out."""
    stop_orphans(home)
    records = home / RECORDS
    records.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(home / LOG, "ab")  # noqa: SIM115 (the server writes to it for as long as it runs)
    process = subprocess.Popen(
        [sys.executable, "-c", DIE_WITH_PARENT, str(os.getpid()), *_command(port)],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    record = records / f"{process.pid}.json"
    record.write_text(json.dumps({"pid": process.pid, "parent": os.getpid(), "parent_started": _started(os.getpid())}))
    try:
        url = f"http://127.0.0.1:{port}/api"
        _wait_until_healthy(process, url, timeout, home / LOG)
        yield url
    finally:
        _stop(process)
        record.unlink(missing_ok=True)
        log.close()


def stop_orphans(home: Path) -> list[int]:
    """Stop every server recorded under `home` whose `din` process is gone; returns their pids."""
    stopped = []
    for record in sorted((home / RECORDS).glob("*.json")):
        try:
            facts = json.loads(record.read_text())
            pid, parent, parent_started = int(facts["pid"]), int(facts["parent"]), facts.get("parent_started")
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if _started(parent) == parent_started and parent_started is not None:
            continue  # its din is still running (a second run waiting for the lock must not stop the first's)
        if _is_server(pid):
            _signal_and_wait(pid)
            stopped.append(pid)
        record.unlink(missing_ok=True)
    return stopped


def _command(port: int) -> list[str]:
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None
    app_dir = str(Path(spec.origin).parent.parent)
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        app_dir,
        "--factory",
        APP,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(
                f"the temporary Prefect server stopped at start (exit {process.returncode}); {_tail(log)}"
            )
        with (
            contextlib.suppress(urllib.error.URLError, OSError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.2)
    _stop(process)
    raise ServerError(
        f"the temporary Prefect server did not answer within {timeout:g} s; {_tail(log)} "
        "(raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or set PREFECT_API_URL to a running server)"
    )


def _tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no server log"
    return f"its log ({log}) ends: {lines[-1][:300]}" if lines else f"its log ({log}) is empty"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _signal_and_wait(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and _is_server(pid):
            time.sleep(0.1)
        if _is_server(pid):
            os.kill(pid, signal.SIGKILL)


def _is_server(pid: int) -> bool:
    """Whether `pid` is a live (not zombie) Prefect server process (its command line runs the API app)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return APP.encode() in command and state != "Z"


def _started(pid: int) -> str | None:
    """When process `pid` started (clock ticks since boot), to tell it from a later process given its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None
