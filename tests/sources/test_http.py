"""HttpReader against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import io
import time

import pytest

from sources import FetchState, SourceAuthError, SourceError, SourceUnreachable, open_reader
from sources.http import HttpReader
from tests.support.servers import (
    HTTP_PASSWORD,
    HTTP_TOKEN,
    HTTP_USER,
    LAST_MODIFIED,
    LAST_MODIFIED_EPOCH,
    HttpSite,
    free_port,
    secrets_from,
)

ROSTER = b"panel_id,panellist_ref,age_band\nP1,R001,25-34\nP1,R002,Prefer not to say\n"
ATTENDANCE = b"panel_id,workshop_id,panellist_ref,attended\nP1,W1,R001,yes\n"
RESPONSES = [{"panel_id": "P1", "workshop_id": "W1", "panellist_ref": "R001", "question_id": "Q1", "answer": "yes"}]
BEARER = {"auth": {"type": "bearer", "token": "DIN_TEST_HTTP_TOKEN"}}
BASIC = {"auth": {"type": "basic", "username": HTTP_USER, "password": "DIN_TEST_HTTP_PASSWORD"}}
CREDENTIALS = secrets_from({"DIN_TEST_HTTP_TOKEN": HTTP_TOKEN, "DIN_TEST_HTTP_PASSWORD": HTTP_PASSWORD})
SECRETS = (HTTP_TOKEN, HTTP_PASSWORD)


@pytest.fixture(scope="module", autouse=True)
def content(web: HttpSite, elsewhere: HttpSite) -> None:
    web.add("/files/roster.csv", ROSTER)
    web.add("/files/attendance.csv", ATTENDANCE)
    web.add("/data/responses.json", RESPONSES)  # a JSON delivery, not a listing
    web.add(
        "/listing.json",
        ["files/roster.csv", {"url": "/files/attendance.csv", "name": "w1/attendance.csv", "size": 61, "etag": "x"}],
    )
    web.add("/export/index", {"files": [{"url": "../files/roster.csv", "modified": "2025-10-01T09:00:00Z"}]})
    web.resources["/export/index"].content_type = "text/plain"  # no JSON type: needs listing: json
    web.add("/private/roster.csv", ROSTER, auth="bearer")
    web.add("/basic/roster.csv", ROSTER, auth="basic")
    web.add("/leaky/roster.csv", ROSTER, auth="leaky")
    web.add("/private/listing.json", ["roster.csv", elsewhere.url("/mirror/roster.csv")], auth="bearer")
    web.add(
        "/private/dup.json", ["roster.csv", {"url": "/files/roster.csv", "name": "private/roster.csv"}], auth="bearer"
    )
    web.add("/evil.json", [{"url": "/files/roster.csv", "name": "../../etc/passwd"}])
    web.add("/secret-urls.json", ["http://someone:hunter2@127.0.0.1:9/files/roster.csv"])
    web.add("/busy.csv", ATTENDANCE, status=429)
    web.add("/slow.csv", ROSTER, delay=1.5)
    web.add("/cut.csv", ROSTER, truncate=True)
    web.add("/keyed/moved.csv", b"", redirect="/keyed/roster.csv")
    web.add("/keyed/roster.csv", b"", redirect=elsewhere.url("/mirror/roster.csv"))
    elsewhere.add("/mirror/roster.csv", ROSTER)


def fetch_bytes(reader: HttpReader, file, previous: FetchState | None = None) -> tuple[bytes, object]:
    dest = io.BytesIO()
    result = reader.fetch(file, dest, previous)
    return dest.getvalue(), result


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_single_file_is_listed_with_validators_and_fetched_exactly(web: HttpSite) -> None:
    reader = open_reader(web.url("/files/roster.csv"), {})
    assert isinstance(reader, HttpReader)
    (file,) = reader.list_files()
    assert file.location == web.url("/files/roster.csv")
    assert file.relative_path == "files/roster.csv"
    assert file.size == len(ROSTER)
    assert file.modified == LAST_MODIFIED_EPOCH
    assert file.etag == web.resources["/files/roster.csv"].etag
    body, result = fetch_bytes(reader, file)
    assert body == ROSTER
    assert result.not_modified is False
    assert (result.etag, result.last_modified) == (file.etag, LAST_MODIFIED)


def test_unchanged_file_answers_304_and_writes_nothing(web: HttpSite) -> None:
    reader = HttpReader(web.url("/files/attendance.csv"), {"listing": "none"})
    (file,) = reader.list_files()
    before = len(web.hits_for("/files/attendance.csv"))
    body, result = fetch_bytes(reader, file, FetchState(etag=file.etag, last_modified=LAST_MODIFIED))
    assert body == b""
    assert result.not_modified is True
    assert result.etag == file.etag
    (hit,) = web.hits_for("/files/attendance.csv")[before:]
    assert (hit.status, hit.if_none_match, hit.if_modified_since) == (304, file.etag, LAST_MODIFIED)


def test_if_modified_since_alone_is_sent_and_honoured(web: HttpSite) -> None:
    reader = HttpReader(web.url("/files/attendance.csv"), {})
    (file,) = reader.list_files()
    body, result = fetch_bytes(reader, file, FetchState(last_modified=LAST_MODIFIED))
    assert (body, result.not_modified) == (b"", True)
    assert web.hits_for("/files/attendance.csv")[-1].status == 304


def test_changed_file_is_fetched_again(web: HttpSite) -> None:
    reader = HttpReader(web.url("/files/attendance.csv"), {})
    (file,) = reader.list_files()
    body, result = fetch_bytes(reader, file, FetchState(etag='"an-older-version"'))
    assert body == ATTENDANCE
    assert result.not_modified is False
    assert result.etag == file.etag
    assert web.hits_for("/files/attendance.csv")[-1].status == 200


def test_json_listing_is_detected_and_resolved_against_its_url(web: HttpSite) -> None:
    reader = HttpReader(web.url("/listing.json"), {})
    files = reader.list_files()
    assert [(f.location, f.relative_path) for f in files] == [
        (web.url("/files/roster.csv"), "files/roster.csv"),
        (web.url("/files/attendance.csv"), "w1/attendance.csv"),
    ]
    assert (files[1].size, files[1].etag) == (61, "x")
    assert [fetch_bytes(reader, f)[0] for f in files] == [ROSTER, ATTENDANCE]


def test_files_object_listing_without_json_content_type_needs_listing_json(web: HttpSite) -> None:
    (as_file,) = HttpReader(web.url("/export/index"), {}).list_files()
    assert as_file.relative_path == "export/index"
    (listed,) = HttpReader(web.url("/export/index"), {"listing": "json"}).list_files()
    assert listed.location == web.url("/files/roster.csv")
    assert listed.modified == LAST_MODIFIED_EPOCH


def test_a_json_delivery_is_not_mistaken_for_a_listing(web: HttpSite) -> None:
    reader = HttpReader(web.url("/data/responses.json"), {})
    (file,) = reader.list_files()
    assert file.relative_path == "data/responses.json"
    assert fetch_bytes(reader, file)[0] == web.resources["/data/responses.json"].body
    with pytest.raises(SourceError, match="listing must be a JSON array"):
        HttpReader(web.url("/data/responses.json"), {"listing": "json"}).list_files()


def test_bearer_token_from_the_environment(web: HttpSite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIN_TEST_HTTP_TOKEN", HTTP_TOKEN)
    reader = HttpReader(web.url("/private/roster.csv"), BEARER)  # default resolver: the environment
    (file,) = reader.list_files()
    assert fetch_bytes(reader, file)[0] == ROSTER
    assert web.hits_for("/private/roster.csv")[-1].authorization == f"Bearer {HTTP_TOKEN}"
    assert_no_secret(repr(reader), file.location)


def test_refused_bearer_token_is_an_auth_error_without_the_token(web: HttpSite) -> None:
    wrong = "tok-wrong-0000000000000"
    reader = HttpReader(web.url("/private/roster.csv"), BEARER, secrets_from({"DIN_TEST_HTTP_TOKEN": wrong}))
    with pytest.raises(SourceAuthError) as caught:
        reader.list_files()
    assert caught.value.transient is False
    assert "401" in str(caught.value)
    assert wrong not in str(caught.value) and wrong not in repr(reader)
    with pytest.raises(SourceAuthError, match=r"set options\.auth"):
        HttpReader(web.url("/private/roster.csv"), {}).list_files()


def test_missing_credential_is_named_not_guessed(web: HttpSite) -> None:
    reader = HttpReader(web.url("/private/roster.csv"), BEARER, secrets_from({}))
    with pytest.raises(SourceAuthError, match="credential 'DIN_TEST_HTTP_TOKEN' is not set"):
        reader.list_files()


def test_basic_auth_with_literal_username_and_named_password(web: HttpSite) -> None:
    reader = HttpReader(web.url("/basic/roster.csv"), BASIC, CREDENTIALS)
    (file,) = reader.list_files()
    assert fetch_bytes(reader, file)[0] == ROSTER
    wrong = HttpReader(web.url("/basic/roster.csv"), BASIC, secrets_from({"DIN_TEST_HTTP_PASSWORD": "pw-wrong-123"}))
    with pytest.raises(SourceAuthError) as caught:
        wrong.list_files()
    assert "pw-wrong-123" not in str(caught.value)


def test_credentials_echoed_by_a_hostile_server_are_scrubbed(web: HttpSite) -> None:
    reader = HttpReader(web.url("/leaky/roster.csv"), BEARER, CREDENTIALS)
    with pytest.raises(SourceAuthError) as caught:
        reader.list_files()
    assert web.hits_for("/leaky/roster.csv")[-1].authorization == f"Bearer {HTTP_TOKEN}"  # it did get the token
    assert "***" in str(caught.value)
    assert_no_secret(str(caught.value))


def test_credentials_go_only_to_the_configured_origin(web: HttpSite, elsewhere: HttpSite) -> None:
    reader = HttpReader(web.url("/private/listing.json"), BEARER, CREDENTIALS)
    files = reader.list_files()
    assert [f.relative_path for f in files] == ["private/roster.csv", "mirror/roster.csv"]
    assert [fetch_bytes(reader, f)[0] for f in files] == [ROSTER, ROSTER]
    assert web.hits_for("/private/roster.csv")[-1].authorization == f"Bearer {HTTP_TOKEN}"
    assert elsewhere.hits_for("/mirror/roster.csv")[-1].authorization is None


def test_redirects_keep_credentials_on_the_origin_and_drop_them_elsewhere(web: HttpSite, elsewhere: HttpSite) -> None:
    options = {"auth": {"type": "header", "name": "X-Api-Key", "value": "DIN_TEST_HTTP_TOKEN"}}
    reader = HttpReader(web.url("/keyed/moved.csv"), options, CREDENTIALS)
    (file,) = reader.list_files()
    assert fetch_bytes(reader, file)[0] == ROSTER
    assert web.hits_for("/keyed/moved.csv")[-1].api_key == HTTP_TOKEN
    assert web.hits_for("/keyed/roster.csv")[-1].api_key == HTTP_TOKEN  # same origin: still sent
    assert elsewhere.hits_for("/mirror/roster.csv")[-1].api_key is None  # other origin: dropped


def test_transient_503_is_retryable_and_later_succeeds(web: HttpSite) -> None:
    web.add("/flaky/roster.csv", ROSTER, fail_first=2)
    reader = HttpReader(web.url("/flaky/roster.csv"), {})
    for _ in range(2):
        with pytest.raises(SourceUnreachable) as caught:
            reader.list_files()
        assert caught.value.transient is True
        assert "503" in str(caught.value) and "retry after 1" in str(caught.value)
    (file,) = reader.list_files()
    assert fetch_bytes(reader, file)[0] == ROSTER
    assert [hit.status for hit in web.hits_for("/flaky/roster.csv")] == [503, 503, 200, 200]


def test_rate_limit_is_transient_and_not_found_is_not(web: HttpSite) -> None:
    with pytest.raises(SourceUnreachable, match="429"):
        HttpReader(web.url("/busy.csv"), {}).list_files()
    with pytest.raises(SourceError) as caught:
        HttpReader(web.url("/nothing-here.csv"), {}).list_files()
    assert not isinstance(caught.value, SourceUnreachable | SourceAuthError)
    assert caught.value.transient is False and "404" in str(caught.value)


def test_timeout_is_transient(web: HttpSite) -> None:
    started = time.monotonic()
    with pytest.raises(SourceUnreachable, match=r"no answer within 0\.3 s"):
        HttpReader(web.url("/slow.csv"), {"timeout_seconds": 0.3}).list_files()
    assert time.monotonic() - started < 1.4


def test_connection_lost_mid_body_is_transient(web: HttpSite) -> None:
    reader = HttpReader(web.url("/cut.csv"), {"listing": "none"})
    (file,) = reader.list_files()
    with pytest.raises(SourceUnreachable, match="RemoteProtocolError"):
        reader.fetch(file, io.BytesIO())  # the caller discards what was written (landing writes to a temp file)


def test_unreachable_server_is_transient() -> None:
    reader = HttpReader(f"http://127.0.0.1:{free_port()}/files/roster.csv", BEARER, CREDENTIALS)
    with pytest.raises(SourceUnreachable) as caught:
        reader.list_files()
    assert caught.value.transient is True
    assert_no_secret(str(caught.value))


def test_userinfo_never_reaches_a_location_or_a_message(web: HttpSite) -> None:
    with pytest.raises(SourceAuthError) as caught:
        HttpReader("http://someone:hunter2@127.0.0.1:9/files/roster.csv", {})
    assert "hunter2" not in str(caught.value) and "someone" not in str(caught.value)
    (file,) = HttpReader(web.url("/secret-urls.json"), {}).list_files()
    assert file.location == "http://127.0.0.1:9/files/roster.csv"


def test_listing_problems_are_clear_errors(web: HttpSite) -> None:
    with pytest.raises(SourceError, match=r"must be a relative path without '\.\.'"):
        HttpReader(web.url("/evil.json"), {}).list_files()
    with pytest.raises(SourceError, match=r"names 'private/roster\.csv' twice"):
        HttpReader(web.url("/private/dup.json"), BEARER, CREDENTIALS).list_files()


def test_options_are_checked_before_any_request() -> None:
    with pytest.raises(SourceError, match="unknown option"):
        HttpReader("https://example.org/x.csv", {"timeout": 5})
    with pytest.raises(SourceError, match="auth of type basic"):
        HttpReader("https://example.org/x.csv", {"auth": {"type": "basic", "password": "P"}})
    with pytest.raises(SourceError, match="header name"):
        HttpReader("https://example.org/x.csv", {"auth": {"type": "header", "name": "X: y\r\nZ", "value": "V"}})
    with pytest.raises(SourceAuthError, match="plain http"):
        HttpReader("http://example.org/x.csv", BEARER)
    assert HttpReader("http://example.org/x.csv", {**BEARER, "allow_insecure_http": True})
