"""The pseudonymisation key: from an environment variable or a Prefect Secret block, never the repo.

Demo runs may fall back to a published, clearly labelled DEMO key so the bundled example works on
a fresh machine; everything that key produces is marked as demo output. A production run without a
key stops before any work.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from din.config import Config

#: Public and worthless by design: pseudonyms made with it protect nothing. Demo data only.
DEMO_KEY = b"DEMO-KEY-NOT-SECRET--din-engagement-example-data-only"
MIN_KEY_CHARS = 32


class PseudonymKeyError(RuntimeError):
    """No usable key: the message says how to provide one."""


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
    value = os.environ.get(config.key_env)
    if not value and config.key_block:
        value = _secret_block(config.key_block)
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


def _secret_block(name: str) -> str | None:
    from prefect.blocks.system import Secret

    try:
        return str(Secret.load(name).get())
    except ValueError:
        return None
