"""`din tokens` and `din serve`, run as a data engineer would run them (real subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

DIN = [sys.executable, "-m", "app.cli"]


def din(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*DIN, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "din.yaml"
    path.write_text(
        "mode: demo\ndata_dir: data\nsources:\n"
        "  - {name: alpha-portal, organisation: ORG-A, kind: attendance, location: 'inbox://'}\n",
        encoding="utf-8",
    )
    return path


def test_tokens_are_issued_listed_and_revoked_and_never_shown_again(config: Path) -> None:
    issued = din("tokens", "new", "ORG-A", "--config", str(config), "--label", "Alpha data lead")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("din_") and "shown once" in issued.stderr
    reader = din("tokens", "new", "authors", "--role", "reader", "--config", str(config)).stdout.strip()
    listed = din("tokens", "list", "--config", str(config))
    assert "ORG-A" in listed.stdout and "Alpha data lead" in listed.stdout and "reader" in listed.stdout
    assert token not in listed.stdout and token.split("_", 2)[2] not in listed.stdout
    stored = (config.parent / "data" / "portal" / "tokens.json").read_text()
    assert token.split("_", 2)[2] not in stored and reader.split("_", 2)[2] not in stored
    assert len(json.loads(stored)["tokens"]) == 2
    revoked = din("tokens", "revoke", "ORG-A", "--config", str(config))
    assert revoked.returncode == 0 and "revoked 1 token(s) of ORG-A" in revoked.stdout
    again = din("tokens", "revoke", "ORG-A", "--config", str(config))
    assert again.returncode == 2 and "no active tokens of ORG-A" in again.stderr


def test_a_contributor_token_needs_an_organisation_of_the_registry(config: Path) -> None:
    result = din("tokens", "new", "ORG-AA", "--config", str(config))
    assert result.returncode == 2 and "did you mean ORG-A?" in result.stderr and not result.stdout


def test_din_serve_serves_the_portal_on_127_0_0_1(config: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [*DIN, "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "din serve did not start"
                time.sleep(0.2)
        assert page.status_code == 200 and "Sign in" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert httpx.get(f"http://127.0.0.1:{port}/catalog", timeout=2).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=20)
