"""Source readers: where deliveries come from (local folders, HTTPS, S3, SFTP)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from din.config import INBOX
from sources.base import (
    FetchResult,
    FetchState,
    RemoteFile,
    SkippedFile,
    SourceAuthError,
    SourceError,
    SourceReader,
    SourceUnreachable,
)
from sources.inbox import InboxReader
from sources.local import LocalReader

__all__ = [
    "FetchResult",
    "FetchState",
    "InboxReader",
    "LocalReader",
    "RemoteFile",
    "SkippedFile",
    "SourceAuthError",
    "SourceError",
    "SourceReader",
    "SourceUnreachable",
    "open_reader",
]


def open_reader(
    location: str, options: Mapping[str, Any], credentials: Callable[[str], str] | None = None
) -> SourceReader:
    """The reader for `location`; network readers are imported only when a source needs one."""
    if location.startswith(INBOX):
        return InboxReader(location[len(INBOX) :])
    if location.startswith(("https://", "http://")):
        from sources.http import HttpReader

        return HttpReader(location, options, credentials)
    if location.startswith("s3://"):
        from sources.s3 import S3Reader

        return S3Reader(location, options, credentials)
    if location.startswith("sftp://"):
        from sources.sftp import SftpReader

        return SftpReader(location, options, credentials)
    return LocalReader(location)
