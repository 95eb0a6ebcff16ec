"""The landing zone: every delivered file kept as delivered, immutable and content-addressed.

A file is fetched once into a temporary file while its SHA-256 is computed, then given its name
`objects/<first two hex>/<sha256>`, read-only. The same bytes delivered twice are stored once.

The temporary file has no name until it is complete (Linux's O_TMPFILE, linked into place through
/proc/self/fd): a run killed while fetching leaves nothing behind. Where the file system cannot do
that, it is a named `.incoming-*` file (private: 0600), which the next run clears (`clear_incoming`).

Content an erasure redacted is never stored again: its bytes land as the redacted copy (`substitutes`,
from the erasure register).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from din import faults

CHUNK = 1 << 20

log = logging.getLogger("din")


@dataclass(frozen=True)
class LandedFile:
    sha256: str
    size: int
    path: Path


class _HashingWriter:
    """A file-like sink that hashes and counts what is written through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def object_path(landing_dir: Path, sha256: str, suffix: str = "") -> Path:
    """Where content with this hash lives; the delivered file's suffix is kept for readers and people."""
    return landing_dir / "objects" / sha256[:2] / (sha256 + suffix.lower())


def landing_suffix(name: str) -> str:
    """The suffix a landed copy keeps: the delivered file's, if it looks like one."""
    suffix = Path(name).suffix
    return suffix if 1 < len(suffix) <= 8 and suffix[1:].isalnum() else ""


INCOMING_PREFIX = ".incoming-"  # named temporary files of landings in progress (cleared by the next writer)
INCOMING = INCOMING_PREFIX


def land(
    landing_dir: Path,
    write_into: Callable[[BinaryIO], bool | None],
    suffix: str = "",
    substitutes: Mapping[str, str] | None = None,
) -> LandedFile | None:
    """Store the bytes `write_into(sink)` writes; returns None when the writer wrote nothing new.

    `write_into` returns False when the source answered "not modified" (nothing was written).
    `substitutes` maps the SHA-256 of content an erasure redacted to its redacted copy's: such content
    is not stored, the landed file is the redacted copy.
    """
    objects = landing_dir / "objects"
    objects.mkdir(parents=True, exist_ok=True)
    try:
        if not os.path.isdir("/proc/self/fd"):
            raise OSError("no /proc to link an unnamed file through")
        fd = os.open(objects, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):  # not Linux, or a file system without unnamed files
        return _land_named(objects, landing_dir, write_into, suffix, substitutes)
    with open(fd, "w+b", closefd=True) as handle:
        sink = _HashingWriter(handle)
        wrote = write_into(cast(BinaryIO, sink))  # it writes like a binary file
        faults.checkpoint("land")
        if wrote is False:
            return None
        handle.flush()
        os.fsync(handle.fileno())
        sha = sink.digest.hexdigest()
        substitute = _redacted_copy(landing_dir, substitutes.get(sha)) if substitutes else None
        if substitute is not None:
            return substitute  # the unnamed file vanishes when closed
        target = object_path(landing_dir, sha, suffix)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.fchmod(handle.fileno(), 0o440)
            with contextlib.suppress(FileExistsError):  # the same content landed meanwhile: one copy is enough
                _link_unnamed(handle.fileno(), target)
        return LandedFile(sha, sink.size, target)


def _link_unnamed(fd: int, target: Path) -> None:
    """Give the unnamed file open as `fd` the name `target` (linkat with AT_SYMLINK_FOLLOW through /proc:
    a directory fd makes Python call linkat; plain link() would try to link the /proc entry itself)."""
    directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", target, src_dir_fd=directory, follow_symlinks=True)
    except FileExistsError:
        raise
    except OSError:  # a file system that cannot link it: copy it under a temporary name, then rename
        os.lseek(fd, 0, os.SEEK_SET)
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=INCOMING_PREFIX, delete=False) as copy:
            while chunk := os.read(fd, CHUNK):
                copy.write(chunk)
            copy.flush()
            os.fsync(copy.fileno())
        os.chmod(copy.name, 0o440)
        os.replace(copy.name, target)
    finally:
        os.close(directory)


def _land_named(
    objects: Path,
    landing_dir: Path,
    write_into: Callable[[BinaryIO], bool | None],
    suffix: str,
    substitutes: Mapping[str, str] | None,
) -> LandedFile | None:
    """`land` through a named temporary file, renamed into place (a kill leaves it for `clear_incoming`)."""
    # Not a with-block: the temporary name must outlive the handle, to be renamed into place.
    handle = tempfile.NamedTemporaryFile(dir=objects, prefix=INCOMING_PREFIX, delete=False)  # noqa: SIM115
    try:
        with handle:
            sink = _HashingWriter(handle)  # type: ignore[arg-type]
            wrote = write_into(cast(BinaryIO, sink))  # it writes like a binary file
            faults.checkpoint("land")
            handle.flush()
            os.fsync(handle.fileno())
        if wrote is False:
            os.unlink(handle.name)
            return None
        sha = sink.digest.hexdigest()
        substitute = _redacted_copy(landing_dir, substitutes.get(sha)) if substitutes else None
        if substitute is not None:
            os.unlink(handle.name)
            return substitute
        target = object_path(landing_dir, sha, suffix)
        if target.exists():
            os.unlink(handle.name)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(handle.name, 0o440)
            os.replace(handle.name, target)
        return LandedFile(sha, sink.size, target)
    except BaseException:
        if os.path.exists(handle.name):
            os.unlink(handle.name)
        raise


def _redacted_copy(landing_dir: Path, sha256: str | None) -> LandedFile | None:
    """The landed redacted copy with this hash (whatever its suffix), or None."""
    if sha256 is None:
        return None
    for path in sorted((landing_dir / "objects" / sha256[:2]).glob(sha256 + "*")):
        if path.name[:64] == sha256 and path.is_file():
            return LandedFile(sha256, path.stat().st_size, path)
    log.warning("landing: the redacted copy %s of a re-delivered file is missing; the file is landed as sent", sha256)
    return None


def clear_incoming(landing_dir: Path) -> list[Path]:
    """Delete temporary files interrupted landings left (only under the writer lock: no live run owns one)."""
    left = sorted((landing_dir / "objects").rglob(f"{INCOMING_PREFIX}*"))
    for path in left:
        path.unlink(missing_ok=True)
    return left


def land_local_file(landing_dir: Path, path: Path, suffix: str = "") -> LandedFile:
    """Land a local file (used by tests and `din forget`'s redaction)."""

    def copy(sink: BinaryIO) -> bool:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                sink.write(chunk)
        return True

    landed = land(landing_dir, copy, suffix)
    assert landed is not None
    return landed


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
