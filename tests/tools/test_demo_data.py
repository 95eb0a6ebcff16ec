"""The demo network and the benchmark scale-up: determinism, counts, planted faults and identifiers."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import time
from pathlib import Path

import polars as pl
import pytest

from din.config import load_config
from din.contract import KINDS, ColumnType, normalise_header
from sources.local import LocalReader
from tools.demo_data import (
    PANEL_ID,
    DemoFile,
    DemoManifest,
    fault_table,
    file_table,
    identifier_table,
    write_demo,
    write_scaled,
)

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "examples" / "demo"
DATETIME_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M")
CHI = re.compile(r"(?<!\d)\d{10}(?!\d)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return write_demo(tmp_path_factory.mktemp("demo"))


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _read(manifest: DemoManifest, file: DemoFile) -> pl.DataFrame:
    """A delivered file as the contributor sees it: headers as written, every cell as text (empty = null)."""
    path = manifest.out_dir / file.path
    if file.format == "csv":
        text = path.read_bytes().decode(file.encoding)
        frame = pl.read_csv(text.encode(), separator=file.delimiter, infer_schema=False)
    elif file.format == "xlsx":
        frame = pl.read_excel(path)
    elif file.format == "json":
        frame = pl.read_json(path)
    elif file.format == "ndjson":
        frame = pl.read_ndjson(path)
    else:
        frame = pl.read_parquet(path)
    return frame.select(pl.all().cast(pl.String))


def _canonical(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Headers renamed to the contract's names where they match (extra columns keep their header)."""
    names = {normalise_header(c): c for c in KINDS[kind].column_names}
    return frame.rename({h: names.get(normalise_header(h), h) for h in frame.columns})


# ------------------------------------------------------------------------------------------------
# The committed demo and determinism
# ------------------------------------------------------------------------------------------------


def test_committed_demo_equals_a_fresh_generation(demo: DemoManifest) -> None:
    fresh, committed = _files(demo.out_dir), _files(COMMITTED)
    assert sorted(committed) == sorted(fresh)
    assert [path for path in fresh if fresh[path] != committed[path]] == []


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_data(tmp_path: Path) -> None:
    first, second, other = write_demo(tmp_path / "a"), write_demo(tmp_path / "b"), write_demo(tmp_path / "c", seed=1)
    assert _files(first.out_dir) == _files(second.out_dir)
    assert first == DemoManifest(**{**second.__dict__, "out_dir": first.out_dir, "config": first.config})
    changed = {p for p, digest in _files(other.out_dir).items() if _files(first.out_dir).get(p) != digest}
    assert "deliveries/ceilidh-recruitment/panel_roster.xlsx" in changed


def test_generation_takes_under_two_seconds(tmp_path: Path) -> None:
    began = time.perf_counter()
    write_demo(tmp_path)
    assert time.perf_counter() - began < 2


def test_manifest_lists_every_file_written(demo: DemoManifest) -> None:
    assert sorted(_files(demo.out_dir)) == sorted([f.path for f in demo.files] + ["din.yaml"])


# ------------------------------------------------------------------------------------------------
# Counts and formats
# ------------------------------------------------------------------------------------------------


def test_row_counts_and_headers_match_the_files(demo: DemoManifest) -> None:
    for file in demo.files:
        frame = _read(demo, file)
        assert frame.height == file.rows, file.path
        assert tuple(frame.columns) == file.columns, file.path
    by_kind: dict[str, int] = {}
    for file in demo.files:
        by_kind[file.kind] = by_kind.get(file.kind, 0) + _read(demo, file).height
    assert demo.rows_by_kind == dict(sorted(by_kind.items()))
    assert sum(demo.rows_by_file.values()) == sum(by_kind.values())


def test_deliveries_come_in_mixed_formats_from_several_organisations(demo: DemoManifest) -> None:
    delivered = [f for f in demo.files if not f.reference]
    assert len({f.organisation for f in delivered}) >= 4
    assert {f.format for f in delivered} >= {"csv", "xlsx", "json", "ndjson", "parquet"}
    formats = {f.kind: {g.format for g in delivered if g.kind == f.kind} for f in delivered}
    assert formats["roster"] == {"xlsx"}
    assert formats["project_feedback"] >= {"json", "xlsx", "parquet", "csv"}
    assert formats["recommendations"] == {"ndjson"}
    assert sorted(f.path for f in demo.files if f.reference) == [
        f"reference/{name}.csv" for name in ("organisations", "population", "projects", "workshops")
    ]


def test_the_windows_export_needs_cp1252_and_semicolons(demo: DemoManifest) -> None:
    file = next(f for f in demo.files if f.encoding == "cp1252")
    raw = (demo.out_dir / file.path).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header = raw.decode("cp1252").splitlines()[0]
    assert header.split(";")[2] == "Panellist Ref" and "," not in header
    assert b"\r\n" in raw and "’" in raw.decode("cp1252")
    assert re.search(r";\d\d/\d\d/2026 \d\d:\d\d\r\n", raw.decode("cp1252"))
    assert [normalise_header(h) for h in header.split(";")] == [
        normalise_header(c) for c in KINDS["responses"].column_names
    ]


def test_the_excel_files_hold_real_number_and_date_cells(demo: DemoManifest) -> None:
    fife = pl.read_excel(demo.out_dir / "deliveries/fife-hscp/project_feedback_2026.xlsx")
    assert fife.schema["Benefit"] == pl.Int64 and fife.schema["Reviewed on"] == pl.Date
    roster = pl.read_excel(demo.out_dir / "deliveries/ceilidh-recruitment/panel_roster.xlsx")
    assert roster.schema["SIMD quintile"] == pl.Int64 and roster["Phone"].str.starts_with("0").all()


def test_the_forth_csv_starts_with_a_byte_order_mark(demo: DemoManifest) -> None:
    assert (demo.out_dir / "deliveries/forth-environment/project_feedback.csv").read_bytes()[:3] == b"\xef\xbb\xbf"


# ------------------------------------------------------------------------------------------------
# The network is realistic and consistent
# ------------------------------------------------------------------------------------------------


def _kind(demo: DemoManifest, kind: str) -> pl.DataFrame:
    frames = [_canonical(_read(demo, f), kind) for f in demo.files if f.kind == kind]
    return pl.concat(frames, how="diagonal")


def test_withdrawn_rows_are_counted_per_file(demo: DemoManifest) -> None:
    found = {}
    for file in demo.files:
        frame = _canonical(_read(demo, file), file.kind)
        if "panellist_ref" in frame.columns and (
            n := frame.filter(pl.col("panellist_ref").is_in(demo.withdrawn)).height
        ):
            found[file.path] = n
    assert found == demo.withdrawn_rows
    assert demo.withdrawn_rows["deliveries/ceilidh-recruitment/panel_roster.xlsx"] == 1


def test_roster_reference_and_population(demo: DemoManifest) -> None:
    roster = _kind(demo, "roster")
    assert roster["panellist_ref"].to_list() == [f"P{i:03d}" for i in range(1, 31)]
    assert roster.filter(pl.col("consent") == "withdrawn")["panellist_ref"].to_list() == list(demo.withdrawn)
    assert set(roster["simd_quintile"]) == {"1", "2", "3", "4", "5"}
    assert "Prefer not to say" in set(roster["gender"])
    assert roster["email"].str.contains(r"@example\.(com|org|net|co\.uk)$").all()
    assert roster["phone"].str.contains(r"^(07700 900\d{3}|0131 496 0\d{3})$").all()
    assert roster["full_name"].n_unique() == 30
    population = _kind(demo, "population").with_columns(pl.col("share").cast(pl.Float64))
    shares = dict(population.group_by("dimension").agg(pl.col("share").sum()).iter_rows())
    assert set(shares) == {"age_band", "gender", "ethnic_group", "simd_quintile", "urban_rural", "council_area"}
    assert all(abs(total - 1) < 1e-9 for total in shares.values())
    for dimension in shares:
        categories = set(population.filter(pl.col("dimension") == dimension)["category"])
        assert set(roster[dimension]) - categories <= {"Prefer not to say"}, dimension
    projects, organisations = _kind(demo, "projects"), _kind(demo, "organisations")
    assert projects.height >= 8 and organisations.height >= 7
    assert set(projects["sector"]) >= {"health", "social_care", "environment", "education", "justice"}
    assert set(projects["stage"]) == {"past", "ongoing", "future"}
    assert set(projects["lead_org_id"]) <= set(organisations["org_id"])
    workshops = _kind(demo, "workshops")
    assert workshops["workshop_id"].to_list() == [f"W{i}" for i in range(1, 7)]
    assert all(dt.date(2026, 3, 1) <= dt.date.fromisoformat(d) <= dt.date(2026, 5, 31) for d in workshops["held_on"])


def test_responses_feedback_and_votes_are_plausible(demo: DemoManifest) -> None:
    responses = _kind(demo, "responses")
    per_workshop = responses.filter(pl.col("workshop_id").is_in([f"W{i}" for i in range(1, 7)]))
    questions = per_workshop.group_by("workshop_id").agg(pl.col("question_id").n_unique())["question_id"]
    assert questions.min() >= 5 and questions.max() <= 8
    assert {"Prefer not to say", "Don't know"} <= set(responses["answer"])
    projects = dict(_kind(demo, "projects").select("project_id", "stage").iter_rows())
    feedback = _kind(demo, "project_feedback")
    stages = {(w, projects[p]) for w, p in feedback.select("workshop_id", "project_id").iter_rows()}
    assert {w for w, _ in stages} == {"W2", "W3", "W5", "W6"}
    assert all((stage == "past") == (w in ("W2", "W3")) for w, stage in stages)
    attendance = _kind(demo, "attendance")
    roster = set(_kind(demo, "roster")["panellist_ref"])
    attended = dict(
        attendance.filter((pl.col("attended") == "yes") & pl.col("panellist_ref").is_in(roster))
        .group_by("workshop_id")
        .len()
        .iter_rows()
    )
    votes = _kind(demo, "recommendations").with_columns(
        total=pl.sum_horizontal(pl.col("votes_for", "votes_against", "votes_abstain").cast(pl.Int64))
    )
    assert set(votes["workshop_id"]) == {"W4", "W5", "W6"}
    assert all(total <= attended[w] for w, total in votes.select("workshop_id", "total").iter_rows())


def test_the_registry_covers_every_delivered_file_once(demo: DemoManifest, tmp_path: Path) -> None:
    config = load_config(demo.config, data_dir=tmp_path)
    assert config.is_demo
    listed: dict[str, str] = {}
    for source in config.all_sources:
        if source.is_inbox:  # the portal's inboxes: empty until a contributor submits a file
            continue
        for remote in LocalReader(source.location).list_files():
            path = Path(remote.location).relative_to(demo.out_dir.resolve()).as_posix()
            assert path not in listed, f"{path} is in {listed.get(path)} and {source.name}"
            listed[path] = source.name
    assert listed == {f.path: f.source for f in demo.files}
    for source in (s for s in config.all_sources if not s.is_inbox):
        assert {f.kind for f in demo.files if f.source == source.name} == {source.kind}
        assert {f.organisation for f in demo.files if f.source == source.name} == {source.organisation}
    cp1252 = config.source("uni-responses").format
    assert (cp1252.encoding, cp1252.delimiter) == ("cp1252", ";")


def test_the_committed_registry_writes_outside_examples() -> None:
    config = load_config(COMMITTED / "din.yaml")
    assert config.data_dir == (REPO / "data" / "demo").resolve()


# ------------------------------------------------------------------------------------------------
# Planted faults: exactly where the manifest says, and nowhere else
# ------------------------------------------------------------------------------------------------


def _is_datetime(value: str) -> bool:
    for fmt in DATETIME_FORMATS:
        try:
            dt.datetime.strptime(value, fmt)
        except ValueError:
            continue
        return True
    return False


def _row_problems(row: dict[str, str | None], kind: str, known: dict[str, set]) -> list[tuple[str, str]]:
    """(column, rule) for each contract rule the row breaks: a small independent checker."""
    problems = []
    for column in KINDS[kind].columns:
        value = row.get(column.name)
        if value is None or value == "":
            if column.required:
                problems.append((column.name, "missing_value"))
            continue
        if column.type is ColumnType.INTEGER:
            if not re.fullmatch(r"-?\d+", value):
                problems.append((column.name, "not_an_integer"))
            elif not (column.minimum or 0) <= int(value) <= (column.maximum or 10**9):
                problems.append((column.name, "out_of_range"))
        if column.allowed and value not in column.allowed:
            problems.append((column.name, "not_allowed"))
        if column.type is ColumnType.DATETIME and not _is_datetime(value):
            problems.append((column.name, "invalid_date"))
        if column.type is ColumnType.BOOLEAN and value not in ("yes", "no"):
            problems.append((column.name, "not_a_boolean"))
    for reference in KINDS[kind].references:
        values = tuple(row.get(c) for c in reference.columns)
        if None not in values and values not in known[reference.target]:
            problems.append((reference.columns[-1], f"unknown_{reference.name}"))
    return problems


def _known_keys(demo: DemoManifest) -> dict[str, set]:
    known = {}
    for target in ("workshops", "projects", "roster"):
        frame = _kind(demo, target)
        for reference in (r for k in KINDS.values() for r in k.references if r.target == target):
            known[target] = set(frame.select(reference.target_columns).iter_rows())
    return known


def test_planted_faults_are_where_the_manifest_says_and_nowhere_else(demo: DemoManifest) -> None:
    known, found = _known_keys(demo), set()
    for file in (f for f in demo.files if not f.reference):
        frame = _canonical(_read(demo, file), file.kind)
        contract = KINDS[file.kind]
        missing = [c for c in contract.required_columns if c not in frame.columns]
        found |= {(file.path, None, c, "missing_column") for c in missing}
        found |= {(file.path, None, c, "extra_column") for c in frame.columns if c not in contract.column_names}
        if missing:
            continue
        for number, row in enumerate(frame.iter_rows(named=True), start=2):
            found |= {(file.path, number, c, rule) for c, rule in _row_problems(row, file.kind, known)}
        keyed = frame.with_row_index("row", offset=2).filter(pl.all_horizontal(pl.col(contract.key).is_not_null()))
        duplicated = keyed.filter(pl.len().over(contract.key) > 1)
        found |= {(file.path, n, ", ".join(contract.key), "duplicate_key") for n in duplicated["row"]}
    planted = {
        (f.path, f.row, f.column if f.rule == "extra_column" else f.canonical_column, f.rule) for f in demo.faults
    }
    assert found == planted


def test_each_planted_fault_holds_the_value_the_manifest_gives(demo: DemoManifest) -> None:
    rules = {f.rule for f in demo.faults}
    assert rules == {
        "unknown_workshop",
        "unknown_panellist",
        "not_an_integer",
        "invalid_date",
        "duplicate_key",
        "missing_value",
        "not_allowed",
        "missing_column",
        "extra_column",
    }
    for fault in demo.faults:
        frame = _read(demo, demo.file(fault.path))
        if fault.rule == "extra_column":
            assert fault.column in frame.columns and not fault.quarantined
        elif fault.rule == "missing_column":
            assert fault.column not in frame.columns and fault.quarantined
        elif fault.rule == "duplicate_key":
            row = frame.row(fault.row - 2, named=True)
            assert fault.value == f"{row['panellist_ref']} / {row['question_id']}"
        else:
            assert (frame[fault.column][fault.row - 2] or "") == fault.value, fault
    assert [f.value for f in demo.faults if f.rule == "unknown_workshop"] == ["W7"]
    assert [f.value for f in demo.faults if f.rule == "not_an_integer"] == ["yes"]


def test_quarantined_rows_per_file(demo: DemoManifest) -> None:
    quarantined = demo.quarantined_rows
    assert len(quarantined["deliveries/northlight-facilitation/responses_W1.csv"]) == 2
    glasgow = demo.file("deliveries/glasgow-justice/feedback_scores.csv")
    assert quarantined[glasgow.path] == tuple(range(2, glasgow.rows + 2))
    assert "deliveries/fife-hscp/project_feedback_2026.xlsx" not in quarantined


# ------------------------------------------------------------------------------------------------
# Identifiers: only in the roster and the planted free text
# ------------------------------------------------------------------------------------------------


def test_identifiers_appear_only_in_the_roster_and_the_planted_free_text(demo: DemoManifest) -> None:
    roster_file = next(f for f in demo.files if f.kind == "roster")
    roster = _canonical(_read(demo, roster_file), "roster")
    identifiers = {
        value: name for name in ("full_name", "email", "phone", "postcode") for value in roster[name].to_list()
    }
    found = set()
    for file in (f for f in demo.files if f is not roster_file):
        frame = _read(demo, file)
        for number, row in enumerate(frame.iter_rows(named=True), start=2):
            for column, cell in row.items():
                hits = {(v, n) for v, n in identifiers.items() if cell and v in cell}
                hits |= {(chi, "chi") for chi in CHI.findall(cell or "")}
                found |= {(file.path, number, column, name, value) for value, name in hits}
    assert found == {(i.path, i.row, i.column, i.identifier, i.value) for i in demo.identifiers}
    assert {i.identifier for i in demo.identifiers} == {"full_name", "email", "phone", "postcode", "chi"}
    for chi in (i.value for i in demo.identifiers if i.identifier == "chi"):
        dt.datetime.strptime(chi[:6], "%d%m%y")
    config_text = demo.config.read_text(encoding="utf-8")
    assert not [v for v in identifiers if v in config_text]


def test_the_readme_documents_every_fault_and_identifier(demo: DemoManifest) -> None:
    readme = (REPO / "examples" / "README.md").read_text(encoding="utf-8")
    assert file_table(demo) in readme
    assert fault_table(demo) in readme
    assert identifier_table(demo) in readme
    total, lost = sum(demo.rows_by_file.values()), sum(map(len, demo.quarantined_rows.values()))
    assert f"Total: {total:,} rows read, {lost} to quarantine, {total - lost:,} accepted." in readme


# ------------------------------------------------------------------------------------------------
# Scale-up
# ------------------------------------------------------------------------------------------------


def _scaled_frame(paths: tuple[Path, ...]) -> pl.DataFrame:
    frames = [
        pl.read_csv(p, infer_schema=False).with_columns(file=pl.lit(i)).with_row_index("row")
        for i, p in enumerate(paths)
    ]
    return pl.concat(frames)


def _count_faults(frame: pl.DataFrame) -> dict[str, int]:
    key = ["panel_id", "workshop_id", "panellist_ref", "question_id"]
    keyed = frame.filter(pl.col("panellist_ref").is_not_null())
    repeats = keyed.group_by(key).agg(pl.len(), pl.col("file").n_unique().alias("files")).filter(pl.col("len") > 1)
    assert repeats["len"].to_list() == [2] * repeats.height
    assert repeats["files"].to_list() == [1] * repeats.height
    parsed = pl.col("answered_at").str.strptime(pl.Datetime, "%Y-%m-%dT%H:%M:%S", strict=False)
    return {
        "unknown_workshop": frame.filter(~pl.col("workshop_id").is_in([f"W{i}" for i in range(1, 7)])).height,
        "empty_panellist_ref": frame["panellist_ref"].null_count(),
        "invalid_date": frame.filter(parsed.is_null()).height,
        "duplicate_key": repeats.height,
    }


def test_write_scaled_gives_the_requested_rows_files_and_faults(tmp_path: Path) -> None:
    manifest = write_scaled(tmp_path, 20_000, 10, data_dir="out")
    assert [p.name for p in manifest.files] == [f"part-{i:05d}.csv" for i in range(1, 11)]
    assert sorted(manifest.files) == sorted((tmp_path / "deliveries" / "responses").iterdir())
    frame = _scaled_frame(manifest.files)
    assert frame.height == manifest.response_rows == 20_000
    assert frame.group_by("file").len().sort("file")["len"].to_list() == list(manifest.rows_per_file)
    assert set(manifest.rows_per_file) == {2000}
    assert _count_faults(frame) == manifest.faults
    for index, counts in enumerate(manifest.faults_per_file):
        assert _count_faults(frame.filter(pl.col("file") == index)) == counts
    assert manifest.faulty_rows == round(20_000 * 0.01)
    clean = frame.filter(pl.col("workshop_id").is_in([f"W{i}" for i in range(1, 7)]))
    workshops = pl.read_csv(tmp_path / "reference" / "workshops.csv", infer_schema=False)
    roster = pl.read_csv(tmp_path / "deliveries" / "roster" / "roster.csv", infer_schema=False)
    assert (workshops.height, roster.height) == (manifest.workshop_rows, manifest.roster_rows)
    assert clean.join(workshops, on=["panel_id", "workshop_id"], how="anti").height == 0
    assert clean.drop_nulls("panellist_ref").join(roster, on=["panel_id", "panellist_ref"], how="anti").height == 0
    config = load_config(manifest.config)
    assert config.is_demo and config.data_dir == (tmp_path / "out").resolve()
    assert {s.kind for s in config.sources} == {"roster", "responses"}


def test_write_scaled_without_faults_has_unique_keys_and_uneven_splits(tmp_path: Path) -> None:
    manifest = write_scaled(tmp_path, 1001, 3, fault_rate=0)
    assert manifest.rows_per_file == (334, 334, 333) and manifest.faulty_rows == 0
    frame = _scaled_frame(manifest.files)
    assert frame.select("panel_id", "workshop_id", "panellist_ref", "question_id").is_unique().all()
    assert _count_faults(frame) == dict.fromkeys(manifest.faults, 0)


def test_write_scaled_is_deterministic(tmp_path: Path) -> None:
    write_scaled(tmp_path / "a", 5000, 4)
    write_scaled(tmp_path / "b", 5000, 4)
    write_scaled(tmp_path / "c", 5000, 4, seed=8)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert (
        _files(tmp_path / "a")["deliveries/responses/part-00001.csv"]
        != _files(tmp_path / "c")["deliveries/responses/part-00001.csv"]
    )


def test_write_scaled_rejects_impossible_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fault_rate"):
        write_scaled(tmp_path, 100, 1, fault_rate=0.9)
    with pytest.raises(ValueError, match="files"):
        write_scaled(tmp_path, 100, 0)


def test_scaled_panel_ids_do_not_clash_with_the_pilot(tmp_path: Path) -> None:
    manifest = write_scaled(tmp_path, 2400 * 2 + 1, 2)
    roster = pl.read_csv(tmp_path / "deliveries" / "roster" / "roster.csv", infer_schema=False)
    assert manifest.panels == 3 and PANEL_ID not in set(roster["panel_id"])
    assert roster.group_by("panel_id").len()["len"].to_list() == [manifest.panellists_per_panel] * 3


def test_scaled_cells_are_readable_text(tmp_path: Path) -> None:
    manifest = write_scaled(tmp_path, 3000, 1)
    text = manifest.files[0].read_text(encoding="utf-8")
    frame = pl.read_csv(io.StringIO(text), infer_schema=False)
    assert frame.columns == list(KINDS["responses"].column_names)
