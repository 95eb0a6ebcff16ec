"""What `din` exits with, and which run outcome each code stands for: one place, documented in README.

A run that *succeeded* can still need someone's attention: a source that could not be pulled, a
delivered file refused whole, a source setting aside much of what it sent, a reference or roster that
lost most of its rows. Such a run exits with a code of its own (never 0), so that a scheduler or a
script can tell "all went well" from "it ran, but look at the summary" from "it failed". A run that
held its publish back (the previous version stays current) is not a success: it has its own code.
The README table lists them all (and a test checks that it does).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """`din`'s exit codes; `meaning` is each one's line in README's table."""

    OK = 0
    PROBLEMS = 1
    ERROR = 2
    SOURCE_ERRORS = 3
    NEEDS_ATTENTION = 4
    NOT_PUBLISHED = 5

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "succeeded: every source was pulled, everything was published, nothing needs attention",
    ExitCode.PROBLEMS: "`din check` found problems in the file (what the run would set aside or refuse)",
    ExitCode.ERROR: (
        "failed, or could not start (configuration error, missing key, warehouse busy): nothing was published"
    ),
    ExitCode.SOURCE_ERRORS: "succeeded, but at least one source could not be pulled (see its ERROR in the summary)",
    ExitCode.NEEDS_ATTENTION: (
        "succeeded with warnings: something needs attention (a file refused whole or not taken, a source holding "
        "no file or setting aside more than `attention.quarantined_share` of its rows, a key two organisations "
        "delivered, ...): see the WARNING lines in the summary, the log and the run's artifact"
    ),
    ExitCode.NOT_PUBLISHED: (
        "not published: a reference or the roster lost more than `attention.rows_lost_share` of its rows against "
        "the published version, which stays current; fix the delivery, or accept the drop with "
        "`din run --accept-drop`"
    ),
}

#: Run outcomes (`ops.runs.outcome`), from least to most in need of attention, and their exit codes.
RUN_OUTCOMES: dict[str, ExitCode] = {
    "succeeded": ExitCode.OK,
    "succeeded_with_warnings": ExitCode.NEEDS_ATTENTION,
    "succeeded_with_source_errors": ExitCode.SOURCE_ERRORS,
    "publish_held": ExitCode.NOT_PUBLISHED,
    "failed": ExitCode.ERROR,
}


def run_outcome(source_errors: bool, warnings: bool, publish_held: bool = False) -> str:
    """The outcome of a run that finished: a held publish weighs most, then source errors, then warnings."""
    if publish_held:
        return "publish_held"
    if source_errors:
        return "succeeded_with_source_errors"
    return "succeeded_with_warnings" if warnings else "succeeded"


def exit_code_for(outcome: str) -> ExitCode:
    """The exit code of a run with `outcome` (an unknown outcome is treated as a failure)."""
    return RUN_OUTCOMES.get(outcome, ExitCode.ERROR)
