"""What every source reader offers: list the files a source holds, fetch one into landing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class RemoteFile:
    """A file a source holds, as listed (before it is fetched)."""

    location: str  # full path or URL, as recorded in the manifest
    relative_path: str  # path within the source, stable across runs: keys supersession
    size: int | None = None
    modified: float | None = None  # seconds since the epoch, when the source says
    etag: str | None = None


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
    """Lists and fetches a source's files. Implementations never log or print credentials."""

    def list_files(self) -> list[RemoteFile]: ...

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult: ...
