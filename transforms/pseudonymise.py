"""Keyed pseudonyms for panellist references (HMAC-SHA256).

The same key gives the same pseudonym for the same panellist in every table and every run, so
rows join up; without the key nobody can go back from a pseudonym to the recruiter's reference.
Pseudonyms are computed once per distinct reference and joined back, so millions of rows cost
no more than the few thousand panellists behind them.
"""

from __future__ import annotations

import hashlib
import hmac

import polars as pl

PREFIX = "pn_"
LENGTH = 20  # hex characters kept: 80 bits, ample for any panel programme without collisions
SEPARATOR = "\x1f"  # between panel and reference in the message
#: What Python's `str.strip()` removes (`str.isspace`): Unicode whitespace and the four separators 1C-1F.
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)
_BLOCK = 64  # SHA-256's block size: HMAC's pads are this long


def pseudonym(key: bytes, panel_id: str, panellist_ref: str) -> str:
    """The pseudonym of one panellist; the panel is part of the message (refs are per panel)."""
    message = f"{panel_id}{SEPARATOR}{panellist_ref.strip()}".encode()
    return PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:LENGTH]


def hmac_pads(key: bytes) -> dict[str, bytes]:
    """HMAC-SHA256's inner and outer pads for `key` (RFC 2104), computed once, to bind as `$ipad` and
    `$opad` in `pseudonym_sql`."""
    block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
    block = block.ljust(_BLOCK, b"\0")
    return {"ipad": bytes(b ^ 0x36 for b in block), "opad": bytes(b ^ 0x5C for b in block)}


def pseudonym_sql(panel_id: str, panellist_ref: str) -> str:
    """`pseudonym()` as DuckDB SQL over two text expressions (NULL reference: NULL), with `hmac_pads`
    bound as `$ipad` and `$opad`: HMAC-SHA256 is sha256(opad || sha256(ipad || message))."""
    ws = "'" + PYTHON_WHITESPACE.replace("'", "''") + "'"
    message = f"coalesce({panel_id}, '') || chr({ord(SEPARATOR)}) || trim({panellist_ref}, {ws})"
    inner = f"unhex(sha256($ipad::BLOB || encode({message})))"
    digest = f"left(sha256($opad::BLOB || {inner}), {LENGTH})"
    return f"(CASE WHEN {panellist_ref} IS NOT NULL THEN '{PREFIX}' || {digest} END)"


def pseudonymise(frame: pl.DataFrame, key: bytes, column: str = "panellist_ref") -> pl.DataFrame:
    """Replace `column` with pseudonyms (null stays null), keyed by the row's panel_id."""
    if column not in frame.columns or frame.height == 0:
        return frame
    pairs = frame.select("panel_id", column).unique().drop_nulls(column)
    lookup = pairs.with_columns(
        pl.Series(
            "_pseudonym",
            [pseudonym(key, panel or "", ref) for panel, ref in pairs.iter_rows()],
            dtype=pl.String,
        )
    )
    joined = frame.join(lookup, on=["panel_id", column], how="left", nulls_equal=True, maintain_order="left")
    return joined.with_columns(pl.col("_pseudonym").alias(column)).drop("_pseudonym")
