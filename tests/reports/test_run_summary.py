"""A run's summary as its readers get it: the terminal text, the Prefect artifact, the per-source log line,
`din runs`' table and the artifact keys, as plain functions on summaries built here."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reports.run_summary import (
    artifact_key,
    history_table,
    next_commands,
    rule_words,
    source_line,
    summary_markdown,
    summary_text,
)
from warehouse.runs import RunSummary, SourceSummary

CONFIG = "/srv/din/network one/din.yaml"  # a space: the commands must quote it


def _summary(**changes: Any) -> RunSummary:
    university = SourceSummary(
        "university-responses", "ORG-B", "responses", files_new=3, files_unchanged=2, files_superseded=1,
        files_refused=1, rows_read=120, rows_accepted=110, rows_quarantined=10,
        warnings=["responses-w3.csv was refused whole: required column `answer` is missing from the file"],
    )  # fmt: skip
    roster = SourceSummary("roster", "ORG-A", "roster", files_new=1, rows_read=3, rows_accepted=3)
    summary = RunSummary(
        "20260301T020000Z-ab12",
        "production",
        False,
        "key-1",
        outcome="succeeded_with_warnings",
        sources=[roster, university],
        published_version="20260301T020000Z-ab12",
        quarantine_reasons={"sector_allowed": 7, "key_unique": 3},
        stage_seconds={"pull": 0.41, "validate_and_merge": 84.2, "publish": 17.0},
        config_path=CONFIG,
        title="Scottish citizens' panel",
        elapsed_seconds=103.5,
        feedback_dir="/srv/din/data/reports/feedback/20260301T020000Z-ab12",
    )
    for name, value in changes.items():
        setattr(summary, name, value)
    return summary


def test_the_terminal_summary_has_the_times_warnings_quarantine_in_words_feedback_and_next() -> None:
    text = summary_text(_summary())
    lines = text.splitlines()
    assert lines[0] == (
        "run 20260301T020000Z-ab12 (Scottish citizens' panel): succeeded_with_warnings in 1 min 44 s; "
        "stages: pull 0.4 s, validate+merge 1 min 24 s, publish 17 s"
    )
    assert (
        "WARNING university-responses: responses-w3.csv was refused whole: required column `answer` is missing "
        "from the file" in lines
    )
    assert "        7  sector_allowed: `sector`: expected one of health, social_care, environment, education, " in text
    assert "        3  key_unique: the same key appears more than once in one file" in lines
    assert "feedback reports (one per organisation): /srv/din/data/reports/feedback/20260301T020000Z-ab12" in lines
    assert "next: din tables --config '/srv/din/network one/din.yaml'" in lines
    assert "next: din report --config '/srv/din/network one/din.yaml'" in lines


def test_next_commands_carry_the_data_folder_given_besides_the_config() -> None:
    commands = next_commands(_summary(data_dir_option="/tmp/test data"))
    assert commands[0] == "din tables --config '/srv/din/network one/din.yaml' --data-dir '/tmp/test data'"
    assert all("--config '/srv/din/network one/din.yaml' --data-dir '/tmp/test data'" in c for c in commands)


def test_a_failed_run_says_its_stage_and_error_and_points_to_the_history() -> None:
    failed = _summary(outcome="failed", failed_stage="publish", message="InjectedFailure: publish", feedback_dir=None)
    text = summary_text(failed)
    assert text.splitlines()[0].startswith(
        "run 20260301T020000Z-ab12 (Scottish citizens' panel): failed in stage publish"
    )
    assert "ERROR InjectedFailure: publish" in text.splitlines()
    assert "next: din runs --config '/srv/din/network one/din.yaml'" in text.splitlines()
    markdown = summary_markdown(failed)
    assert "**Outcome:** failed" in markdown and "**Error in stage publish:** InjectedFailure: publish" in markdown


def test_the_artifact_has_times_rules_in_words_where_feedback_is_and_no_file_links() -> None:
    markdown = summary_markdown(_summary())
    assert "**Elapsed:** 1 min 44 s" in markdown
    assert "**Stages:** pull 0.4 s, validate+merge 1 min 24 s, publish 17 s" in markdown
    assert "## Needs attention" in markdown
    assert "| `key_unique` | the same key appears more than once in one file | 3 |" in markdown
    assert "feedback reports on the worker: `/srv/din/data/reports/feedback/20260301T020000Z-ab12`" in markdown
    assert "- `din tables --config '/srv/din/network one/din.yaml'`" in markdown
    assert "file://" not in markdown
    assert not re.search(r"\]\((?!https?://)", markdown)  # every link is an http(s) link


def test_with_the_portal_the_artifact_links_to_it_over_http() -> None:
    markdown = summary_markdown(_summary(), "https://din.example.org")
    links = re.findall(r"\]\(([^)]*)\)", markdown)
    assert links == [
        "https://din.example.org/feedback/20260301T020000Z-ab12",
        "https://din.example.org/report",
        "https://din.example.org/catalog",
    ]


def test_what_partners_wrote_is_escaped_in_the_artifact() -> None:
    sneaky = _summary(title="<script>alert(1)</script>", run_warnings=["[click](javascript:alert(1)) *now*"])
    markdown = summary_markdown(sneaky)
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)  # a code block shows its text as text
    assert not re.search(r"(?<!\\)<script|(?<!\\)\]\(javascript:", outside_code)  # only escaped ones
    assert r"# Consolidation run 20260301T020000Z-ab12: \<script\>alert(1)\</script\>" in markdown
    assert r"\[click\](javascript:alert(1)) \*now\*" in markdown


def test_the_per_source_log_line_has_its_counts_and_error() -> None:
    university = _summary().sources[1]
    assert source_line(university) == (
        "source university-responses (ORG-B, responses): 3 new file(s) (1 superseding, 1 refused), 2 unchanged, "
        "0 skipped; rows 120 read, 110 accepted, 10 quarantined"
    )
    failed = SourceSummary("sftp-partner", "ORG-C", "attendance", error="connection refused by 127.0.0.1:2222")
    assert source_line(failed).endswith("; ERROR connection refused by 127.0.0.1:2222")


@pytest.mark.parametrize("rule", ["sector_allowed", "file_unreadable", "key_conflict", "an_unknown_rule"])
def test_every_rule_has_words_without_a_value(rule: str) -> None:
    words = rule_words(rule)
    assert words and "{value}" not in words
    if rule == "an_unknown_rule":
        assert words == "an unknown rule"


def _row(run_id: str, outcome: str, seconds: dict[str, float], **extra: Any) -> dict[str, Any]:
    started = datetime(2026, 3, 1, 2, 0, 0)
    return {
        "run_id": run_id,
        "started_at": started,
        "finished_at": started + timedelta(seconds=sum(seconds.values()) + 1),
        "outcome": outcome,
        "deliveries_new": 4,
        "rows_accepted": 110,
        "rows_quarantined": 10,
        "rows_published": 400,
        "stage_seconds": json.dumps(seconds),
        "message": None,
        "source_errors": "{}",
        **extra,
    }


def test_din_runs_shows_duration_stage_columns_and_the_error() -> None:
    rows = [
        _row("20260301T020000Z-aaaa", "succeeded", {"pull": 0.4, "validate_and_merge": 84.2, "publish": 17.0}),
        _row(
            "20260302T020000Z-bbbb",
            "failed",
            {"pull": 0.5, "validate_and_merge": 3.0},
            message="InjectedFailure:\n  publish",
        ),
        _row(
            "20260303T020000Z-cccc",
            "succeeded_with_warnings",
            {"pull": 2.0},
            source_errors=json.dumps({"sftp-partner": "connection refused"}),
        ),
        _row("20260304T020000Z-dddd", "running", {}, finished_at=None),
    ]
    head, *lines = history_table(rows).splitlines()
    assert head.split() == [
        "run", "started", "outcome", "duration", "new", "accepted", "quarant.", "published",
        "pull", "validate+merge", "publish", "error",
    ]  # fmt: skip
    assert lines[0].split()[4:] == [
        "1",
        "min",
        "43",
        "s",
        "4",
        "110",
        "10",
        "400",
        "0.4",
        "s",
        "1",
        "min",
        "24",
        "s",
        "17",
        "s",
    ]
    assert lines[1].endswith("  InjectedFailure: publish")  # one line, whatever the message held
    assert "3.0 s" in lines[1] and lines[1].split()[-3] == "-"  # no publish time: the run never got there
    assert lines[2].endswith("  sftp-partner: connection refused")
    assert lines[3].split()[4] == "-"  # still running: no duration yet
    # the columns line up under their heads
    assert lines[0].index("0.4 s") + len("0.4 s") == head.index("pull") + len("pull")
    assert lines[0].index("1 min 43 s") + len("1 min 43 s") == head.index("duration") + len("duration")


def test_artifact_keys_are_valid_for_prefect_and_one_per_data_folder(tmp_path: Path) -> None:
    first = artifact_key("consolidate-summary", tmp_path / "Network_One" / "data")
    same = artifact_key("consolidate-summary", tmp_path / "Network_One" / "data" / ".." / "data")
    other = artifact_key("consolidate-summary", tmp_path / "Network_Two" / "data")
    assert first == same and first != other
    for key in (first, other, artifact_key("consolidate-summary", Path("/")), artifact_key("x", "/srv/Ü ß/DATA")):
        assert re.fullmatch(r"[a-z0-9-]+", key), key
    assert first.startswith("consolidate-summary-data-")


def test_next_commands_are_typed_the_way_din_was_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIN_INVOKED_AS", "./dev din")  # what ./dev sets
    assert next_commands(_summary())[0] == "./dev din tables --config '/srv/din/network one/din.yaml'"
    monkeypatch.delenv("DIN_INVOKED_AS")
    assert next_commands(_summary())[0].startswith("din tables ")
