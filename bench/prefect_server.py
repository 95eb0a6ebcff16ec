"""A local Prefect server for the benchmark: started once, shared by every `din run` (server) run."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.measure import stop_group, tail

OFFLINE = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "RUNTIME__DLTHUB_TELEMETRY": "false",
}


#: At most this long, a new server is waited for to be idle before anything is timed (`Server.settle`).
SETTLE_SECONDS = 90.0


@dataclass
class Server:
    api_url: str
    process: subprocess.Popen[bytes]
    started_in: float
    peak_rss: int = 0
    settled_in: float = 0.0  # seconds from healthy to idle (`settle`)

    def settle(self, idle_share: float = 0.1, timeout: float = SETTLE_SECONDS, interval: float = 1.0) -> float:
        """Wait until the server's process tree uses less than `idle_share` of one core over two intervals in
        a row (a server that has just started runs its services' first passes and migrations for a while:
        a `din run` timed then pays for them); returns the seconds waited (at most `timeout`)."""
        started = time.perf_counter()
        quiet = 0
        while quiet < 2 and time.perf_counter() - started < timeout:
            quiet = quiet + 1 if self.cpu_share(interval) < idle_share else 0
        return time.perf_counter() - started

    def cpu_share(self, interval: float) -> float:
        """The cores the server tree used over `interval` seconds (1.0: one core all the time)."""

        def cpu_seconds() -> float:
            try:
                root = psutil.Process(self.process.pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                return 0.0
            total = 0.0
            for process in tree:
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system
            return total

        before = cpu_seconds()
        time.sleep(interval)
        return max(0.0, cpu_seconds() - before) / interval

    def sample_rss(self) -> int:
        """The server tree's RSS now; the peak is kept for the report."""
        from bench.measure import tree_rss

        try:
            rss = tree_rss(psutil.Process(self.process.pid))
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, rss)
        return rss


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment without any Prefect or dlt settings of the caller, plus telemetry off."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(("PREFECT_", "DLT_"))}
    env.update(OFFLINE)
    return env


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def prefect_server(prefect: Path, home: Path, log: Path, timeout: float = 180.0) -> Iterator[Server]:
    """`prefect server start` on a free port with PREFECT_HOME=`home`; stopped on exit."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = clean_env()
    env["PREFECT_HOME"] = str(home)
    api_url = f"http://127.0.0.1:{port}/api"
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while not _healthy(api_url):
            if process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {process.returncode}:\n{tail(log)}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"prefect server not healthy after {timeout:.0f} s:\n{tail(log)}")
            time.sleep(0.5)
        server = Server(api_url, process, time.perf_counter() - started)
        server.sample_rss()
        yield server
    finally:
        stop_group(process)
