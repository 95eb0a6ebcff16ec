"""`din forget` for a panellist who took part through a Polis conversation: the real export (the shared
sample copied into a temporary folder, with a site's additions: tests/support/polis.py) is delivered,
run, and one participant is erased, as an operator does it.

One module-scoped scenario, participants read by xid (the ids the site gave Polis, on the roster);
tests that run the pipeline again do so on a copy of the site. A last test erases by Polis participant
id, with the example mapping as it ships.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from din.exit_codes import ExitCode
from din.keys import DEMO_KEY
from tests.support.network import Network
from tests.support.pipeline import content, published, rebuild, run
from tests.support.polis import CONVERSATION, ERASED, EXPORT, PANEL, authored, rows, write, write_polis_site
from tests.support.traces import traces
from tests.warehouse.test_erasure import din, prefect_database
from transforms.adapters import load_mapping, read_survey
from transforms.pseudonymise import pseudonym

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

PSEUDONYM = pseudonym(DEMO_KEY, PANEL, ERASED["xid"])
FILES = ("comments.csv", "votes.csv", "participants-votes.csv", "summary.csv", "comment-groups.csv")
XID_FILE = f"{CONVERSATION}-xid.csv"


@dataclass(frozen=True)
class Erased:
    network: Network
    before: Path  # the data folder before the erasure
    forget: subprocess.CompletedProcess[str]
    prefect_db: Path
    wrote: dict[str, str]  # comment-id -> text of the statements they wrote

    @property
    def needles(self) -> tuple[str, ...]:
        """What must be found nowhere: their xid, pseudonym, roster identifiers and the statements they wrote."""
        identifiers = (ERASED["xid"], PSEUDONYM, ERASED["name"], ERASED["email"], ERASED["phone"], ERASED["postcode"])
        return identifiers + tuple(self.wrote.values())


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Erased:
    network = write_polis_site(tmp_path_factory.mktemp("polis-site"), by="xid")
    summary = run(network)
    assert summary["outcome"] == "succeeded", summary["warnings"]
    before = network.root / "before"
    shutil.copytree(network.data_dir, before, symlinks=True)
    database = prefect_database()
    forget = din(
        network.config,
        "forget",
        ERASED["xid"],
        "--panel",
        PANEL,
        "--requested-by",
        "dpo@example.org",
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
    )
    return Erased(network, before, forget, database, authored(network.root / EXPORT))


def site_copy(erased: Erased, tmp_path: Path) -> Network:
    root = tmp_path / "site"
    shutil.copytree(erased.network.root, root, symlinks=True, ignore=shutil.ignore_patterns("before"))
    return Network(root, root / "din.yaml", root / "data")


def landing_export(data: Path) -> dict[str, Path]:
    """The landing copies of the export's current files, by file name."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    found = con.sql(
        "SELECT relative_path, landing_path FROM ops.deliveries "
        "WHERE source = 'assembly-polis' AND status = 'processed'"
    ).fetchall()
    con.close()
    return {Path(rel).name: data / "landing" / Path(path).relative_to(Path(path).parents[2]) for rel, path in found}


def read_export(files: dict[str, Path], name: str, tmp_path: Path) -> object:
    """What the adapter reads from one file, with the others beside it (as the pipeline reads it)."""
    folder = tmp_path / f"read-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    for file, path in files.items():
        shutil.copy(path, folder / file)
    mapping = load_mapping(Path(__file__).parents[2] / "examples" / "mappings" / "polis.yaml")
    mapping = type(mapping)(**{**mapping.__dict__, "panel_id": PANEL, "panellist_column": "xid"})
    companions = {p.name: p for p in folder.iterdir() if p.name != name}
    return read_survey(folder / name, mapping, None, companions)


# --- it completes, in every file of the export --------------------------------------------------------


def test_forget_erases_the_participant_from_every_file_of_the_export_and_says_what_it_did(erased: Erased) -> None:
    assert erased.forget.returncode == 0, erased.forget.stderr
    out = erased.forget.stdout
    lines = {Path(line.split()[0]).name: line for line in out.splitlines() if line.startswith("    ")}
    expected = {
        "comments.csv": "5 row(s), 1 mention(s)",  # their statements; the statement that named them
        "votes.csv": "37 row(s), 0 mention(s)",  # 36 statements voted on, one of them twice
        "participants-votes.csv": "1 row(s), 0 mention(s)",
        XID_FILE: "1 row(s), 0 mention(s)",
        "comment-groups.csv": "5 row(s), 1 mention(s)",
        "summary.csv": "0 row(s), 0 mention(s), 5 count(s) made without them",
        "roster.csv": "1 row(s), 0 mention(s)",
    }
    for name, said in expected.items():
        assert said in lines[name], lines[name]
    assert "count(s) made without them" in lines["comments.csv"] and "count(s) made" in lines["comment-groups.csv"]
    assert f"redacted {len(expected)} file(s)" in out
    removed = next(line for line in out.splitlines() if line.strip().startswith("warehouse: removed"))
    # their 36 latest votes and the other participants' 32 votes on their 5 statements; their changed vote
    assert "response_history 1" in removed and "statements 5" in removed and "roster 1" in removed
    assert f"responses {36 + 32}" in removed
    for needle in erased.needles:
        assert needle not in out


def test_the_export_reads_back_the_same_for_every_other_participant(erased: Erased, tmp_path: Path) -> None:
    old, new = landing_export(erased.before), landing_export(erased.network.data_dir)
    assert set(old) == set(new) == {*FILES, XID_FILE}
    assert all(old[name] != new[name] for name in old)  # each file held them (or counts of their votes)
    wrote = {f"S{c}" for c in erased.wrote}
    for name, kinds in (("comments.csv", ("statements",)), ("votes.csv", ("responses", "response_history"))):
        was, now = read_export(old, name, tmp_path), read_export(new, name, tmp_path)
        for kind in kinds:
            before = getattr(was, kind).to_dicts()
            after = getattr(now, kind).to_dicts()
            who = "author_ref" if kind == "statements" else "panellist_ref"
            on = "statement_id" if kind == "statements" else "question_id"
            others = [r for r in before if r[who] != ERASED["xid"] and r[on] not in wrote]
            same = lambda r: {k: v for k, v in r.items() if k not in ("text", "question_text")}  # noqa: E731
            assert [same(r) for r in after] == [same(r) for r in others], (name, kind)  # same rows, same row numbers
            texts = {r.get("text") or r.get("question_text") for r in after}
            assert not [t for t in texts if t and ERASED["name"] in t]
    assert now.excluded == {"on_erased_statement": 32}  # type: ignore[attr-defined]
    lines = [(a, b) for a, b in zip(rows(old["votes.csv"]), rows(new["votes.csv"]), strict=True) if a != b]
    assert len(lines) == 37 and all(not any(b) and a[3] == ERASED["participant"] for a, b in lines)


def test_published_statement_counts_drop_by_exactly_their_votes(erased: Erased) -> None:
    before = published(Network(erased.network.root, erased.network.config, erased.before))
    after = published(erased.network)
    wrote = {f"S{c}" for c in erased.wrote}
    theirs = before["responses"].filter(pl.col("panellist_pseudonym") == PSEUDONYM)
    assert theirs.height == 36
    votes = Counter((r["question_id"], r["answer"]) for r in theirs.to_dicts())
    was = {r["statement_id"]: r for r in before["statements"].to_dicts()}
    now = {r["statement_id"]: r for r in after["statements"].to_dicts()}
    assert set(now) == set(was) - wrote and len(wrote) == 5
    for statement, row in now.items():
        for answer, column in (("agree", "agrees"), ("disagree", "disagrees"), ("pass", "passes")):
            assert was[statement][column] - row[column] == votes[(statement, answer)], (statement, column)
        theirs_on_it = sum(votes[(statement, answer)] for answer in ("agree", "disagree", "pass"))
        assert was[statement]["votes"] - row["votes"] == theirs_on_it
    assert int(after["statements"]["votes"].sum()) == after["responses"].height  # they still agree with responses
    con = duckdb.connect(str(erased.network.data_dir / "warehouse.duckdb"), read_only=True)
    by = (("statements", "author_ref"), ("responses", "panellist_ref"), ("response_history", "panellist_ref"))
    core = {
        table: con.execute(f"SELECT count(*) FROM core.{table} WHERE {column} = ?", [PSEUDONYM]).fetchall()[0][0]
        for table, column in by
    }
    on_theirs = con.execute("SELECT count(*) FROM core.responses WHERE list_contains(?, question_id)", [sorted(wrote)])
    assert core == {"statements": 0, "responses": 0, "response_history": 0} and on_theirs.fetchall() == [(0,)]
    message = con.execute(
        "SELECT message FROM ops.deliveries WHERE source = 'assembly-polis' AND relative_path LIKE '%/votes.csv'"
    ).fetchall()[0][0]
    con.close()
    assert "excluded 32 on_erased_statement" in message and "summary.csv states" not in message


def test_the_export_s_own_counts_are_made_again_without_them(erased: Erased) -> None:
    old, new = landing_export(erased.before), landing_export(erased.network.data_dir)
    summary = lambda path: dict(r for r in rows(path) if len(r) == 2)  # noqa: E731
    was, now = summary(old["summary.csv"]), summary(new["summary.csv"])
    assert {k: int(was[k]) - int(now[k]) for k in ("views", "voters", "voters-in-conv", "commenters", "comments")} == {
        "views": 1,
        "voters": 1,
        "voters-in-conv": 1,
        "commenters": 1,
        "comments": 5,
    }
    votes = Counter((r[2], r[4]) for r in rows(new["votes.csv"])[1:] if any(r))
    for row in rows(new["comments.csv"])[1:]:
        if row[3]:  # every statement left: Polis' counts of every vote row, as the redacted votes.csv has them
            assert (row[4], row[5]) == (str(votes[(row[2], "1")]), str(votes[(row[2], "-1")])), row[2]


# --- nothing of them anywhere ------------------------------------------------------------------------


def test_nothing_of_the_participant_is_left_anywhere_the_network_keeps_data(erased: Erased) -> None:
    """Landing, the warehouse (every table), the published version and catalog, feedback pages, the erasure
    register and Prefect's database: no xid, pseudonym, name, e-mail, phone, postcode, nor their statements."""
    found_before = traces(erased.before, erased.needles)
    for needle in erased.needles:
        assert any(t.endswith(f": {needle}") for t in found_before), needle  # each was there before
    assert traces(erased.network.data_dir, erased.needles) == []
    assert traces(erased.prefect_db.parent, erased.needles) == []


def test_no_temporary_file_outlives_the_command(erased: Erased) -> None:
    data = erased.network.data_dir
    hidden = [p for p in data.rglob(".*") if ".prefect" not in p.parts and p.name != ".complete"]
    assert hidden == []
    assert sorted(p.name for p in (data / "landing" / "erasures").iterdir()) == ["blocklist.json"]


# --- erased stays erased -------------------------------------------------------------------------------


def test_the_export_resent_unchanged_brings_nothing_back(erased: Erased, tmp_path: Path) -> None:
    site = site_copy(erased, tmp_path)
    for path in (site.root / EXPORT).iterdir():
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 3600))
    summary = run(site)
    assert summary["deliveries_new"] == 0
    assert traces(site.data_dir, erased.needles) == []


def test_a_new_export_of_the_conversation_keeps_them_out_and_a_rebuild_publishes_the_same(
    erased: Erased, tmp_path: Path
) -> None:
    """The facilitator exports the conversation again later: a statement of theirs and one naming them
    were added, and new votes (theirs, and someone else's on a statement of theirs)."""
    site = site_copy(erased, tmp_path)
    export = site.root / EXPORT
    comments = rows(export / "comments.csv")
    comments.append(["1658935000000", "x", "40", ERASED["participant"], "0", "0", "1", "A late idea of mine"])
    comments.append(["1658935001000", "x", "41", "1", "0", "0", "1", f"I back {ERASED['name']} on this"])
    write(export / "comments.csv", comments)
    votes = rows(export / "votes.csv")
    votes.append(["1658935002000", "x", "41", ERASED["participant"], "1"])
    votes.append(["1658935003000", "x", "35", "1", "-1"])  # on a statement of theirs
    write(export / "votes.csv", votes)
    summary = run(site)
    needles = (*erased.needles, "A late idea of mine")
    source = next(s for s in summary["sources"] if s["source"] == "assembly-polis")
    assert source["rows_blocked"] == 6 + 38  # their statements (5 and the new one); their votes (36, 1 earlier, 1 new)
    assert traces(site.data_dir, needles) == []  # landing too: the new copies are redacted as the run lands them
    tables = published(site)
    assert tables["statements"].filter(pl.col("statement_id") == "S41")["text"].to_list() == ["I back [name] on this"]
    assert not set(tables["statements"]["statement_id"]) & {f"S{c}" for c in [*erased.wrote, "40"]}
    assert tables["responses"].filter(pl.col("question_id") == "S35").height == 0
    con = duckdb.connect(str(site.data_dir / "warehouse.duckdb"), read_only=True)
    message = con.execute(
        "SELECT message FROM ops.deliveries WHERE relative_path LIKE '%/votes.csv' AND status = 'processed'"
    ).fetchall()[0][0]
    con.close()
    assert "excluded 33 on_erased_statement" in message  # the 32 as before, and the new one
    before = content(tables)
    rebuild(site)
    assert content(published(site)) == before
    assert traces(site.data_dir, needles) == []


def test_a_dry_run_lists_every_file_of_the_export_and_touches_nothing(erased: Erased, tmp_path: Path) -> None:
    root = tmp_path / "dry"
    shutil.copytree(erased.network.root, root, symlinks=True, ignore=shutil.ignore_patterns("before", "data"))
    shutil.copytree(erased.before, root / "data", symlinks=True)
    state = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "data").rglob("*") if p.is_file()}
    result = din(root / "din.yaml", "forget", ERASED["xid"], "--panel", PANEL, "--dry-run")
    assert result.returncode == 0, result.stderr
    for name in (*FILES, XID_FILE):
        assert f"    london-youth-policing/{name} (assembly-polis)" in result.stdout, name
    assert "statements 5" in result.stdout
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "data").rglob("*") if p.is_file()} == state


@pytest.mark.parametrize("stage", ["stage", "warehouse"])
def test_killed_while_it_redacts_the_export_the_same_din_forget_again_finishes_it_exactly(
    erased: Erased, tmp_path: Path, stage: str
) -> None:
    """SIGKILL while the export's files are being staged (some redacted, some not), or once the warehouse was
    read again but the journal does not say so: the rerun leaves what the uninterrupted erasure left."""
    root = tmp_path / "killed"
    shutil.copytree(erased.network.root, root, symlinks=True, ignore=shutil.ignore_patterns("before", "data"))
    shutil.copytree(erased.before, root / "data", symlinks=True)
    prefect = {"PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{erased.prefect_db}"}
    killed = din(
        root / "din.yaml", "forget", ERASED["xid"], "--panel", PANEL, DIN_INJECT_KILL=f"forget-{stage}", **prefect
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = din(root / "din.yaml", "forget", ERASED["xid"], "--panel", PANEL, **prefect)
    assert rerun.returncode == 0, rerun.stderr
    done = Network(root, root / "din.yaml", root / "data")
    assert content(published(done)) == content(published(erased.network))
    assert landing_export(done.data_dir).keys() == landing_export(erased.network.data_dir).keys()
    for name, path in landing_export(done.data_dir).items():
        assert path.read_bytes() == landing_export(erased.network.data_dir)[name].read_bytes(), name
    assert traces(done.data_dir, erased.needles) == []


# --- by Polis participant id, with the example mapping as it ships ----------------------------------------


def test_forget_by_polis_participant_id_with_the_example_mapping(tmp_path: Path) -> None:
    network = write_polis_site(tmp_path / "site", by="participant")
    run(network)
    ours = pseudonym(DEMO_KEY, PANEL, ERASED["participant"])
    before = published(network)
    assert before["responses"].filter(pl.col("panellist_pseudonym") == ours).height == 36
    result = din(network.config, "forget", ERASED["participant"], "--panel", PANEL)
    assert result.returncode == 0, result.stderr
    assert "votes.csv (assembly-polis): 37 row(s)" in result.stdout
    after = published(network)
    for table, column in (("responses", "panellist_pseudonym"), ("statements", "author_pseudonym")):
        assert after[table].filter(pl.col(column) == ours).height == 0, table
    assert after["responses"].height == before["responses"].height - 36 - 32
    export = landing_export(network.data_dir)
    assert not [r for r in rows(export["votes.csv"])[1:] if r[3] == ERASED["participant"]]
    assert not [r for r in rows(export["comments.csv"])[1:] if r[3] == ERASED["participant"]]
    needles = (ours, ERASED["name"], ERASED["email"], *authored(network.root / EXPORT).values())
    assert traces(network.data_dir, needles) == []


def test_a_file_of_the_export_that_is_not_polis_csv_is_said_to_need_attention_and_the_exit_code_says_so(
    tmp_path: Path,
) -> None:
    """The facilitator re-saved votes.csv as a workbook: the adapter reads it, the erasure cannot search its
    `voter-id` column as a Polis file, so it names the file, asks for a person's eyes and exits 3."""
    import xlsxwriter

    network = write_polis_site(tmp_path / "site", by="participant")
    votes = network.root / EXPORT / "votes.csv"
    workbook = xlsxwriter.Workbook(votes.with_suffix(".xlsx"))
    sheet = workbook.add_worksheet()
    for r, row in enumerate(rows(votes)):
        sheet.write_row(r, 0, row)
    workbook.close()
    votes.unlink()
    run(network)
    ours = pseudonym(DEMO_KEY, PANEL, ERASED["participant"])
    assert published(network)["responses"].filter(pl.col("panellist_pseudonym") == ours).height == 36
    result = din(network.config, "forget", ERASED["participant"], "--panel", PANEL)
    assert result.returncode == ExitCode.SOURCE_ERRORS == 3, (result.stdout, result.stderr)
    assert "NEEDS ATTENTION london-youth-policing/votes.xlsx" in result.stdout
    assert "not the comma-separated CSV Polis writes" in result.stdout
    assert "votes.xlsx" in result.stderr and "could not be checked" in result.stderr
    export = landing_export(network.data_dir)
    assert not [r for r in rows(export["comments.csv"])[1:] if r[3] == ERASED["participant"]]  # the rest is done
