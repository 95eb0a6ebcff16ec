"""The generated documentation and templates: no drift, complete, and true to the code."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import fastexcel
import openpyxl
import polars as pl
import pytest

from app.check import check_file
from din.config import Config, load_config
from din.contract import KINDS, Kind
from expectations.suites import build_suite
from tests.support.marts import described_marts
from tools import docs
from transforms.disclosure import DisclosureRule
from transforms.readers import read_table
from transforms.scrub import PLACEHOLDERS
from warehouse.marts import PROVENANCE_COLUMNS, PSEUDONYM_COLUMN, SCHEMA_VERSION, marts
from warehouse.publish import TIER_MODES

ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = ROOT / "examples" / "demo" / "din.yaml"


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return docs.generated_files()


@pytest.fixture(scope="module")
def described() -> dict[str, list[tuple[str, str]]]:
    """Ground truth: each mart's columns and types, from an empty warehouse."""
    return described_marts()


def _text(relative: str) -> str:
    return (ROOT / relative).read_text(encoding="utf-8")


def _section(markdown: str, heading: str) -> str:
    """The body of `## heading` up to the next level-2 heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", markdown, flags=re.M | re.S)
    assert match, f"no section '## {heading}'"
    return match.group(1)


def _rows(section: str) -> list[list[str]]:
    """The cells of the table rows that start with a code-formatted first cell."""
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
    return rows


# --- drift ---------------------------------------------------------------------------------------


def test_stored_files_match_the_generators(tmp_path: Path, generated: dict[str, bytes]) -> None:
    docs.write_generated(tmp_path, generated)
    stale = [
        rel
        for rel in generated
        if not (ROOT / rel).is_file() or (ROOT / rel).read_bytes() != (tmp_path / rel).read_bytes()
    ]
    assert not stale, f"generated files are stale: {stale}; run `python -m tools.docs`"


def test_templates_folder_holds_only_generated_files(generated: dict[str, bytes]) -> None:
    stored = {f"templates/{p.name}" for p in (ROOT / "templates").iterdir()}
    assert stored == {rel for rel in generated if rel.startswith("templates/")}


def test_generation_is_reproducible(generated: dict[str, bytes]) -> None:
    kind = KINDS["project_feedback"]
    assert docs.template_xlsx(kind) == generated["templates/project_feedback.xlsx"]
    assert docs.contract_markdown().encode() == generated["docs/contract.md"]


# --- contract.md ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_contract_documents_every_column_value_key_reference_and_rule(kind: Kind) -> None:
    section = _section(_text("docs/contract.md"), kind.name)
    rows = {row[0].strip("`"): row for row in _rows(section) if len(row) == 7}
    for column in kind.columns:
        assert column.name in rows, f"{kind.name}.{column.name} missing from contract.md"
        row = rows[column.name]
        assert row[1] == column.type.value
        assert row[2] == ("required" if column.required else "optional")
        assert f"`{column.example}`" == row[4]
        for value in column.allowed:
            assert f"`{value}`" in row[3], f"{kind.name}.{column.name}: allowed value {value} missing"
    assert "**Natural key**: " + " + ".join(f"`{k}`" for k in kind.key) in section
    for reference in kind.references:
        assert f"`{reference.target}`" in section and reference.description in section
    for expectation in build_suite(kind)["expectations"]:
        assert f"`{expectation['meta']['rule']}`" in section
    assert f"din check FILE --kind {kind.name}" in section


def test_contract_documents_formats_headers_and_spellings() -> None:
    text = _text("docs/contract.md")
    for word in ("UTF-8", "cp1252", "comma", "semicolon", "tab", "`.xlsx`", "`.json`", "`.ndjson`", "`.parquet`"):
        assert word in text
    assert "ignoring case, spaces and punctuation" in text
    spellings = _section(text, "Values")
    assert "| date | `12/03/2026` | `2026-03-12` |" in spellings
    assert "| boolean | `Yes` | `true` |" in spellings


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_templates_have_the_contract_columns_in_order(kind: Kind) -> None:
    csv = ROOT / "templates" / f"{kind.name}.csv"
    assert csv.read_bytes() == (",".join(kind.column_names) + "\n").encode("utf-8")
    for path in (csv, ROOT / "templates" / f"{kind.name}.xlsx"):
        table = read_table(path, path.name)
        assert table.headers == list(kind.column_names), path.name
        assert table.frame.height == 0


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_xlsx_template_has_data_sheet_first_and_notes_on_every_column(kind: Kind) -> None:
    path = ROOT / "templates" / f"{kind.name}.xlsx"
    assert fastexcel.read_excel(str(path)).sheet_names == [kind.name, "notes"]
    notes = pl.read_excel(path, sheet_name="notes", has_header=False)
    described = notes.get_column(notes.columns[0]).drop_nulls().to_list()
    for column in kind.columns:
        assert column.name in described, f"notes sheet lacks {column.name}"


@pytest.mark.parametrize("kind", KINDS.values(), ids=list(KINDS))
def test_xlsx_template_filled_with_the_examples_passes_din_check(tmp_path: Path, kind: Kind) -> None:
    book = openpyxl.load_workbook(ROOT / "templates" / f"{kind.name}.xlsx")
    sheet = book[kind.name]
    for index, column in enumerate(kind.columns, start=1):
        sheet.cell(row=2, column=index, value=column.example)
    filled = tmp_path / f"{kind.name}.xlsx"
    book.save(filled)
    report = check_file(filled, kind.name)
    assert report.ok and report.rows == 1, report.as_text()


# --- data dictionary -----------------------------------------------------------------------------


def test_dictionary_lists_exactly_the_published_columns_and_types(described: dict[str, list[tuple[str, str]]]) -> None:
    text = _text("docs/data-dictionary.md")
    assert f"**Schema version {SCHEMA_VERSION}.**" in text
    for mart in marts():
        section = _section(text, mart.name)
        assert f"**Tier**: {mart.tier}" in section and mart.description in section
        rows = [(row[0].strip("`"), row[1]) for row in _rows(section)]
        assert rows == described[mart.name], mart.name
        assert all(row[3] for row in _rows(section)), f"{mart.name}: a column has no meaning"


def test_row_level_types_follow_the_contract(described: dict[str, list[tuple[str, str]]]) -> None:
    for mart in marts():
        kind = mart.kind
        if kind is None:
            continue
        types = dict(described[mart.name])
        assert list(types)[-len(PROVENANCE_COLUMNS) :] == list(PROVENANCE_COLUMNS)
        for column in kind.stored_columns:
            name = PSEUDONYM_COLUMN if column.name == "panellist_ref" else column.name
            if name in types:
                assert types[name] == column.sql_type, f"{mart.name}.{name}"


# --- privacy.md ----------------------------------------------------------------------------------


def _config(**changes: object) -> Config:
    base = Config(
        path=ROOT / "din.yaml",
        data_dir=ROOT / "data",
        mode="production",
        key_env="DIN_PSEUDONYM_KEY",
        key_block=None,
        disclosure={},
        validation_engine="duckdb",
        lock_timeout_seconds=60,
        reference=(),
        sources=(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_privacy_statement_is_the_default_configuration() -> None:
    text = _text("docs/privacy.md")
    assert text == docs.privacy_statement(None)
    assert _section(text, "Disclosure control") == _section(docs.privacy_statement(_config()), "Disclosure control")
    assert DisclosureRule().description in text


def test_privacy_statement_covers_identifiers_placeholders_and_tiers() -> None:
    text = _text("docs/privacy.md")
    for kind in KINDS.values():
        for name in (*kind.direct_identifiers, *kind.free_text_columns, *kind.pseudonymised_columns):
            assert f"`{name}`" in text
    for placeholder in PLACEHOLDERS.values():
        assert f"`{placeholder}`" in text
    scrubbed = _section(text, "Free text: scrubbed").split("is stored as")[1]
    assert all(p in scrubbed for p in PLACEHOLDERS.values() if p != "[health-id]")
    for tier, (directory, file) in TIER_MODES.items():
        assert re.search(rf"^\| {tier} \|.*`{directory:o}`.*`{file:o}`", text, flags=re.M)


def test_privacy_statement_follows_the_configuration() -> None:
    rule = DisclosureRule("round_to_5", 10)
    text = docs.privacy_statement(_config(disclosure={"profile": "round_to_5", "threshold": 10}, key_block="din-key"))
    assert rule.description in text and f"`{rule.label}`" in text
    assert "Prefect Secret block `din-key`" in text
    assert "demo mode.**" not in text


@pytest.mark.skipif(not DEMO_CONFIG.is_file(), reason="the bundled demo is not present")
def test_privacy_statement_for_the_demo_configuration() -> None:
    demo = load_config(DEMO_CONFIG)
    text = docs.privacy_statement(demo)
    assert "**This deployment runs in demo mode.**" in text
    assert _section(text, "Disclosure control") == _section(_text("docs/privacy.md"), "Disclosure control")


def test_privacy_statement_describes_the_erasure_command() -> None:
    """`din forget` exists: the statement says how to use it and what it cannot reach."""
    section = _section(_text("docs/privacy.md"), "Erasure")
    assert "din forget PANELLIST_REF --panel PANEL_ID" in section
    assert "no command" not in section
    assert "ops.erasures" in section and "outside the network's storage" in section


def test_privacy_statement_says_where_statements_are_published_and_who_wrote_them() -> None:
    """`statements` is published as the SQL table `restricted/statements` (with the counts of the votes), and
    a statement is its author's: withdrawal and erasure find it by `author_ref`."""
    text = _text("docs/privacy.md")
    assert re.search(r"^\| `statements` \|.*\| `author_ref` \| `text` \| `restricted/statements` \|$", text, re.M)
    assert "no panellist reference (`recommendations`)" in _section(text, "Withdrawal of consent")
    assert "`author_ref` in `statements` files" in _section(text, "Erasure")


def test_privacy_statement_says_what_erasure_does_to_each_file_of_a_polis_export() -> None:
    from transforms.adapters.polis import ON_ERASED_STATEMENT

    section = _section(_text("docs/privacy.md"), "Erasure")
    polis = next(line for line in section.splitlines() if line.startswith("- **A Polis conversation's export**"))
    for name in ("comments.csv", "votes.csv", "participants-votes.csv", "<id>-xid.csv", "comment-groups.csv"):
        assert f"`{name}`" in polis, name
    for column in ("voter-id", "author-id", "participant", "comment-id", "xid"):
        assert f"`{column}`" in polis, column
    assert "`summary.csv`" in polis and "are not published" in polis  # the export's counts: what becomes of them
    assert section.count(f"`{ON_ERASED_STATEMENT}`") == 2  # when erased, and when delivered again
    assert "not the comma-separated CSV Polis writes" in polis and "exits with code 3" in polis
