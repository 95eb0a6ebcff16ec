"""The one S3 client: S3 sources (`sources.s3`) and the object-storage mirror (`warehouse.remote`) both
open their buckets here, with the options `din.source_options` declares.

Credentials are named in the options and resolved through a `Secrets` (so their values can be
scrubbed from any message); errors from s3fs/botocore become `SourceError`s whose text holds no
secret and says what to check.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sources.base import SourceAuthError, SourceError, SourceUnreachable
from sources.credentials import Secrets

if TYPE_CHECKING:
    import s3fs

TRANSIENT_ERRNOS = {getattr(errno, "EREMOTEIO", errno.EIO), errno.EBUSY, errno.ETIMEDOUT}


def filesystem(options: Mapping[str, Any], secrets: Secrets, default_timeout: float = 30) -> s3fs.S3FileSystem:
    """An s3fs filesystem for `options` (endpoint, region, named credentials or anonymous access)."""
    import s3fs

    return s3fs.S3FileSystem(
        skip_instance_cache=True,
        use_listings_cache=False,
        session=_session(),
        endpoint_url=options.get("endpoint_url"),
        client_kwargs={"region_name": options["region"]} if options.get("region") else {},
        config_kwargs=client_config(options, default_timeout),
        **_credentials(options, secrets),
    )


@functools.cache
def _session() -> Any:
    """One aiobotocore session for every filesystem: it caches botocore's service models (about 1 s to
    load). It holds no credentials of ours: each client gets the named key and secret."""
    import aiobotocore.session

    return aiobotocore.session.AioSession()


def client_config(options: Mapping[str, Any], default_timeout: float = 30) -> dict[str, Any]:
    """botocore settings: timeouts, retries, and path-style addressing when an endpoint is given."""
    style = str(options.get("addressing_style") or ("path" if options.get("endpoint_url") else "auto"))
    timeout = float(options.get("timeout_seconds", default_timeout))
    return {
        "connect_timeout": timeout,
        "read_timeout": timeout,
        "retries": {"max_attempts": int(options.get("max_attempts", 3)), "mode": "standard"},
        "s3": {"addressing_style": style},
    }


def _credentials(options: Mapping[str, Any], secrets: Secrets) -> dict[str, Any]:
    """Named key and secret (and session token), anonymous access, or {} for botocore's default chain
    (instance roles)."""
    if options.get("anonymous"):
        return {"anon": True}
    if not options.get("key"):
        return {}
    found = {"key": secrets.get(options["key"]), "secret": secrets.get(options["secret"])}
    if options.get("session_token"):
        found["token"] = secrets.get(options["session_token"])
    return found


def classify(error: BaseException, message: str, options_name: str = "options") -> SourceError | None:
    """The SourceError for a storage error (with a hint at the usual fix), or None for a programming
    error that should surface as it is. `options_name` says where the credentials are named."""
    import botocore.exceptions
    from s3fs.utils import FileExpired

    status = 0
    if isinstance(error, botocore.exceptions.ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if isinstance(error, PermissionError | botocore.exceptions.NoCredentialsError) or status in (401, 403):
        return SourceAuthError(
            f"{message.rstrip('.')}. Check the credentials named in {options_name} key/secret and the bucket policy"
        )
    if isinstance(error, botocore.exceptions.PartialCredentialsError):
        return SourceAuthError(message)
    if isinstance(error, FileNotFoundError):
        return SourceError(f"{message.rstrip('.')}. Check that the bucket and prefix exist")
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
        return SourceUnreachable(message) if status == 429 or status >= 500 else SourceError(message)
    if isinstance(error, OSError | botocore.exceptions.BotoCoreError):
        return SourceError(message)
    return None
