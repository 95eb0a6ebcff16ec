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


def pseudonym(key: bytes, panel_id: str, panellist_ref: str) -> str:
    """The pseudonym of one panellist; the panel is part of the message (refs are per panel)."""
    message = f"{panel_id}\x1f{panellist_ref.strip()}".encode()
    return PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:LENGTH]


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
