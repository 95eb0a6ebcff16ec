"""S3 and S3-compatible object storage (MinIO, Ceph, ...): every object under `s3://bucket/prefix`."""

from __future__ import annotations

import email.utils
import errno
import posixpath
import shutil
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import botocore.exceptions
import s3fs
from s3fs.utils import FileExpired

from din.sources.base import FetchResult, FetchState, RemoteFile, SourceAuthError, SourceError, SourceUnreachable
from din.sources.credentials import Resolver, Secrets, check_options, describe, seconds, strip_userinfo
from din.sources.local import IGNORED_NAMES

OPTIONS = (
    "endpoint_url",
    "region",
    "key",
    "secret",
    "session_token",
    "anonymous",
    "addressing_style",
    "timeout_seconds",
    "max_attempts",
)
ADDRESSING_STYLES = ("auto", "path", "virtual")
CHUNK = 1 << 20
BLOCK = 8 << 20
TRANSIENT_ERRNOS = {getattr(errno, "EREMOTEIO", errno.EIO), errno.EBUSY, errno.ETIMEDOUT}


class S3Reader:
    """Lists every object under a bucket prefix (recursively) and streams objects into landing."""

    def __init__(self, location: str, options: Mapping[str, Any], credentials: Resolver | None = None) -> None:
        check_options(location, options, OPTIONS)
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
        self._timeout = seconds(options, "timeout_seconds", 30)
        self._check_credentials_options(options)
        self._max_attempts = _max_attempts(options.get("max_attempts", 3))
        self._config = self._client_config()
        self._secrets = Secrets(credentials)
        self._filesystem: s3fs.S3FileSystem | None = None

    def __repr__(self) -> str:
        endpoint = self._options.get("endpoint_url") or "aws"
        return f"S3Reader({self.location!r}, endpoint={strip_userinfo(str(endpoint))!r})"

    def __enter__(self) -> S3Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Forget the client (its connections close with it)."""
        self._filesystem = None

    def list_files(self) -> list[RemoteFile]:
        """Every object under the prefix, with size, modification time and ETag."""
        with self._translated(self.location):
            found = self._fs().find(self._root, detail=True)
        files = []
        for path, info in sorted(found.items()):
            name = posixpath.basename(path)
            if info.get("type") != "file" or path.endswith("/") or _ignored(name):
                continue
            files.append(
                RemoteFile(
                    location=f"s3://{path}",
                    relative_path=path[len(self._root) + 1 :] if path.startswith(self._root + "/") else name,
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
            self._filesystem = s3fs.S3FileSystem(
                skip_instance_cache=True,
                use_listings_cache=False,
                endpoint_url=self._options.get("endpoint_url"),
                client_kwargs={"region_name": self._options["region"]} if self._options.get("region") else {},
                config_kwargs=self._config,
                **self._credentials(),
            )
        return self._filesystem

    def _client_config(self) -> dict[str, Any]:
        style = str(self._options.get("addressing_style") or ("path" if self._options.get("endpoint_url") else "auto"))
        if style not in ADDRESSING_STYLES:
            raise SourceError(f"option addressing_style must be one of {', '.join(ADDRESSING_STYLES)}, not {style!r}")
        return {
            "connect_timeout": self._timeout,
            "read_timeout": self._timeout,
            "retries": {"max_attempts": self._max_attempts, "mode": "standard"},
            "s3": {"addressing_style": style},
        }

    def _credentials(self) -> dict[str, Any]:
        """s3fs keyword arguments: named key and secret, anonymous access, or the default AWS chain."""
        options = self._options
        if options.get("anonymous"):
            return {"anon": True}
        if not options.get("key"):
            return {}
        found = {"key": self._secrets.get(options["key"]), "secret": self._secrets.get(options["secret"])}
        if options.get("session_token"):
            found["token"] = self._secrets.get(options["session_token"])
        return found

    @staticmethod
    def _check_credentials_options(options: Mapping[str, Any]) -> None:
        if bool(options.get("key")) != bool(options.get("secret")):
            raise SourceError("options key and secret go together: give the names of both credentials")
        if options.get("anonymous") and options.get("key"):
            raise SourceError("option anonymous: true cannot be combined with key and secret")

    @contextmanager
    def _translated(self, where: str) -> Generator[None, None, None]:
        """Turn s3fs/botocore exceptions into SourceErrors whose text holds no secret."""
        try:
            yield
        except SourceError:
            raise
        except Exception as error:
            mapped = _classify(error, f"{where}: {describe(error, self._secrets)}")
            if mapped is None:
                raise
            raise mapped from None


def _classify(error: Exception, message: str) -> SourceError | None:
    """The SourceError for a storage error, or None for a programming error that should surface as is."""
    if isinstance(error, PermissionError | botocore.exceptions.NoCredentialsError):
        return SourceAuthError(
            f"{message.rstrip('.')}. Check the credentials named in options key/secret and the bucket policy"
        )
    if isinstance(error, botocore.exceptions.PartialCredentialsError):
        return SourceAuthError(message)
    if isinstance(error, FileNotFoundError):
        return SourceError(f"{message.rstrip('.')}. Check the bucket and prefix")
    transient = (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.HTTPClientError,
        TimeoutError,
        FileExpired,
        ConnectionError,
    )
    if isinstance(error, transient) or (isinstance(error, OSError) and error.errno in TRANSIENT_ERRNOS):
        return SourceUnreachable(message)
    if isinstance(error, botocore.exceptions.ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if status in (401, 403):
            return SourceAuthError(message)
        return SourceUnreachable(message) if status == 429 or status >= 500 else SourceError(message)
    if isinstance(error, OSError | botocore.exceptions.BotoCoreError):
        return SourceError(message)
    return None


def _max_attempts(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SourceError(f"option max_attempts must be a whole number from 1, not {value!r}")
    return value


def _ignored(name: str) -> bool:
    return name in IGNORED_NAMES or name.startswith(("~$", "."))


def _timestamp(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else None


def _http_date(value: Any) -> str | None:
    """An HTTP date (as Last-Modified carries it) for a timezone-aware datetime."""
    return email.utils.format_datetime(value.astimezone(UTC), usegmt=True) if isinstance(value, datetime) else None
