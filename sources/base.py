"""What every source reader offers: list the files a source holds, fetch one into landing."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import BinaryIO, Protocol, Self


@dataclass(frozen=True)
class RemoteFile:
    """A file a source holds, as listed (before it is fetched)."""

    location: str  # full path or URL, as recorded in the manifest
    relative_path: str  # path within the source, stable across runs: keys supersession
    size: int | None = None
    modified: float | None = None  # seconds since the epoch, when the source says
    etag: str | None = None


@dataclass(frozen=True)
class SkippedFile:
    """A file a source holds that was not taken as a delivery, and why, in the contributor's words.

    `attention` is False for clutter that operating systems and editors leave beside files (counted,
    never warned about); True for anything someone may have meant as a delivery."""

    relative_path: str
    reason: str
    attention: bool = True


#: Files that operating systems and editors leave in delivery folders; never deliveries.
CLUTTER_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini", "._*", "~$*", ".~lock.*#")
#: Names of files still being uploaded or downloaded (browsers, WinSCP, rsync, FileZilla).
UNFINISHED_NAMES = ("*.part", "*.partial", "*.crdownload", "*.filepart", "*.tmp", ".*.??????")


def skipped_by_name(relative_path: str) -> SkippedFile | None:
    """Why a file is not a delivery, judged by its name alone (every kind of source applies this)."""
    *folders, name = relative_path.replace("\\", "/").split("/")
    if any(folder.startswith(".") and folder not in (".", "..") for folder in folders):
        return SkippedFile(relative_path, "inside a hidden folder (its name starts with '.'): not taken")
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in CLUTTER_NAMES):
        return SkippedFile(relative_path, "left by the operating system or an editor, not a delivery", attention=False)
    if any(fnmatch.fnmatchcase(name, pattern) for pattern in UNFINISHED_NAMES):
        return SkippedFile(relative_path, "looks like an unfinished upload; it is taken once it has its final name")
    if name.startswith("."):
        return SkippedFile(
            relative_path, "a hidden file (its name starts with '.'): not taken; rename it if it is a delivery"
        )
    return None


@dataclass(frozen=True)
class FetchState:
    """What a previous fetch of the same file recorded, for conditional requests."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    """The outcome of one fetch: the bytes were written, or the source said nothing changed."""

    not_modified: bool
    etag: str | None = None
    last_modified: str | None = None


class SourceError(Exception):
    """A source could not be listed or fetched; `transient` says whether a retry may help."""

    transient: bool = False

    def __init__(self, message: str, *, transient: bool | None = None) -> None:
        super().__init__(message)
        if transient is not None:
            self.transient = transient


class SourceUnreachable(SourceError):
    """Network trouble, timeouts, 5xx answers: worth retrying."""

    transient = True


class SourceAuthError(SourceError):
    """Credentials missing or refused: retrying will not help."""

    transient = False


class SourceReader(Protocol):
    """Lists and fetches a source's files. Implementations never log or print credentials.

    `list_files` also fills `skipped` with the files it found but did not list, each with its reason."""

    skipped: list[SkippedFile]

    def list_files(self) -> list[RemoteFile]: ...

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult: ...


class NetworkReader:
    """A reader holding a connection: usable as a context manager that closes it."""

    def close(self) -> None:
        """Release the connection (nothing to release here)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
