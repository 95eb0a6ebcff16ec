"""S3Reader against moto's S3 server on 127.0.0.1, with IAM authentication switched on."""

from __future__ import annotations

import hashlib
import io
import time

import pytest

from sources import FetchState, RemoteFile, SourceAuthError, SourceError, SourceUnreachable, open_reader
from sources.s3 import S3Reader
from tests.support.servers import S3Server, free_port, secrets_from

NAMES = {"key": "DIN_TEST_S3_KEY", "secret": "DIN_TEST_S3_SECRET"}


def reader_for(s3: S3Server, user: str = "reader", location: str = "s3://deliveries/partner-a", **options) -> S3Reader:
    key, secret = s3.keys[user]
    return S3Reader(
        location,
        {"endpoint_url": s3.endpoint, "region": s3.region, **NAMES, **options},
        secrets_from({NAMES["key"]: key, NAMES["secret"]: secret}),
    )


def fetch_bytes(reader: S3Reader, file: RemoteFile, previous: FetchState | None = None) -> tuple[bytes, object]:
    dest = io.BytesIO()
    result = reader.fetch(file, dest, previous)
    return dest.getvalue(), result


def test_lists_every_object_under_the_prefix_recursively(s3: S3Server) -> None:
    reader = open_reader("s3://deliveries/partner-a/", {"endpoint_url": s3.endpoint, "region": s3.region, **NAMES})
    assert isinstance(reader, S3Reader)
    files = reader_for(s3).list_files()
    assert [f.relative_path for f in files] == ["roster.csv", "w1/attendance.csv", "w1/big.parquet"]
    for file in files:
        body = s3.objects[f"partner-a/{file.relative_path}"]
        assert file.location == f"s3://deliveries/partner-a/{file.relative_path}"
        assert file.size == len(body)
        assert file.etag == f'"{hashlib.md5(body).hexdigest()}"'
        assert file.modified is not None and abs(file.modified - time.time()) < 600


def test_fetch_streams_exact_bytes_and_returns_the_etag(s3: S3Server) -> None:
    reader = reader_for(s3)
    for file in reader.list_files():
        body, result = fetch_bytes(reader, file)
        assert body == s3.objects[f"partner-a/{file.relative_path}"]
        assert result.not_modified is False
        assert result.etag == file.etag
        assert result.last_modified and result.last_modified.endswith("GMT")


def test_unchanged_etag_is_not_fetched_again(s3: S3Server) -> None:
    reader = reader_for(s3)
    file = reader.list_files()[0]
    body, result = fetch_bytes(reader, file, FetchState(etag=file.etag))
    assert (body, result.not_modified, result.etag) == (b"", True, file.etag)
    body, result = fetch_bytes(reader, file, FetchState(etag='"an-older-version"'))
    assert (body, result.not_modified) == (s3.objects["partner-a/roster.csv"], False)


def test_a_location_naming_one_object(s3: S3Server) -> None:
    reader = reader_for(s3, location="s3://deliveries/partner-a/roster.csv")
    (file,) = reader.list_files()
    assert file.relative_path == "roster.csv"
    assert fetch_bytes(reader, file)[0] == s3.objects["partner-a/roster.csv"]


@pytest.mark.parametrize("problem", ["wrong secret", "unknown key", "no permission"])
def test_refused_credentials_are_auth_errors_without_secrets(s3: S3Server, problem: str) -> None:
    key, secret = s3.keys["nobody" if problem == "no permission" else "reader"]
    if problem == "wrong secret":
        secret = "wrong-secret-5d7f9b1c3e"
    if problem == "unknown key":
        key = "AKIAUNKNOWNUNKNOWN00"
    reader = S3Reader(
        "s3://deliveries/partner-a",
        {"endpoint_url": s3.endpoint, "region": s3.region, **NAMES},
        secrets_from({NAMES["key"]: key, NAMES["secret"]: secret}),
    )
    with pytest.raises(SourceAuthError) as caught:
        reader.list_files()
    assert caught.value.transient is False
    for value in (key, secret):
        assert value not in str(caught.value) and value not in repr(reader)


def test_missing_credential_is_named(s3: S3Server) -> None:
    reader = S3Reader("s3://deliveries/partner-a", {"endpoint_url": s3.endpoint, **NAMES}, secrets_from({}))
    with pytest.raises(SourceAuthError, match="credential 'DIN_TEST_S3_KEY' is not set"):
        reader.list_files()


def test_missing_bucket_is_not_transient(s3: S3Server) -> None:
    with pytest.raises(SourceError) as caught:
        reader_for(s3, location="s3://no-such-bucket/x").list_files()
    assert not isinstance(caught.value, SourceUnreachable | SourceAuthError)


def test_endpoint_down_is_transient(s3: S3Server) -> None:
    key, secret = s3.keys["reader"]
    reader = S3Reader(
        "s3://deliveries/partner-a",
        {"endpoint_url": f"http://127.0.0.1:{free_port()}", **NAMES, "timeout_seconds": 2, "max_attempts": 1},
        secrets_from({NAMES["key"]: key, NAMES["secret"]: secret}),
    )
    with pytest.raises(SourceUnreachable) as caught:
        reader.list_files()
    assert caught.value.transient is True
    assert secret not in str(caught.value)


def test_options_are_checked() -> None:
    with pytest.raises(SourceError, match="unknown option"):
        S3Reader("s3://bucket/prefix", {"endpoint": "http://127.0.0.1:9"})
    with pytest.raises(SourceError, match="go together"):
        S3Reader("s3://bucket/prefix", {"key": "K"})
    with pytest.raises(SourceAuthError) as caught:
        S3Reader("s3://AKIA:topsecret@bucket/prefix", {})
    assert "topsecret" not in str(caught.value)
