"""The pseudonymisation key: from an environment variable or a Prefect Secret block, never the repo.

Demo runs may fall back to a published, clearly labelled DEMO key so the bundled example works on
a fresh machine; everything that key produces is marked as demo output. A production run without a
key stops before any work.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from din.config import Config
from din.errors import PseudonymKeyError
from din.secrets import SecretStoreUnavailable, lookup_secret

__all__ = [
    "DEMO_KEY",
    "MIN_KEY_CHARS",
    "PREVIOUS_SUFFIX",
    "PseudonymKey",
    "PseudonymKeyError",
    "check_key_before_start",
    "new_key",
    "resolve_key",
    "resolve_previous_key",
]

#: Public and worthless by design: pseudonyms made with it protect nothing. Demo data only.
DEMO_KEY = b"DEMO-KEY-NOT-SECRET--din-engagement-example-data-only"
MIN_KEY_CHARS = 32
#: Where the key before a rotation is found, for the one run that seals the erasure register again:
#: the environment variable `<key_env>_PREVIOUS`, or the Prefect Secret block `<key_block>-previous`.
PREVIOUS_SUFFIX = "_PREVIOUS"


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    is_demo: bool

    @property
    def key_id(self) -> str:
        """Which key was used (first 8 hex of its SHA-256), safe to record and publish."""
        prefix = "demo-" if self.is_demo else ""
        return prefix + hashlib.sha256(self.secret).hexdigest()[:8]

    def __repr__(self) -> str:  # never show the secret in logs or tracebacks
        return f"PseudonymKey(key_id={self.key_id!r}, is_demo={self.is_demo})"


def new_key() -> str:
    """A fresh random key: 32 bytes as 64 hex characters."""
    return secrets.token_hex(32)


def resolve_key(config: Config) -> PseudonymKey:
    """The key for this run, or a clear error saying how to set one."""
    try:
        value = lookup_secret(config.key_env, config.key_block)
    except SecretStoreUnavailable as error:
        raise PseudonymKeyError(f"the pseudonymisation key could not be read: {error}") from None
    if value:
        if len(value.strip()) < MIN_KEY_CHARS:
            raise PseudonymKeyError(
                f"the pseudonymisation key in {config.key_env} is too short "
                f"({len(value.strip())} characters; at least {MIN_KEY_CHARS}). "
                "Make one with `din keys new`."
            )
        return PseudonymKey(value.strip().encode(), is_demo=False)
    if config.is_demo:
        return PseudonymKey(DEMO_KEY, is_demo=True)
    where = f"environment variable {config.key_env}"
    if config.key_block:
        where += f" or Prefect Secret block '{config.key_block}'"
    raise PseudonymKeyError(
        f"no pseudonymisation key: set the {where} (make a key with `din keys new`; keep it "
        f"outside the repository). Nothing was published. {config.path} is not in demo mode, "
        "so the demo key is not allowed."
    )


def check_key_before_start(config: Config) -> None:
    """Raise the PseudonymKeyError a run would meet, before Prefect starts (which takes seconds and would log
    the message several times): the key's presence and length, when the environment holds or should hold it.

    A key kept only in a Prefect Secret block is checked by the run itself: reading it needs Prefect."""
    import os

    value = os.environ.get(config.key_env)
    if value or not config.key_block:
        resolve_key(config)


def resolve_previous_key(config: Config) -> PseudonymKey | None:
    """The pseudonymisation key before a rotation, when one is set (`<key_env>_PREVIOUS`); else None.

    Only the erasure register needs it, once, to be sealed again under the new key."""
    block = f"{config.key_block}-previous" if config.key_block else None
    try:
        value = lookup_secret(config.key_env + PREVIOUS_SUFFIX, block)
    except SecretStoreUnavailable as error:
        raise PseudonymKeyError(f"the previous pseudonymisation key could not be read: {error}") from None
    if not value or not value.strip():
        return None
    return PseudonymKey(value.strip().encode(), is_demo=False)
