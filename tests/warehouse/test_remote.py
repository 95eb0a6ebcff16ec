"""Landing and published copies on S3: warehouse.remote against moto's S3 server on 127.0.0.1 (IAM on)."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import s3fs

from din.config import ConfigError, RemoteStorage, storage_from_config
from tests.support.servers import NAMES, S3Server, bucket_server, client, free_port, remote_objects, secrets_from
from warehouse.landing import land_local_file
from warehouse.manifest import LANDING_LOG, append_landing_log
from warehouse.remote import (
    RemoteStorageError,
    current_remote_version,
    forget_remote,
    pull_landing,
    push_landing,
    push_published,
)

VERSIONS = [f"20260{month}01T020000-00000{month}" for month in range(1, 6)]  # sortable, like run ids


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with bucket_server() as server:
        yield server


@pytest.fixture
def storage(s3: S3Server, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> RemoteStorage:
    """Storage under a prefix of its own for each test; the reader's keys resolved from the environment."""
    key, secret = s3.keys["reader"]
    monkeypatch.setenv(NAMES["key"], key)
    monkeypatch.setenv(NAMES["secret"], secret)
    prefix = f"s3://{s3.bucket}/{request.node.name.replace('[', '-').rstrip(']')}"
    return RemoteStorage(f"{prefix}/landing", f"{prefix}/published", options_for(s3))


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every object the code under test writes, in order (s3fs's upload and small-write calls)."""
    written: list[str] = []
    for method in ("_put_file", "_pipe_file"):
        monkeypatch.setattr(s3fs.S3FileSystem, method, _recording(getattr(s3fs.S3FileSystem, method), written))
    return written


def _recording(original: Callable[..., Any], written: list[str]) -> Callable[..., Any]:
    async def wrapper(self: s3fs.S3FileSystem, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        written.append(args[1] if original.__name__ == "_put_file" else args[0])
        return result

    return wrapper


def options_for(s3: S3Server, **extra: Any) -> dict[str, Any]:
    return {"endpoint_url": s3.endpoint, "region": s3.region, **NAMES, **extra}


def make_landing(folder: Path, bodies: list[bytes]) -> dict[str, bytes]:
    """Land `bodies` with the real landing code and log one delivery each, as `record_pulls` does;
    returns the objects by key relative to `folder`."""
    landed = {}
    (folder.parent / "delivered").mkdir(parents=True, exist_ok=True)
    for index, body in enumerate(bodies):
        source = folder.parent / "delivered" / f"{index}.csv"
        source.write_bytes(body)
        result = land_local_file(folder, source, ".csv")
        relative = result.path.relative_to(folder).as_posix()
        entry = {"delivery_id": index + 1, "sha256": result.sha256, "size": result.size, "landing_path": relative}
        append_landing_log(folder, [entry])
        landed[relative] = body
    return landed


def make_version(published: Path, version: str, files: int = 3) -> dict[str, bytes]:
    """A published version folder like publish() leaves: tier folders, Parquet-ish files, ops/publish.json."""
    folder = published / "versions" / version
    contents = {f"open/table_{i}.parquet": f"PAR1 {version} {i} PAR1".encode() for i in range(files)}
    contents["restricted/panellists.parquet"] = f"PAR1 restricted {version}".encode()
    contents["ops/publish.json"] = json.dumps({"version": version}).encode()
    contents["datapackage.json"] = b"{}"
    for relative, body in contents.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(body)
    return contents


# --- landing --------------------------------------------------------------------------------------


def test_push_landing_uploads_each_object_once(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path, writes: list[str]
) -> None:
    landing = tmp_path / "landing"
    landed = make_landing(landing, [b"a,b\n1,2\n", b"a,b\n3,4\n", b"a,b\n5,6\n"])
    assert push_landing(storage, landing) == 3
    remote = remote_objects(s3, storage.landing)
    assert remote == {**landed, LANDING_LOG: (landing / LANDING_LOG).read_bytes()}
    assert writes[-1].endswith(f"/landing/{LANDING_LOG}")  # the log after the objects it names

    writes.clear()
    assert push_landing(storage, landing) == 0
    assert writes == []  # nothing re-uploaded, not even the unchanged log

    more = make_landing(landing, [b"a,b\n7,8\n", b"a,b\n1,2\n"])  # one new content, one seen before
    assert push_landing(storage, landing) == 1
    (new,) = set(more) - set(landed)
    root = storage.landing.removeprefix("s3://")
    assert writes == [f"{root}/{new}", f"{root}/{LANDING_LOG}"]
    assert remote_objects(s3, storage.landing)[LANDING_LOG] == (landing / LANDING_LOG).read_bytes()


def test_pull_landing_restores_a_fresh_machine(storage: RemoteStorage, s3: S3Server, tmp_path: Path) -> None:
    first = tmp_path / "first" / "landing"
    landed = make_landing(first, [b"x\n1\n", b"x\n2\n", b"x\n3\n"])
    push_landing(storage, first)

    unlogged = "objects/cd/cd" + "1" * 62 + ".csv"  # in the bucket, named by no delivery: not restored
    client(s3).put_object(Bucket=s3.bucket, Key=f"{storage.landing.split('/', 3)[3]}/{unlogged}", Body=b"?")
    fresh = tmp_path / "fresh" / "landing"
    assert pull_landing(storage, fresh) == 3
    assert not (fresh / unlogged).exists()
    for relative, body in landed.items():
        assert (fresh / relative).read_bytes() == body
        assert stat.S_IMODE((fresh / relative).stat().st_mode) == 0o440
    assert (fresh / LANDING_LOG).read_bytes() == (first / LANDING_LOG).read_bytes()
    assert not list(fresh.rglob(".incoming*"))
    assert pull_landing(storage, fresh) == 0

    lines = (fresh / LANDING_LOG).read_bytes().splitlines(keepends=True)
    (fresh / LANDING_LOG).write_bytes(lines[0])  # a machine whose log is behind the bucket's
    assert pull_landing(storage, fresh) == 0
    assert (fresh / LANDING_LOG).read_bytes() == (first / LANDING_LOG).read_bytes()


def test_pull_landing_restores_nothing_when_the_logs_disagree(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path
) -> None:
    make_landing(tmp_path / "a" / "landing", [b"a\n1\n", b"a\n2\n"])
    push_landing(storage, tmp_path / "a" / "landing")
    other = tmp_path / "b" / "landing"
    make_landing(other, [b"b\n1\n"])
    log_before = (other / LANDING_LOG).read_bytes()
    with pytest.raises(RemoteStorageError, match="disagree"):
        pull_landing(storage, other)
    assert len(list((other / "objects").rglob("*.csv"))) == 1
    assert (other / LANDING_LOG).read_bytes() == log_before


def test_push_never_overwrites_a_longer_remote_log(storage: RemoteStorage, s3: S3Server, tmp_path: Path) -> None:
    """A new machine that lands before restoring must not replace the bucket's history with its own."""
    make_landing(tmp_path / "old" / "landing", [b"old\n1\n", b"old\n2\n"])
    push_landing(storage, tmp_path / "old" / "landing")
    before = remote_objects(s3, storage.landing)[LANDING_LOG]
    new = tmp_path / "new" / "landing"
    make_landing(new, [b"new\n1\n"])
    with pytest.raises(RemoteStorageError, match=r"holds deliveries that .* lacks"):
        push_landing(storage, new)
    assert remote_objects(s3, storage.landing)[LANDING_LOG] == before


def test_pull_landing_refuses_an_object_whose_bytes_do_not_match_its_name(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path
) -> None:
    prefix = storage.landing.removeprefix(f"s3://{s3.bucket}/")
    relative = "objects/ab/ab" + "0" * 62 + ".csv"
    client(s3).put_object(Bucket=s3.bucket, Key=f"{prefix}/{relative}", Body=b"tampered\n")
    entry = json.dumps({"delivery_id": 1, "landing_path": relative}) + "\n"
    client(s3).put_object(Bucket=s3.bucket, Key=f"{prefix}/{LANDING_LOG}", Body=entry.encode())
    fresh = tmp_path / "landing"
    with pytest.raises(RemoteStorageError, match="does not hold the bytes its name promises"):
        pull_landing(storage, fresh)
    assert [p for p in fresh.rglob("*") if p.is_file()] == []


# --- published ----------------------------------------------------------------------------------


def test_push_published_writes_current_after_every_file(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path, writes: list[str]
) -> None:
    published = tmp_path / "published"
    assert current_remote_version(storage) is None
    contents = make_version(published, VERSIONS[0])
    push_published(storage, published, VERSIONS[0])
    assert current_remote_version(storage) == VERSIONS[0]

    remote = remote_objects(s3, storage.published)
    assert {k.removeprefix(f"versions/{VERSIONS[0]}/"): v for k, v in remote.items() if "/" in k} == {
        **contents,
        ".complete": remote[f"versions/{VERSIONS[0]}/.complete"],
    }
    marker = json.loads(remote[f"versions/{VERSIONS[0]}/.complete"])
    assert marker["files"] == {name: len(body) for name, body in contents.items()}
    assert [w.rsplit("/", 1)[-1] for w in writes[-2:]] == [".complete", "CURRENT"]
    assert len(writes) == len(contents) + 2


def test_a_failed_upload_leaves_current_on_the_previous_version(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    published = tmp_path / "published"
    make_version(published, VERSIONS[0])
    push_published(storage, published, VERSIONS[0])
    make_version(published, VERSIONS[1], files=6)

    original = s3fs.S3FileSystem._put_file
    uploads = []

    async def flaky(self: s3fs.S3FileSystem, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> Any:
        uploads.append(rpath)
        if rpath.endswith("open/table_4.parquet"):
            raise ConnectionResetError(104, "Connection reset by peer")  # the network fails mid-version
        return await original(self, lpath, rpath, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_put_file", flaky)
    with pytest.raises(RemoteStorageError, match="Connection reset"):
        push_published(storage, published, VERSIONS[1])
    assert len(uploads) > 1
    assert current_remote_version(storage) == VERSIONS[0]
    remote = remote_objects(s3, storage.published)
    assert f"versions/{VERSIONS[1]}/.complete" not in remote
    assert f"versions/{VERSIONS[0]}/.complete" in remote

    monkeypatch.setattr(s3fs.S3FileSystem, "_put_file", original)
    push_published(storage, published, VERSIONS[1])  # the next run pushes again
    assert current_remote_version(storage) == VERSIONS[1]


def test_remote_versions_are_pruned_to_the_newest_three(storage: RemoteStorage, s3: S3Server, tmp_path: Path) -> None:
    published = tmp_path / "published"
    for version in VERSIONS:
        make_version(published, version)
        push_published(storage, published, version)
    versions = {k.split("/")[1] for k in remote_objects(s3, storage.published) if k.startswith("versions/")}
    assert versions == set(VERSIONS[-3:])
    assert current_remote_version(storage) == VERSIONS[-1]

    push_published(storage, published, VERSIONS[0])  # CURRENT may name an older version (a rollback)
    versions = {k.split("/")[1] for k in remote_objects(s3, storage.published) if k.startswith("versions/")}
    assert versions == {VERSIONS[0], *VERSIONS[-3:]}
    assert current_remote_version(storage) == VERSIONS[0]


def test_push_published_refuses_a_folder_that_is_not_a_version(storage: RemoteStorage, tmp_path: Path) -> None:
    (tmp_path / "published" / "versions" / "half").mkdir(parents=True)
    with pytest.raises(RemoteStorageError, match="not a published version"):
        push_published(storage, tmp_path / "published", "half")
    with pytest.raises(RemoteStorageError, match="not a version name"):
        push_published(storage, tmp_path / "published", "../elsewhere")


# --- erasure ----------------------------------------------------------------------------------------


def erase_locally(landing: Path, relative: str, redacted: bytes) -> str:
    """What `din forget` does to landing: land the redacted copy, delete the old object, rewrite the log."""
    source = landing.parent / "redacted.csv"
    source.write_bytes(redacted)
    new = land_local_file(landing, source, ".csv")
    old = landing / relative
    old.chmod(0o640)
    old.unlink()
    lines = (landing / LANDING_LOG).read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        if entry["landing_path"] == relative:
            entry.update(sha256=new.sha256, landing_path=new.path.relative_to(landing).as_posix(), size=new.size)
    (landing / LANDING_LOG).write_text("".join(json.dumps(e) + "\n" for e in entries))
    return new.path.relative_to(landing).as_posix()


def test_forget_remote_makes_the_bucket_forget_too(storage: RemoteStorage, s3: S3Server, tmp_path: Path) -> None:
    landing, published = tmp_path / "landing", tmp_path / "published"
    person = b"panel_id,panellist_ref\np1,P1\np1,P2\n"
    landed = make_landing(landing, [person, b"panel_id,workshop_id\np1,W1\n"])
    push_landing(storage, landing)
    for version in VERSIONS[:3]:
        make_version(published, version)
        push_published(storage, published, version)

    (old,) = [k for k, body in landed.items() if body == person]
    erase_locally(landing, old, b"panel_id,panellist_ref\np1,P1\n")
    with pytest.raises(RemoteStorageError, match="rewritten by an erasure"):
        push_landing(storage, landing)  # a plain push would keep the person's rows in the bucket
    make_version(published, VERSIONS[3])

    assert forget_remote(storage, landing, published, VERSIONS[3]) == 1
    remote = remote_objects(s3, storage.landing)
    local = {p.relative_to(landing).as_posix(): p.read_bytes() for p in landing.rglob("*") if p.is_file()}
    assert remote == local
    assert old not in remote and person not in remote.values()
    remote = remote_objects(s3, storage.published)
    assert {k.split("/")[1] for k in remote if k.startswith("versions/")} == {VERSIONS[3]}
    assert current_remote_version(storage) == VERSIONS[3]
    assert push_landing(storage, landing) == 0  # and pushes work again


def test_forget_remote_deletes_nothing_for_another_history(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path
) -> None:
    make_landing(tmp_path / "a" / "landing", [b"x\n1\n", b"x\n2\n"])
    push_landing(storage, tmp_path / "a" / "landing")
    before = remote_objects(s3, storage.landing)
    other = tmp_path / "b" / "landing"  # as many deliveries, landed on another machine at other times
    make_landing(other, [b"y\n1\n", b"y\n2\n"])
    entries = [{**json.loads(line), "first_seen": "2026-11-28T02:00:00"} for line in (other / LANDING_LOG).open()]
    (other / LANDING_LOG).write_text("".join(json.dumps(e) + "\n" for e in entries))
    with pytest.raises(RemoteStorageError, match="does not hold the same deliveries"):
        forget_remote(RemoteStorage(storage.landing, None, storage.options), other, tmp_path / "p", "v")
    assert remote_objects(s3, storage.landing) == before


# --- credentials and errors -----------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["wrong secret", "unknown key", "no permission"])
def test_refused_credentials_give_a_clear_error_without_secrets(
    storage: RemoteStorage, s3: S3Server, tmp_path: Path, problem: str
) -> None:
    make_landing(tmp_path / "landing", [b"a\n1\n"])
    key, secret = s3.keys["nobody" if problem == "no permission" else "reader"]
    if problem == "wrong secret":
        secret = "wrong-secret-5d7f9b1c3e8a"
    if problem == "unknown key":
        key = "AKIAUNKNOWNUNKNOWN00"
    values = {NAMES["key"]: key, NAMES["secret"]: secret}
    for action in (
        lambda: push_landing(storage, tmp_path / "landing", credentials=secrets_from(values)),
        lambda: current_remote_version(storage, credentials=secrets_from(values)),
    ):
        with pytest.raises(RemoteStorageError) as caught:
            action()
        message = str(caught.value)
        assert "Check the credentials named in storage.options key/secret" in message
        assert storage.landing in message or storage.published in message
        for value in (key, secret):
            assert value not in message and value not in repr(caught.value)


def test_a_missing_credential_is_named(storage: RemoteStorage) -> None:
    with pytest.raises(RemoteStorageError, match="credential 'DIN_TEST_REMOTE_KEY' is not set"):
        current_remote_version(storage, credentials=secrets_from({}))


def test_a_missing_bucket_is_an_error_not_an_empty_bucket(storage: RemoteStorage, tmp_path: Path) -> None:
    """A typo in the bucket name must not look like 'nothing landed, nothing published yet'."""
    elsewhere = RemoteStorage("s3://no-such-bucket/landing", "s3://no-such-bucket/published", storage.options)
    for action in (lambda: pull_landing(elsewhere, tmp_path / "landing"), lambda: current_remote_version(elsewhere)):
        with pytest.raises(RemoteStorageError, match=r"^s3://no-such-bucket/.*Check that the bucket and prefix exist"):
            action()


def test_an_unreachable_endpoint_is_reported(storage: RemoteStorage, tmp_path: Path) -> None:
    down = RemoteStorage(
        storage.landing,
        None,
        {**storage.options, "endpoint_url": f"http://127.0.0.1:{free_port()}", "timeout_seconds": 2, "max_attempts": 1},
    )
    make_landing(tmp_path / "landing", [b"a\n1\n"])
    with pytest.raises(RemoteStorageError, match=r"^s3://din-data-.*/landing: "):
        push_landing(down, tmp_path / "landing")
    with pytest.raises(RemoteStorageError, match=r"storage\.published is not configured"):
        current_remote_version(down)


# --- configuration ------------------------------------------------------------------------------


def test_storage_from_config_normalises_locations() -> None:
    raw = {
        "landing": "s3://din-data/landing/",
        "published": "s3://din-data/published",
        "options": {"endpoint_url": "http://127.0.0.1:9000", "key": "DIN_S3_KEY", "secret": "DIN_S3_SECRET"},
    }
    storage = storage_from_config(raw, "din.yaml")
    assert storage == RemoteStorage("s3://din-data/landing", "s3://din-data/published", raw["options"])
    assert storage_from_config({"published": "s3://din-data"}, "din.yaml") == RemoteStorage(None, "s3://din-data", {})
    assert storage_from_config(None, "din.yaml") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"landing": "s3://din-data/l", "bucket": "x"}, "unknown setting.*bucket"),
        ({"landing": "https://example.org/x"}, "must be an s3://BUCKET/PREFIX URL"),
        ({"landing": "s3:///landing"}, "is not s3://BUCKET/PREFIX"),
        ({"landing": "s3://Din_Data/landing"}, "is not s3://BUCKET/PREFIX"),
        ({"landing": "s3://AKIA:pw@din-data/landing"}, "do not put credentials in the URL"),
        ({"published": "https://user:pw-9f8e7d@example.org/x"}, "do not put credentials in the URL"),
        ({"options": {"region": "eu-west-2"}}, "needs landing, published or both"),
        ({"landing": "s3://d-1/a", "published": "s3://d-1/a/p"}, "must not be the same prefix"),
        ({"landing": "s3://d-1/a", "options": {"endpoint": "http://x"}}, "unknown option.*endpoint"),
        ({"landing": "s3://d-1/a", "options": {"key": "K"}}, "key and secret go together"),
        ({"landing": "s3://d-1/a", "options": {"max_attempts": 0}}, "max_attempts must be a whole number"),
        ({"landing": "s3://d-1/a", "options": {"addressing_style": "odd"}}, "addressing_style must be one of"),
        ("s3://din-data", "must be a mapping"),
    ],
)
def test_storage_from_config_explains_mistakes(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        storage_from_config(raw, "/srv/din/din.yaml")
    assert str(caught.value).startswith("/srv/din/din.yaml: storage")
    assert "pw" not in str(caught.value)


def test_a_pasted_secret_is_refused_without_repeating_it() -> None:
    pasted = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    with pytest.raises(ConfigError, match="must be the NAME of an environment variable") as caught:
        storage_from_config({"landing": "s3://d-1/a", "options": {"key": "DIN_S3_KEY", "secret": pasted}}, "din.yaml")
    assert pasted not in str(caught.value)
