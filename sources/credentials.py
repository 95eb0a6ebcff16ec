"""Secrets for network sources, always referenced by name, never written into the registry.

A name such as `PARTNER_A_TOKEN` resolves to the environment variable `PARTNER_A_TOKEN`, else to the
Prefect Secret block `partner-a-token` (block names are lowercase with dashes). Prefect is imported
only when the environment does not have the secret.

The helpers below keep secrets out of what readers show (URLs lose their userinfo before they are
recorded or printed; error text is scrubbed of every secret a reader resolved) and check the
options every network reader shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from din import source_options
from din.secrets import SecretStoreUnavailable, block_name, lookup_secret
from sources.base import SourceAuthError, SourceError, SourceUnreachable

#: Returns the secret called `name`, or raises SourceAuthError.
Resolver = Callable[[str], str]


def resolve_credential(name: str) -> str:
    """The secret called `name`: environment variable first, else a Prefect Secret block."""
    try:
        value = lookup_secret(name, block=name)
    except SecretStoreUnavailable as error:
        raise SourceUnreachable(f"{error} (credential '{name}')") from None
    if value:
        return value
    raise SourceAuthError(missing_message(name))


def missing_message(name: str) -> str:
    """What to tell an operator whose credential is not set anywhere."""
    return f"credential '{name}' is not set: export {name}=... or create a Prefect Secret block '{block_name(name)}'"


class Secrets:
    """Resolves credentials by name for one reader and remembers the values, only to scrub them from errors."""

    def __init__(self, resolver: Resolver | None) -> None:
        self._resolver = resolver or resolve_credential
        self._values: set[str] = set()

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} resolved)"

    def get(self, name: str) -> str:
        """The secret called `name`; a missing one raises SourceAuthError naming it (never its value)."""
        if not isinstance(name, str) or not name:
            raise SourceAuthError(f"a credential must be given by name (a string), not {type(name).__name__}")
        value = self._resolver(name)
        if not value:
            raise SourceAuthError(missing_message(name))
        self._values.add(value)
        return value

    def scrub(self, text: str) -> str:
        """`text` with every resolved secret replaced by `***`."""
        return scrub(text, self._values)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with each of `secrets` (longest first) replaced by `***`."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def strip_userinfo(url: str) -> str:
    """`url` without `user:password@`, safe to record in a manifest or print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def has_password(url: str) -> bool:
    """Whether `url` carries a password in its userinfo (`user:password@host`)."""
    netloc = urlsplit(url).netloc
    return "@" in netloc and ":" in netloc.rsplit("@", 1)[0]


def describe(error: BaseException, secrets: Secrets | None = None) -> str:
    """`TypeName: message` for an error from a client library, scrubbed of resolved secrets."""
    text = str(error).strip()
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return secrets.scrub(text) if secrets else text


def check_options(location: str, options: Mapping[str, Any], kind: str) -> None:
    """Refuse options a reader does not know, or values it cannot use (`din.source_options` says which);
    the config loader runs the same check when the registry is read."""
    try:
        source_options.check_options(options, source_options.SOURCE_OPTIONS[kind], f"{kind} sources")
    except source_options.OptionError as error:
        raise SourceError(f"{strip_userinfo(location)}: {error}") from None


def seconds(options: Mapping[str, Any], name: str, default: float) -> float:
    """A positive number of seconds from `options[name]`."""
    value = options.get(name, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise SourceError(f"option {name} must be a positive number of seconds, not {value!r}")
    return number
