"""Erased stays erased: the people `din forget` erased, by keyed erasure token, and dropping their rows.

An erasure token is HMAC-SHA256 of the panel and the panellist's reference (or an e-mail address a
survey tool keys them by) under the *blocklist key*: a random key of its own, kept sealed under the
pseudonymisation key (`warehouse.blocklist`). It is never the published pseudonym, so an erasure
leaves no pseudonym behind either, and without the key nobody can tell from a token whom it blocks
or check a guess. Because the blocklist key does not change when the pseudonymisation key is rotated
(it is only sealed again), the tokens keep working across rotations without keeping any reference.

`Blocklist.drop` runs when a delivery's rows are parsed (`transforms.delivery.protect`), before
pseudonymisation: a blocked person's rows are dropped and counted, never validated, stored or
quarantined.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from transforms.scrub import ErasedMentions

PREFIX = "er_"
LENGTH = 32  # hex characters kept: 128 bits


def identity_key(value: str) -> str:
    """A panellist identity as compared: trimmed; an e-mail address also case-folded."""
    value = value.strip()
    return value.casefold() if "@" in value else value


def erasure_token(key: bytes, panel_id: str, identity: str) -> str:
    """The token that blocks one identity of one panel (keyed: useless without the blocklist key)."""
    message = f"din-erasure\x1f{panel_id.strip()}\x1f{identity_key(identity)}".encode()
    return PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:LENGTH]


@dataclass(frozen=True)
class Blocklist:
    """The tokens of every erased identity and of the erased people's names, e-mails and phones
    (`transforms.scrub.mention_tokens`), and the key that makes them (never shown)."""

    key: bytes = field(repr=False, default=b"")
    tokens: frozenset[str] = frozenset()
    mentions: frozenset[str] = frozenset()

    def erased_mentions(self) -> ErasedMentions:
        """What finds the erased people's names, e-mails and phones in anyone's text."""
        from transforms.scrub import ErasedMentions

        return ErasedMentions(self.key, self.mentions)

    def __bool__(self) -> bool:
        return bool(self.tokens)

    def blocks(self, panel_id: str | None, identity: str | None) -> bool:
        if not self.tokens or not identity or not identity.strip():
            return False
        return erasure_token(self.key, panel_id or "", identity) in self.tokens

    def drop(self, frame: pl.DataFrame, column: str = "panellist_ref") -> tuple[pl.DataFrame, int]:
        """`frame` without the rows of erased panellists (by `panel_id` and `column`), and how many there were.

        Tokens are computed once per distinct panel and reference, as pseudonyms are."""
        if not self.tokens or column not in frame.columns or frame.height == 0:
            return frame, 0
        panels = frame["panel_id"] if "panel_id" in frame.columns else pl.repeat("", frame.height, eager=True)
        pairs = pl.DataFrame({"panel_id": panels, column: frame[column]}).unique().drop_nulls(column)
        blocked = [(panel, identity) for panel, identity in pairs.iter_rows() if self.blocks(panel, identity)]
        if not blocked:
            return frame, 0
        hits = pl.DataFrame(blocked, schema={"panel_id": pl.String, column: pl.String}, orient="row")
        if "panel_id" not in frame.columns:
            kept = frame.join(hits.select(column), on=column, how="anti", maintain_order="left")
        else:
            kept = frame.join(hits, on=["panel_id", column], how="anti", nulls_equal=True, maintain_order="left")
        return kept, frame.height - kept.height
