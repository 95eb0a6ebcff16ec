"""Durable copies of landing and published data on S3-compatible object storage.

DuckDB stays local (one writer, one file); what cannot be recreated is mirrored into a bucket:

    <landing>/objects/<2 hex>/<sha256><suffix>   every landed object, uploaded once (content-addressed)
    <landing>/deliveries.jsonl                    the delivery log, uploaded after the objects it names
    <landing>/erasures/blocklist.json             the erasure register (`warehouse.blocklist`), before the log
    <published>/versions/<version>/...            each published version; `.complete` is written last
    <published>/CURRENT                           the version to read, written after `.complete`

Object PUTs are atomic, so a reader that follows CURRENT sees a complete version or the previous
one. Credentials are named in the options (like network sources) and resolved only when the
bucket is used; their values never reach a message or a log.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from din import faults
from din.config import RemoteStorage
from din.errors import DinError
from din.paths import DataPaths
from sources.base import SourceError
from sources.credentials import Resolver, Secrets, describe
from sources.object_storage import classify, filesystem
from warehouse.blocklist import REGISTER, read_register, register_path, write_private
from warehouse.landing import file_sha256
from warehouse.manifest import LANDING_LOG
from warehouse.publish import KEEP_VERSIONS, current_version

if TYPE_CHECKING:
    import s3fs

log = logging.getLogger("din")

CURRENT = "CURRENT"
COMPLETE = ".complete"
BATCH = 16  # concurrent transfers
INCOMING = ".incoming-remote-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


class RemoteStorageError(DinError):
    """The bucket could not be read or written, or holds something unexpected; names no secret."""


# --- landing --------------------------------------------------------------------------------------


def push_landing(storage: RemoteStorage, landing_dir: Path, *, credentials: Resolver | None = None) -> int:
    """Upload landing objects the bucket lacks (listed once, matched by key), then the delivery log.

    Returns how many objects were uploaded. The log goes last, so the bucket's log never names an
    object the bucket lacks; a bucket log this machine's log does not extend is never overwritten."""
    root = _root(storage.landing, "landing")
    with _bucket(storage, credentials, storage.landing) as fs:
        uploaded = _upload_missing(fs, root, landing_dir)
        _push_register(fs, root, landing_dir)
        _push_log(fs, root, landing_dir)
    log.info("landing: %d object(s) uploaded to %s", uploaded, storage.landing)
    return uploaded


def pull_landing(storage: RemoteStorage, landing_dir: Path, *, credentials: Resolver | None = None) -> int:
    """Download the objects the delivery log names that are missing locally (checked against their
    SHA-256, stored read-only), then the log when the local one is shorter. Returns how many objects."""
    root = _root(storage.landing, "landing")
    path = landing_dir / LANDING_LOG
    local_log = path.read_bytes() if path.is_file() else b""
    with _bucket(storage, credentials, storage.landing) as fs:
        remote_log = _read_or_none(fs, f"{root}/{LANDING_LOG}") or b""
        newer = _newer_log(remote_log, local_log, f"s3://{root}/{LANDING_LOG}", path)
        wanted = _logged_keys(_log_entries(newer or local_log), landing_dir) - set(_local_objects(landing_dir))
        remote = _listed(fs, root, "objects")
        missing = sorted(wanted & remote)
        _download_objects(fs, root, landing_dir, missing)
        _pull_register(fs, root, landing_dir)
        if newer is not None:
            _write_atomically(path, newer)
    if wanted - remote:
        log.warning("landing: %d logged object(s) are neither here nor in %s", len(wanted - remote), storage.landing)
    log.info("landing: %d object(s) downloaded from %s", len(missing), storage.landing)
    return len(missing)


def forget_remote(
    storage: RemoteStorage,
    landing_dir: Path,
    published_dir: Path,
    version: str,
    *,
    credentials: Resolver | None = None,
    gone: Sequence[str] = (),
) -> int:
    """After `din forget`: the bucket forgets too. Uploads the redacted landing objects and the rewritten
    log, deletes the objects the log no longer names (and this machine no longer holds) and the objects
    `gone` names (landing keys the erasure replaced: found again when a first attempt was interrupted
    after the log was replaced), then pushes `version` and deletes every other remote version. Returns
    how many landing objects were deleted."""
    deleted = 0
    if storage.landing:
        root = _root(storage.landing, "landing")
        with _bucket(storage, credentials, storage.landing) as fs:
            _push_register(fs, root, landing_dir)
            deleted = _forget_landing(fs, root, landing_dir, gone)
    if storage.published:
        push_published(storage, published_dir, version, credentials=credentials)
        with _bucket(storage, credentials, storage.published) as fs:
            _prune(fs, _root(storage.published, "published"), version, keep=0)
    log.info("erasure: %d landing object(s) deleted from the bucket; only version %s kept there", deleted, version)
    return deleted


def forget_remote_landing(
    storage: RemoteStorage, landing_dir: Path, gone: Sequence[str], *, credentials: Resolver | None = None
) -> int:
    """After a run redacted landing copies (rows of erased panellists sent again): the bucket's landing
    forgets the originals (`gone`) too. Returns how many objects were deleted."""
    if not storage.landing:
        return 0
    root = _root(storage.landing, "landing")
    with _bucket(storage, credentials, storage.landing) as fs:
        _push_register(fs, root, landing_dir)
        return _forget_landing(fs, root, landing_dir, gone)


def _forget_landing(fs: s3fs.S3FileSystem, root: str, landing_dir: Path, gone: Sequence[str] = ()) -> int:
    """Replace the bucket's log with the local (redacted) one, after checking it is the same history."""
    path = landing_dir / LANDING_LOG
    local = path.read_bytes() if path.is_file() else b""
    remote = _read_or_none(fs, f"{root}/{LANDING_LOG}") or b""
    before, after = _log_entries(remote), _log_entries(local)
    if [_identity(e) for e in before] != [_identity(e) for e in after][: len(before)]:
        raise RemoteStorageError(
            f"s3://{root}/{LANDING_LOG} does not hold the same deliveries as {path}; nothing was deleted. "
            "Restore landing from the bucket (din rebuild) and repeat the erasure."
        )
    kept = _logged_keys(after, landing_dir)
    candidates = _logged_keys(before, landing_dir) | set(gone)
    stale = sorted(k for k in candidates - kept if not (landing_dir / k).exists())
    _upload_missing(fs, root, landing_dir)
    if remote != local:
        fs.pipe_file(f"{root}/{LANDING_LOG}", local)
    faults.checkpoint("forget-remote-log")  # the bucket's log names the redacted copies; the originals are still there
    present = _listed(fs, root, "objects")
    doomed = [f"{root}/{key}" for key in stale if key in present]
    if doomed:
        fs.rm(doomed)
    return len(doomed)


def _push_register(fs: s3fs.S3FileSystem, root: str, landing_dir: Path) -> None:
    """Upload the erasure register unless the bucket's is the same; never drop erasures the bucket knows."""
    path = register_path(landing_dir)
    if not path.is_file():
        return
    local = path.read_bytes()
    remote = _read_or_none(fs, f"{root}/{REGISTER}")
    if remote == local:
        return
    if remote is not None and not _tokens(remote) <= read_register(landing_dir).tokens:
        raise RemoteStorageError(
            f"s3://{root}/{REGISTER} records erasures that {path} lacks; it is not overwritten. Restore landing "
            "from the bucket first (din rebuild), then repeat."
        )
    fs.pipe_file(f"{root}/{REGISTER}", local)


def _pull_register(fs: s3fs.S3FileSystem, root: str, landing_dir: Path) -> None:
    """Restore the erasure register from the bucket when this machine lacks it, or lacks erasures it records."""
    remote = _read_or_none(fs, f"{root}/{REGISTER}")
    if remote is None:
        return
    path = register_path(landing_dir)
    if not path.is_file() or not _tokens(remote) <= read_register(landing_dir).tokens:
        if path.is_file() and not read_register(landing_dir).tokens <= _tokens(remote):
            raise RemoteStorageError(
                f"{path} and s3://{root}/{REGISTER} each record erasures the other lacks; nothing was restored. "
                "Compare them by hand."
            )
        write_private(path, remote)


def _tokens(data: bytes) -> frozenset[str]:
    try:
        return frozenset(str(e["token"]) for e in json.loads(data).get("entries") or [])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise RemoteStorageError("the bucket's erasure register is not readable; nothing was restored") from None


def _identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """What an erasure leaves unchanged in a log entry (it rewrites sha256, landing_path and size)."""
    return tuple(entry.get(k) for k in ("delivery_id", "source", "relative_path", "first_seen", "run_id"))


def _log_entries(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]


def _logged_keys(entries: Sequence[Mapping[str, Any]], landing_dir: Path) -> set[str]:
    """The landing objects log entries name, as keys relative to the landing folder."""
    keys = set()
    for entry in entries:
        path = Path(str(entry.get("landing_path") or ""))
        if path.is_absolute():
            path = path.relative_to(landing_dir) if path.is_relative_to(landing_dir) else Path()
        if path.parts[:1] == ("objects",):
            keys.add(path.as_posix())
    return keys


def _upload_missing(fs: s3fs.S3FileSystem, root: str, landing_dir: Path) -> int:
    """Upload the local objects the bucket lacks (one listing; keys name content); returns how many."""
    local = _local_objects(landing_dir)
    remote = _listed(fs, root, "objects")
    missing = [rel for rel in sorted(local) if rel not in remote]
    _upload(fs, [(local[rel], f"{root}/{rel}") for rel in missing])
    return len(missing)


def _local_objects(landing_dir: Path) -> dict[str, Path]:
    """Landed objects by key relative to the landing folder (`objects/ab/ab12...csv`)."""
    found = (landing_dir / "objects").glob("*/*")
    return {p.relative_to(landing_dir).as_posix(): p for p in found if p.is_file() and not p.name.startswith(".")}


def _push_log(fs: s3fs.S3FileSystem, root: str, landing_dir: Path) -> None:
    """Upload the local log unless identical; refuse when it does not extend the bucket's."""
    path = landing_dir / LANDING_LOG
    if not path.is_file():
        return
    local = path.read_bytes()
    remote = _read_or_none(fs, f"{root}/{LANDING_LOG}")
    if remote is not None and not local.startswith(remote):
        raise RemoteStorageError(
            f"s3://{root}/{LANDING_LOG} holds deliveries that {path} lacks, or {path} was rewritten by an "
            "erasure; it is not overwritten. On a new machine, restore landing from the bucket first "
            "(din rebuild); after `din forget`, let the bucket forget too (warehouse.remote.forget_remote)."
        )
    if remote != local:
        fs.pipe_file(f"{root}/{LANDING_LOG}", local)


def _newer_log(remote: bytes, local: bytes, remote_name: str, local_name: Path) -> bytes | None:
    """The bucket's log when it extends the local one, None when the local one is as long or longer."""
    if len(remote) <= len(local):
        return None
    if not remote.startswith(local):
        raise RemoteStorageError(
            f"{local_name} and {remote_name} disagree (neither extends the other); nothing was restored. "
            "Compare them by hand."
        )
    return remote


def _download_objects(fs: s3fs.S3FileSystem, root: str, landing_dir: Path, keys: Sequence[str]) -> None:
    """Fetch into hidden temporary names, check each hash, then rename into place read-only."""
    pairs = [(key, landing_dir / key) for key in keys]
    temporary = [target.with_name(INCOMING + target.name) for _, target in pairs]
    try:
        for path in temporary:
            path.parent.mkdir(parents=True, exist_ok=True)
        if pairs:
            fs.get([f"{root}/{key}" for key, _ in pairs], [str(p) for p in temporary], batch_size=BATCH)
        for (key, target), path in zip(pairs, temporary, strict=True):
            _check_hash(path, target.name, f"s3://{root}/{key}")
            _fsync(path)
            os.chmod(path, 0o440)
            os.replace(path, target)
    finally:
        for path in temporary:
            path.unlink(missing_ok=True)


def _check_hash(path: Path, name: str, where: str) -> None:
    expected = name[:64]
    if _SHA256.fullmatch(expected) and file_sha256(path) != expected:
        raise RemoteStorageError(f"{where} does not hold the bytes its name promises (SHA-256 differs); not restored.")


# --- published ----------------------------------------------------------------------------------


def push_published(
    storage: RemoteStorage, published_dir: Path, version: str, *, credentials: Resolver | None = None
) -> None:
    """Upload `versions/<version>/**`, then its `.complete` marker, then CURRENT naming it; prune old versions.

    A failure anywhere before the CURRENT write leaves CURRENT naming the previous version."""
    root = _root(storage.published, "published")
    folder = published_dir / "versions" / _version_name(version)
    if not (folder / "ops" / "publish.json").is_file():
        raise RemoteStorageError(f"{folder} is not a published version (it has no ops/publish.json).")
    files = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    target = f"{root}/versions/{version}"
    marker = {"version": version, "files": {rel: path.stat().st_size for rel, path in files.items()}}
    with _bucket(storage, credentials, storage.published) as fs:
        _upload(fs, [(path, f"{target}/{rel}") for rel, path in files.items()])
        fs.pipe_file(f"{target}/{COMPLETE}", json.dumps(marker, indent=2).encode())
        fs.pipe_file(f"{root}/{CURRENT}", version.encode())
        removed = _prune(fs, root, version, keep=KEEP_VERSIONS)
    log.info("published: version %s is CURRENT in %s; removed %d old version(s)", version, storage.published, removed)


def push_current(storage: RemoteStorage, paths: DataPaths, *, credentials: Resolver | None = None) -> str | None:
    """Mirror the current version unless the bucket's CURRENT names it already (so a run after a failed
    push catches up even when it publishes nothing new). Returns the version pushed, or None."""
    version = current_version(paths)
    if version is None or current_remote_version(storage, credentials=credentials) == version:
        return None
    push_published(storage, paths.published, version, credentials=credentials)
    return version


def current_remote_version(storage: RemoteStorage, *, credentials: Resolver | None = None) -> str | None:
    """The version the bucket's CURRENT names, or None before the first push."""
    root = _root(storage.published, "published")
    with _bucket(storage, credentials, storage.published) as fs:
        body = _read_or_none(fs, f"{root}/{CURRENT}")
    name = body.decode("utf-8").strip() if body is not None else ""
    return name or None


def _prune(fs: s3fs.S3FileSystem, root: str, current: str, keep: int) -> int:
    """Delete all but the newest `keep` complete versions (never `current`); returns how many."""
    listed = _listed(fs, root, "versions")
    versions = {key.split("/")[1] for key in listed}
    complete = sorted(v for v in versions if f"versions/{v}/{COMPLETE}" in listed)
    stale = sorted(versions - set(complete[-keep:] if keep else ()) - {current})
    for version in stale:
        if f"versions/{version}/{COMPLETE}" in listed:  # first, so a half-deleted version never looks complete
            fs.rm_file(f"{root}/versions/{version}/{COMPLETE}")
        fs.rm(f"{root}/versions/{version}", recursive=True)
    return len(stale)


def _version_name(version: str) -> str:
    if not version or "/" in version or version.startswith("."):
        raise RemoteStorageError(f"{version!r} is not a version name.")
    return version


# --- the bucket ---------------------------------------------------------------------------------


def _root(url: str | None, which: str) -> str:
    """`bucket/prefix` (s3fs's form of a URL); refuses an unconfigured location."""
    if not url:
        raise RemoteStorageError(f"storage.{which} is not configured.")
    return url.removeprefix("s3://")


@contextmanager
def _bucket(storage: RemoteStorage, credentials: Resolver | None, where: str | None) -> Iterator[s3fs.S3FileSystem]:
    """An s3fs filesystem; storage and credential errors inside become RemoteStorageErrors without secrets."""
    secrets = Secrets(credentials)
    try:
        yield filesystem(storage.options, secrets, default_timeout=60)
    except RemoteStorageError:
        raise
    except SourceError as error:  # a credential that is not set
        raise RemoteStorageError(f"{where}: {secrets.scrub(str(error))}") from None
    except Exception as error:
        mapped = classify(error, f"{where}: {describe(error, secrets)}", options_name="storage.options")
        if mapped is None:
            raise
        raise RemoteStorageError(str(mapped)) from None


def _listed(fs: s3fs.S3FileSystem, root: str, folder: str) -> set[str]:
    """Keys under `root/folder`, relative to `root` (one listing)."""
    start = f"{root}/"
    return {path[len(start) :] for path in fs.find(f"{root}/{folder}") if path.startswith(start)}


def _upload(fs: s3fs.S3FileSystem, pairs: Sequence[tuple[Path, str]]) -> None:
    """Upload (local file, bucket path) pairs concurrently; the first failure stops the rest and is raised."""
    if pairs:
        fs.put([str(local) for local, _ in pairs], [remote for _, remote in pairs], batch_size=BATCH)


def _read_or_none(fs: s3fs.S3FileSystem, path: str) -> bytes | None:
    """The object's bytes, or None when there is no such object (a missing bucket is an error)."""
    try:
        data: bytes = fs.cat_file(path)
        return data
    except FileNotFoundError:
        if not fs.exists(path.split("/", 1)[0]):
            raise
        return None


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    _fsync(temporary)
    os.replace(temporary, path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
