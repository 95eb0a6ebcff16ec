"""Validate canonical frames against their kind's suite and split them: accepted rows, quarantine.

Also builds the quarantine records a contributor can act on: file, row (as in their spreadsheet),
column, the value, the rule and what was expected, in plain words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import duckdb
import polars as pl

from din.contract import LIMITS, Kind, limit_placeholder
from expectations.engine import (
    DELIVERY,
    ROW_ID,
    KnownKeys,
    compile_suite,
    failing_rows,
    known_keys_frame,
    known_keys_lists,
)
from expectations.suites import limit_parameter, load_suite
from transforms.delivery import FileProblem
from transforms.readers import ROW, ROW_REASON, ROW_RULE

QUARANTINE_SCHEMA = pl.Schema(
    {
        "delivery_id": pl.Int64(),
        "source_row": pl.Int64(),
        "rules": pl.List(pl.String),
        "reasons": pl.List(pl.String),
        "columns": pl.List(pl.String),
        "values": pl.String(),  # JSON object: column -> delivered value (already scrubbed/pseudonymised)
    }
)
RESULT_SCHEMA = pl.Schema(
    {
        "delivery_id": pl.Int64(),
        "rule": pl.String(),
        "expectation_type": pl.String(),
        "columns": pl.String(),
        "success": pl.Boolean(),
        "element_count": pl.Int64(),
        "unexpected_count": pl.Int64(),
        "unexpected_sample": pl.String(),
    }
)
SAMPLE_SIZE = 20
VALUE_LIMIT = 80


Accepted = TypeVar("Accepted", pl.DataFrame, pl.LazyFrame)


@dataclass
class Verdict(Generic[Accepted]):
    """The outcome of validating one batch of canonical rows."""

    accepted: Accepted  # lazy (over spilled Parquet) when the batch was validated from files
    quarantined: pl.DataFrame  # QUARANTINE_SCHEMA
    results: pl.DataFrame  # RESULT_SCHEMA: one row per delivery and expectation


def reference_columns(kind: Kind) -> dict[str, tuple[str, ...]]:
    return {reference.name: reference.columns for reference in kind.references}


def limit_parameters(limits: Mapping[str, float] | None) -> dict[str, float | None]:
    """din.yaml's `limits` as the suites' parameters (None for a limit the config leaves unset)."""
    given = limits or {}
    return {limit_parameter(name): given.get(name) for name in LIMITS}


#: DuckDB's memory while it checks a batch read from spilled files: beyond it, it spills to disk too.
SPILLED_MEMORY_LIMIT = "256MB"


@overload
def validate(
    frame: pl.DataFrame,
    kind: Kind,
    known: KnownKeys,
    engine: str = ...,
    suite: dict[str, Any] | None = ...,
    limits: Mapping[str, float] | None = ...,
) -> Verdict[pl.DataFrame]: ...


@overload
def validate(
    frame: Sequence[Path],
    kind: Kind,
    known: KnownKeys,
    engine: str = ...,
    suite: dict[str, Any] | None = ...,
    limits: Mapping[str, float] | None = ...,
) -> Verdict[pl.LazyFrame]: ...


def validate(
    frame: pl.DataFrame | Sequence[Path],
    kind: Kind,
    known: KnownKeys,
    engine: str = "duckdb",
    suite: dict[str, Any] | None = None,
    limits: Mapping[str, float] | None = None,
) -> Verdict[pl.DataFrame] | Verdict[pl.LazyFrame]:
    """Validate `frame` (canonical columns + `_row_id`, `_delivery_id`, `_source_row`), or the same rows
    spilled to Parquet files (a large delivery, `expectations.gate`): then DuckDB checks them from the files
    in bounded memory, and the accepted rows come back as a LazyFrame over the files.

    `known` maps each reference parameter (`known_workshop`, ...) to the keys that exist (or is the same as
    a frame of (parameter, key) rows: `expectations.engine.KnownKeys`); `limits`
    are din.yaml's `limits` (a limit left out is not checked).
    """
    suite = suite or load_suite(kind.name)
    spilled = None if isinstance(frame, pl.DataFrame) else list(frame)
    if spilled is None:
        assert isinstance(frame, pl.DataFrame)
        unreadable, in_memory = _records_unread(frame, kind)
        rows = in_memory.lazy()
    else:
        scanned = pl.concat([pl.scan_parquet(p) for p in spilled], how="diagonal")
        unreadable, rows = _records_unread(scanned, kind)
        in_memory = None
    references = reference_columns(kind)
    parameters = limit_parameters(limits)
    if engine == "gx":
        from expectations.gx_runner import gx_validate

        checked = in_memory if in_memory is not None else rows.collect()  # GX reads a frame in memory
        lists: dict[str, list[str]] = {f"known_{r.name}": [] for r in kind.references} | known_keys_lists(known)
        failures, _ = gx_validate(checked, suite, references, lists, parameters)
        values = _values_for(checked, failures, suite)
        failures = failures.join(values, on=[ROW_ID, "rule"], how="left")
    else:
        con = _checking_connection(spilled)
        if in_memory is not None:
            con.register("_batch", in_memory.to_arrow())
        else:
            files = con.read_parquet([str(p) for p in spilled or []], union_by_name=True)
            if ROW_RULE in files.columns:
                files = files.filter(f'"{ROW_RULE}" IS NULL')
            files.create_view("_batch")
        con.register("_references", known_keys_frame(known).to_arrow())
        failures = failing_rows(con, "_batch", compile_suite(suite, references, parameters))
        con.close()
    failed_ids = failures.select(ROW_ID).unique()
    checked_rows = in_memory if in_memory is not None else rows
    quarantined = quarantine_records(checked_rows, failures, suite, limits)
    if unreadable.height:
        quarantined = pl.concat([unreadable, quarantined], how="vertical").sort("source_row", nulls_last=True)
    results = expectation_results(checked_rows, failures, suite)
    if in_memory is not None:
        return Verdict(in_memory.join(failed_ids, on=ROW_ID, how="anti"), quarantined, results)
    return Verdict(rows.join(failed_ids.lazy(), on=ROW_ID, how="anti"), quarantined, results)


def _checking_connection(spilled: Sequence[Path] | None) -> duckdb.DuckDBPyConnection:
    if spilled is None:
        return duckdb.connect()
    scratch = Path(spilled[0]).parent / "duckdb-scratch"
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": SPILLED_MEMORY_LIMIT,
        "temp_directory": str(scratch),
        "preserve_insertion_order": False,
    }
    return duckdb.connect(config=config)


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def _records_unread(frame: Frame, kind: Kind) -> tuple[pl.DataFrame, Frame]:
    """Records the reader marked (`transforms.readers.ROW_RULE`: ragged, broken quoting, a NUL byte, ...) are
    quarantined with the reader's reason and every value they hold (already protected), unchecked by the
    suite; the rest is returned for the suite, without the marks."""
    if ROW_RULE not in frame.collect_schema().names():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA), frame
    found = frame.filter(pl.col(ROW_RULE).is_not_null())
    marked = found.collect() if isinstance(found, pl.LazyFrame) else found
    rest = frame.filter(pl.col(ROW_RULE).is_null()).drop(ROW_RULE, ROW_REASON)
    if marked.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA), rest
    columns = [c.name for c in kind.columns if c.name in marked.columns]
    records = [
        {
            "delivery_id": row[DELIVERY],
            "source_row": row[ROW],
            "rules": [row[ROW_RULE]],
            "reasons": [row[ROW_REASON]],
            "columns": [c for c in columns if row.get(c) is not None],
            "values": json.dumps(
                {c: row[c] for c in columns if row.get(c) is not None}, ensure_ascii=False, default=str
            ),
        }
        for row in marked.iter_rows(named=True)
    ]
    return pl.DataFrame(records, schema=QUARANTINE_SCHEMA), rest


def _values_for(frame: pl.DataFrame, failures: pl.DataFrame, suite: dict[str, Any]) -> pl.DataFrame:
    """The offending value of each (row, rule), for engines that report only row ids."""
    by_rule = {e["meta"]["rule"]: e["meta"]["columns"] for e in suite["expectations"]}
    if failures.height == 0:
        return pl.DataFrame(schema={ROW_ID: pl.Int64, "rule": pl.String, "value": pl.String})
    rows = frame.join(failures, on=ROW_ID, how="inner")
    values = [
        " + ".join(str(row[c]) if row.get(c) is not None else "(empty)" for c in by_rule[row["rule"]])
        for row in rows.iter_rows(named=True)
    ]
    return rows.select(ROW_ID, "rule").with_columns(pl.Series("value", values, dtype=pl.String))


def quarantine_records(
    frame: pl.DataFrame | pl.LazyFrame,
    failures: pl.DataFrame,
    suite: dict[str, Any],
    limits: Mapping[str, float] | None = None,
) -> pl.DataFrame:
    """One record per failing row, in row order: every rule it broke (by name), why in plain words, the
    columns those rules look at (sorted) and their values as a JSON object, as Python's `json.dumps(...,
    ensure_ascii=False)` writes it.

    Built set-wise in polars (at L, 100,000 rows a run; one Python dict per row cost 0.17 s a batch,
    holding the GIL the other batches wait on). The offending rows' columns are text (canonical frames
    are); a frame whose involved columns are not is built row by row (`_quarantine_records_by_row`)."""
    if failures.height == 0:
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    meta = {e["meta"]["rule"]: e["meta"] for e in suite["expectations"]}
    involved = _involved(meta)
    failing = (
        frame.lazy()
        .select(ROW_ID, DELIVERY, ROW, *involved)
        .join(failures.select(ROW_ID).unique().lazy(), on=ROW_ID, how="semi")
        .collect()
    )
    if any(failing.schema[c] != pl.String for c in involved):
        return _quarantine_records_by_row(failing, failures, meta, limits)
    rule_columns = pl.DataFrame(
        {"rule": list(meta), "rule_columns": [list(m["columns"]) for m in meta.values()]},
        schema={"rule": pl.String, "rule_columns": pl.List(pl.String)},
    )
    broken = (
        failures.select(ROW_ID, "rule", "value")
        .with_columns(_reason_expr(meta, limits).alias("reason"))
        .join(rule_columns, on="rule", how="left")
        .sort(ROW_ID, "rule", "value", nulls_last=False)
        .group_by(ROW_ID, maintain_order=True)
        .agg(
            pl.col("rule").alias("rules"),
            pl.col("reason").alias("reasons"),
            pl.col("rule_columns").explode().drop_nulls().unique().sort().alias("columns"),
        )
    )
    rows = failing.join(broken, on=ROW_ID, how="inner").sort(ROW_ID)
    pieces = [
        pl.when(pl.col("columns").list.contains(column)).then(
            pl.lit(json.dumps(column, ensure_ascii=False) + ": ") + _json_text(pl.col(column))
        )
        for column in sorted(involved)
    ]
    values = pl.concat_str([pl.lit("{"), pl.concat_str(pieces, separator=", ", ignore_nulls=True), pl.lit("}")])
    return rows.select(
        pl.col(DELIVERY).alias("delivery_id"),
        pl.col(ROW).alias("source_row"),
        "rules",
        "reasons",
        "columns",
        values.alias("values"),
    ).cast(QUARANTINE_SCHEMA)


#: How json.dumps writes the characters it escapes in a string (ensure_ascii=False): the backslash first (the
#: other escapes add backslashes), the quote and the short escapes, then any other control character as \u00XX.
_JSON_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"} | {
    chr(c): f"\\u{c:04x}" for c in range(0x20) if chr(c) not in "\n\r\t\b\f"
}


def _json_text(text: pl.Expr) -> pl.Expr:
    """A text column as JSON values, exactly as `json.dumps(value, ensure_ascii=False)` writes each: a
    string quoted and escaped, a missing value `null`."""
    escaped = text
    for char, escape in _JSON_ESCAPES.items():
        escaped = escaped.str.replace_all(char, escape, literal=True)
    return pl.when(text.is_null()).then(pl.lit("null")).otherwise(pl.lit('"') + escaped + pl.lit('"'))


def _reason_expr(meta: dict[str, dict[str, Any]], limits: Mapping[str, float] | None) -> pl.Expr:
    """`reason(meta[rule], value, limits)` for each (rule, value) row of a failures frame, in polars."""
    value = pl.col("value")
    cut = pl.when(value.str.len_chars() > VALUE_LIMIT).then(value.str.slice(0, VALUE_LIMIT - 1) + pl.lit("…"))
    shown = pl.when(value.is_null()).then(pl.lit("(empty)")).otherwise(pl.lit("'") + cut.otherwise(value) + pl.lit("'"))
    reasons = []
    for rule, entry in meta.items():
        parts = _message(entry, limits).split("{value}")
        text = pl.concat_str([item for part in parts[:-1] for item in (pl.lit(part), shown)] + [pl.lit(parts[-1])])
        reasons.append(pl.when(pl.col("rule") == rule).then(text))
    return pl.coalesce(reasons)


def _quarantine_records_by_row(
    failing: pl.DataFrame,
    failures: pl.DataFrame,
    meta: dict[str, dict[str, Any]],
    limits: Mapping[str, float] | None,
) -> pl.DataFrame:
    """`quarantine_records` one row at a time, for involved columns that are not text."""
    rows = {row[ROW_ID]: row for row in failing.iter_rows(named=True)}
    grouped: dict[int, list[tuple[str, str | None]]] = {}
    for row_id, rule, value in failures.select(ROW_ID, "rule", "value").iter_rows():
        grouped.setdefault(row_id, []).append((rule, value))
    records = []
    for row_id in sorted(grouped):
        row = rows[row_id]
        broken = sorted(grouped[row_id], key=lambda pair: (pair[0], pair[1] is not None, pair[1] or ""))
        columns = sorted({c for rule, _ in broken for c in meta[rule]["columns"]})
        records.append(
            {
                "delivery_id": row[DELIVERY],
                "source_row": row[ROW],
                "rules": [rule for rule, _ in broken],
                "reasons": [reason(meta[rule], value, limits) for rule, value in broken],
                "columns": columns,
                "values": json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False, default=str),
            }
        )
    return pl.DataFrame(records, schema=QUARANTINE_SCHEMA)


def _involved(meta: dict[str, dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for entry in meta.values():
        for column in entry["columns"]:
            if column not in columns:
                columns.append(column)
    return columns


def reason(meta: dict[str, Any], value: str | None, limits: Mapping[str, float] | None = None) -> str:
    """A rule's plain-words message with the offending value (and any din.yaml limit) filled in."""
    shown = "(empty)" if value is None else value
    if len(shown) > VALUE_LIMIT:
        shown = shown[: VALUE_LIMIT - 1] + "…"
    return _message(meta, limits).replace("{value}", f"'{shown}'" if value is not None else shown)


def _message(meta: dict[str, Any], limits: Mapping[str, float] | None) -> str:
    """A rule's message with din.yaml's limits filled in (its `{value}` left for the offending value)."""
    message: str = meta["message"]
    for name, limit in (limits or {}).items():
        message = message.replace(limit_placeholder(name), f"{limit:g}")
    return message


def expectation_results(
    frame: pl.DataFrame | pl.LazyFrame, failures: pl.DataFrame, suite: dict[str, Any]
) -> pl.DataFrame:
    """Per delivery and expectation: rows checked, rows failing, a sample of failing values."""
    counts = frame.lazy().group_by(DELIVERY).agg(pl.len().alias("element_count")).collect()
    failed = (
        failures.lazy()
        .join(frame.lazy().select(ROW_ID, DELIVERY), on=ROW_ID, how="inner")
        .sort(DELIVERY, "rule", ROW_ID)  # the sample: the first failing rows, in file order
        .group_by(DELIVERY, "rule", maintain_order=True)
        .agg(pl.len().alias("unexpected_count"), pl.col("value").head(SAMPLE_SIZE).alias("sample"))
        .collect()
    )
    rows = []
    failed_by = {(d, r): (n, s) for d, r, n, s in failed.iter_rows()}
    for delivery, element_count in counts.iter_rows():
        for expectation in suite["expectations"]:
            if expectation["type"] == "expect_column_to_exist":
                continue
            rule = expectation["meta"]["rule"]
            unexpected, sample = failed_by.get((delivery, rule), (0, []))
            rows.append(
                {
                    "delivery_id": delivery,
                    "rule": rule,
                    "expectation_type": expectation["type"],
                    "columns": ", ".join(expectation["meta"]["columns"]),
                    "success": unexpected == 0,
                    "element_count": element_count,
                    "unexpected_count": unexpected,
                    "unexpected_sample": json.dumps(sample, ensure_ascii=False),
                }
            )
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


def file_quarantine(delivery_id: int, problem: FileProblem) -> pl.DataFrame:
    """Quarantine a whole file: one record per row when its rows were read, else one for the file."""
    source_rows: list[int | None] = list(problem.rows) if problem.rows else [None]
    return pl.DataFrame(
        {
            "delivery_id": [delivery_id] * len(source_rows),
            "source_row": source_rows,
            "rules": [list(problem.rules)] * len(source_rows),
            "reasons": [list(problem.reasons)] * len(source_rows),
            "columns": [[]] * len(source_rows),
            "values": ["{}"] * len(source_rows),
        },
        schema=QUARANTINE_SCHEMA,
    )
