"""S3 and S3-compatible object storage (MinIO, Ceph, ...): every object under `s3://bucket/prefix`."""

from __future__ import annotations

import email.utils
import posixpath
import shutil
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from sources.base import (
    FetchResult,
    FetchState,
    NetworkReader,
    RemoteFile,
    SkippedFile,
    SourceAuthError,
    SourceError,
    skipped_by_name,
)
from sources.credentials import Resolver, Secrets, check_options, describe, strip_userinfo
from sources.object_storage import classify, filesystem

if TYPE_CHECKING:
    import s3fs

CHUNK = 1 << 20
BLOCK = 8 << 20


class S3Reader(NetworkReader):
    """Lists every object under a bucket prefix (recursively) and streams objects into landing."""

    def __init__(self, location: str, options: Mapping[str, Any], credentials: Resolver | None = None) -> None:
        check_options(location, options, "s3")
        parts = urlsplit(location)
        if "@" in parts.netloc:
            raise SourceAuthError(
                f"{strip_userinfo(location)}: do not put credentials in the URL; use options key and secret"
            )
        if not parts.netloc:
            raise SourceError(f"{location}: an S3 location is s3://BUCKET or s3://BUCKET/PREFIX")
        self.location = location
        self._root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
        self._options = dict(options)
        self._secrets = Secrets(credentials)
        self._filesystem: s3fs.S3FileSystem | None = None
        self.skipped: list[SkippedFile] = []

    def __repr__(self) -> str:
        endpoint = self._options.get("endpoint_url") or "aws"
        return f"S3Reader({self.location!r}, endpoint={strip_userinfo(str(endpoint))!r})"

    def close(self) -> None:
        """Forget the client (its connections close with it)."""
        self._filesystem = None

    def list_files(self) -> list[RemoteFile]:
        """Every object under the prefix, with size, modification time and ETag."""
        with self._translated(self.location):
            found = self._fs().find(self._root, detail=True)
        files = []
        self.skipped = []
        for path, info in sorted(found.items()):
            name = posixpath.basename(path)
            if info.get("type") != "file" or path.endswith("/"):
                continue
            relative = path[len(self._root) + 1 :] if path.startswith(self._root + "/") else name
            skipped = skipped_by_name(relative)
            if skipped is not None:
                self.skipped.append(skipped)
                continue
            files.append(
                RemoteFile(
                    location=f"s3://{path}",
                    relative_path=relative,
                    size=info.get("size"),
                    modified=_timestamp(info.get("LastModified")),
                    etag=info.get("ETag"),
                )
            )
        return files

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        """Stream the object into `dest`, unless its ETag equals `previous.etag` (then nothing is written)."""
        path = file.location.removeprefix("s3://")
        with self._translated(file.location), self._fs().open(path, "rb", block_size=BLOCK) as handle:
            info = handle.details  # one HEAD; reads then insist on this ETag (If-Match)
            etag, last_modified = info.get("ETag"), _http_date(info.get("LastModified"))
            if previous is not None and previous.etag and previous.etag == etag:
                return FetchResult(not_modified=True, etag=etag, last_modified=last_modified)
            shutil.copyfileobj(handle, dest, CHUNK)
        return FetchResult(not_modified=False, etag=etag, last_modified=last_modified)

    def _fs(self) -> s3fs.S3FileSystem:
        if self._filesystem is None:
            self._filesystem = filesystem(self._options, self._secrets, default_timeout=30)
        return self._filesystem

    @contextmanager
    def _translated(self, where: str) -> Generator[None, None, None]:
        """Turn s3fs/botocore exceptions into SourceErrors whose text holds no secret."""
        try:
            yield
        except SourceError:
            raise
        except Exception as error:
            mapped = classify(error, f"{where}: {describe(error, self._secrets)}")
            if mapped is None:
                raise
            raise mapped from None


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _http_date(value: Any) -> str | None:
    """An HTTP date (as Last-Modified carries it) for a timezone-aware datetime."""
    return email.utils.format_datetime(value.astimezone(UTC), usegmt=True) if isinstance(value, datetime) else None
