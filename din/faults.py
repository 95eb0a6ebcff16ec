"""Fault injection for the crash-safety tests: fail or die at a named stage when asked to.

`DIN_INJECT_FAILURE=<stage>` raises at the stage's next checkpoint; `DIN_INJECT_KILL=<stage>`
sends SIGKILL to this process there (what an OOM kill or a pulled plug looks like);
`DIN_INJECT_KILL_ONCE=<stage>@<marker file>` does so only where the marker file does not exist yet
(creating it first), so that the retry of the killed work goes through. Unset, a checkpoint costs a few
dictionary lookups.
"""

from __future__ import annotations

import os
import signal


class InjectedFailure(RuntimeError):
    """Raised where a test asked for a failure."""


def checkpoint(stage: str) -> None:
    if os.environ.get("DIN_INJECT_FAILURE") == stage:
        raise InjectedFailure(f"injected failure during {stage}")
    if os.environ.get("DIN_INJECT_KILL") == stage:
        os.kill(os.getpid(), signal.SIGKILL)
    once = os.environ.get("DIN_INJECT_KILL_ONCE")
    if once and once.partition("@")[0] == stage:
        marker = once.partition("@")[2]
        try:
            with open(marker, "x"):
                pass
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)
