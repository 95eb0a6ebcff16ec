"""The errors an operator or contributor is meant to read: each message says what is wrong and what to do.

`din` prints a `DinError` as one line and exits with its `exit_code`; anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations


class DinError(Exception):
    """A problem explained in words an operator can act on (printed as one line by `din`)."""

    exit_code = 2


class ConfigError(DinError, ValueError):
    """A mistake in the source registry, explained so that it can be fixed."""


class PseudonymKeyError(DinError, RuntimeError):
    """No usable pseudonymisation key: the message says how to provide one."""


class WarehouseBusy(DinError, RuntimeError):
    """Another run holds the warehouse's writer lock."""


class QueryRefused(DinError):
    """A statement a reader may not run (anything but a query): the published data is read-only."""


class QueryFailed(DinError):
    """A query that could not run or finish: DuckDB's reason, on one line."""
