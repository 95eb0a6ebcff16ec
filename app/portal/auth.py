"""Who is signed in: tokens (stored only as hashes), signed sign-in cookies, CSRF tokens.

A token is `din_<id>_<secret>`; only the SHA-256 of its secret is stored, in `<data>/portal/tokens.json`
(mode 0600, outside the repository), so the file is no use to whoever reads it. Tokens carry a role:
`contributor` (their organisation's deliveries), `reader` (the open tier) or `restricted` (the open
and restricted tiers). The sign-in cookie holds the token's id and an expiry, signed with HMAC under
a key kept beside the tokens; every request looks the token up again, so a revoked token stops
working at once. Every form carries a CSRF token derived from a random value in its own cookie.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

ROLES = ("contributor", "reader", "restricted")
TOKENS_FILE = "tokens.json"
SIGNING_KEY_FILE = "cookie.key"
SESSION_COOKIE = "din_session"
CSRF_COOKIE = "din_csrf"
TOKEN_PREFIX = "din_"


class TokenError(ValueError):
    """A token command cannot be carried out; the message says why."""


@dataclass(frozen=True)
class TokenRecord:
    """One issued token, as stored: never the token itself."""

    token_id: str
    organisation: str
    role: str
    secret_sha256: str
    created_at: str
    revoked_at: str | None = None
    label: str = ""

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def tiers(self) -> tuple[str, ...]:
        """The published tiers this token may read."""
        return {"reader": ("open",), "restricted": ("open", "restricted")}.get(self.role, ())


@dataclass(frozen=True)
class Visitor:
    """Who is making a request (after the cookie and the token were checked)."""

    token: TokenRecord

    @property
    def organisation(self) -> str:
        return self.token.organisation

    @property
    def role(self) -> str:
        return self.token.role

    @property
    def is_contributor(self) -> bool:
        return self.token.role == "contributor"

    @property
    def tiers(self) -> tuple[str, ...]:
        return self.token.tiers


class TokenStore:
    """The token file of one data folder."""

    def __init__(self, portal_dir: Path) -> None:
        self.dir = portal_dir
        self.path = portal_dir / TOKENS_FILE

    def records(self) -> list[TokenRecord]:
        if not self.path.is_file():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [TokenRecord(**entry) for entry in raw["tokens"]]
        except (ValueError, KeyError, TypeError) as error:
            raise TokenError(
                f"{self.path} is damaged ({error}); restore it from a backup or issue new tokens"
            ) from None

    def issue(self, organisation: str, role: str, label: str = "") -> tuple[str, TokenRecord]:
        """A new token (returned once, never stored) and its record."""
        if role not in ROLES:
            raise TokenError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
        if not organisation.strip():
            raise TokenError("a token needs an organisation")
        records = self.records()
        token_id = secrets.token_hex(4)
        while any(r.token_id == token_id for r in records):
            token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(24)
        record = TokenRecord(token_id, organisation, role, _digest(secret), _now(), None, label)
        self._write([*records, record])
        return f"{TOKEN_PREFIX}{token_id}_{secret}", record

    def revoke(self, organisation: str, token_id: str | None = None) -> list[TokenRecord]:
        """Revoke the organisation's active tokens (or only `token_id`); returns those revoked."""
        records = self.records()
        revoked: list[TokenRecord] = []
        updated = []
        for record in records:
            if record.organisation == organisation and record.active and token_id in (None, record.token_id):
                record = replace(record, revoked_at=_now())
                revoked.append(record)
            updated.append(record)
        if revoked:
            self._write(updated)
        return revoked

    def find(self, token_id: str) -> TokenRecord | None:
        return next((r for r in self.records() if r.token_id == token_id and r.active), None)

    def verify(self, token: str) -> TokenRecord | None:
        """The active record of `token`, or None (in constant time for the secret)."""
        token = token.strip()
        if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        record = self.find(token_id)
        if record is None:
            hmac.compare_digest(_digest(secret), _digest("x"))  # same work either way
            return None
        return record if hmac.compare_digest(record.secret_sha256, _digest(secret)) else None

    def _write(self, records: list[TokenRecord]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.path.with_name(f".{self.path.name}.partial")
        text = json.dumps({"tokens": [asdict(r) for r in records]}, indent=1)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, self.path)


class Signer:
    """Signs and checks cookie values with HMAC-SHA256 under the portal's own key."""

    def __init__(self, portal_dir: Path) -> None:
        self.key = _signing_key(portal_dir)

    def sign(self, payload: dict[str, object]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def unsign(self, value: str) -> dict[str, object] | None:
        body, _, mac = value.partition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def session(self, token: TokenRecord, hours: int) -> str:
        return self.sign({"tid": token.token_id, "exp": int(time.time()) + hours * 3600})

    def session_token_id(self, cookie: str | None) -> str | None:
        """The token id of a valid, unexpired session cookie."""
        payload = self.unsign(cookie or "")
        if payload is None or not isinstance(payload.get("exp"), int) or payload["exp"] < time.time():  # type: ignore[operator]
            return None
        token_id = payload.get("tid")
        return token_id if isinstance(token_id, str) else None

    def csrf_token(self, nonce: str) -> str:
        """The value every form must send back, bound to the visitor's CSRF cookie."""
        return self._mac(f"csrf:{nonce}")

    def csrf_valid(self, nonce: str | None, sent: str | None) -> bool:
        return bool(nonce) and bool(sent) and hmac.compare_digest(self.csrf_token(str(nonce)), str(sent))

    def _mac(self, text: str) -> str:
        return hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def _signing_key(portal_dir: Path) -> bytes:
    """The cookie-signing key, made once per data folder (mode 0600)."""
    path = portal_dir / SIGNING_KEY_FILE
    if not path.is_file():
        portal_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
