"""The one place secrets are looked up: an environment variable first, else a Prefect Secret block.

Secrets are always referenced by name (`DIN_PSEUDONYM_KEY`, `PARTNER_A_TOKEN`), never written into the
registry. Prefect is imported only when the environment does not hold the secret, so commands that
need no secret never pay for it.
"""

from __future__ import annotations

import json
import os
import re


class SecretStoreUnavailable(RuntimeError):
    """Prefect's API could not be asked for a Secret block (network, server down); says which block."""


def block_name(name: str) -> str:
    """The Prefect block name for a secret's name: `PARTNER_A_TOKEN` -> `partner-a-token`."""
    return re.sub(r"[^a-z0-9-]+", "-", name.strip().lower()).strip("-")


def lookup_secret(env_name: str | None, block: str | None = None) -> str | None:
    """The secret in environment variable `env_name`, else in the Prefect Secret block `block`.

    Returns None when neither holds it. Raises SecretStoreUnavailable when Prefect could not be asked,
    so that a caller can tell "not set" (a mistake to report) from "not reachable" (worth a retry)."""
    if env_name:
        value = os.environ.get(env_name)
        if value:
            return value
    if not block:
        return None
    return _prefect_secret(block)


_NOT_FOUND = "Unable to find block document"


def _prefect_secret(block: str) -> str | None:
    slug = block_name(block)
    if not slug:
        return None
    try:
        from prefect.blocks.system import Secret
    except ImportError:  # pragma: no cover - Prefect is a dependency; kept for slim installs
        return None
    try:
        loaded = Secret.load(slug, _sync=True)  # type: ignore[call-arg]
    except ValueError as error:
        if _NOT_FOUND in str(error):
            return None
        raise SecretStoreUnavailable(
            f"Prefect Secret block '{slug}' could not be read: {type(error).__name__}"
        ) from None
    except Exception as error:
        raise SecretStoreUnavailable(
            f"could not reach Prefect to read Secret block '{slug}': {type(error).__name__}"
        ) from None
    value = loaded.get()  # type: ignore[union-attr]  # _sync=True returns the block, not a coroutine
    return value if isinstance(value, str) else json.dumps(value)
