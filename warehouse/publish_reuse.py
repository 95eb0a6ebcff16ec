"""Publish rewrites only the tables whose content changed: the others are hard links to the last version.

A table's content fingerprint is computed in DuckDB over the rows its query gives now (count, and the
xor and the sum of the rows' hashes: order-free, and duplicated rows do not cancel out), together with
the query, its name, tier, the schema version and the documentation written into its file (the
`din.*` metadata and a digest of the texts the column docs come from). When the current version recorded the same
fingerprint for the table (in its `ops/publish.json`, under `table_content`), its file is linked into
the new version instead of written again: hashing a query's rows costs about a tenth of writing them as
zstd Parquet (measured at S: 0.35 s against 3.7 s for `restricted.responses`). Linking is by content,
never by "nothing was delivered for it", so an erasure or a changed rule can never leave an old row
behind: a table with a row gone has another fingerprint and is written anew.

A table partitioned by panel is fingerprinted partition by partition (the same sums, grouped by the
partition column, or by its bucket for a table split into buckets): a delivery for one panel rewrites
that panel's file of each table it changes, and the other files are linked.

A table built in Python (`Mart.build`: the disclosure-controlled aggregates) is fingerprinted by what it is
made from: the rows of every warehouse table its builder reads (`Mart.reads`, from
`warehouse.aggregates.AGGREGATES`), the disclosure rule, the source code of the builder's module and of
the project's modules it uses, and the versions of the libraries that compute it. At L, `panel_composition`
costs 0.3 s to build and 0.01 s to fingerprint; a delivery of responses leaves it linked.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from din.sql import quote
from warehouse.marts import SCHEMA_VERSION, Mart, documentation_version
from warehouse.verify import file_intact, recorded_hashes

CONTENT_KEY = "table_content"  # publish.json: {table: fingerprint}


def content_fingerprint(
    con: duckdb.DuckDBPyConnection,
    mart: Mart,
    documentation: Mapping[str, str] | None = None,
    rule: Any = None,
) -> str | None:
    """The fingerprint of what `mart` would publish now; `documentation` is what the file says about itself
    (its `din.*` metadata), so a changed description or demo notice is written anew, never linked from a
    file that says the old one. A table built in Python is fingerprinted by its inputs (`built_fingerprint`),
    with `rule`, the disclosure rule it is built under; None when it does not say what it reads."""
    if mart.build is not None:
        return built_fingerprint(con, mart, documentation, rule)
    if not mart.sql:
        return None
    rows, xor, total = con.execute(
        f"SELECT count(*), bit_xor(hash(q)), sum(hash(q)::HUGEINT) FROM ({order_free(con, mart.sql)}) AS q"
    ).fetchall()[0]
    basis = [mart.name, mart.tier, SCHEMA_VERSION, mart.sql, int(rows), str(xor), str(total), dict(documentation or {})]
    basis.append(documentation_version())
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()


def built_fingerprint(
    con: duckdb.DuckDBPyConnection, mart: Mart, documentation: Mapping[str, str] | None, rule: Any
) -> str | None:
    """The fingerprint of a table built in Python: the rows of each table it reads (the same order-free sums
    as a SQL table's), the rule, its code and the libraries that run it (see the module doc)."""
    if mart.build is None or not mart.reads:
        return None
    inputs = []
    for table in mart.reads:
        name = ".".join(quote(part) for part in table.split("."))
        rows, xor, total = con.execute(
            f"SELECT count(*), bit_xor(hash(t)), sum(hash(t)::HUGEINT) FROM {name} AS t"
        ).fetchall()[0]
        inputs.append([table, int(rows), str(xor), str(total)])
    basis = [mart.name, mart.tier, SCHEMA_VERSION, mart.sql, inputs, repr(rule), dict(documentation or {})]
    basis += [documentation_version(), builder_code(mart.build.__module__)]
    return hashlib.sha256(json.dumps(basis).encode()).hexdigest()


#: The project's own packages: a builder's code is its module and the modules of these it uses.
PROJECT_PACKAGES = ("din", "transforms", "warehouse", "expectations")
#: Libraries whose release can change what a builder computes.
BUILDER_LIBRARIES = ("duckdb", "polars", "numpy")


@cache
def builder_code(module_name: str) -> str:
    """A digest of the source of `module_name` and of the project modules it uses (`builder_modules`), and of
    the versions of `BUILDER_LIBRARIES`: a change to any of them gives every table built by that module
    another fingerprint."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    for name in sorted(builder_modules(module_name)):
        digest.update(name.encode() + b"\0" + inspect.getsource(importlib.import_module(name)).encode() + b"\0")
    for library in BUILDER_LIBRARIES:
        digest.update(f"{library}=={version(library)}".encode() + b"\0")
    return digest.hexdigest()


def builder_modules(module_name: str) -> set[str]:
    """`module_name` and every project module it imports, directly or not (read from the modules' import
    statements, so a constant imported counts as much as a function)."""
    seen: set[str] = set()
    pending = [module_name]
    while pending:
        name = pending.pop()
        if name in seen or name.split(".")[0] not in PROJECT_PACKAGES:
            continue
        module = importlib.import_module(name)
        seen.add(name)
        package = module.__package__ or ""
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Import):
                pending.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                pending.append(base)
                # `from package import module` names a module too
                pending.extend(f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}"))
    return seen


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def partition_fingerprints(
    con: duckdb.DuckDBPyConnection, mart: Mart, documentation: Mapping[str, str] | None = None
) -> dict[Any, str] | None:
    """The fingerprint of each partition `mart` would publish now, by partition value, or by bucket number for
    a table in buckets (None for tables built in Python or not partitioned); the same basis as
    `content_fingerprint`, one sum per partition."""
    if mart.build is not None or not mart.sql or not mart.partition_by:
        return None
    found = con.execute(mart.partition_sums_sql(order_free(con, mart.sql))).fetchall()
    basis = [mart.name, mart.tier, SCHEMA_VERSION, mart.sql, dict(documentation or {}), documentation_version()]
    return {
        value: hashlib.sha256(json.dumps([*basis, part_name(mart, value), *map(str, sums)]).encode()).hexdigest()
        for value, *sums in found
    }


_ORDER_FREE: dict[str, str] = {}


def order_free(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """`sql` without its outermost ORDER BY, when it has no LIMIT or OFFSET (which the order decides): the
    fingerprints are order-free, and sorting first costs most of them (`ops.quarantine` at L: 0.07 s with
    its ORDER BY, 0.02 s without). DuckDB parses the query and writes it out again (`json_serialize_sql`);
    a query it cannot do that for is returned as it is."""
    if sql not in _ORDER_FREE:
        _ORDER_FREE[sql] = _without_order(con, sql)
    return _ORDER_FREE[sql]


def _without_order(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    try:
        (serialised,) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0]
        tree = json.loads(serialised)
        statements = tree.get("statements") or []
        if tree.get("error") or len(statements) != 1:
            return sql
        modifiers = statements[0]["node"].get("modifiers", [])
        if any(m.get("type") != "ORDER_MODIFIER" for m in modifiers) or not modifiers:
            return sql  # a LIMIT (or DISTINCT ON) makes the order part of what is selected; nothing to drop
        statements[0]["node"]["modifiers"] = []
        (written,) = con.execute("SELECT json_deserialize_sql(?)", [json.dumps(tree)]).fetchall()[0]
        return str(written)
    except (duckdb.Error, KeyError, TypeError, ValueError):
        return sql


def part_name(mart: Mart, value: Any) -> str:
    """What holds one partition, relative to the table's folder: a hive folder (`panel_id=p1`) or, for a
    table in buckets, the bucket's file (`part-07.parquet`)."""
    return mart.bucket_file(int(value)) if mart.buckets else mart.partition_folder(value)


def link_partitions(version_dir: Path, mart: Mart, parts: Sequence[str], target_version: Path) -> set[str]:
    """Hard-link the previous version's files of the partitions `parts` (`part_name`s: folders such as
    `panel_id=p1`, or bucket files) of `mart` into `target_version`; returns the parts linked (a file
    missing, damaged or not linkable is left for the caller to write)."""
    recorded = recorded_hashes(version_dir)
    by_part: dict[str, list[str]] = {}  # every file of each partition of this table
    for relative in recorded:
        table, _, rest = relative.partition(f"{mart.relative_path}/")
        if not table and rest and ("/" in rest) == mart.hive:
            by_part.setdefault(rest.split("/", 1)[0], []).append(relative)
    return {p for p in parts if _link_files(version_dir, by_part.get(p, []), recorded, target_version)}


def previous_content(version_dir: Path | None) -> tuple[dict[str, Any], dict[str, int]]:
    """The fingerprints and row counts a published version recorded per table (empty when unknown)."""
    if version_dir is None:
        return {}, {}
    try:
        manifest: dict[str, Any] = json.loads((version_dir / "ops" / "publish.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, {}
    fingerprints = manifest.get(CONTENT_KEY)
    if not isinstance(fingerprints, dict):
        return {}, {}
    rows = {str(t.get("name")): int(t.get("rows", 0)) for t in manifest.get("tables", []) if isinstance(t, dict)}
    # a partitioned table's entry is {partition folder: fingerprint}
    return {
        str(k): {str(f): str(x) for f, x in v.items()} if isinstance(v, dict) else str(v)
        for k, v in fingerprints.items()
    }, rows


def link_previous(version_dir: Path, mart: Mart, target_version: Path) -> bool:
    """Put the previous version's files of `mart` into `target_version` by hard links; False if impossible
    or if any file is not byte for byte what that version's datapackage.json recorded (a damaged table
    is written anew)."""
    if _link_files(version_dir, mart.relative_files(version_dir), recorded_hashes(version_dir), target_version):
        return True
    if mart.partition_by:
        shutil.rmtree(target_version / mart.relative_path, ignore_errors=True)
    return False


def _link_files(version_dir: Path, files: Sequence[str], recorded: dict[str, str], target_version: Path) -> bool:
    """Hard-link all of `files` (relative paths) from `version_dir` into `target_version`, or none: False when
    there are none, when one is not what `recorded` (its datapackage.json) says, or when the file system
    cannot link (the caller then writes them as usual)."""
    if not files or not all(file_intact(version_dir, relative, recorded) for relative in files):
        return False
    made: list[Path] = []
    try:
        for relative in files:
            target = target_version / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(version_dir / relative, target)
            made.append(target)
    except OSError:
        for target in made:
            target.unlink(missing_ok=True)
        return False
    return True
