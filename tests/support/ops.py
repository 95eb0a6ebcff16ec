"""Support for the operations tests: a real Prefect server, a small partner site, `din` as a subprocess,
and readers of the published output.

Every test here drives the pipeline the way an operator does (the `din` and `prefect` commands)
against a `prefect server` on 127.0.0.1, and asserts on what was published.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DIN = str(BIN / "din")
PREFECT = str(BIN / "prefect")

#: The settings docs/operations.md tells operators to use: no telemetry, no analytics.
OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
}
#: A test key (production mode needs one): 64 hex characters, as `din keys new` makes.
PSEUDONYM_KEY = hashlib.sha256(b"din-engagement ops tests").hexdigest()
KEY_ID = hashlib.sha256(PSEUDONYM_KEY.encode()).hexdigest()[:8]
#: Variables that must not leak from the caller's shell into a run under test.
SCRUBBED_ENV = ("DIN_INJECT_FAILURE", "DIN_INJECT_KILL", "DIN_CONFIG", "PREFECT_API_URL", "PREFECT_PROFILE")

SERVER_START_SECONDS = 150
COMMAND_SECONDS = 240


# --------------------------------------------------------------------------------------------
# A Prefect server on 127.0.0.1
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrefectServer:
    """A running `prefect server start`, and the environment a client needs to use it."""

    url: str
    home: Path
    client_home: Path
    log: Path

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client (`din`, `prefect`) talking to this server, offline."""
        env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
        env.update(OFFLINE_ENV)
        env.update(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.client_home), DIN_PSEUDONYM_KEY=PSEUDONYM_KEY)
        env.update(extra)
        return env


def spare_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200 and json.loads(response.read()) is True
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def prefect_server(root: Path) -> Iterator[PrefectServer]:
    """Start `prefect server start` on a spare port with its own PREFECT_HOME; stop it afterwards."""
    port = spare_port()
    server = PrefectServer(f"http://127.0.0.1:{port}", root / "server-home", root / "client-home", root / "server.log")
    server.home.mkdir(parents=True)
    server.client_home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(OFFLINE_ENV, PREFECT_HOME=str(server.home))
    with open(server.log, "wb") as log:
        process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_healthy(server, process)
        yield server
    finally:
        _stop(process)


def _wait_healthy(server: PrefectServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not healthy(server.api_url):
        if process.poll() is not None or time.monotonic() > deadline:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"prefect server did not become healthy (exit {process.poll()}):\n{tail}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and the processes it started (its own session), by its process group id."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def prefect(server: PrefectServer, *args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    """A `prefect` CLI command against the server, without prompts."""
    return subprocess.run(
        [PREFECT, "--no-prompt", *args],
        cwd=cwd,
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=COMMAND_SECONDS,
        check=False,
    )


# --------------------------------------------------------------------------------------------
# A small partner site: reference data, three partner sources, a config
# --------------------------------------------------------------------------------------------

REFERENCE_FILES = {
    "reference/organisations.csv": """\
        org_id,name,sector
        ORG-A,Alpha Health Board,health
        ORG-B,Beta Council,other
        """,
    "reference/workshops.csv": """\
        panel_id,workshop_id,number,held_on,title,facilitator_org_id
        p1,W1,1,2026-03-12,What data is,ORG-A
        p1,W2,2,2026-03-19,Past projects,ORG-B
        """,
    "reference/projects.csv": """\
        project_id,title,lead_org_id,sector,stage
        PRJ-1,Hospital discharge data,ORG-A,health,past
        """,
    "reference/population.csv": """\
        dimension,category,share
        age_band,16-34,0.4
        age_band,35+,0.6
        """,
}

ROSTER_HEADER = "panel_id,panellist_ref,age_band,gender,council_area,consent,full_name,email\n"
PEOPLE = {
    "P1": ("16-34", "Woman", "Dundee City", "Morag Henderson"),
    "P2": ("35+", "Man", "Fife", "Jamie Ross"),
    "P3": ("35+", "Woman", "Angus", "Isla Duncan"),
    "P4": ("16-34", "Man", "Dundee City", "Callum Reid"),
    "P5": ("35+", "Prefer not to say", "Fife", "Ailsa Grant"),
    "P6": ("16-34", "Woman", "Angus", "Fiona Shaw"),
    "P7": ("35+", "Man", "Perth and Kinross", "Euan Murray"),
}


def _roster(withdrawn: set[str], people: list[str]) -> str:
    lines = [ROSTER_HEADER.rstrip("\n")]
    for ref in people:
        age, gender, council, name = PEOPLE[ref]
        consent = "withdrawn" if ref in withdrawn else "consented"
        email = name.lower().replace(" ", ".") + "@example.com"
        lines.append(f"p1,{ref},{age},{gender},{council},{consent},{name},{email}")
    return "\n".join(lines) + "\n"


def _attendance(workshop: str, refs: list[str]) -> str:
    rows = [f"p1,{workshop},{ref},{'no' if ref == 'P4' else 'yes'}" for ref in refs]
    return "panel_id,workshop_id,panellist_ref,attended\n" + "\n".join(rows) + "\n"


def _responses(workshop: str, answers: dict[str, str], extra_rows: tuple[str, ...] = ()) -> str:
    rows = [f"p1,{workshop},{ref},Q-{workshop},Is this use acceptable?,{answer}" for ref, answer in answers.items()]
    header = "panel_id,workshop_id,panellist_ref,question_id,question_text,answer\n"
    return header + "\n".join([*rows, *extra_rows]) + "\n"


#: The first deliveries: six panellists (P6 withdrawn), workshop 1, and two faulty response rows.
FIRST_DELIVERIES = {
    "deliveries/roster/roster.csv": _roster({"P6"}, ["P1", "P2", "P3", "P4", "P5", "P6"]),
    "deliveries/attendance/attendance_w1.csv": _attendance("W1", ["P1", "P2", "P3", "P4", "P5", "P6"]),
    "deliveries/responses/responses_w1.csv": _responses(
        "W1",
        {"P1": "Yes", "P2": "Prefer not to say", "P3": "No", "P4": "Don't know", "P5": "Yes", "P6": "No"},
        (
            "p1,W9,P1,Q-W9,Is this use acceptable?,Yes",  # workshop not in the reference data: quarantined
            "p1,W1,P99,Q-W1,Is this use acceptable?,Yes",  # not on the roster: quarantined
        ),
    ),
}
#: The next night's deliveries: a corrected roster (P3 withdraws, P7 joins) and workshop 2.
NEW_DELIVERIES = {
    "deliveries/roster/roster.csv": _roster({"P3", "P6"}, ["P1", "P2", "P3", "P4", "P5", "P6", "P7"]),
    "deliveries/attendance/attendance_w2.csv": _attendance("W2", ["P1", "P2", "P3", "P4", "P5", "P7"]),
    "deliveries/responses/responses_w2.csv": _responses(
        "W2", {"P1": "Only with conditions", "P2": "Yes", "P3": "No", "P7": "Mail me at euan@example.com"}
    ),
}
#: Rows each restricted table publishes after the first deliveries, and after the new ones too.
FIRST_ROWS = {"panellists": 5, "attendance": 5, "responses": 5}
NEW_ROWS = {"panellists": 5, "attendance": 9, "responses": 7}


def site_config(data_dir: str = "data", lock_timeout_seconds: float = 60) -> str:
    return textwrap.dedent(
        f"""\
        title: din-engagement operations test site
        mode: production
        data_dir: {data_dir}
        lock_timeout_seconds: {lock_timeout_seconds}
        reference:
          - {{name: orgs, organisation: DIN, kind: organisations, location: reference/organisations.csv}}
          - {{name: workshops, organisation: DIN, kind: workshops, location: reference/workshops.csv}}
          - {{name: projects, organisation: DIN, kind: projects, location: reference/projects.csv}}
          - {{name: population, organisation: DIN, kind: population, location: reference/population.csv}}
        sources:
          - {{name: roster, organisation: ORG-A, kind: roster, location: deliveries/roster}}
          - {{name: attendance, organisation: ORG-B, kind: attendance, location: deliveries/attendance/*.csv}}
          - {{name: responses, organisation: ORG-B, kind: responses, location: deliveries/responses/*.csv}}
        """
    )


def write_files(root: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def write_site(root: Path, lock_timeout_seconds: float = 60) -> Path:
    """A partner site with its first deliveries; returns its config (data under `root/data`)."""
    write_files(root, REFERENCE_FILES)
    write_files(root, FIRST_DELIVERIES)
    config = root / "din.yaml"
    config.write_text(site_config(lock_timeout_seconds=lock_timeout_seconds), encoding="utf-8")
    return config


def deliver_new_files(root: Path) -> None:
    """The next delivery: write the new and corrected files (with a fresh modification time)."""
    write_files(root, NEW_DELIVERIES)


# --------------------------------------------------------------------------------------------
# `din` as a subprocess
# --------------------------------------------------------------------------------------------


def din(
    server: PrefectServer, config: Path, *args: str, timeout: float = COMMAND_SECONDS, **env: str
) -> subprocess.CompletedProcess[str]:
    """`din <args> --config <config>` against the server; never raises on a non-zero exit."""
    return subprocess.run(
        [DIN, *args, "--config", str(config)],
        cwd=config.parent,
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_din(server: PrefectServer, config: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [DIN, *args, "--config", str(config)],
        cwd=config.parent,
        env=server.env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def explain(result: subprocess.CompletedProcess[str]) -> str:
    """What a failed command said, for assertion messages."""
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"


def lock_is_held(lock: Path) -> bool:
    """True when another process holds the writer lock (tested without waiting, released at once)."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wait_for_lock_holder(lock: Path, process: subprocess.Popen[str], timeout: float = COMMAND_SECONDS) -> None:
    """Wait until `process` has taken the writer lock (it writes its pid into the lock file)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"din run {process.pid} ended (exit {process.returncode}) before taking the lock")
        with contextlib.suppress(OSError):
            if lock.read_text().strip() == str(process.pid):
                return
        time.sleep(0.005)
    raise AssertionError(f"din run {process.pid} did not take the writer lock within {timeout} s")


# --------------------------------------------------------------------------------------------
# The published output
# --------------------------------------------------------------------------------------------

#: Columns that name the run or the moment that wrote a row: they differ between two runs that
#: publish the same data, so comparisons across runs leave them out.
RUN_COLUMNS = frozenset({"run_id", "landed_run_id", "processed_run_id", "first_seen"})
#: The run history lists every run, including interrupted ones: compared separately.
HISTORY_TABLES = frozenset({"ops/runs.parquet"})

Rows = Counter[str]


@dataclass(frozen=True)
class Published:
    """Everything a reader sees under `published/current`."""

    version: str | None
    digests: dict[str, str]  # relative path -> sha256 of the file's bytes
    tables: dict[str, list[dict[str, Any]]]  # each table's relative path (a file, or a partitioned folder) -> its rows

    def rows(self, table: str) -> list[dict[str, Any]]:
        from warehouse.marts import mart

        return (
            self.tables[mart(table).relative_path]
            if mart(table).relative_path in self.tables
            else self.tables[f"{mart(table).tier}/{table}.parquet"]
        )

    def comparable(self) -> dict[str, Rows]:
        """Each table (but the run history) as a multiset of rows without the run columns."""
        return {
            path: Counter(_row_key({k: v for k, v in row.items() if k not in RUN_COLUMNS}) for row in rows)
            for path, rows in self.tables.items()
            if path not in HISTORY_TABLES
        }


def _row_key(row: Mapping[str, Any]) -> str:
    return json.dumps(row, sort_keys=True, default=repr)


def read_published(data_dir: Path) -> Published:
    """Read every file under `published/current` (each table as rows, a partitioned one read whole; every file
    as bytes)."""
    from warehouse.mart_files import scan_table
    from warehouse.marts import found_marts

    current = data_dir / "published" / "current"
    if not current.is_symlink():
        return Published(None, {}, {})
    target = current.resolve()
    digests: dict[str, str] = {}
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        digests[path.relative_to(target).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    tables = {
        m.relative_path: scan_table(target / m.relative_path).collect().to_dicts()
        for m in found_marts(target)
        if m.relative_files(target)
    }
    return Published(os.readlink(current).rsplit("/", 1)[-1], digests, tables)


def table_differences(expected: Published, actual: Published) -> list[str]:
    """Missing and extra rows per table (run columns left out), for a readable assertion."""
    want, got = expected.comparable(), actual.comparable()
    problems = []
    for path in sorted(set(want) | set(got)):
        if path not in got:
            problems.append(f"{path}: table missing")
            continue
        if path not in want:
            problems.append(f"{path}: unexpected table")
            continue
        missing, extra = want[path] - got[path], got[path] - want[path]
        if missing:
            problems.append(f"{path}: {sum(missing.values())} row(s) missing, e.g. {next(iter(missing))}")
        if extra:
            problems.append(f"{path}: {sum(extra.values())} extra/duplicate row(s), e.g. {next(iter(extra))}")
    return problems


def restore(snapshot: Path, root: Path) -> None:
    """Put a site back exactly as it was snapshotted (same paths, file times, and symlinks)."""
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(snapshot, root, symlinks=True)
