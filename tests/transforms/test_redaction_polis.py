"""Redaction of one participant from every file of a real Polis export (the shared sample, with a site's
additions: tests/support/polis.py), by Polis participant id or by xid.

Each test redacts the export's files in a temporary folder, then checks the files (their rows blanked in
place, every other record's bytes kept but the counts made from their votes), the counts against Polis'
own rules, and the adapter's reading of the redacted export against its reading of the original.
"""

from __future__ import annotations

import csv
import io
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.support.polis import CONVERSATION, ERASED, authored, comment_groups, rows, write_export
from transforms.adapters import mapping_from_dict, read_survey
from transforms.blocklist import Blocklist, erasure_token
from transforms.redaction import (
    Blocked,
    Layout,
    Person,
    Whom,
    file_role,
    file_rows,
    polis_participants,
    polis_person,
    redact,
)
from transforms.scrub import Mentions, PersonIdentifiers

PANEL = "p1"
FILES = ("comments.csv", "votes.csv", "participants-votes.csv", "summary.csv", "comment-groups.csv")
XID_FILE = f"{CONVERSATION}-xid.csv"
MENTIONS = Mentions(PersonIdentifiers(frozenset({ERASED["name"]}), frozenset({ERASED["email"]})))


def mapping(by: str) -> object:
    return mapping_from_dict({"tool": "polis", "panel_id": PANEL, "workshop_id": "W4", "panellist_column": by})


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_export(tmp_path_factory.mktemp("polis") / "export")


def redact_export(original: Path, folder: Path, whom: Whom, by: str, mentions: Mentions | None = MENTIONS) -> dict:
    """Every file of the export redacted into `folder`, as an erasure does it; the redactions by file name."""
    files = {p.name: p.read_bytes() for p in original.iterdir()}
    participants = polis_participants(files.values(), PANEL, by, whom)
    export = {file_role(file_rows(data)): data for data in files.values()}
    person = polis_person(PANEL, participants, export)
    folder.mkdir()
    found = {}
    for name, data in files.items():
        layout = Layout("csv", survey_column=by, survey_panel=PANEL, polis=person)
        found[name] = redact(data, name, layout, whom, mentions)
        (folder / name).write_bytes(found[name].data)
    return found


def read(folder: Path, name: str, by: str) -> object:
    return read_survey(folder / name, mapping(by), None, {p.name: p for p in folder.iterdir() if p.name != name})


@pytest.fixture(scope="module")
def by_participant(original: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("redacted") / "export"
    return folder, redact_export(original, folder, Person(PANEL, frozenset({ERASED["participant"]})), "participant")


# --- each file ------------------------------------------------------------------------------------


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")


def test_their_votes_and_final_votes_are_blanked_in_place_and_every_other_line_keeps_its_bytes(
    original: Path, by_participant: tuple[Path, dict]
) -> None:
    folder, found = by_participant
    for name, column in (("votes.csv", 3), ("participants-votes.csv", 0), (XID_FILE, 0)):
        old, new = lines(original / name), lines(folder / name)
        assert len(old) == len(new), name  # row numbers kept
        theirs = [i for i, row in enumerate(rows(original / name)) if row[column] == ERASED["participant"]]
        assert theirs, name
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            assert b == (b"," * a.count(b",") if index in theirs else a), (name, index)
        assert found[name].rows == [f"row {i + 1}" for i in theirs]
        assert found[name].identities == {ERASED["participant"]}
    assert len(found["votes.csv"].rows) == 37  # 36 statements voted on, one of them twice


def test_their_statements_keep_only_their_comment_id_and_the_others_only_lose_their_votes_from_the_counts(
    original: Path, by_participant: tuple[Path, dict]
) -> None:
    folder, found = by_participant
    wrote = authored(original)
    old, new = rows(original / "comments.csv"), rows(folder / "comments.csv")
    assert [r for r in new if r[2] in wrote] == [["", "", c, "", "", "", "", ""] for c in wrote]
    assert len(found["comments.csv"].rows) == len(wrote) == 5
    # Polis counts every vote row (a changed vote twice): so do the counts left, from the redacted votes
    votes = Counter((r[2], r[4]) for r in rows(folder / "votes.csv")[1:] if any(r))
    kept = [(a, b) for a, b in zip(old[1:], new[1:], strict=True) if b[2] not in wrote]
    for before, after in kept:
        assert after[:4] + after[6:] == before[:4] + before[6:] or after[2] == "36"  # 36 named them: see below
        assert (after[4], after[5]) == (str(votes[(after[2], "1")]), str(votes[(after[2], "-1")])), after[2]
    theirs = [r for r in rows(original / "votes.csv")[1:] if r[3] == ERASED["participant"] and r[2] not in wrote]
    taken = sum(int(was[4]) - int(now[4]) + int(was[5]) - int(now[5]) for was, now in kept)
    assert taken == len([r for r in theirs if r[4] != "0"])  # passes are not counted in comments.csv
    assert found["comments.csv"].recounted > 0
    # a record whose counts did not change keeps every byte
    old_lines, new_lines = lines(original / "comments.csv"), lines(folder / "comments.csv")
    assert any(a == b and b"," in a for a, b in zip(old_lines[1:], new_lines[1:], strict=True))


def test_others_mentions_of_them_are_replaced(original: Path, by_participant: tuple[Path, dict]) -> None:
    folder, found = by_participant
    text = (folder / "comments.csv").read_text()
    assert ERASED["name"] not in text and "forefront of the decision making - as [name] said" in text
    assert found["comments.csv"].mentions == 1
    groups = (folder / "comment-groups.csv").read_text()
    assert ERASED["name"] not in groups and "as [name] said" in groups


def test_summary_counts_are_made_again_without_them(original: Path, by_participant: tuple[Path, dict]) -> None:
    folder, found = by_participant
    old = dict(r for r in rows(original / "summary.csv") if len(r) == 2)
    new = dict(r for r in rows(folder / "summary.csv") if len(r) == 2)
    # they took part (views), voted, are in an opinion group (in the conversation's maths) and wrote 5 shown statements
    less = {"views": 1, "voters": 1, "voters-in-conv": 1, "commenters": 1, "comments": 5}
    assert {k: int(old[k]) - int(new[k]) for k in less} == less
    assert {k: v for k, v in new.items() if k not in less} == {k: v for k, v in old.items() if k not in less}
    assert found["summary.csv"].recounted == 5 and not found["summary.csv"].rows


def test_comment_groups_are_what_polis_makes_from_the_redacted_export(
    original: Path, by_participant: tuple[Path, dict]
) -> None:
    folder, found = by_participant
    wrote = authored(original)
    redacted = rows(folder / "comment-groups.csv")
    assert [r for r in redacted if r and not any(r)] == [[""] * len(redacted[0])] * len(wrote)  # their statements
    assert [r for r in redacted if any(r)] == rows_of(comment_groups(folder))
    assert found["comment-groups.csv"].recounted > 0


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


# --- the adapter reads everyone else back the same ---------------------------------------------------


@pytest.mark.parametrize("by", ["participant", "xid"])
def test_the_adapter_reads_every_other_participant_back_the_same(original: Path, tmp_path: Path, by: str) -> None:
    ref = ERASED["participant"] if by == "participant" else ERASED["xid"]
    folder = tmp_path / "export"
    redact_export(original, folder, Person(PANEL, frozenset({ref})), by)
    wrote = {f"S{c}" for c in authored(original)}

    before, after = read(original, "comments.csv", by), read(folder, "comments.csv", by)
    old = {r["statement_id"]: r for r in before.statements.to_dicts()}  # type: ignore[attr-defined]
    new = {r["statement_id"]: r for r in after.statements.to_dicts()}  # type: ignore[attr-defined]
    assert set(new) == set(old) - wrote and {old[s]["author_ref"] for s in wrote} == {ref}
    for statement, row in new.items():
        if statement != "S36":  # the one that named them: only the name is replaced
            assert row == old[statement], statement
    assert new["S36"]["text"].endswith("as [name] said")
    assert "5 statement(s) erased with their author" in " ".join(after.notes)  # type: ignore[attr-defined]

    before, after = read(original, "votes.csv", by), read(folder, "votes.csv", by)
    was = before.responses.to_dicts()  # type: ignore[attr-defined]
    now = after.responses.to_dicts()  # type: ignore[attr-defined]
    kept = [r for r in was if r["panellist_ref"] != ref and r["question_id"] not in wrote]
    on_theirs = [r for r in was if r["panellist_ref"] != ref and r["question_id"] in wrote]
    assert len([r for r in was if r["panellist_ref"] == ref]) == 36 and on_theirs
    assert [r for r in now if r["question_id"] != "S36"] == [r for r in kept if r["question_id"] != "S36"]
    assert [dict(r, question_text=None) for r in now] == [dict(r, question_text=None) for r in kept]
    assert {r["question_text"] for r in now if r["question_id"] == "S36"} == {new["S36"]["text"]}  # as redacted
    assert after.excluded == {"on_erased_statement": len(on_theirs)}  # type: ignore[attr-defined]
    history = before.response_history.to_dicts()  # type: ignore[attr-defined]
    assert [r["question_id"] for r in history if r["panellist_ref"] == ref] == ["S1"]  # the vote they changed
    assert after.response_history.to_dicts() == [  # type: ignore[attr-defined]
        r for r in history if r["panellist_ref"] != ref and r["question_id"] not in wrote
    ]
    assert not [n for n in after.notes if "summary.csv states" in n or "differ" in n]  # type: ignore[attr-defined]


def test_counts_of_each_statement_drop_by_exactly_their_latest_votes(original: Path, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    redact_export(original, folder, Person(PANEL, frozenset({ERASED["participant"]})), "participant")
    wrote = {f"S{c}" for c in authored(original)}

    def counts(export: Path) -> Counter[tuple[str, str]]:
        responses = read(export, "votes.csv", "participant").responses  # type: ignore[attr-defined]
        return Counter((r["question_id"], r["answer"]) for r in responses.to_dicts())

    theirs = Counter(
        (r["question_id"], r["answer"])
        for r in read(original, "votes.csv", "participant").responses.to_dicts()  # type: ignore[attr-defined]
        if r["panellist_ref"] == ERASED["participant"] and r["question_id"] not in wrote
    )
    before, after = counts(original), counts(folder)
    dropped = Counter({k: v for k, v in (before - after).items() if k[0] not in wrote})
    assert dropped == theirs and sum(theirs.values()) == 31  # 36 votes, 5 of them on their own statements
    assert not after - before


# --- who the person is in the export ----------------------------------------------------------------


def test_by_xid_the_participant_is_found_through_the_xid_files(original: Path) -> None:
    files = [p.read_bytes() for p in original.iterdir()]
    person = Person(PANEL, frozenset({ERASED["xid"]}))
    assert polis_participants(files, PANEL, "xid", person) == {ERASED["participant"]: ERASED["xid"]}
    assert polis_participants(files, PANEL, "participant", person) == {}  # an xid is no participant id
    assert polis_participants(files, "other-panel", "xid", person) == {}
    # from participants-votes.csv alone, as from the xid file alone
    for name in ("participants-votes.csv", XID_FILE):
        assert polis_participants([(original / name).read_bytes()], PANEL, "xid", person) == {"23": "YP-023"}


def test_everyone_erased_before_is_found_by_token(original: Path, tmp_path: Path) -> None:
    key = b"k" * 32
    blocked = Blocked(Blocklist(key, frozenset({erasure_token(key, PANEL, ERASED["xid"])})))
    found = redact_export(original, tmp_path / "export", blocked, "xid", mentions=None)
    assert found["votes.csv"].rows and found["comments.csv"].rows and found["participants-votes.csv"].rows
    assert found["votes.csv"].identities == {ERASED["xid"]}  # as the pipeline knows them, for the blocklist
    assert not [r for r in rows(tmp_path / "export" / "votes.csv") if r[3] == ERASED["participant"]]


def test_a_file_that_is_not_polis_csv_is_left_as_it_was_and_said_to_need_attention(original: Path) -> None:
    files = {p.name: p.read_bytes() for p in original.iterdir()}
    person = polis_person(PANEL, {"23": "23"}, {file_role(file_rows(d)): d for d in files.values()})
    garbage = b"\x00\x01 not a csv at all"
    redaction = redact(garbage, "votes.csv", Layout("csv", polis=person), Person(PANEL, frozenset({"23"})))
    assert redaction.data == garbage and redaction.unchecked and "Polis" in (redaction.note or "")


def test_a_statements_file_of_the_contract_is_searched_by_its_author(tmp_path: Path) -> None:
    """`statements` is a personal kind by its `author_ref`: a partner's own statements file loses theirs."""
    data = (
        b"panel_id,workshop_id,statement_id,text,author_ref,moderation\n"
        b"p1,W4,S1,Mine,P2,accepted\n"
        b"p1,W4,S2,Yours,P1,accepted\n"
    )
    redaction = redact(data, "statements.csv", Layout("csv"), Person(PANEL, frozenset({"P2"})))
    assert redaction.data.split(b"\n")[1] == b",,,,," and redaction.rows == ["row 2"]
    assert redaction.data.split(b"\n")[2] == b"p1,W4,S2,Yours,P1,accepted"


def test_a_polis_file_the_adapter_reads_but_not_as_polis_csv_is_said_to_need_a_persons_eyes(
    original: Path, tmp_path: Path
) -> None:
    """A votes.csv re-saved as a workbook or tab-separated is still read by the adapter; its `voter-id`
    cannot be searched by a CSV redaction: never passed silently."""
    import xlsxwriter

    from transforms.redaction import unsearchable

    table = rows(original / "votes.csv")
    book = tmp_path / "votes.xlsx"
    workbook = xlsxwriter.Workbook(book)
    sheet = workbook.add_worksheet()
    for r, row in enumerate(table):
        sheet.write_row(r, 0, row)
    workbook.close()
    tsv = tmp_path / "votes.tsv"
    tsv.write_text("\n".join("\t".join(row) for row in table) + "\n", encoding="utf-8")
    shutil.copy(original / "comments.csv", tmp_path)
    for path in (book, tsv):
        why = unsearchable(path, path.read_bytes())
        assert why is not None and "votes file" in why and "not searched" in why, path.name
        assert read(path.parent, path.name, "participant").responses.height == 638  # type: ignore[attr-defined]
    for name in FILES:  # what Polis writes is searched
        assert unsearchable(original / name, (original / name).read_bytes()) is None, name
    other = tmp_path / "notes.csv"
    other.write_text("a,b\n1,2\n", encoding="utf-8")
    assert unsearchable(other, other.read_bytes()) is None  # no file of an export: the adapter refuses it
