"""HTTPS (and HTTP) sources: one file URL, or a JSON listing of file URLs.

Credentials go only to the origin (scheme, host, port) of the configured location, never to other
hosts a listing points at, and never over plain http:// except to this machine unless allowed.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import os
import posixpath
import ssl
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from din.source_options import HTTP_AUTH_FIELDS
from sources.base import (
    FetchResult,
    FetchState,
    NetworkReader,
    RemoteFile,
    SkippedFile,
    SourceAuthError,
    SourceError,
    SourceUnreachable,
    skipped_by_name,
)
from sources.credentials import Resolver, Secrets, check_options, describe, seconds, strip_userinfo

LISTING_MAX_BYTES = 16 << 20  # a bigger JSON answer is a delivery, not a listing
CHUNK = 1 << 20
USER_AGENT = "din-engagement"
RETRY_STATUSES = (408, 425, 429)


class HttpReader(NetworkReader):
    """Lists and fetches files served over HTTPS: one file, or the files a JSON listing names."""

    def __init__(self, location: str, options: Mapping[str, Any], credentials: Resolver | None = None) -> None:
        check_options(location, options, "http")
        parts = urlsplit(location)
        if parts.username or parts.password:
            raise SourceAuthError(
                f"{strip_userinfo(location)}: do not put credentials in the URL; use options.auth "
                "with the name of a credential (see docs/sources.md)"
            )
        self.location = location
        self._origin = _origin(location)
        self._listing = _listing_mode(options.get("listing", "auto"))
        self._timeout = seconds(options, "timeout_seconds", 30)
        self._ca_bundle = options.get("ca_bundle")
        if self._ca_bundle and not os.path.isfile(str(self._ca_bundle)):
            raise SourceError(f"option ca_bundle: {self._ca_bundle} is not a file of PEM certificates")
        self._auth_options = _auth_options(options.get("auth"))
        self.skipped: list[SkippedFile] = []
        if self._auth_options and not _may_send_credentials(location, bool(options.get("allow_insecure_http"))):
            raise SourceAuthError(
                f"{location}: refusing to send credentials over plain http:// to a remote host; "
                "use https:// (or set allow_insecure_http: true on a trusted network)"
            )
        self._secrets = Secrets(credentials)
        self._auth_header: str | None = None
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        auth = self._auth_options["type"] if self._auth_options else "none"
        return f"HttpReader({self.location!r}, listing={self._listing!r}, auth={auth!r})"

    def close(self) -> None:
        """Close the connection pool."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def list_files(self) -> list[RemoteFile]:
        """The file at the location, or the files its JSON listing names."""
        with self._translated(self.location), self._stream(self.location) as response:
            self._check_status(response, self.location)
            if self._listing == "none" or (self._listing == "auto" and not _is_json(response)):
                return [_file_from_headers(self.location, response)]
            body = _read_capped(response)
        strict = self._listing == "json"
        if body is None:
            if strict:
                raise SourceError(f"{self.location}: the listing is larger than {LISTING_MAX_BYTES >> 20} MB")
            return [_file_from_headers(self.location, response)]
        items = _listing_items(body, self.location, strict=strict)
        if items is None:
            return [_file_from_headers(self.location, response)]
        listed = _listed_files(items, str(response.url))
        self.skipped = [s for s in map(skipped_by_name, (f.relative_path for f in listed)) if s is not None]
        taken = {s.relative_path for s in self.skipped}
        return [f for f in listed if f.relative_path not in taken]

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        """Stream `file` into `dest`; with `previous`, ask the server whether it changed first."""
        url = file.location
        headers = _conditional_headers(previous)
        with self._translated(url), self._stream(url, headers) as response:
            if response.status_code == 304 and previous is not None and headers:
                return FetchResult(
                    not_modified=True,
                    etag=response.headers.get("etag") or previous.etag,
                    last_modified=response.headers.get("last-modified") or previous.last_modified,
                )
            self._check_status(response, url)
            for chunk in response.iter_bytes(CHUNK):
                dest.write(chunk)
            return FetchResult(
                not_modified=False,
                etag=response.headers.get("etag"),
                last_modified=response.headers.get("last-modified"),
            )

    @contextmanager
    def _stream(self, url: str, headers: Mapping[str, str] | None = None) -> Generator[httpx.Response, None, None]:
        with self._http().stream("GET", url, headers=headers) as response:
            yield response

    def _http(self) -> httpx.Client:
        if self._client is None:
            verify: ssl.SSLContext | bool = True
            if self._ca_bundle:
                verify = ssl.create_default_context(cafile=str(self._ca_bundle))
            self._client = httpx.Client(
                timeout=self._timeout,
                follow_redirects=True,
                verify=verify,
                headers={"User-Agent": USER_AGENT},
                event_hooks={"request": [self._sign]},
            )
        return self._client

    def _sign(self, request: httpx.Request) -> None:
        """Add the credential to every request (redirects included) to the configured origin, and only there.

        A listing entry or a redirect that leads to another host gets no credential: httpx itself would
        drop only `Authorization` on a cross-origin redirect, not a custom header such as `X-Api-Key`.
        """
        if self._auth_options is None:
            return
        name = self._auth_options.get("name", "Authorization")
        if _origin(str(request.url)) != self._origin:
            request.headers.pop(name, None)
            return
        if self._auth_header is None:
            self._auth_header = self._header_value(self._auth_options)
        request.headers[name] = self._auth_header

    def _header_value(self, spec: Mapping[str, str]) -> str:
        kind = spec["type"]
        if kind == "bearer":
            return f"Bearer {self._secrets.get(spec['token'])}"
        if kind == "basic":
            pair = f"{spec['username']}:{self._secrets.get(spec['password'])}".encode()
            return f"Basic {base64.b64encode(pair).decode('ascii')}"
        return self._secrets.get(spec["value"])

    @contextmanager
    def _translated(self, url: str) -> Generator[None, None, None]:
        """Turn httpx's exceptions into SourceErrors whose text holds no secret."""
        try:
            yield
        except httpx.TimeoutException as error:
            raise SourceUnreachable(f"{url}: no answer within {self._timeout:g} s ({type(error).__name__})") from None
        except (httpx.UnsupportedProtocol, httpx.TooManyRedirects, httpx.InvalidURL) as error:
            raise SourceError(f"{url}: {describe(error, self._secrets)}") from None
        except httpx.TransportError as error:
            raise SourceUnreachable(f"{url}: {describe(error, self._secrets)}") from None

    def _check_status(self, response: httpx.Response, url: str) -> None:
        code = response.status_code
        if code < 300:
            return
        reason = self._secrets.scrub(response.reason_phrase or "")
        status = f"HTTP {code} {reason}".strip()
        if code in (401, 403):
            hint = "check the credential named in options.auth" if self._auth_options else "set options.auth"
            raise SourceAuthError(f"{url}: the server refused access ({status}); {hint}")
        if code in RETRY_STATUSES or code >= 500:
            retry_after = response.headers.get("retry-after")
            later = f"; the server asks to retry after {retry_after}" if retry_after else ""
            raise SourceUnreachable(f"{url}: {status}, a temporary failure{later}")
        if code in (404, 410):
            raise SourceError(f"{url}: not found ({status}); check the location or the listing")
        raise SourceError(f"{url}: unexpected answer {status}")


def _listing_mode(value: Any) -> str:
    """The listing mode (`true`/`false` are read as json/none); `din.source_options` checked the value."""
    return "none" if value is False else "json" if value is True else str(value)


def _auth_options(raw: Any) -> dict[str, str] | None:
    """`options.auth` as text fields (its shape was checked by `din.source_options.http_auth`)."""
    if raw is None:
        return None
    kind = str(raw["type"])
    return {"type": kind, **{field: str(raw[field]) for field in HTTP_AUTH_FIELDS[kind]}}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _may_send_credentials(url: str, allow_insecure: bool) -> bool:
    parts = urlsplit(url)
    if parts.scheme == "https" or allow_insecure:
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_json(response: httpx.Response) -> bool:
    media = str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None when it is larger than a listing may be."""
    body = bytearray()
    for chunk in response.iter_bytes(CHUNK):
        body.extend(chunk)
        if len(body) > LISTING_MAX_BYTES:
            return None
    return bytes(body)


def _listing_items(body: bytes, url: str, *, strict: bool) -> list[Any] | None:
    """The entries of a listing, or None when (auto-detecting) the JSON is a delivery, not a listing."""
    try:
        data = json.loads(body)
    except ValueError:
        if strict:
            raise SourceError(f"{url}: the listing is not valid JSON") from None
        return None
    items = data.get("files") if isinstance(data, dict) else data
    shaped = isinstance(items, list) and all(
        isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("url"), str)) for item in items
    )
    if shaped and (strict or isinstance(data, dict) or items):
        return items
    if strict:
        raise SourceError(
            f"{url}: a listing must be a JSON array of URLs or of objects with 'url' "
            '(and optional name, size, etag, modified), or an object {"files": [...]}'
        )
    return None


def _listed_files(items: list[Any], base_url: str) -> list[RemoteFile]:
    files = [_listed_file(item, base_url, index) for index, item in enumerate(items)]
    seen: set[str] = set()
    for file in files:
        if file.relative_path in seen:
            raise SourceError(
                f"{strip_userinfo(base_url)}: the listing names '{file.relative_path}' twice; "
                "each file needs its own name (it keys re-deliveries)"
            )
        seen.add(file.relative_path)
    return files


def _listed_file(item: Any, base_url: str, index: int) -> RemoteFile:
    entry: Mapping[str, Any] = {"url": item} if isinstance(item, str) else item
    where = f"{strip_userinfo(base_url)}: listing entry {index}"
    url = strip_userinfo(urljoin(base_url, entry["url"]))
    if urlsplit(url).scheme not in ("http", "https"):
        raise SourceError(f"{where}: {url} is not an http(s) URL")
    name = entry.get("name")
    relative = _safe_relative(str(name), where) if name else _url_path(url)
    return RemoteFile(
        location=url,
        relative_path=relative,
        size=_size(entry.get("size"), where),
        modified=_modified(entry.get("modified", entry.get("last_modified")), where),
        etag=str(entry["etag"]) if entry.get("etag") else None,
    )


def _file_from_headers(url: str, response: httpx.Response) -> RemoteFile:
    headers = response.headers
    length = headers.get("content-length")
    size = int(length) if length and length.isdigit() and not headers.get("content-encoding") else None
    return RemoteFile(
        location=strip_userinfo(url),
        relative_path=_url_path(url),
        size=size,
        modified=_http_date(headers.get("last-modified")),
        etag=headers.get("etag"),
    )


def _url_path(url: str) -> str:
    """The path of `url`, decoded and without its leading slash: stable across runs."""
    path = unquote(urlsplit(url).path).lstrip("/")
    return path or (urlsplit(url).hostname or "index")


def _safe_relative(name: str, where: str) -> str:
    """A listing's `name` as a relative path that cannot climb out of a folder."""
    path = name.replace("\\", "/").strip().lstrip("/")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise SourceError(f"{where}: name {name!r} must be a relative path without '..'")
    return posixpath.join(*parts)


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"{where}: size must be a whole number of bytes, not {value!r}")
    return value


def _modified(value: Any, where: str) -> float | None:
    """Seconds since the epoch from a number, an ISO 8601 timestamp or an HTTP date."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = _http_date(value)
            if parsed is not None:
                return parsed
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise SourceError(f"{where}: modified must be epoch seconds, ISO 8601 or an HTTP date, not {value!r}")


def _http_date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None


def _conditional_headers(previous: FetchState | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if previous and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    return headers
