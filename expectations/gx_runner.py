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

from expectations.engine import DELIVERY, FILE_LEVEL, ROW_ID
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


def _suite(suite: dict[str, Any]) -> Any:
    import great_expectations as gx

    document = {key: value for key, value in suite.items() if key != "id"}
    document["expectations"] = [
        {key: value for key, value in e.items() if key != "id"}
        for e in suite["expectations"]
        if e["type"] not in FILE_LEVEL
    ]
    return gx.ExpectationSuite(**document)


def gx_validate(
    frame: pl.DataFrame,
    suite: dict[str, Any],
    references: Mapping[str, Sequence[str]],
    parameters: Mapping[str, list[str]],
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """Failing (row, rule) pairs and GX's own result documents, validating each delivery on its own."""
    _, batch_definition = _context()
    gx_suite = _suite(suite)
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
