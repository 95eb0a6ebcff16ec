"""The one rule for text that goes into a spreadsheet (CSV and XLSX exports, feedback CSVs, query output,
portal downloads): text a spreadsheet would run as a formula gets a leading apostrophe.

A cell is formula-like when it starts with `=`, `+`, `-`, `@`, a tab or a carriage return, unless the
whole cell is a plain number (`-5`, `+3.2`), which a spreadsheet reads as that number and never runs.
"""

from __future__ import annotations

import re

import polars as pl

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = r"^[+-]?[0-9]+(\.[0-9]+)?$"
_NUMBER = re.compile(_PLAIN_NUMBER)
_FORMULA_PATTERN = r"^[=+\-@\t\r]"


def neutralise(text: str) -> str:
    """`text`, with an apostrophe in front when a spreadsheet would read it as a formula."""
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):  # all of it (`$` allows a last \n)
        return "'" + text
    return text


def neutralise_expr(text: pl.Expr) -> pl.Expr:
    """The same rule on a polars string column."""
    formula = text.str.contains(_FORMULA_PATTERN) & ~text.str.contains(_PLAIN_NUMBER)
    return pl.when(formula).then(pl.lit("'") + text).otherwise(text)


def neutralise_value(value: object) -> object:
    """The same rule on every text inside a JSON-like value (lists and mappings, keys included)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, dict):
        return {neutralise_value(k): neutralise_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [neutralise_value(v) for v in value]
    return value
