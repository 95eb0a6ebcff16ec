"""Tokens are stored only as hashes and revoked at once; cookies and CSRF tokens cannot be forged."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from app.portal.auth import Signer, TokenError, TokenStore


def test_a_token_is_shown_once_and_stored_only_as_a_hash(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    token, record = store.issue("ORG-A", "contributor", label="Alpha's data lead")
    stored = (tmp_path / "tokens.json").read_text()
    secret = token.split("_", 2)[2]
    assert token.startswith(f"din_{record.token_id}_") and secret not in stored and token not in stored
    assert json.loads(stored)["tokens"][0]["secret_sha256"] == record.secret_sha256
    assert oct(os.stat(tmp_path / "tokens.json").st_mode & 0o777) == "0o600"
    assert store.verify(token) == record
    assert store.verify(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert store.verify(f"din_{record.token_id}_") is None and store.verify("nonsense") is None


def test_revoking_stops_the_token_at_once(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    first, one = store.issue("ORG-A", "contributor")
    second, two = store.issue("ORG-A", "reader")
    other, _ = store.issue("ORG-B", "contributor")
    assert [r.token_id for r in store.revoke("ORG-A", one.token_id)] == [one.token_id]
    assert store.verify(first) is None and store.verify(second) == two
    assert {r.token_id for r in store.revoke("ORG-A")} == {two.token_id}
    assert store.verify(second) is None and store.verify(other) is not None
    assert store.revoke("ORG-A") == []


def test_roles_decide_the_tiers(tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    assert store.issue("A", "contributor")[1].tiers == ()
    assert store.issue("R", "reader")[1].tiers == ("open",)
    assert store.issue("S", "restricted")[1].tiers == ("open", "restricted")
    with pytest.raises(TokenError, match="unknown role"):
        store.issue("A", "admin")


def test_session_cookies_and_csrf_tokens_cannot_be_forged_or_outlive_their_time(tmp_path: Path) -> None:
    signer = Signer(tmp_path)
    _, record = TokenStore(tmp_path).issue("ORG-A", "contributor")
    cookie = signer.session(record, hours=1)
    assert signer.session_token_id(cookie) == record.token_id
    body, mac = cookie.split(".")
    forged = signer.sign({"tid": "someone", "exp": int(time.time()) + 99})
    assert signer.session_token_id(forged.split(".")[0] + "." + mac) is None
    assert signer.session_token_id(body + "." + "0" * 64) is None
    assert signer.session_token_id(signer.sign({"tid": record.token_id, "exp": int(time.time()) - 1})) is None
    assert Signer(tmp_path).session_token_id(cookie) == record.token_id  # the key persists in the data folder
    assert Signer(tmp_path / "other").session_token_id(cookie) is None
    assert signer.csrf_valid("nonce-1", signer.csrf_token("nonce-1"))
    assert not signer.csrf_valid("nonce-2", signer.csrf_token("nonce-1")) and not signer.csrf_valid(None, "x")
