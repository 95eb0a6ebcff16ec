"""The portal's inbox: stored under safe names only, listed without its sidecars, landed like any folder."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sources import open_reader
from sources.inbox import InboxReader, Submission, remove_landed, safe_file_name, submissions, submit


@pytest.mark.parametrize(
    ("sent_as", "stored"),
    [
        ("project_feedback.csv", "project_feedback.csv"),
        ("../../etc/passwd", "passwd.csv"),
        ("C:\\Users\\me\\Feedback W2 (final).XLSX", "Feedback_W2_final.xlsx"),
        (".bashrc", "bashrc.csv"),
        ("<script>alert(1)</script>.csv", "script.csv"),
        ("<b>bold</b> report.csv", "b_report.csv"),
        ("notes.exe", "notes.exe.csv"),
        ("..", "delivery.csv"),
        ("", "delivery.csv"),
    ],
)
def test_stored_names_never_come_from_the_contributor_as_paths(sent_as: str, stored: str) -> None:
    assert safe_file_name(sent_as) == stored
    assert "/" not in stored and "\\" not in stored and not stored.startswith(".")


def _submission(name: str, sha: str = "ab" * 32) -> Submission:
    return Submission(name, name, "ORG-A", "attendance", 3, sha, "2026-12-01T10:00:00Z", "t0k3n1d")


def test_a_submitted_file_is_listed_and_fetched_but_its_record_is_not(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    staged.write_bytes(b"panel_id\np1\n")
    inbox = tmp_path / "inbox" / "alpha-portal"
    target = submit(inbox, staged, _submission("attendance.csv"))
    assert target == inbox / "attendance.csv" and target.read_bytes() == b"panel_id\np1\n"
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    reader = open_reader(f"inbox://{inbox}", {})
    assert isinstance(reader, InboxReader)
    listed = reader.list_files()
    assert [f.relative_path for f in listed] == ["attendance.csv"]  # not .submissions/, not .incoming-*
    sink = io.BytesIO()
    reader.fetch(listed[0], sink)
    assert sink.getvalue() == b"panel_id\np1\n"
    assert [s.stored_name for s in submissions(inbox)] == ["attendance.csv"]


def test_an_inbox_nobody_has_used_yet_lists_nothing(tmp_path: Path) -> None:
    assert InboxReader(tmp_path / "never-created").list_files() == []


def test_submit_refuses_a_name_that_is_not_a_safe_name(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    staged.write_bytes(b"x")
    with pytest.raises(ValueError, match="not a stored name"):
        submit(tmp_path / "inbox", staged, _submission("../escape.csv"))
    assert not (tmp_path / "escape.csv").exists()


def test_files_already_landed_leave_the_inbox_and_nothing_else_does(tmp_path: Path) -> None:
    import hashlib

    inbox = tmp_path / "inbox"
    staged = tmp_path / "staged"
    for name, content in (("landed.csv", b"a\n1\n"), ("waiting.csv", b"a\n2\n")):
        staged.write_bytes(content)
        submit(inbox, staged, _submission(name, hashlib.sha256(content).hexdigest()))
    landed = {hashlib.sha256(b"a\n1\n").hexdigest()}
    assert remove_landed(inbox, landed) == ["landed.csv"]
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == ["waiting.csv"]
    assert [s.stored_name for s in submissions(inbox)] == ["waiting.csv"]
    (inbox / "waiting.csv").write_bytes(b"a\n1\n")  # replaced behind the record's back: kept, not guessed at
    assert remove_landed(inbox, landed) == []
