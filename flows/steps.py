"""The deployments' pull step: move into the worker's checkout of din-engagement, named by
`DIN_PROJECT_DIR` in the worker's environment (prefect.yaml; docs/operations.md, section 5).

Prefect's own `set_working_directory` with `{{ $DIN_PROJECT_DIR }}` fails, when the variable is unset,
with a long traceback ending in `FileNotFoundError: ''`. This step says what is wrong in one line,
and the flow run fails with that line as its message.
"""

from __future__ import annotations

import os
from pathlib import Path

from din.errors import DinError

VARIABLE = "DIN_PROJECT_DIR"
#: A file every checkout of the project has: the folder really is one.
MARKER = Path("flows") / "consolidate.py"


class ProjectDirError(DinError):
    """The worker's environment does not say where the project is (or says it wrongly)."""


def project_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> Path:
    """The checkout `DIN_PROJECT_DIR` names, or `ProjectDirError` saying in one line what to set."""
    value = (environ if environ is not None else os.environ).get(VARIABLE, "").strip()
    fix = (
        f"start the worker with {VARIABLE}=/path/to/din-engagement (the checkout whose .venv runs it), "
        "see docs/operations.md section 5"
    )
    if not value:
        raise ProjectDirError(f"{VARIABLE} is not set in the worker's environment: {fix}")
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise ProjectDirError(f"{VARIABLE}={value} is not a folder on this machine: {fix}")
    if not (folder / MARKER).is_file():
        raise ProjectDirError(f"{VARIABLE}={value} is not a checkout of din-engagement (no {MARKER}): {fix}")
    return folder.resolve()


def enter_project() -> dict[str, str]:
    """The pull step: change into the project's checkout; returns it as Prefect's steps do.

    Without a usable DIN_PROJECT_DIR the step process ends with the one line (SystemExit): an exception
    would be wrapped in Prefect's StepExecutionError and printed as two tracebacks."""
    try:
        folder = project_dir()
    except ProjectDirError as error:
        raise SystemExit(f"din: {error}") from None
    os.chdir(folder)
    return {"directory": str(folder)}
