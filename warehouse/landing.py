"""The landing zone: every delivered file kept as delivered, immutable and content-addressed.

A file is fetched once into a temporary file (private: 0600) while its SHA-256 is computed, then
renamed to `objects/<first two hex>/<sha256>`, read-only. The same bytes delivered twice are stored
once. Content an erasure redacted is never stored again: its bytes land as the redacted copy
(`substitutes`, from the erasure register).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

CHUNK = 1 << 20
INCOMING = ".incoming-"  # temporary files of landings in progress (removed by the next writer if left)

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
    # Not a with-block: the temporary name must outlive the handle, to be renamed into place.
    handle = tempfile.NamedTemporaryFile(dir=objects, prefix=INCOMING, delete=False)  # noqa: SIM115
    try:
        with handle:
            sink = _HashingWriter(handle)  # type: ignore[arg-type]
            wrote = write_into(cast(BinaryIO, sink))  # it writes like a binary file
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
