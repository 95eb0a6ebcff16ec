"""The credential resolver: environment first, then a Prefect Secret block; secrets never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sources import SourceAuthError
from sources.credentials import (
    Secrets,
    block_name,
    missing_message,
    resolve_credential,
    scrub,
    strip_userinfo,
)
from tests.support.servers import secrets_from


def run_python(code: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter (to see what it imports, or to give Prefect its own home)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIN_TEST_PARTNER_TOKEN", "value-from-env")
    assert resolve_credential("DIN_TEST_PARTNER_TOKEN") == "value-from-env"


def test_missing_message_says_how_to_set_it() -> None:
    assert missing_message("PARTNER_A_TOKEN") == (
        "credential 'PARTNER_A_TOKEN' is not set: export PARTNER_A_TOKEN=... "
        "or create a Prefect Secret block 'partner-a-token'"
    )
    assert block_name("Partner.A_TOKEN") == "partner-a-token"


def test_reading_the_environment_does_not_import_prefect() -> None:
    result = run_python(
        """
        import sys
        import sources.http, sources.s3, sources.sftp
        from sources.credentials import resolve_credential
        assert resolve_credential("DIN_TEST_LAZY") == "set"
        print("prefect" in sys.modules)
        """,
        {**os.environ, "DIN_TEST_LAZY": "set"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_missing_credential_without_prefect_is_explained() -> None:
    result = run_python(
        """
        import sys
        sys.modules["prefect"] = None  # as if Prefect were not installed
        from sources import SourceAuthError
        from sources.credentials import resolve_credential
        try:
            resolve_credential("DIN_TEST_NOWHERE")
        except SourceAuthError as error:
            print(error)
        """,
        {key: value for key, value in os.environ.items() if key != "DIN_TEST_NOWHERE"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "credential 'DIN_TEST_NOWHERE' is not set: export DIN_TEST_NOWHERE=... "
        "or create a Prefect Secret block 'din-test-nowhere'"
    )


@pytest.mark.slow
def test_prefect_secret_block_is_the_fallback_and_missing_is_explained(tmp_path: Path) -> None:
    """A real (temporary, local) Prefect server answers; ~25 s, the cost of a cold Prefect home."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(tmp_path / "prefect"),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="ERROR",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="150",  # a cold home migrates its database first
    )
    env.pop("DIN_TEST_FROM_BLOCK", None)
    result = run_python(
        """
        from prefect.blocks.system import Secret
        from sources import SourceAuthError
        from sources.credentials import resolve_credential
        try:
            resolve_credential("DIN_TEST_FROM_BLOCK")
        except SourceAuthError as error:
            print("missing:", error)
        Secret(value="value-from-block").save("din-test-from-block")
        print("found:", resolve_credential("DIN_TEST_FROM_BLOCK"))
        """,
        env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("missing:", "found:"))]
    assert lines == [
        "missing: credential 'DIN_TEST_FROM_BLOCK' is not set: export DIN_TEST_FROM_BLOCK=... "
        "or create a Prefect Secret block 'din-test-from-block'",
        "found: value-from-block",
    ]


def test_secrets_are_resolved_by_name_and_scrubbed_from_text() -> None:
    secrets = Secrets(secrets_from({"A": "alpha-secret", "B": "beta"}))
    assert secrets.get("A") == "alpha-secret"
    assert secrets.scrub("got alpha-secret and beta") == "got *** and beta"  # only what was resolved
    assert "alpha" not in repr(secrets)
    with pytest.raises(SourceAuthError, match="credential 'C' is not set"):
        secrets.get("C")
    with pytest.raises(SourceAuthError, match="by name"):
        secrets.get({"literal": "secret"})  # type: ignore[arg-type]
    assert scrub("abcabc", ["abc", "abcabc"]) == "***"


def test_strip_userinfo() -> None:
    assert strip_userinfo("https://user:pw@example.org:8443/a/b.csv?x=1") == "https://example.org:8443/a/b.csv?x=1"
    assert strip_userinfo("sftp://user@host/drop") == "sftp://host/drop"
    assert strip_userinfo("https://example.org/a@b.csv") == "https://example.org/a@b.csv"
