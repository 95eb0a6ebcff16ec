"""The deployments' pull step, as a plain function: where the worker's checkout is, or one line saying
what to set."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.steps import ProjectDirError, project_dir
from tests.support.ops import REPO


def test_the_checkout_named_by_din_project_dir_is_entered() -> None:
    assert project_dir({"DIN_PROJECT_DIR": str(REPO)}) == REPO.resolve()


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "DIN_PROJECT_DIR is not set in the worker's environment"),
        ("  ", "DIN_PROJECT_DIR is not set in the worker's environment"),
        ("/no/such/folder", "DIN_PROJECT_DIR=/no/such/folder is not a folder on this machine"),
        ("{tmp}", "DIN_PROJECT_DIR={tmp} is not a checkout of din-engagement (no flows/consolidate.py)"),
    ],
)
def test_a_missing_or_wrong_din_project_dir_is_one_line_saying_what_to_set(
    tmp_path: Path, value: str | None, words: str
) -> None:
    environ = {} if value is None else {"DIN_PROJECT_DIR": value.format(tmp=tmp_path)}
    with pytest.raises(ProjectDirError) as raised:
        project_dir(environ)
    message = str(raised.value)
    assert message.startswith(words.format(tmp=tmp_path))
    assert "DIN_PROJECT_DIR=/path/to/din-engagement" in message and "docs/operations.md" in message
    assert "\n" not in message


def test_the_pull_step_ends_the_process_with_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.steps import enter_project

    monkeypatch.delenv("DIN_PROJECT_DIR", raising=False)
    with pytest.raises(SystemExit) as ended:
        enter_project()
    assert str(ended.value.code).startswith("din: DIN_PROJECT_DIR is not set in the worker's environment: ")


def test_the_pull_step_enters_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.steps import enter_project

    monkeypatch.setenv("DIN_PROJECT_DIR", str(REPO))
    monkeypatch.chdir("/")
    assert enter_project() == {"directory": str(REPO.resolve())}
    assert Path.cwd() == REPO.resolve()
