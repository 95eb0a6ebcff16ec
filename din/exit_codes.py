"""What `din` exits with, and which run outcome each code stands for: one place, documented in README.

A run that *succeeded* can still need someone's attention: a source that could not be pulled, or a
delivered file that was refused whole. Such a run exits with a code of its own (never 0), so that a
scheduler or a script can tell "all went well" from "it ran, but look at the summary". A more
specific kind of warning gets its own code here, beside the others; the README table lists them all
(and a test checks that it does).
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

    @property
    def meaning(self) -> str:
        return MEANINGS[self]


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "succeeded: every source was pulled and no delivered file was refused",
    ExitCode.PROBLEMS: "`din check` found problems in the file (what the run would set aside or refuse)",
    ExitCode.ERROR: (
        "failed, or could not start (configuration error, missing key, warehouse busy): nothing was published"
    ),
    ExitCode.SOURCE_ERRORS: "succeeded, but at least one source could not be pulled (see its ERROR in the summary)",
    ExitCode.NEEDS_ATTENTION: (
        "succeeded, but something needs attention: a delivered file was refused whole (see WARNING in the summary, "
        "the log, `ops.deliveries` and the partner's feedback page)"
    ),
}

#: Run outcomes (`ops.runs.outcome`), from least to most in need of attention, and their exit codes.
RUN_OUTCOMES: dict[str, ExitCode] = {
    "succeeded": ExitCode.OK,
    "succeeded_with_warnings": ExitCode.NEEDS_ATTENTION,
    "succeeded_with_source_errors": ExitCode.SOURCE_ERRORS,
    "failed": ExitCode.ERROR,
}


def run_outcome(source_errors: bool, warnings: bool) -> str:
    """The outcome of a run that finished: source errors weigh more than warnings about files."""
    if source_errors:
        return "succeeded_with_source_errors"
    return "succeeded_with_warnings" if warnings else "succeeded"


def exit_code_for(outcome: str) -> ExitCode:
    """The exit code of a run with `outcome` (an unknown outcome is treated as a failure)."""
    return RUN_OUTCOMES.get(outcome, ExitCode.ERROR)
