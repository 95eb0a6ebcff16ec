"""Exit codes are defined once (din/exit_codes.py) and README's table lists every one of them, as defined."""

from __future__ import annotations

import re

from din.exit_codes import RUN_OUTCOMES, ExitCode, exit_code_for, run_outcome
from tests.conftest import REPO


def test_readme_lists_every_exit_code_with_its_meaning() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| (\d+) \| (.+) \|$", readme, flags=re.M))
    assert {int(code): meaning for code, meaning in table.items()} == {code.value: code.meaning for code in ExitCode}


def test_a_run_that_needs_attention_never_exits_0() -> None:
    assert run_outcome(source_errors=False, warnings=False) == "succeeded"
    assert run_outcome(source_errors=False, warnings=True) == "succeeded_with_warnings"
    assert run_outcome(source_errors=True, warnings=True) == "succeeded_with_source_errors"  # the weightier one
    assert exit_code_for("succeeded") is ExitCode.OK
    assert exit_code_for("succeeded_with_warnings") is ExitCode.NEEDS_ATTENTION
    assert exit_code_for("succeeded_with_source_errors") is ExitCode.SOURCE_ERRORS
    assert exit_code_for("interrupted") is ExitCode.ERROR  # anything else is not a success
    assert all(code != ExitCode.OK for outcome, code in RUN_OUTCOMES.items() if outcome != "succeeded")
