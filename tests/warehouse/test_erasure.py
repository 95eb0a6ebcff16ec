"""`din forget` on a network delivering in every format: the person goes from everything the network
holds, everyone else stays exactly as they were, and nothing brings the person back.

One module-scoped scenario: the mixed network (tests/support/network.py: an XLSX roster with a hidden
sheet, CSV in UTF-8 with BOM and CRLF and in cp1252 with semicolons, NDJSON, JSON, Parquet, a Qualtrics
export and a Google Forms export keyed by e-mail) is run once, a flow writes a log line and an artifact
that quote the person (what a careless error message would do), and `din forget` runs as an operator
runs it. Tests that run the pipeline again do so on a copy of the site.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from din.config import load_config
from din.keys import DEMO_KEY
from tests.support.network import ERASED, PANEL, Network, write_mixed_network, write_network
from tests.support.pipeline import content, published, read_published, rebuild, run
from tests.support.servers import NAMES, S3Server, bucket_server, remote_objects
from tests.support.traces import traces
from transforms.adapters import load_mapping, read_survey
from transforms.pseudonymise import pseudonym
from transforms.readers import ROW, ReadOptions, read_table
from warehouse.catalog import connect_catalog

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

PSEUDONYMS = (pseudonym(DEMO_KEY, PANEL, ERASED["ref"]), pseudonym(DEMO_KEY, PANEL, ERASED["email"]))
NEEDLES = (ERASED["ref"], *PSEUDONYMS, ERASED["name"], ERASED["email"], ERASED["phone"], ERASED["postcode"])
REQUESTED_BY = "dpo@example.org"


def din(config: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def prefect_database() -> Path:
    """The SQLite file behind this test session's Prefect server (the harness's, not PREFECT_HOME's)."""
    from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL

    return Path(PREFECT_SERVER_DATABASE_CONNECTION_URL.value().split(":///", 1)[1])


def careless_flow() -> None:
    """A flow that logs and publishes what flows must never write: the person's identifiers."""
    from prefect import flow, get_run_logger
    from prefect.artifacts import create_markdown_artifact
    from prefect.logging.handlers import APILogWorker

    @flow(name="careless")
    def careless() -> None:
        get_run_logger().error(
            "row 3 of roster.xlsx: %s (%s, %s) is %s", ERASED["name"], ERASED["email"], ERASED["phone"], PSEUDONYMS[0]
        )
        create_markdown_artifact(key="careless-note", markdown=f"# {ERASED['ref']} lives at {ERASED['postcode']}")

    careless()
    APILogWorker.drain_all(timeout=30)


def wait_until_persisted(database: Path, needle: str, timeout: float = 60) -> None:
    """Wait until Prefect's event persister has written an event that quotes `needle`: the server queues
    events in memory and flushes them every few seconds, so an erasure started sooner would be followed
    by the event it could not yet see."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
        try:
            if con.execute(
                "SELECT count(*) FROM events WHERE payload || resource || related LIKE ?", [f"%{needle}%"]
            ).fetchone()[0]:
                return
        finally:
            con.close()
        time.sleep(0.5)
    raise AssertionError(f"no event quoting {needle!r} was persisted within {timeout} s")


def write_reports(network: Network) -> None:
    """What `din report` and `din export` write by default (the panel report, a project pack, exports)."""
    from reports.export import export_table
    from reports.html import build_report
    from reports.packs import build_project_pack

    published_dir, reports = network.data_dir / "published", network.data_dir / "reports"
    build_report(published_dir, reports / "report.html", "test")
    build_project_pack(published_dir, "PRJ-1", reports / "project-PRJ-1.html")
    export_table(published_dir, "responses", "csv", reports / "exports" / "responses.csv")
    export_table(published_dir, "panellists", "xlsx", reports / "exports" / "panellists.xlsx")


@dataclass(frozen=True)
class Erased:
    network: Network
    before: Path  # the data folder as it was before the erasure
    forget: subprocess.CompletedProcess[str]
    prefect_db: Path


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> Erased:
    network = write_mixed_network(tmp_path_factory.mktemp("mixed"))
    run(network)
    careless_flow()
    write_reports(network)
    before = network.root / "before"
    shutil.copytree(network.data_dir, before, symlinks=True)
    database = prefect_database()
    wait_until_persisted(database, ERASED["postcode"])  # the artifact's event, flushed a few seconds later
    assert any(ERASED["name"] in t for t in traces(database.parent, NEEDLES))  # the careless flow did write it
    forget = din(
        network.config,
        "forget",
        ERASED["ref"],
        "--panel",
        PANEL,
        "--requested-by",
        REQUESTED_BY,
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
    )
    return Erased(network, before, forget, database)


def data_files(data: Path) -> list[Path]:
    """The data folder's files, but the writer lock (a command that takes it writes its process id there)."""
    return [p for p in data.rglob("*") if p.is_file() and ".prefect" not in p.parts and p.name != "warehouse.lock"]


def site_copy(erased: Erased, tmp_path: Path) -> Network:
    """The erased site (configuration, deliveries and data) copied, to run the pipeline on it again."""
    root = tmp_path / "site"
    shutil.copytree(erased.network.root, root, symlinks=True, ignore=shutil.ignore_patterns("before"))
    return Network(root, root / "din.yaml", root / "data")


# --- it completes, in every format ----------------------------------------------------------------

DELIVERED = {
    "roster.xlsx": 2,  # the roster sheet and the hidden contacts sheet
    "responses_w1.csv": 2,  # an accepted row and a quarantined one
    "responses_w2.csv": 1,
    "attendance.ndjson": 2,
    "feedback.json": 1,
    "feedback.parquet": 1,
    "W2_export.csv": 2,  # a finished response and an unfinished one the adapter leaves out
    "W2_responses.csv": 1,  # keyed by the e-mail address on their roster row
}


def test_forget_completes_for_a_person_in_every_format_and_says_what_it_did(erased: Erased) -> None:
    assert erased.forget.returncode == 0, erased.forget.stderr
    out = erased.forget.stdout
    assert f"redacted {len(DELIVERED)} file(s)" in out
    for name, rows in DELIVERED.items():
        assert f"    {name} (" in out and f"{name} " in out, name
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        assert f": {rows} row(s)" in line, line
    assert f"requested by {REQUESTED_BY}" in out
    assert "warehouse: removed attendance 2, project_feedback 2, quarantine 2, responses 4, roster 1" in out
    for trace in NEEDLES:
        assert trace not in out


def delivery_paths(data: Path) -> dict[int, tuple[str, str, Path]]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        rows = con.sql("SELECT delivery_id, source, relative_path, landing_path FROM ops.deliveries").fetchall()
    finally:
        con.close()
    return {
        d: (source, rel, data / "landing" / Path(path).relative_to(Path(path).parents[2]))
        for d, source, rel, path in rows
    }


def rows_as_read(network: Network, source: str, path: Path) -> dict[int, dict[str, object]]:
    """The rows the pipeline reads from a landing copy, by row number (a survey export: by row and question)."""
    spec = load_config(network.config).source(source)
    if spec.format.type == "survey":
        assert spec.format.mapping is not None
        frame = read_survey(path, load_mapping(spec.format.mapping)).responses
        return {(r["source_row"], r["question_id"]): r for r in frame.to_dicts()}  # type: ignore[misc]
    options = ReadOptions(spec.format.type, spec.format.sheet, spec.format.delimiter, spec.format.encoding)
    return {r.pop(ROW): r for r in read_table(path, path.name, options).frame.to_dicts()}


def test_each_redacted_copy_keeps_its_format_and_every_other_row_reads_back_the_same(erased: Erased) -> None:
    before, after = delivery_paths(erased.before), delivery_paths(erased.network.data_dir)
    checked = 0
    for delivery, (source, name, old) in before.items():
        new = after[delivery][2]
        if old.relative_to(erased.before) == new.relative_to(erased.network.data_dir):
            continue  # not redacted: the person is not in it
        checked += 1
        assert new.suffix == old.suffix and new.read_bytes()[:4] == old.read_bytes()[:4]  # same format, same BOM
        was, now = rows_as_read(erased.network, source, old), rows_as_read(erased.network, source, new)
        gone = set(was) - set(now)
        assert gone and not set(now) - set(was), name
        for key, row in now.items():
            if row != was[key]:  # only someone else's mention of the person may differ
                changed = {c for c in row if row[c] != was[key][c]}
                assert all("[" in str(row[c]) and ERASED["name"] not in str(row[c]) for c in changed), (name, key)
        assert not any(trace in str(now) for trace in NEEDLES), name
    assert checked == len(DELIVERED)


def test_csv_copies_differ_only_in_the_persons_records_and_the_mentions(erased: Erased) -> None:
    before, after = delivery_paths(erased.before), delivery_paths(erased.network.data_dir)
    by_name = {name: (old, after[d][2]) for d, (_, name, old) in before.items()}
    old, new = by_name["responses_w1.csv"]
    old_lines, new_lines = old.read_bytes().split(b"\r\n"), new.read_bytes().split(b"\r\n")
    assert new.read_bytes().startswith(b"\xef\xbb\xbf") and len(new_lines) == len(old_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert [b for _, b in changed] == [
        b'pnl-9,W1,R-1001,Q1,How comfortable are you?,"I agreed with [name] that it\nwas fine"',
        b",,,,,",
        b",,,,,",
        b"pnl-9,W1,R-1003,Q1,How comfortable are you?,ask [email] or ring [phone]",
    ]
    old, new = by_name["responses_w2.csv"]
    assert new.read_bytes() == old.read_bytes().replace(
        "pnl-9;W2;R-1002;Q2;Anything else?;Trop de réunions".encode("cp1252"), b";;;;;"
    )


def test_published_source_row_still_points_at_the_same_rows(erased: Erased) -> None:
    current = erased.network.data_dir / "published" / "current"
    was = erased.before / "published" / "current"
    for table in ("responses", "attendance", "project_feedback", "panellists"):
        keep = ["source_name", "source_row", "panellist_pseudonym"]
        old = read_published(was, table).filter(~pl.col("panellist_pseudonym").is_in(PSEUDONYMS))
        new = read_published(current, table)
        assert sorted(new.select(keep).rows()) == sorted(old.select(keep).rows()), table
    responses = read_published(current, "responses")
    row = responses.filter(pl.col("source_name") == "facilitator-responses").sort("source_row").row(0, named=True)
    con = duckdb.connect(str(erased.network.data_dir / "warehouse.duckdb"), read_only=True)
    landing = con.sql(f"SELECT landing_path FROM ops.deliveries WHERE delivery_id = {row['delivery_id']}").fetchall()[
        0
    ][0]
    con.close()
    delivered = rows_as_read(erased.network, "facilitator-responses", Path(landing))[row["source_row"]]
    assert delivered["answer"] == row["answer"]  # the published row's source_row still finds its row


# --- nothing of the person anywhere ---------------------------------------------------------------


def test_nothing_of_the_person_is_left_anywhere_the_network_keeps_data(erased: Erased) -> None:
    """Landing, the warehouse (every table), every published version, the catalog, reports and feedback
    pages, the erasure register, and Prefect's database: no reference, pseudonym, name, e-mail, phone or postcode."""
    assert len(traces(erased.before, NEEDLES)) > 30  # they were everywhere before
    assert traces(erased.network.data_dir, NEEDLES) == []
    assert traces(erased.prefect_db.parent, NEEDLES) == []  # the careless flow's log line and artifact too


def test_other_peoples_mentions_of_the_person_are_replaced_in_landing(erased: Erased) -> None:
    con = duckdb.connect(str(erased.network.data_dir / "warehouse.duckdb"), read_only=True)
    answers = dict(
        con.sql(
            "SELECT source_row, answer FROM core.responses r JOIN ops.deliveries d USING (delivery_id) "
            "WHERE d.relative_path = 'responses_w1.csv'"
        ).fetchall()
    )
    con.close()
    assert answers[2] == "I agreed with [name] that it\nwas fine"
    assert answers[5] == "ask [email] or ring [phone]"


def test_ops_erasures_records_who_asked_when_and_what_by_erasure_token_only(erased: Erased) -> None:
    con = duckdb.connect(str(erased.network.data_dir / "warehouse.duckdb"), read_only=True)
    rows = con.sql("SELECT * FROM ops.erasures").pl().to_dicts()
    con.close()
    assert len(rows) == 1
    entry = rows[0]
    assert entry["status"] == "completed" and entry["requested_by"] == REQUESTED_BY and entry["panel_id"] == PANEL
    assert entry["erasure_token"].startswith("er_") and entry["erasure_token"] not in PSEUDONYMS
    assert entry["run_id"] == os.path.basename(os.readlink(erased.network.data_dir / "published" / "current"))
    files = {f["file"]: f["rows_blanked"] for f in json.loads(entry["files"])}
    assert files == DELIVERED
    assert json.loads(entry["rows_removed"]) == {
        "attendance": 2,
        "project_feedback": 2,
        "quarantine": 2,
        "responses": 4,
        "roster": 1,
    }
    touched = json.loads(entry["touched"])
    assert touched["versions"]["deleted"] == 1 and touched["reports"]["feedback_runs"] == 1
    assert sorted(touched["reports"]["regenerated"]) == [
        "exports/panellists.xlsx",
        "exports/responses.csv",
        "project-PRJ-1.html",
        "report.html",
    ]
    assert touched["prefect"]["records"] >= 2
    assert not any(trace in str(entry) for trace in NEEDLES)


def test_only_the_new_version_is_kept_and_the_catalog_reads_it(erased: Erased) -> None:
    versions = [p.name for p in (erased.network.data_dir / "published" / "versions").iterdir()]
    assert versions == [os.path.basename(os.readlink(erased.network.data_dir / "published" / "current"))]
    con = connect_catalog(erased.network.data_dir / "published" / "catalog.duckdb")
    assert con.sql("SELECT count(*) FROM restricted.panellists").fetchall() == [(3,)]
    con.close()


def test_no_temporary_file_outlives_the_command(erased: Erased) -> None:
    data = erased.network.data_dir
    # (a run's feedback folder keeps a `.complete` marker: written when the reports are, not a temporary)
    hidden = [p for p in data.rglob(".*") if ".prefect" not in p.parts and p.name != ".complete"]
    assert hidden == []
    assert sorted(p.name for p in (data / "landing" / "erasures").iterdir()) == ["blocklist.json"]  # no journal left
    assert not (data / "work").exists() or not any((data / "work").iterdir())


# --- erased stays erased ---------------------------------------------------------------------------


def test_a_rerun_says_they_were_erased_and_changes_nothing(erased: Erased, tmp_path: Path) -> None:
    site = site_copy(erased, tmp_path)
    files = {p: p.read_bytes() for p in data_files(site.data_dir)}
    again = din(site.config, "forget", ERASED["ref"], "--panel", PANEL)
    assert again.returncode == 0, again.stderr
    assert "they were erased before" in again.stdout and "Nothing was changed" in again.stdout
    assert {p: p.read_bytes() for p in files} == files


def test_the_original_files_resent_unchanged_bring_nothing_back(erased: Erased, tmp_path: Path) -> None:
    site = site_copy(erased, tmp_path)
    for path in (site.root / "deliveries").rglob("*"):
        if path.is_file():  # the partner's sync touches every file: same bytes, a new modification time
            os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 3600))
    summary = run(site)
    assert summary["deliveries_new"] == 0  # their content is known: as its redacted copy
    assert traces(site.data_dir, NEEDLES) == []


def test_a_changed_file_that_still_holds_the_person_has_their_rows_dropped_and_counted(
    erased: Erased, tmp_path: Path
) -> None:
    site = site_copy(erased, tmp_path)
    path = site.root / "deliveries" / "facilitator" / "responses_w1.csv"
    path.write_bytes(path.read_bytes() + b"pnl-9,W1,R-1004,Q2,New question?,a new row\r\n")  # a correction
    summary = run(site)
    assert summary["deliveries_new"] == 1
    source = next(s for s in summary["sources"] if s["source"] == "facilitator-responses")
    assert (source["rows_read"], source["rows_accepted"], source["rows_quarantined"], source["rows_blocked"]) == (
        6,
        4,
        0,
        2,
    )
    deliveries = published(site)["deliveries"].filter(pl.col("relative_path") == "responses_w1.csv").sort("delivery_id")
    assert deliveries["rows_blocked"].to_list() == [0, 2]
    assert traces(site.data_dir, NEEDLES) == []  # landing too: the new copy is redacted as the run lands it
    feedback = next(
        (site.data_dir / "reports" / "feedback").glob(f"{summary['run_id']}/ORG-A/feedback.html")
    ).read_text()
    assert "belong to a panellist who asked for their data to be erased" in " ".join(feedback.split())


def test_a_rebuild_after_the_erasure_publishes_the_same_and_no_mention_comes_back(
    erased: Erased, tmp_path: Path
) -> None:
    site = site_copy(erased, tmp_path)
    before = content(published(site))
    rebuild(site)
    assert content(published(site)) == before
    assert traces(site.data_dir, NEEDLES) == []


# --- who cannot be erased, and a dry run ------------------------------------------------------------


def test_an_unknown_panellist_exits_1_with_a_clear_message_and_changes_nothing(erased: Erased, tmp_path: Path) -> None:
    site = site_copy(erased, tmp_path)
    files = {p: p.read_bytes() for p in data_files(site.data_dir)}
    result = din(site.config, "forget", "R-9999", "--panel", PANEL)
    assert result.returncode == 1
    assert "no panellist 'R-9999' on panel 'pnl-9'" in result.stderr and "nothing was changed" in result.stderr
    assert "pnl-9 (3 on the roster)" in result.stderr
    assert {p: p.read_bytes() for p in files} == files


def test_a_dry_run_lists_what_would_change_and_touches_nothing(erased: Erased, tmp_path: Path) -> None:
    root = tmp_path / "dry"
    shutil.copytree(erased.network.root, root, symlinks=True)
    shutil.rmtree(root / "data")
    shutil.copytree(erased.before, root / "data", symlinks=True)
    state = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "data").rglob("*") if p.is_file()}
    result = din(root / "din.yaml", "forget", ERASED["ref"], "--panel", PANEL, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dry run: nothing was changed")
    assert f"redact {len(DELIVERED)} file(s)" in result.stdout and "roster 1" in result.stdout
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (root / "data").rglob("*") if p.is_file()} == state


# --- object storage -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with bucket_server() as server:
        yield server


def test_the_bucket_forgets_too(tmp_path: Path, s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = s3.keys["reader"]
    monkeypatch.setenv(NAMES["key"], key)
    monkeypatch.setenv(NAMES["secret"], secret)
    network = write_mixed_network(tmp_path / "site")
    with open(network.config, "a", encoding="utf-8") as config:
        config.write(
            "storage:\n"
            f"  landing: s3://{s3.bucket}/erasure/landing\n"
            f"  published: s3://{s3.bucket}/erasure/published\n"
            f"  options: {{endpoint_url: '{s3.endpoint}', region: {s3.region}, "
            f"key: {NAMES['key']}, secret: {NAMES['secret']}}}\n"
        )
    run(network)
    bucket = lambda: [(f"s3:{k}", v) for k, v in remote_objects(s3, f"s3://{s3.bucket}/erasure").items()]  # noqa: E731
    assert traces(tmp_path / "nothing", NEEDLES, bucket())
    killed = din(network.config, "forget", ERASED["ref"], "--panel", PANEL, DIN_INJECT_KILL="forget-remote-log")
    assert killed.returncode == -9  # the bucket's log was replaced, its original copies not yet deleted
    assert traces(tmp_path / "nothing", NEEDLES, bucket())
    result = din(network.config, "forget", ERASED["ref"], "--panel", PANEL)
    assert result.returncode == 0, result.stderr
    assert "finishing an interrupted erasure" in result.stdout
    assert "object storage:" in result.stdout
    assert traces(network.data_dir, NEEDLES, bucket()) == []
    objects = remote_objects(s3, f"s3://{s3.bucket}/erasure/landing")
    assert "erasures/blocklist.json" in objects  # a rebuild from the bucket still finds whom to keep out


# --- access tiers (kept from before) -----------------------------------------------------------------


def test_restricted_and_ops_files_are_not_world_readable(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    run(network)
    current = network.data_dir / "published" / "current"
    for tier, world_readable in (("open", True), ("restricted", False), ("ops", False)):
        for path in [current / tier, *(current / tier).iterdir()]:
            mode = path.stat().st_mode
            assert bool(mode & stat.S_IROTH) is world_readable, path
    assert not (network.data_dir / "published" / "catalog.duckdb").stat().st_mode & stat.S_IROTH


def test_quarantine_keeps_no_direct_identifiers(tmp_path: Path) -> None:
    network = write_network(tmp_path)
    roster = (network.root / "deliveries/recruiter/roster.csv").read_text()
    roster += "p1,P4,16-34,Woman,maybe,Ailsa Grant,ailsa@example.com,07700 900123,KY1 1AA\n"  # bad consent value
    network.deliver("recruiter/roster.csv", roster)
    run(network)
    quarantine = published(network)["quarantine"]
    assert quarantine.height == 1
    text = str(quarantine.rows())
    for identifier in ("Ailsa Grant", "ailsa@example.com", "07700 900123", "KY1 1AA", ",P4"):
        assert identifier not in text
    assert load_config(network.config).is_demo


# --- key rotation ---------------------------------------------------------------------------------

OLD_KEY = "0" * 32 + "old-key-for-the-rotation-test"
NEW_KEY = "1" * 32 + "new-key-for-the-rotation-test"


def test_the_blocklist_keeps_working_across_a_key_rotation_without_any_reference_kept(tmp_path: Path) -> None:
    from warehouse.blocklist import BlocklistKeyError, read_register

    network = write_mixed_network(tmp_path / "site", mode="production")
    run(network, DIN_PSEUDONYM_KEY=OLD_KEY)
    erased = din(network.config, "forget", ERASED["ref"], "--panel", PANEL, DIN_PSEUDONYM_KEY=OLD_KEY)
    assert erased.returncode == 0, erased.stderr
    version = os.readlink(network.data_dir / "published" / "current")

    with pytest.raises(BlocklistKeyError, match="DIN_PSEUDONYM_KEY_PREVIOUS"):
        rebuild(network, DIN_PSEUDONYM_KEY=NEW_KEY)  # the new key alone cannot open the register
    assert os.readlink(network.data_dir / "published" / "current") == version  # nothing was done

    rebuild(network, DIN_PSEUDONYM_KEY=NEW_KEY, DIN_PSEUDONYM_KEY_PREVIOUS=OLD_KEY)
    from din.keys import PseudonymKey

    assert read_register(network.data_dir / "landing").sealed_with == PseudonymKey(NEW_KEY.encode(), False).key_id
    new_pseudonym = pseudonym(NEW_KEY.encode(), PANEL, ERASED["ref"])
    assert new_pseudonym not in str(published(network)["panellists"].rows())

    # Later, under the new key alone: the partner syncs the roster again (the same bytes) and sends the
    # responses again with a row added (changed: the redacted copy does not stand in for it).
    roster = network.root / "deliveries" / "recruiter" / "roster.xlsx"
    os.utime(roster, (roster.stat().st_atime, roster.stat().st_mtime + 60))
    responses = network.root / "deliveries" / "facilitator" / "responses_w1.csv"
    responses.write_bytes(responses.read_bytes() + b"pnl-9,W1,R-1004,Q3,q?,more\r\n")
    summary = run(network, DIN_PSEUDONYM_KEY=NEW_KEY)
    blocked = {s["source"]: s["rows_blocked"] for s in summary["sources"] if s["rows_blocked"]}
    assert blocked == {"facilitator-responses": 2}
    needles = (*NEEDLES, new_pseudonym, pseudonym(NEW_KEY.encode(), PANEL, ERASED["email"]))
    assert traces(network.data_dir, needles) == []  # not even their name in someone else's answer
    register = (network.data_dir / "landing" / "erasures" / "blocklist.json").read_text()
    assert ERASED["ref"] not in register and OLD_KEY not in register and NEW_KEY not in register


def test_forget_finds_the_person_under_a_partner_s_own_headers(tmp_path: Path) -> None:
    """A source's `format.columns` names the panel and panellist columns under the partner's own headers:
    erasure finds the person there as the run did, and blanks their record (row numbers stay)."""
    network = write_network(tmp_path)
    network.deliver("facilitator/attendance.csv", "Panel,Session,Name of attendee,Came\np1,W1,P1,yes\np1,W1,P2,yes\n")
    network.config.write_text(
        network.config.read_text()
        + "  - {name: facilitator, organisation: ORG-B, kind: attendance, location: deliveries/facilitator,\n"
        "     format: {columns: {Panel: panel_id, Session: workshop_id, Name of attendee: panellist_ref,"
        " Came: attended}}}\n"
    )
    run(network)
    assert published(network)["attendance"].height == 2
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "forget", "P1", "--panel", "p1", "--config", str(network.config)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    con = duckdb.connect(str(network.data_dir / "warehouse.duckdb"), read_only=True)
    (landing,) = con.sql(
        "SELECT landing_path FROM ops.deliveries WHERE source = 'facilitator' AND status = 'processed'"
    ).fetchall()[0]
    con.close()
    lines = Path(landing).read_text().splitlines()
    assert lines[0] == "Panel,Session,Name of attendee,Came" and lines[2] == "p1,W1,P2,yes"
    assert "P1" not in lines[1] and not lines[1].strip(",")  # the person's record blanked in place
    attendance = published(network)["attendance"]
    assert attendance.height == 1 and attendance["source_row"].to_list() == [3]
