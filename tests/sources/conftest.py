"""Fixtures for the source reader tests: real servers on 127.0.0.1, started once per module."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import (
    HTTP_PASSWORD,
    HTTP_TOKEN,
    HTTP_USER,
    S3_OBJECTS,
    SFTP_PASSWORD,
    SFTP_USER,
    HttpSite,
    S3Server,
    SftpServer,
    http_site,
    s3_server,
    sftp_server,
)


@pytest.fixture(scope="module")
def web() -> Iterator[HttpSite]:
    with http_site(token=HTTP_TOKEN, username=HTTP_USER, password=HTTP_PASSWORD) as site:
        yield site


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[HttpSite]:
    """A second HTTP server: another origin, which must never receive the first one's credentials."""
    with http_site() as site:
        yield site


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server(S3_OBJECTS) as server:
        yield server


@pytest.fixture(scope="module")
def sftp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sftp-root")
    (root / "drop" / "w1").mkdir(parents=True)
    (root / "drop" / "roster.csv").write_bytes(b"panel_id,panellist_ref\nP1,R001\n")
    (root / "drop" / "w1" / "responses.csv").write_bytes(b"panel_id,question_id,answer\nP1,Q1,Prefer not to say\n")
    (root / "drop" / "w1" / "big.xlsx").write_bytes(os.urandom(3 << 20))
    (root / "drop" / "~$roster.xlsx").write_bytes(b"lock file")
    (root / "drop" / ".hidden").write_bytes(b"hidden")
    return root


@pytest.fixture(scope="module")
def sftp(sftp_root: Path) -> Iterator[SftpServer]:
    with sftp_server(sftp_root, SFTP_USER, SFTP_PASSWORD) as server:
        yield server


@pytest.fixture
def known_hosts(tmp_path: Path, sftp: SftpServer) -> Path:
    """A known_hosts file that trusts the test server's host key."""
    path = tmp_path / "known_hosts"
    path.write_text(sftp.known_hosts_line())
    return path
