"""Fault injection for the crash-safety tests: fail or die at a named stage when asked to.

`DIN_INJECT_FAILURE=<stage>` raises at the stage's next checkpoint; `DIN_INJECT_KILL=<stage>`
sends SIGKILL to this process there (what an OOM kill or a pulled plug looks like). Unset, a
checkpoint costs one dictionary lookup.
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
