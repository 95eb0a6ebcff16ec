"""The erasure register in landing: private, sealed under the pseudonymisation key, carried over a rotation."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from din.keys import PseudonymKey
from transforms.blocklist import erasure_token
from warehouse.blocklist import (
    BlocklistKeyError,
    add_erasure,
    blocklist_for_erasure,
    open_blocklist,
    read_register,
    redactions,
    register_path,
)

OLD = PseudonymKey(b"o" * 40, is_demo=False)
NEW = PseudonymKey(b"n" * 40, is_demo=False)


def erase(landing: Path, key: PseudonymKey, ref: str, redacted: dict[str, str] | None = None) -> str:
    blocklist = blocklist_for_erasure(landing, key)
    token = erasure_token(blocklist.key, "p1", ref)
    add_erasure(
        landing, key, [{"token": token, "panel_id": "p1", "erasure_id": "e1", "erased_at": "t"}], redacted or {}
    )
    return token


def test_the_register_is_private_and_holds_no_reference_or_key(tmp_path: Path) -> None:
    # A reference no base64 or hex text can hold by chance (the sealed key is base64 of random bytes:
    # `P2` turned up in it once in a CI run).
    reference = "P-2"
    token = erase(tmp_path, OLD, reference, {"a" * 64: "b" * 64})
    path = register_path(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    text = path.read_text()
    assert reference not in text and token in text
    blocklist = open_blocklist(tmp_path, OLD)
    assert blocklist.blocks("p1", reference) and not blocklist.blocks("p1", "P1")
    assert blocklist.key.hex() not in text and blocklist.key not in path.read_bytes()
    assert redactions(tmp_path) == {"a" * 64: "b" * 64}


def test_a_rotation_seals_the_register_again_and_the_tokens_keep_working(tmp_path: Path) -> None:
    erase(tmp_path, OLD, "P2")
    with pytest.raises(BlocklistKeyError, match=r"sealed with pseudonymisation key .* DIN_PSEUDONYM_KEY_PREVIOUS"):
        open_blocklist(tmp_path, NEW)
    before = register_path(tmp_path).read_bytes()
    with pytest.raises(BlocklistKeyError):
        open_blocklist(tmp_path, NEW, previous=PseudonymKey(b"x" * 40, is_demo=False))
    assert register_path(tmp_path).read_bytes() == before  # nothing changed by a failed attempt
    assert open_blocklist(tmp_path, NEW, previous=OLD).blocks("p1", "P2")
    assert read_register(tmp_path).sealed_with == NEW.key_id
    assert open_blocklist(tmp_path, NEW).blocks("p1", "P2")  # the old key is no longer needed
    with pytest.raises(BlocklistKeyError):
        open_blocklist(tmp_path, OLD)


def test_a_tampered_register_is_refused(tmp_path: Path) -> None:
    erase(tmp_path, OLD, "P2")
    path = register_path(tmp_path)
    data = json.loads(path.read_text())
    data["sealed_key"] = data["sealed_key"][:-8] + "AAAAAAA="
    path.write_text(json.dumps(data))
    with pytest.raises(BlocklistKeyError, match="altered"):
        open_blocklist(tmp_path, OLD)


def test_redacting_a_file_twice_maps_the_original_to_the_latest_copy(tmp_path: Path) -> None:
    erase(tmp_path, OLD, "P2", {"a" * 64: "b" * 64})
    erase(tmp_path, OLD, "P3", {"b" * 64: "c" * 64})
    assert redactions(tmp_path) == {"a" * 64: "c" * 64, "b" * 64: "c" * 64}
    assert len(read_register(tmp_path).entries) == 2
