"""The Polis adapter reads a real conversation's export as Polis wrote it (compdemocracy openData,
london.youth.policing, CC BY 4.0: data gathered with Polis, attributed to The Computational Democracy
Project), and faithful variants of it made in a temporary folder.

What the sample holds, counted by hand from its files: 39 comments, 36 shown (moderated 1) and 3
moderated out (-1); 640 votes by 26 voters on 36 comments, of which two are repeats (participant 14
on comment 10, participant 5 on comment 25: the later one counts); summary.csv says 36 comments and
26 voters.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES
from transforms.adapters import AdapterError, MappingError, detect_tool, load_mapping, mapping_from_dict, read_survey
from transforms.adapters.polis import read_polis

SAMPLE = SAMPLES / "real-exports" / "polis-london-youth-policing"
MAPPING = mapping_from_dict({"tool": "polis", "panel_id": "p1", "workshop_id": "W4"})


def companions(folder: Path, own: str) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.name != own}


def read(folder: Path, name: str, mapping: object = MAPPING) -> object:
    return read_survey(folder / name, mapping, None, companions(folder, name))  # type: ignore[arg-type]


def rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open(encoding="utf-8", newline="")))


def write(path: Path, table: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)


@pytest.fixture
def export(tmp_path: Path) -> Path:
    folder = tmp_path / "polis"
    shutil.copytree(SAMPLE, folder)
    return folder


def test_every_file_of_the_export_is_recognised_as_polis_never_as_google_forms() -> None:
    assert {p.name: detect_tool(p) for p in SAMPLE.iterdir()} == {
        "comments.csv": "polis",
        "votes.csv": "polis",
        "participants-votes.csv": "polis",
        "summary.csv": "polis",
    }


def test_comments_become_statements_with_moderated_out_ones_kept_and_counted() -> None:
    result = read(SAMPLE, "comments.csv")
    statements = result.statements  # type: ignore[attr-defined]
    assert statements.height == 39
    assert statements["moderation"].value_counts().sort("moderation").rows() == [
        ("accepted", 36),
        ("moderated_out", 3),
    ]
    hidden = statements.filter(statements["moderation"] == "moderated_out")
    assert sorted(hidden["statement_id"]) == ["S0", "S2", "S3"]
    first = statements.row(0, named=True)
    assert first["statement_id"] == "S35" and first["author_ref"] == "23"
    assert first["text"] == "Eliminate bias - wider background check to see the type of people they are hiring"
    assert first["created_at"] == "2022-07-27T15:09:49"  # epoch milliseconds 1658934589213, UTC
    assert first["source_row"] == 2
    assert result.responses.height == 0  # type: ignore[attr-defined]
    assert "36 shown, 3 moderated out" in result.notes[0]  # type: ignore[attr-defined]


def test_votes_become_responses_where_the_latest_vote_wins_and_earlier_votes_are_history() -> None:
    result = read(SAMPLE, "votes.csv")
    responses = result.responses  # type: ignore[attr-defined]
    assert responses.height == 638  # 640 votes, 2 of them replaced
    assert result.respondents == 26  # type: ignore[attr-defined]
    assert responses.select("panellist_ref", "question_id").is_duplicated().sum() == 0
    assert set(responses["answer"]) == {"agree", "disagree", "pass"}
    history = result.response_history  # type: ignore[attr-defined]
    assert sorted(zip(history["panellist_ref"], history["question_id"], history["revision"], strict=True)) == [
        ("14", "S10", "1"),
        ("5", "S25", "1"),
    ]
    latest = responses.filter((responses["panellist_ref"] == "5") & (responses["question_id"] == "S25")).row(
        0, named=True
    )
    assert latest["answered_at"] == "2022-07-27T15:09:37"  # 1658934577925 ms, later than the replaced 1658934352107
    assert latest["question_text"].startswith("educate young people on the history of policing")
    assert history.filter(history["panellist_ref"] == "5")["answered_at"].to_list() == ["2022-07-27T15:05:52"]
    assert result.notes[0].startswith("640 vote(s) by 26 participant(s) on 36 statement(s)")  # type: ignore[attr-defined]


def test_the_latest_vote_is_chosen_by_time_not_by_file_order(export: Path) -> None:
    table = rows(export / "votes.csv")
    header, body = table[0], table[1:]
    index = {name: i for i, name in enumerate(header)}
    # Participant 1 first disagreed with comment 1, then (later in time, earlier in the file) agreed.
    body.insert(0, ["1658999999000", "later", "1", "1", "1"])
    assert [r for r in body if r[index["voter-id"]] == "1" and r[index["comment-id"]] == "1"][1][-1] == "-1"
    write(export / "votes.csv", [header, *body])
    result = read(export, "votes.csv")
    responses = result.responses  # type: ignore[attr-defined]
    vote = responses.filter((responses["panellist_ref"] == "1") & (responses["question_id"] == "S1"))
    assert vote["answer"].to_list() == ["agree"] and vote["source_row"].to_list() == [2]
    assert result.response_history.filter(result.response_history["panellist_ref"] == "1")["answer"].to_list() == [  # type: ignore[attr-defined]
        "disagree"
    ]


def test_epoch_seconds_of_newer_exports_read_as_the_same_moment(export: Path) -> None:
    table = rows(export / "votes.csv")
    for row in table[1:]:
        row[0] = str(int(row[0]) // 1000)  # Polis' newer export.ts writes Math.floor(ms / 1000)
    write(export / "votes.csv", table)
    seconds = read(export, "votes.csv").responses  # type: ignore[attr-defined]
    millis = read(SAMPLE, "votes.csv").responses  # type: ignore[attr-defined]
    assert seconds.sort("source_row")["answered_at"].to_list() == millis.sort("source_row")["answered_at"].to_list()


def test_votes_on_moderated_out_statements_are_left_out_and_counted(export: Path) -> None:
    table = rows(export / "votes.csv")
    table.append(["1658934000000", "x", "2", "4", "1"])  # comment 2 is moderated out
    write(export / "votes.csv", table)
    result = read(export, "votes.csv")
    assert result.excluded == {"on_moderated_out_statement": 1}  # type: ignore[attr-defined]
    assert "S2" not in set(result.responses["question_id"])  # type: ignore[attr-defined]


def test_a_statement_an_erasure_blanked_is_not_read_and_the_votes_on_it_are_left_out_and_counted(
    export: Path,
) -> None:
    table = rows(export / "comments.csv")
    for row in table[1:]:
        if row[2] == "35":  # by participant 23: an erasure keeps only its comment-id
            row[:] = ["" if i != 2 else value for i, value in enumerate(row)]
    write(export / "comments.csv", table)
    comments = read(export, "comments.csv")
    assert "S35" not in set(comments.statements["statement_id"])  # type: ignore[attr-defined]
    assert comments.statements.height == 38  # type: ignore[attr-defined]
    assert "1 statement(s) erased with their author (din forget)" in " ".join(comments.notes)  # type: ignore[attr-defined]
    votes = read(export, "votes.csv")
    on_it = [r for r in rows(SAMPLE / "votes.csv")[1:] if r[2] == "35"]
    assert votes.excluded == {"on_erased_statement": len(on_it)} and len(on_it) == 4  # type: ignore[attr-defined]
    assert "S35" not in set(votes.responses["question_id"])  # type: ignore[attr-defined]
    assert votes.responses.height == 638 - 4  # type: ignore[attr-defined]


def test_votes_on_statements_of_a_participant_erased_before_are_left_out_their_own_to_the_blocklist() -> None:
    erased = {"23"}.__contains__  # the blocklist, as the gate hands it to the adapter
    result = read_survey(SAMPLE / "votes.csv", MAPPING, None, companions(SAMPLE, "votes.csv"), erased)
    theirs = {r[2] for r in rows(SAMPLE / "comments.csv")[1:] if r[3] == "23"}
    on_theirs = [r for r in rows(SAMPLE / "votes.csv")[1:] if r[2] in theirs and r[3] != "23"]
    assert result.excluded == {"on_erased_statement": len(on_theirs)} and on_theirs
    responses = result.responses.to_dicts()
    assert not [r for r in responses if r["question_id"] in {f"S{c}" for c in theirs} and r["panellist_ref"] != "23"]
    assert len([r for r in responses if r["panellist_ref"] == "23"]) == 36  # the blocklist drops and counts these


def test_by_xid_a_participant_erased_before_whose_xid_is_gone_is_read_by_their_key_for_the_blocklist(
    export: Path,
) -> None:
    """An erasure blanks their row of participants-votes.csv, xid included; a later export beside it still names
    them by participant id: they are read as their `participant_key`, which the blocklist knows."""
    from transforms.adapters.polis import participant_key

    table = rows(export / "participants-votes.csv")
    xid = table[0].index("xid")
    for row in table[1:]:
        row[xid] = f"P{int(row[0]):03d}"
    table = [["" for _ in row] if row[0] == "23" else row for row in table]  # as the erasure left it
    write(export / "participants-votes.csv", table)
    by_xid = mapping_from_dict({"tool": "polis", "panel_id": "p1", "workshop_id": "W4", "panellist_column": "xid"})
    key = participant_key(by_xid, "23")
    assert key == "polis:W4:S:23"
    erased = {key}.__contains__
    votes = read_survey(export / "votes.csv", by_xid, None, companions(export, "votes.csv"), erased)
    assert len([r for r in votes.responses.to_dicts() if r["panellist_ref"] == key]) == 36  # type: ignore[attr-defined]
    assert votes.excluded["on_erased_statement"] > 0  # type: ignore[attr-defined]
    comments = read_survey(export / "comments.csv", by_xid, None, companions(export, "comments.csv"), erased)
    authors = comments.statements.filter(comments.statements["author_ref"] == key)  # type: ignore[attr-defined]
    assert authors.height == 5
    unknown = read_survey(export / "votes.csv", by_xid, None, companions(export, "votes.csv"))
    assert unknown.excluded == {"no_panellist_ref": 36}  # type: ignore[attr-defined]  # nobody erased: no xid, no row


def test_participants_by_xid_take_the_external_id_polis_was_given(export: Path) -> None:
    table = rows(export / "participants-votes.csv")
    xid = table[0].index("xid")
    for row in table[1:]:
        row[xid] = f"P{int(row[0]):03d}"
    write(export / "participants-votes.csv", table)
    by_xid = mapping_from_dict({"tool": "polis", "panel_id": "p1", "workshop_id": "W4", "panellist_column": "xid"})
    result = read(export, "votes.csv", by_xid)
    assert set(result.responses["panellist_ref"]) == {f"P{n:03d}" for n in range(1, 27)}  # type: ignore[attr-defined]
    statements = read(export, "comments.csv", by_xid).statements  # type: ignore[attr-defined]
    assert statements.filter(statements["statement_id"] == "S35")["author_ref"].to_list() == ["P023"]
    assert statements.filter(statements["statement_id"] == "S0")["author_ref"].to_list() == [None]  # the owner


def test_the_example_mapping_reads_participants_by_their_polis_id() -> None:
    example = load_mapping(REPO / "examples" / "mappings" / "polis.yaml")
    assert (example.tool, example.panellist_column, example.statement_prefix) == ("polis", "participant", "S")
    with pytest.raises(MappingError, match="panellist_column of a Polis export is participant"):
        mapping_from_dict({"tool": "polis", "panel_id": "p", "workshop_id": "W", "panellist_column": "email"})
    with pytest.raises(MappingError, match="unknown key"):
        mapping_from_dict({"tool": "polis", "panel_id": "p", "workshop_id": "W", "questions": {"1": "Q"}})


def test_files_that_only_accompany_the_export_load_nothing_and_say_why() -> None:
    for name in ("summary.csv", "participants-votes.csv"):
        result = read(SAMPLE, name)
        assert result.frames() == {}  # type: ignore[attr-defined]
        assert result.companion is not None and "nothing of its own to load" in result.companion  # type: ignore[attr-defined]


def test_the_export_checks_itself_against_its_own_summaries(export: Path) -> None:
    table = rows(export / "summary.csv")
    table = [["voters", "30"] if r and r[0] == "voters" else r for r in table]
    write(export / "summary.csv", table)
    notes = read(export, "votes.csv").notes  # type: ignore[attr-defined]
    assert "summary.csv states 30 voters, but the export holds 26 participants who voted" in notes


def test_votes_without_their_comments_or_with_a_vote_polis_never_writes_are_refused(export: Path) -> None:
    alone = export.parent / "alone"
    alone.mkdir()
    shutil.copy(export / "votes.csv", alone / "votes.csv")
    with pytest.raises(AdapterError, match=r"need its comments\.csv"):
        read(alone, "votes.csv")
    table = rows(export / "votes.csv")
    table[5][4] = "2"
    write(export / "votes.csv", table)
    with pytest.raises(AdapterError, match=r"votes\.csv: row 6, column 'vote': '2' is not 1 \(agree\)"):
        read(export, "votes.csv")
    with pytest.raises(AdapterError, match="not a Polis export"):
        read_polis(REPO / "examples" / "demo" / "reference" / "workshops.csv", MAPPING)
