"""SQL text that cannot be a bound parameter: identifiers, and the few literals DuckDB will not bind
(COPY targets, view locations, COMMENT ON text). Everything else is bound with `?`."""

from __future__ import annotations


def quote(identifier: str) -> str:
    """A DuckDB identifier, double-quoted, with inner double quotes doubled."""
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal, for the places DuckDB does not take a bound parameter."""
    return "'" + value.replace("'", "''") + "'"
