"""Run a suite with Great Expectations itself (pandas execution engine).

Used when a config sets `validation.engine: gx`, and by the tests that prove the DuckDB
execution in `expectations.engine` gives the same verdicts. GX is imported only here: it costs
~6 s and ~270 MB, which `din check` and `din query` should never pay.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import polars as pl

from expectations.engine import DELIVERY, FILE_LEVEL, ROW_ID, bound
from expectations.suites import KEY_SEPARATOR, NUMBER_SUFFIX, REF_PREFIX


def with_derived_columns(
    frame: pl.DataFrame, suite: dict[str, Any], references: Mapping[str, Sequence[str]]
) -> pl.DataFrame:
    """Materialise the derived columns the suite's expectations name (numbers and reference keys)."""
    derived: dict[str, pl.Expr] = {}
    for expectation in suite["expectations"]:
        column = expectation["kwargs"].get("column", "")
        if column.endswith(NUMBER_SUFFIX):
            derived[column] = pl.col(column.removesuffix(NUMBER_SUFFIX)).cast(pl.Float64, strict=False)
        elif column.startswith(REF_PREFIX):
            parts = references[column.removeprefix(REF_PREFIX)]
            derived[column] = pl.concat_str([pl.col(p) for p in parts], separator=KEY_SEPARATOR, ignore_nulls=False)
    return frame.with_columns(expr.alias(name) for name, expr in derived.items())


@cache
def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("din")
    asset = source.add_dataframe_asset("delivery")
    return context, asset.add_batch_definition_whole_dataframe("whole")


def _suite(suite: dict[str, Any], limits: Mapping[str, float | None]) -> Any:
    """The GX suite, with din.yaml's limits bound (a bound left unset is dropped, as in the SQL engine)."""
    import great_expectations as gx

    document = {key: value for key, value in suite.items() if key != "id"}
    expectations = []
    for e in suite["expectations"]:
        if e["type"] in FILE_LEVEL:
            continue
        kwargs = dict(e["kwargs"])
        for side in ("min_value", "max_value"):
            if isinstance(kwargs.get(side), dict):
                kwargs[side] = bound(kwargs[side], limits)
        unbounded = kwargs.get("min_value") is None and kwargs.get("max_value") is None
        if e["type"] == "expect_column_values_to_be_between" and unbounded:
            continue
        expectations.append({key: value for key, value in e.items() if key != "id"} | {"kwargs": kwargs})
    document["expectations"] = expectations
    return gx.ExpectationSuite(**document)


def gx_validate(
    frame: pl.DataFrame,
    suite: dict[str, Any],
    references: Mapping[str, Sequence[str]],
    known: Mapping[str, list[str]],
    limits: Mapping[str, float | None] | None = None,
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Failing (row, rule) pairs and GX's own result documents, validating each delivery on its own.

    `known` binds the reference sets; `limits` din.yaml's limits (an unset one is not checked)."""
    _, batch_definition = _context()
    gx_suite = _suite(suite, limits or {})
    parameters: dict[str, Any] = dict(known)
    prepared = with_derived_columns(frame, suite, references)
    failures: list[tuple[int, str]] = []
    documents: list[dict[str, Any]] = []
    for (delivery,), part in prepared.partition_by(DELIVERY, as_dict=True).items():
        batch = batch_definition.get_batch(batch_parameters={"dataframe": part.to_pandas()})
        result = batch.validate(
            gx_suite,
            expectation_parameters=parameters,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]},
        )
        documents.append({"delivery_id": delivery, **result.to_json_dict()})
        for outcome in result.results:
            if outcome.exception_info and outcome.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"GX could not run {outcome.expectation_config.type}: "
                    f"{outcome.exception_info.get('exception_message')}"
                )
            rule = outcome.expectation_config.meta["rule"]
            for index in outcome.result.get("unexpected_index_list") or []:
                row_id = index[ROW_ID] if isinstance(index, dict) else part[ROW_ID][index]
                failures.append((int(row_id), rule))
    return pl.DataFrame(failures, schema={ROW_ID: pl.Int64, "rule": pl.String}, orient="row"), documents
