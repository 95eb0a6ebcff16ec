"""Local folders and globs: only regular files inside the source's folder are deliveries; everything else
is skipped with a reason, and nothing outside the folder is ever read."""

from __future__ import annotations

import io
import os
import socket
import threading
from pathlib import Path

import duckdb
import pytest

from din.config import SourceConfig
from sources import SourceError
from sources.base import skipped_by_name
from sources.local import LocalReader
from warehouse.manifest import record_skipped
from warehouse.pull import pull_source
from warehouse.schema import create_schema

SECRET = "root:$6$secret-hash-that-must-never-be-read:19000:0:99999:7:::\n"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A partner's folder with one delivery and everything a careless or hostile partner might leave."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "shadow").write_text(SECRET)
    (outside / "folder").mkdir()
    (outside / "folder" / "more.csv").write_text(SECRET)
    partner = tmp_path / "partner"
    (partner / "sub").mkdir(parents=True)
    (partner / "feedback.csv").write_text("a,b\n1,2\n")
    (partner / "sub" / "nested.csv").write_text("a,b\n3,4\n")
    (partner / ".hidden.csv").write_text("a,b\n5,6\n")
    (partner / ".git").mkdir()
    (partner / ".git" / "config").write_text("[core]\n")
    (partner / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (partner / "~$feedback.xlsx").write_bytes(b"owner")
    (partner / "upload.csv.part").write_text("a,b\n7,")
    (partner / "x.csv").symlink_to(outside / "shadow")
    (partner / "relative.csv").symlink_to("../outside/shadow")
    (partner / "alias.csv").symlink_to(partner / "feedback.csv")  # a link that stays inside: followed
    (partner / "linked").symlink_to(outside / "folder")
    (partner / "dangling.csv").symlink_to(partner / "nowhere.csv")
    os.mkfifo(partner / "pipe.csv")
    return partner


def reasons(reader: LocalReader) -> dict[str, str]:
    return {s.relative_path: s.reason for s in reader.skipped}


def test_only_regular_files_inside_the_folder_are_listed(folder: Path) -> None:
    reader = LocalReader(str(folder))
    listed = sorted(f.relative_path for f in reader.list_files())
    assert listed == ["alias.csv", "feedback.csv", os.path.join("sub", "nested.csv")]
    skipped = reasons(reader)
    assert sorted(skipped) == sorted(
        [
            ".hidden.csv",
            ".git/",
            ".DS_Store",
            "~$feedback.xlsx",
            "upload.csv.part",
            "x.csv",
            "relative.csv",
            "linked",
            "dangling.csv",
            "pipe.csv",
        ]
    )
    assert "hidden file" in skipped[".hidden.csv"] and "rename it" in skipped[".hidden.csv"]
    assert "hidden folder" in skipped[".git/"]
    assert "outside the source's folder" in skipped["x.csv"]
    assert "outside the source's folder" in skipped["relative.csv"]
    assert "a link to a file outside" in skipped["linked"]  # a link to a folder outside: not entered
    assert "does not exist" in skipped["dangling.csv"]
    assert skipped["pipe.csv"].startswith("a FIFO (named pipe), not a file")
    assert "unfinished upload" in skipped["upload.csv.part"]
    clutter = {s.relative_path for s in reader.skipped if not s.attention}
    assert clutter == {".DS_Store", "~$feedback.xlsx"}


def test_a_link_to_a_folder_inside_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.csv").write_text("x\n1\n")
    (tmp_path / "again").symlink_to(tmp_path / "real")
    reader = LocalReader(str(tmp_path))
    assert [f.relative_path for f in reader.list_files()] == [os.path.join("real", "a.csv")]
    assert "a link to a folder: not followed" in reasons(reader)["again"]


def test_a_glob_through_a_linked_folder_reads_nothing_outside(folder: Path) -> None:
    reader = LocalReader(str(folder / "*" / "*.csv"))
    listed = [f.relative_path for f in reader.list_files()]
    assert listed == [os.path.join("sub", "nested.csv")]
    assert "outside the source's folder" in reasons(reader)[os.path.join("linked", "more.csv")]


def test_a_glob_reports_hidden_matches_and_files_in_hidden_folders(folder: Path) -> None:
    reader = LocalReader(str(folder / "**" / "*"))
    listed = {f.relative_path for f in reader.list_files()}
    assert listed == {"alias.csv", "feedback.csv", os.path.join("sub", "nested.csv")}
    skipped = reasons(reader)
    assert "hidden file" in skipped[".hidden.csv"]
    assert "inside a hidden folder" in skipped[os.path.join(".git", "config")]


def test_listing_never_opens_a_fifo(folder: Path) -> None:
    done = threading.Event()

    def listing() -> None:
        LocalReader(str(folder)).list_files()
        done.set()

    threading.Thread(target=listing, daemon=True).start()
    assert done.wait(10), "listing blocked on the FIFO"


def test_sockets_and_devices_are_not_files(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s.csv"))
        (tmp_path / "null.csv").symlink_to("/dev/null")  # outside, and a device
        reader = LocalReader(str(tmp_path))
        assert reader.list_files() == []
        skipped = reasons(reader)
        assert skipped["s.csv"].startswith("a socket, not a file")
        assert "outside" in skipped["null.csv"]


def test_a_single_file_location_that_is_a_link_out_is_refused(folder: Path, tmp_path: Path) -> None:
    reader = LocalReader(str(folder / "x.csv"))
    assert reader.list_files() == []
    assert "outside the source's folder" in reasons(reader)["x.csv"]


def test_fetch_refuses_a_file_swapped_for_a_link_or_a_fifo_after_listing(folder: Path, tmp_path: Path) -> None:
    reader = LocalReader(str(folder))
    listed = {f.relative_path: f for f in reader.list_files()}
    target = folder / "feedback.csv"
    target.unlink()
    target.symlink_to(tmp_path / "outside" / "shadow")
    sink = io.BytesIO()
    with pytest.raises(SourceError, match="could not be opened"):
        reader.fetch(listed["feedback.csv"], sink)
    target.unlink()
    os.mkfifo(target)
    with pytest.raises(SourceError, match="no longer a regular file"):
        reader.fetch(listed["feedback.csv"], sink)  # O_NONBLOCK: refused at once, not hung
    assert sink.getvalue() == b""


def test_fetch_of_a_link_inside_reads_its_target(folder: Path) -> None:
    reader = LocalReader(str(folder))
    alias = next(f for f in reader.list_files() if f.relative_path == "alias.csv")
    sink = io.BytesIO()
    reader.fetch(alias, sink)
    assert sink.getvalue() == b"a,b\n1,2\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may read any file")
def test_unreadable_files_and_folders_are_reported(tmp_path: Path) -> None:
    (tmp_path / "locked.csv").write_text("a\n1\n")
    os.chmod(tmp_path / "locked.csv", 0)
    (tmp_path / "closed").mkdir(mode=0)
    reader = LocalReader(str(tmp_path))
    assert reader.list_files() == []
    assert "may not read" in reasons(reader)["locked.csv"]
    assert "may not read" in reasons(reader)["closed"]


@pytest.mark.parametrize(
    ("name", "attention"),
    [
        (".DS_Store", False),
        ("._feedback.csv", False),
        ("Thumbs.db", False),
        ("~$roster.xlsx", False),
        (".~lock.roster.xlsx#", False),
        ("roster.xlsx.crdownload", True),
        ("feedback.csv.filepart", True),
        (".feedback.csv", True),
        ("sub/.hidden/feedback.csv", True),
    ],
)
def test_names_that_are_never_deliveries(name: str, attention: bool) -> None:
    skipped = skipped_by_name(name)
    assert skipped is not None and skipped.attention is attention


@pytest.mark.parametrize(
    "name", ["feedback.csv", "sub/feedback.csv", "Roster 2026.xlsx", "../up/a.csv", "a.partner.csv"]
)
def test_names_that_are_deliveries(name: str) -> None:
    assert skipped_by_name(name) is None


def _source(location: Path | str) -> SourceConfig:
    return SourceConfig(name="partner", organisation="ORG-A", kind="responses", location=str(location))


def test_a_glob_that_matches_nothing_is_a_warning_not_nothing_new(tmp_path: Path) -> None:
    (tmp_path / "responses.csv").write_text("a\n1\n")
    pulled = pull_source(_source(tmp_path / "*.jsonl"), {}, tmp_path / "landing")
    assert pulled.files == [] and pulled.listed == 0
    assert len(pulled.attention) == 1
    assert pulled.attention[0].startswith(f"no file at {tmp_path / '*.jsonl'}: check the location")
    everything_hidden = tmp_path / "hidden"
    everything_hidden.mkdir()
    (everything_hidden / ".only.csv").write_text("a\n1\n")
    pulled = pull_source(_source(everything_hidden), {}, tmp_path / "landing")
    assert pulled.warnings == []  # the listing found something, and says what
    assert pulled.attention == [".only.csv: " + skipped_by_name(".only.csv").reason]  # type: ignore[union-attr]


def test_an_unchanged_folder_is_not_a_warning(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "responses.csv").write_text("a\n1\n")
    first = pull_source(_source(tmp_path / "in"), {}, tmp_path / "landing")
    assert len(first.files) == 1 and first.attention == []


def test_a_link_out_of_the_folder_never_reaches_landing(folder: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    pulled = pull_source(_source(folder), {}, landing)
    assert sorted(f.relative_path for f in pulled.files) == [
        "alias.csv",
        "feedback.csv",
        os.path.join("sub", "nested.csv"),
    ]
    for landed in (landing / "objects").rglob("*"):
        if landed.is_file():
            assert b"secret-hash" not in landed.read_bytes()
    assert not any("secret-hash" in line for line in pulled.attention)  # reasons never quote the file


def test_skipped_files_are_recorded_once_per_finding(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    create_schema(con)
    first = skipped_by_name(".a.csv")
    second = skipped_by_name(".b.csv")
    assert first is not None and second is not None
    record_skipped(con, "partner", "ORG-A", [first], "run-1")
    record_skipped(con, "partner", "ORG-A", [first, second], "run-2")
    rows = con.sql("SELECT relative_path, first_seen_run, last_seen_run FROM ops.skipped_files ORDER BY 1").fetchall()
    assert rows == [(".a.csv", "run-1", "run-2"), (".b.csv", "run-2", "run-2")]
    record_skipped(con, "partner", "ORG-A", [second], "run-3")  # .a.csv was renamed or removed
    assert con.sql("SELECT relative_path FROM ops.skipped_files").fetchall() == [(".b.csv",)]
    record_skipped(con, "other", "ORG-B", [], "run-3")  # another source's listing leaves this one's alone
    assert con.sql("SELECT count(*) FROM ops.skipped_files").fetchall() == [(1,)]
    record_skipped(con, "partner", "ORG-A", [], "run-4")  # nothing skipped any more: nothing is kept
    assert con.sql("SELECT count(*) FROM ops.skipped_files").fetchall() == [(0,)]
