"""The erasure register in landing: whom `din forget` erased (by keyed token) and which files it redacted.

    landing/erasures/blocklist.json     private (0600, in a 0700 folder), mirrored with landing

It lives in landing because landing is what a rebuild starts from: a rebuild, a new machine restored
from the bucket, or a key rotation still finds it. It holds

- `sealed_key`: the blocklist key (`transforms.blocklist`), wrapped (AES key wrap, RFC 3394) under a
  key derived from the pseudonymisation key whose id is `sealed_with`;
- `entries`: one per erased identity: its erasure token, panel, erasure id and date, never a
  reference or a pseudonym;
- `mentions`: keyed tokens of the erased people's names, e-mails and phones
  (`transforms.scrub.mention_tokens`), with which the scrubber still finds their names in other
  people's free text once no roster lists them;
- `redactions`: the SHA-256 of each file an erasure rewrote, mapped to the SHA-256 of its redacted
  copy, so that a partner re-sending the original bytes lands the redacted copy instead (the pull
  sees no new content: nothing of the person comes back, not even in someone else's free text).

Key rotation: the first run with a new pseudonymisation key finds the register sealed under the old
one; given the old key (`<key_env>_PREVIOUS`, see `din.keys.resolve_previous_key`) it unwraps the
blocklist key and seals it again under the new one. Tokens do not change. Without the old key the
run stops before any work rather than let erased people back in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from din.errors import DinError
from din.keys import PseudonymKey
from transforms.blocklist import Blocklist

FOLDER = "erasures"
REGISTER = f"{FOLDER}/blocklist.json"
FORMAT = 1


class BlocklistKeyError(DinError):
    """The erasure register cannot be opened with the keys at hand; says which key it needs."""


@dataclass
class Register:
    """The register's contents (see the module's docstring)."""

    sealed_with: str | None = None
    sealed_key: bytes | None = field(default=None, repr=False)
    entries: list[dict[str, Any]] = field(default_factory=list)
    redactions: dict[str, str] = field(default_factory=dict)
    mentions: list[str] = field(default_factory=list)  # tokens of erased people's names, e-mails, phones

    @property
    def tokens(self) -> frozenset[str]:
        return frozenset(str(e["token"]) for e in self.entries)


def register_path(landing_dir: Path) -> Path:
    return landing_dir / REGISTER


def read_register(landing_dir: Path) -> Register:
    """The register (empty when no erasure has been made)."""
    path = register_path(landing_dir)
    if not path.is_file():
        return Register()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        sealed = raw.get("sealed_key")
        return Register(
            raw.get("sealed_with"),
            base64.b64decode(sealed) if sealed else None,
            list(raw.get("entries") or []),
            dict(raw.get("redactions") or {}),
            list(raw.get("mentions") or []),
        )
    except (ValueError, TypeError, AttributeError) as error:
        raise BlocklistKeyError(
            f"{path} is not a readable erasure register ({error}); restore it from the bucket or a backup. "
            "Nothing was done: without it erased panellists could come back."
        ) from None


def write_register(landing_dir: Path, register: Register) -> None:
    """Replace the register atomically; private to the service's user."""
    data = {
        "format": FORMAT,
        "sealed_with": register.sealed_with,
        "sealed_key": base64.b64encode(register.sealed_key).decode() if register.sealed_key else None,
        "entries": register.entries,
        "redactions": dict(sorted(register.redactions.items())),
        "mentions": sorted(register.mentions),
    }
    write_private(register_path(landing_dir), json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically through a 0600 temporary file beside it (in a 0700 folder)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path.parent, 0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _kek(key: PseudonymKey) -> bytes:
    return hmac.new(key.secret, b"din-blocklist-kek", hashlib.sha256).digest()


def _seal(blocklist_key: bytes, key: PseudonymKey) -> bytes:
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    return aes_key_wrap(_kek(key), blocklist_key)


def _unseal(sealed: bytes, key: PseudonymKey) -> bytes:
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    try:
        return aes_key_unwrap(_kek(key), sealed)
    except InvalidUnwrap:
        raise BlocklistKeyError(
            f"the erasure register's key does not open with pseudonymisation key {key.key_id}, although it says it "
            "was sealed with it: the register was altered. Restore it from the bucket or a backup."
        ) from None


def open_blocklist(landing_dir: Path, key: PseudonymKey, previous: PseudonymKey | None = None) -> Blocklist:
    """The blocklist for a run with `key`, sealed again under `key` when it was sealed under `previous`.

    Raises BlocklistKeyError when the register was sealed under another key and `previous` is not it."""
    register = read_register(landing_dir)
    if register.sealed_key is None:
        return Blocklist()
    mentions = frozenset(register.mentions)
    if register.sealed_with == key.key_id:
        return Blocklist(_unseal(register.sealed_key, key), register.tokens, mentions)
    if previous is not None and register.sealed_with == previous.key_id:
        blocklist_key = _unseal(register.sealed_key, previous)
        register.sealed_key, register.sealed_with = _seal(blocklist_key, key), key.key_id
        write_register(landing_dir, register)
        return Blocklist(blocklist_key, register.tokens, mentions)
    raise BlocklistKeyError(
        f"the erasure register ({register_path(landing_dir)}) is sealed with pseudonymisation key "
        f"{register.sealed_with}, and this run's key is {key.key_id}. If the key was rotated, set the previous "
        "key in <key_env>_PREVIOUS (e.g. DIN_PSEUDONYM_KEY_PREVIOUS) for this one run: the register is then "
        "sealed with the new key. Nothing was done: without it erased panellists could come back."
    )


def blocklist_for_erasure(landing_dir: Path, key: PseudonymKey) -> Blocklist:
    """The blocklist an erasure adds to: its key is made (and sealed) at the first erasure."""
    register = read_register(landing_dir)
    if register.sealed_key is not None:
        return open_blocklist(landing_dir, key)
    blocklist_key = secrets.token_bytes(32)
    register.sealed_key, register.sealed_with = _seal(blocklist_key, key), key.key_id
    write_register(landing_dir, register)
    return Blocklist(blocklist_key, register.tokens, frozenset(register.mentions))


def add_erasure(
    landing_dir: Path,
    key: PseudonymKey,
    entries: Iterable[Mapping[str, Any]],
    redactions: Mapping[str, str],
    mentions: Iterable[str] = (),
) -> Register:
    """Record erased tokens and redacted files (idempotent: a token or a file already there stays once).

    A file redacted twice (two erasures) maps its original straight to its latest copy."""
    register = read_register(landing_dir)
    if register.sealed_with != key.key_id:
        open_blocklist(landing_dir, key)  # raises with the explanation
    known = register.tokens
    register.entries += [dict(e) for e in entries if e["token"] not in known]
    register.mentions = sorted(set(register.mentions) | set(mentions))
    for original, redacted in redactions.items():
        if original == redacted:
            continue
        register.redactions[original] = redacted
        for earlier, target in list(register.redactions.items()):
            if target == original:
                register.redactions[earlier] = redacted
    write_register(landing_dir, register)
    return register


def redactions(landing_dir: Path) -> dict[str, str]:
    """Original SHA-256 -> SHA-256 of its redacted copy, for every file an erasure rewrote (no key needed)."""
    path = register_path(landing_dir)
    if not path.is_file():
        return {}
    return read_register(landing_dir).redactions
