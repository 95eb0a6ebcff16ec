"""The README's Python examples run against a real published catalog (the DuckDB CLI and R are not
installed in CI; their examples use the same tables and columns, which this test checks exist)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.xdist_group("prefect")]


def readme_blocks(language: str) -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_readme_query_examples_run(tmp_path: Path) -> None:
    from flows.consolidate import consolidate

    shutil.copytree(REPO / "examples", tmp_path / "examples")
    consolidate(config_path=str(tmp_path / "examples" / "demo" / "din.yaml"), data_dir=str(tmp_path / "data" / "demo"))
    blocks = readme_blocks("python")
    assert len(blocks) >= 2
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for block in blocks:
            namespace: dict[str, object] = {}
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    os.chdir(tmp_path / "data/demo/published")  # the DuckDB CLI example starts there
    try:
        con = duckdb.connect("catalog.duckdb", read_only=True)
        for sql in re.findall(r'"(SELECT [^"]+)"', "".join(readme_blocks("sh"))):
            if " FROM open." in sql or " FROM restricted." in sql:
                assert con.sql(sql).fetchall()
    finally:
        os.chdir(cwd)
    r_block = readme_blocks("r")[0]
    path = re.search(r"read_parquet\(\"([^\"]+)\"\)", r_block).group(1)  # type: ignore[union-attr]
    assert (tmp_path / path).is_file()
