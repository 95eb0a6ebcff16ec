"""SftpReader against an asyncssh SFTP server on 127.0.0.1."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from sources import RemoteFile, SourceAuthError, SourceError, SourceUnreachable, open_reader
from sources.sftp import SftpReader
from tests.support.servers import SFTP_PASSWORD, SftpServer, free_port, secrets_from, silent_listener

CREDENTIALS = secrets_from({"DIN_TEST_SFTP_PASSWORD": SFTP_PASSWORD})
PASSWORD = {"password": "DIN_TEST_SFTP_PASSWORD"}


def location(sftp: SftpServer, path: str = "/drop") -> str:
    return f"sftp://{sftp.username}@127.0.0.1:{sftp.port}{path}"


def fetch_bytes(reader: SftpReader, file: RemoteFile) -> bytes:
    dest = io.BytesIO()
    assert reader.fetch(file, dest).not_modified is False
    return dest.getvalue()


def test_lists_recursively_and_fetches_exact_bytes(sftp: SftpServer, known_hosts: Path) -> None:
    with open_reader(location(sftp), {**PASSWORD, "known_hosts": str(known_hosts)}, CREDENTIALS) as reader:
        assert isinstance(reader, SftpReader)
        files = reader.list_files()
        assert [f.relative_path for f in files] == ["roster.csv", "w1/big.xlsx", "w1/responses.csv"]
        for file in files:
            local = sftp.root / "drop" / file.relative_path
            assert file.location == f"sftp://127.0.0.1:{sftp.port}/drop/{file.relative_path}"  # no user
            assert file.size == local.stat().st_size
            assert file.modified == int(local.stat().st_mtime)
            assert fetch_bytes(reader, file) == local.read_bytes()


def test_a_location_naming_one_file(sftp: SftpServer, known_hosts: Path) -> None:
    with SftpReader(
        location(sftp, "/drop/roster.csv"), {**PASSWORD, "known_hosts": str(known_hosts)}, CREDENTIALS
    ) as reader:
        (file,) = reader.list_files()
        assert file.relative_path == "roster.csv"
        assert fetch_bytes(reader, file) == (sftp.root / "drop" / "roster.csv").read_bytes()


def test_tilde_path_is_relative_to_the_login_folder(sftp: SftpServer, known_hosts: Path) -> None:
    with SftpReader(location(sftp, "/~/drop/w1"), {**PASSWORD, "known_hosts": str(known_hosts)}, CREDENTIALS) as reader:
        files = reader.list_files()
        assert [f.location for f in files] == [
            f"sftp://127.0.0.1:{sftp.port}/~/drop/w1/big.xlsx",
            f"sftp://127.0.0.1:{sftp.port}/~/drop/w1/responses.csv",
        ]
        assert fetch_bytes(reader, files[1]) == (sftp.root / "drop" / "w1" / "responses.csv").read_bytes()


@pytest.mark.parametrize("as_path", [False, True], ids=["key text", "key file"])
def test_private_key_login(sftp: SftpServer, known_hosts: Path, tmp_path: Path, as_path: bool) -> None:
    key = sftp.client_key
    if as_path:
        (tmp_path / "id_ed25519").write_text(key)
        key = str(tmp_path / "id_ed25519")
    options = {"private_key": "DIN_TEST_SFTP_KEY", "known_hosts": str(known_hosts)}
    with SftpReader(location(sftp), options, secrets_from({"DIN_TEST_SFTP_KEY": key})) as reader:
        assert len(reader.list_files()) == 3


def test_wrong_password_is_an_auth_error_without_the_password(sftp: SftpServer, known_hosts: Path) -> None:
    wrong = "sftp-wrong-9e8d7c6b5a"
    reader = SftpReader(
        location(sftp), {**PASSWORD, "known_hosts": str(known_hosts)}, secrets_from({PASSWORD["password"]: wrong})
    )
    with pytest.raises(SourceAuthError) as caught:
        reader.list_files()
    assert caught.value.transient is False
    assert "refused the credentials" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(reader)


def test_unknown_host_is_refused_by_default(sftp: SftpServer, tmp_path: Path) -> None:
    reader = SftpReader(location(sftp), {**PASSWORD, "known_hosts": str(tmp_path / "none")}, CREDENTIALS)
    with pytest.raises(SourceAuthError) as caught:
        reader.list_files()
    assert f"host [127.0.0.1]:{sftp.port} is not in {tmp_path / 'none'}" in str(caught.value)
    assert "SHA256:" in str(caught.value) and "accept_new" in str(caught.value)


def test_changed_host_key_is_refused(sftp: SftpServer, tmp_path: Path) -> None:
    import asyncssh

    impostor = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sftp.port} {' '.join(impostor)}\n")
    for policy in ("reject", "accept_new", "auto_add"):
        options = {**PASSWORD, "known_hosts": str(known_hosts), "host_key_policy": policy}
        with pytest.raises(SourceAuthError, match="does not match"):
            SftpReader(location(sftp), options, CREDENTIALS).list_files()


def test_accept_new_trusts_on_first_use_and_remembers(sftp: SftpServer, tmp_path: Path) -> None:
    known_hosts = tmp_path / "ssh" / "known_hosts"
    options = {**PASSWORD, "known_hosts": str(known_hosts), "host_key_policy": "accept_new"}
    with SftpReader(location(sftp), options, CREDENTIALS) as reader:
        assert len(reader.list_files()) == 3
    assert known_hosts.read_text() == sftp.known_hosts_line()
    with SftpReader(location(sftp), {**PASSWORD, "known_hosts": str(known_hosts)}, CREDENTIALS) as reader:
        assert len(reader.list_files()) == 3  # now known: the default (reject) connects


def test_insecure_switch_accepts_any_host_key(sftp: SftpServer, tmp_path: Path) -> None:
    options = {**PASSWORD, "known_hosts": str(tmp_path / "none"), "insecure_accept_any_host_key": True}
    with SftpReader(location(sftp), options, CREDENTIALS) as reader:
        assert len(reader.list_files()) == 3
    assert not (tmp_path / "none").exists()


def test_refused_connection_is_transient(tmp_path: Path) -> None:
    reader = SftpReader(f"sftp://someone@127.0.0.1:{free_port()}/drop", PASSWORD, CREDENTIALS)
    with pytest.raises(SourceUnreachable) as caught:
        reader.list_files()
    assert caught.value.transient is True


def test_silent_server_times_out_as_transient() -> None:
    with silent_listener() as port:
        reader = SftpReader(f"sftp://someone@127.0.0.1:{port}/drop", {**PASSWORD, "timeout_seconds": 0.5}, CREDENTIALS)
        started = time.monotonic()
        with pytest.raises(SourceUnreachable):
            reader.list_files()
        assert time.monotonic() - started < 5


def test_missing_folder_is_not_transient(sftp: SftpServer, known_hosts: Path) -> None:
    reader = SftpReader(location(sftp, "/nowhere"), {**PASSWORD, "known_hosts": str(known_hosts)}, CREDENTIALS)
    with pytest.raises(SourceError, match="no such file") as caught:
        reader.list_files()
    assert not isinstance(caught.value, SourceUnreachable | SourceAuthError)


def test_location_and_options_are_checked() -> None:
    with pytest.raises(SourceAuthError) as caught:
        SftpReader("sftp://someone:pa55word@127.0.0.1/drop", PASSWORD)
    assert "pa55word" not in str(caught.value)
    with pytest.raises(SourceError, match=r"password or options\.private_key"):
        SftpReader("sftp://someone@127.0.0.1/drop", {})
    with pytest.raises(SourceError, match="host_key_policy"):
        SftpReader("sftp://someone@127.0.0.1/drop", {**PASSWORD, "host_key_policy": "trust_me"})
