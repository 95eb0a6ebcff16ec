"""The catalog: DuckDB views over the current Parquet, one schema per tier (`open`, `restricted`, `ops`;
unqualified names too), with a comment on every table and column. Two ways to get one:

- `build_catalog` writes `published/catalog.duckdb` for report authors' own tools (DuckDB CLI, Python,
  R). Its views name files relative to the catalog's folder (`current/open/projects.parquet`), so a
  copied or moved data folder reads its own files, never the old ones. DuckDB resolves relative paths
  against the working directory, so open it from the `published/` folder or set
  `file_search_path` to that folder (`connect_catalog` does that). It holds no data of its own and is
  rebuilt aside and renamed over the old one: opening it read-only never blocks a run. When its views
  would be the same, the last one is copied instead and given the new version's metadata
  (`catalog-build.json` beside it records what the views were made from).
- `open_sandbox` is what `din query` and the portal use: an in-memory database with views over one
  published version, only of the tiers the reader may see, in which no statement can read a file
  outside those tiers' folders, write a file, attach a database, load an extension or change a
  setting. Only queries run (`check_query`); everything else is refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from duckdb.sqltypes import DuckDBPyType

from din.errors import QueryFailed, QueryRefused
from din.paths import DataPaths
from din.sql import literal, quote
from warehouse.mart_files import table_query
from warehouse.marts import TIERS, Mart, found_marts

#: What a reader of each tier sees: the open tier alone; open and restricted; everything.
TIERS_SEEN = {"open": ("open",), "restricted": ("open", "restricted"), "ops": TIERS}
#: Statements a reader may run: queries, and the reads DuckDB spells differently (SUMMARIZE,
#: DESCRIBE, SHOW, FROM-first and VALUES are all SELECT statements to the parser).
QUERY_TYPES = (duckdb.StatementType.SELECT,)
_EXPLAIN = re.compile(r"^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+(?P<rest>.*)$", re.IGNORECASE | re.DOTALL)
DEFAULT_TIMEOUT_SECONDS = 300.0
_ALIAS = re.compile(r"\s+AS\s+.*$", re.IGNORECASE | re.DOTALL)  # `responses AS r`, as DuckDB names a table read
#: The storage format the catalog file is written in. DuckDB 2.0 writes format 69 by default, which
#: DuckDB 1.x clients refuse ("can only read versions between 64 and 68"); format v1.0.0 (64) is
#: read by every DuckDB release since 1.0 (June 2024). The catalog holds only views, comments and a
#: small metadata table, so it loses nothing by it. README states it; tests/warehouse/test_catalog.py
#: opens the catalog with the oldest and a recent 1.x client.
CATALOG_STORAGE_VERSION = "v1.0.0"
OLDEST_READER = "1.0.0"  # the oldest DuckDB release that reads CATALOG_STORAGE_VERSION


# --- the catalog file report authors open ---------------------------------------------------


def build_catalog(paths: DataPaths, marts: Sequence[Mart], metadata: dict[str, Any]) -> Path:
    """Write `published/catalog.duckdb`: views over `current/` by paths relative to the catalog's folder.

    When every view would be what the last catalog has (`CatalogPlan.key`: the same tables, queries,
    documentation and file schemas), that catalog is copied and only its `catalog_metadata` written anew:
    about 0.1 s against 0.25 s at L, where most of the cost was the hundreds of column comments."""
    catalog = paths.catalog
    temporary = catalog.with_name(f".{catalog.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    record = _recorded(catalog)
    schemas = record.get(_KNOWN_SCHEMAS)
    known = schemas if isinstance(schemas, dict) else {}
    plan = CatalogPlan.of(paths.current, marts, TIERS, base=Path(paths.current.name), known=known)
    reuse = _reusable(catalog, record, plan.key)
    if reuse:
        shutil.copyfile(catalog, temporary)
    con = duckdb.connect(str(temporary), config={"storage_compatibility_version": CATALOG_STORAGE_VERSION})
    try:
        # Relative paths resolve against file_search_path (else the working directory): set it to the
        # catalog's folder while building, as a reader does when opening it.
        con.execute(f"SET file_search_path = {literal(str(paths.published))}")
        con.execute("BEGIN")  # one commit for the hundreds of views and comments: 1.1 s -> 0.3 s
        if reuse:
            con.execute("DROP TABLE main.catalog_metadata")
        else:
            plan.create_views(con)
        _write_metadata(con, metadata)
        con.execute("COMMIT")
    finally:
        con.close()
    os.chmod(temporary, 0o640)
    os.replace(temporary, catalog)
    _record(catalog, plan)
    return catalog


def connect_catalog(catalog: Path) -> duckdb.DuckDBPyConnection:
    """Open a catalog file read-only so that its views find their files from any working directory."""
    con = duckdb.connect(str(catalog), read_only=True)
    con.execute(f"SET file_search_path = {literal(str(Path(catalog).resolve().parent))}")
    return con


def create_views(
    con: duckdb.DuckDBPyConnection,
    version_dir: Path,
    marts: Sequence[Mart],
    tiers: Sequence[str],
    base: Path | None = None,
) -> None:
    """One view per table of `tiers` that `version_dir` holds, over `<tier>/<table>.parquet` (a partitioned
    table: every file under `<tier>/<table>/`, its partition column from the folder names, as text and
    first, as published) named under `base` (default `version_dir`), as `<tier>.<table>` and
    `main.<table>`, with the table's and every column's meaning as comments."""
    CatalogPlan.of(version_dir, marts, tiers, base).create_views(con)


#: Bump when what `CatalogPlan.create_views` writes changes for the same tables (a catalog built before is
#: then built anew, never copied).
CATALOG_LAYOUT = 1
_KNOWN_SCHEMAS = "file_schemas"  # the catalog's record: {file: [inode, size, mtime_ns, schema digest]}


@dataclass(frozen=True)
class CatalogPlan:
    """The views a catalog has: each table of its tiers that a version holds, its files and its query."""

    tiers: tuple[str, ...]
    views: tuple[tuple[Mart, tuple[str, ...], str], ...]  # (table, its files, the view's query)
    schemas: dict[str, list[Any]]  # each file's identity and schema digest (`_file_schemas`)

    @classmethod
    def of(
        cls,
        version_dir: Path,
        marts: Sequence[Mart],
        tiers: Sequence[str],
        base: Path | None = None,
        known: dict[str, list[Any]] | None = None,
    ) -> CatalogPlan:
        """The plan for `version_dir`; `known`, the file schemas recorded with the last catalog (only
        a file that is not the one recorded, by inode, size and time, has its footer read: linked files are)."""
        views = []
        for mart in marts:
            if mart.tier not in tiers:
                continue
            files = mart.relative_files(version_dir)
            if files:
                views.append((mart, tuple(files), table_query(version_dir, mart, base, files)))
        schemas = _file_schemas(version_dir, [f for _, files, _ in views for f in files], known or {})
        return cls(tuple(tiers), tuple(views), schemas)

    @property
    def key(self) -> str:
        """What the views and their comments are made from: their queries, the tables' documentation, the
        files' column names and types, and the DuckDB release and storage version writing them."""
        basis: list[Any] = [CATALOG_LAYOUT, duckdb.__version__, CATALOG_STORAGE_VERSION, list(self.tiers)]
        for mart, files, query in self.views:
            meanings = {name: doc.meaning for name, doc in mart.columns.items()}
            digests = sorted({self.schemas[f][-1] for f in files})
            basis.append([mart.tier, mart.name, mart.description, meanings, query, digests])
        return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()

    def create_views(self, con: duckdb.DuckDBPyConnection) -> None:
        for tier in self.tiers:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(tier)}")
        for mart, _, query in self.views:
            view = f"{quote(mart.tier)}.{quote(mart.name)}"
            con.execute(f"CREATE VIEW {view} AS {query}")
            alias = f"main.{quote(mart.name)}"
            con.execute(f"CREATE VIEW {alias} AS SELECT * FROM {view}")
            # The unqualified name is documented as fully as the tier's: a reader listing comments by
            # table name gets every column's meaning whichever of the two views it finds first.
            # DESCRIBE binds the view, listing and reading its files (thousands for a partitioned table): once.
            columns = [column for column, *_ in con.sql(f"DESCRIBE {view}").fetchall()]
            meanings = {column: literal(_meaning(mart, column)) for column in columns}
            for name in (view, alias):  # one call each: hundreds of single statements cost a tenth of a second
                statements = [f"COMMENT ON VIEW {name} IS {literal(mart.description)}"]
                statements += [f"COMMENT ON COLUMN {name}.{quote(c)} IS {meanings[c]}" for c in columns]
                con.execute(";\n".join(statements))


def _file_schemas(version_dir: Path, files: Sequence[str], known: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """For each file (relative to `version_dir`): [inode, size, mtime_ns, digest of its columns' names and
    types], the digest taken from `known` when the file is the one recorded there."""
    schemas = {}
    for relative in files:
        stat = (version_dir / relative).stat()
        identity = [stat.st_ino, stat.st_size, stat.st_mtime_ns]
        recorded = known.get(relative)
        if isinstance(recorded, list) and recorded[:3] == identity and len(recorded) == 4:
            schemas[relative] = recorded
            continue
        fields = [[field.name, str(field.type)] for field in pq.read_schema(version_dir / relative)]
        schemas[relative] = [*identity, hashlib.sha256(json.dumps(fields).encode()).hexdigest()]
    return schemas


def _record_path(catalog: Path) -> Path:
    """Beside the catalog, what it was built from (`catalog-build.json`)."""
    return catalog.with_name(f"{catalog.stem}-build.json")


def _recorded(catalog: Path) -> dict[str, Any]:
    """What `catalog-build.json` says (empty when it is missing or unreadable)."""
    try:
        record = json.loads(_record_path(catalog).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _reusable(catalog: Path, record: dict[str, Any], key: str) -> bool:
    """Whether `catalog` is the file last built for `key` (its record says so, and it is the same file:
    one replaced or edited since is built anew)."""
    try:
        stat = catalog.stat()
    except OSError:
        return False
    return record.get("key") == key and record.get("file") == _identity(stat)


def _identity(stat: os.stat_result) -> list[int]:
    return [stat.st_ino, stat.st_size, stat.st_mtime_ns]


def _record(catalog: Path, plan: CatalogPlan) -> None:
    """Write what `catalog` was built from beside it, replaced in one step (through a hidden temporary file that
    `warehouse.runs.clear_leftovers` removes, as it removes a catalog's)."""
    record = {"key": plan.key, "file": _identity(catalog.stat()), _KNOWN_SCHEMAS: plan.schemas}
    path = _record_path(catalog)
    temporary = catalog.with_name(f".{catalog.name}.record.{os.getpid()}")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temporary, path)


def _meaning(mart: Mart, column: str) -> str:
    try:
        return mart.column_doc(column).meaning
    except KeyError:  # a version published before the column was documented: still readable
        return ""


def _write_metadata(con: duckdb.DuckDBPyConnection, metadata: dict[str, Any]) -> None:
    con.execute("CREATE TABLE main.catalog_metadata (key VARCHAR, value VARCHAR)")
    con.executemany(
        "INSERT INTO main.catalog_metadata VALUES (?, ?)",
        [(k, v if isinstance(v, str) else json.dumps(v, default=str)) for k, v in metadata.items()],
    )


# --- the sandbox `din query` and the portal use --------------------------------------------


def readable_tiers(paths: DataPaths) -> tuple[str, ...]:
    """The tiers of the current version this process's account may read (restricted and ops folders
    are not world-readable: a reader outside the group sees the open tier only)."""
    current = paths.current
    return tuple(t for t in TIERS if os.access(current / t, os.R_OK | os.X_OK))


@dataclass
class Sandbox:
    """A read-only view of one published version for one reader; `query` runs one query in it."""

    connection: duckdb.DuckDBPyConnection
    version: str
    tiers: tuple[str, ...]

    def tables(self) -> list[tuple[str, str, str]]:
        """(tier, table, description) of every table this reader sees."""
        return [
            (str(s), str(v), str(c or ""))
            for s, v, c in self.connection.sql(
                "SELECT schema_name, view_name, comment FROM duckdb_views() "
                "WHERE NOT internal AND schema_name != 'main' ORDER BY schema_name, view_name"
            ).fetchall()
        ]

    def tables_read(self, sql: str) -> list[tuple[str, str]]:
        """(tier, table) of each published table `sql` names, an unqualified name resolved to its tier as the
        query resolves it; CTEs, table functions and names that are not published tables are left out."""
        published = {(tier, table) for tier, table, _ in self.tables()}
        tier_of = {table: tier for tier, table in published}  # what `main.<table>` (an unqualified name) reads
        found = set()
        try:
            names = duckdb.get_table_names(check_query(sql), qualified=True)
        except duckdb.Error:  # a query that does not bind fails with its own one-line error when it runs
            names = set()
        for name in names:
            *schema, table = (part.strip('"').lower() for part in _ALIAS.sub("", name).split("."))
            tier = schema[-1] if schema and schema[-1] != "main" else tier_of.get(table)
            if (tier, table) in published:
                found.add((str(tier), table))
        return sorted(found, key=lambda t: (TIERS.index(t[0]), t[1]))

    def query(self, sql: str) -> duckdb.DuckDBPyRelation:
        """The result of one query (refused with `QueryRefused` unless it only reads); columns of a type
        the writers cannot show (see `as_writable`) come as text."""
        statement = check_query(sql)
        try:
            return as_writable(self.connection.sql(statement))
        except duckdb.Error as error:
            raise QueryFailed(explain_error(error, self.tiers)) from None

    def batches(self, sql: str, rows: int = 10_000, timeout: float | None = None) -> Iterator[pa.RecordBatch]:
        """The query's result in record batches of at most `rows` rows (bounded memory, however large),
        stopped with `QueryFailed` after `timeout` seconds."""
        relation = self.query(sql)
        with _deadline(self.connection, timeout):
            try:
                reader = relation.to_arrow_reader(rows)
                empty = True
                for batch in reader:
                    empty = False
                    yield batch
                if empty:  # no rows: one empty batch still says which columns there are
                    yield pa.RecordBatch.from_pylist([], schema=reader.schema)
            except duckdb.InterruptException:
                raise QueryFailed(_stopped(timeout)) from None
            except duckdb.Error as error:
                raise QueryFailed(explain_error(error, self.tiers)) from None
            except OSError as error:  # DuckDB's error, raised through the Arrow stream as a plain OSError
                interrupted = str(error).startswith("INTERRUPT")
                raise QueryFailed(_stopped(timeout) if interrupted else one_line(error)) from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Types every writer of a result (terminal table, CSV, JSON: through Arrow and polars) shows as they are;
#: lists, arrays and structs of them too. Anything else (INTERVAL, MAP, UNION, VARIANT, TIME WITH TIME ZONE,
#: BIGNUM, BIT, types of extensions) comes as DuckDB's own text for it: a reader's query never ends in a crash
#: of the conversion (a list of intervals even panics inside polars).
WRITABLE_TYPES = frozenset(
    {
        "boolean", "tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint",
        "hugeint", "uhugeint", "float", "double", "decimal", "varchar", "blob", "uuid", "enum", "date",
        "time", "timestamp", "timestamp_s", "timestamp_ms", "timestamp_ns", "timestamp with time zone", "null",
    }
)  # fmt: skip


def writable(column_type: DuckDBPyType) -> bool:
    """Whether a result column of this type reaches every writer as it is."""
    if column_type.id in ("list", "array", "struct"):  # children: (name, type) pairs, an array's size too
        return all(writable(child) for _, child in column_type.children if isinstance(child, DuckDBPyType))
    return str(column_type.id).lower() in WRITABLE_TYPES


def as_writable(relation: duckdb.DuckDBPyRelation) -> duckdb.DuckDBPyRelation:
    """`relation` with every column of a type `writable` refuses cast to VARCHAR, and a column name that
    repeats (`SELECT 1 AS x, 2 AS x`) made unique (`x`, `x_2`), in place and by position."""
    types, names = relation.types, unique_names(relation.columns)
    if all(writable(t) for t in types) and names == relation.columns:
        return relation
    columns = [
        f"{'#' + str(i) if writable(t) else f'CAST(#{i} AS VARCHAR)'} AS {quote(name)}"
        for i, (name, t) in enumerate(zip(names, types, strict=True), start=1)
    ]
    return relation.project(", ".join(columns))


def unique_names(names: Sequence[str]) -> list[str]:
    """`names` with each repeat of a name (compared as DuckDB does, ignoring case) given the first free
    suffix `_2`, `_3`, ... (free: neither taken already nor another column's own name)."""
    own = {n.lower() for n in names}
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen or (n > 1 and candidate.lower() in own):
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def open_sandbox(paths: DataPaths, tiers: Sequence[str] | None = None, memory_limit: str | None = None) -> Sandbox:
    """A locked-down connection over the current published version, showing only `tiers` (default: every
    tier this account can read).

    The views name the version's files by absolute path, resolved once: a publish during a query does
    not change what the query reads. Settings, in the order DuckDB requires: no spill files, no Python
    replacement scans, the tiers' folders as the only ones allowed, external access off, configuration
    locked. External access off also refuses INSTALL, LOAD, ATTACH of a file and every file outside the
    allowed folders; `check_query` refuses what could still write inside them (COPY, EXPORT)."""
    version_dir = _current_version(paths)
    allowed = tuple(t for t in TIERS if t in (tiers if tiers is not None else readable_tiers(paths)))
    if not allowed:
        raise QueryRefused(f"this account may not read any tier of {paths.current}")
    con = duckdb.connect(":memory:")
    try:
        create_views(con, version_dir, found_marts(version_dir), allowed)
        _write_metadata(con, _release_notes(version_dir, allowed))
        limit = memory_limit or os.environ.get("DIN_DUCKDB_MEMORY_LIMIT", "1GB")
        con.execute(f"SET memory_limit = {literal(limit)}")
        con.execute("SET temp_directory = ''")
        con.execute("SET python_enable_replacements = false")
        folders = ", ".join(literal(f"{version_dir / t}/") for t in allowed)
        con.execute(f"SET allowed_directories = [{folders}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return Sandbox(con, version_dir.name, allowed)


#: What every reader is told about a version (the demo notice above all); ops readers get all of publish.json.
PUBLIC_METADATA = ("run_id", "title", "mode", "demo_key", "notice", "disclosure_rule", "schema_version")


def _release_notes(version_dir: Path, tiers: Sequence[str]) -> dict[str, Any]:
    try:
        release = json.loads((version_dir / "ops" / "publish.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    release.pop("tables", None)
    return release if "ops" in tiers else {k: v for k, v in release.items() if k in PUBLIC_METADATA}


def _current_version(paths: DataPaths) -> Path:
    if not paths.current.exists():
        raise QueryFailed(f"nothing has been published under {paths.root} yet; run `din run` first")
    return paths.current.resolve()


def check_query(sql: str) -> str:
    """The one statement in `sql`, if it only reads; else `QueryRefused` saying why, in one line."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as error:
        raise QueryFailed(one_line(error)) from None
    if not statements:
        raise QueryRefused("no query given")
    if len(statements) > 1:
        raise QueryRefused(f"one query at a time, please ({len(statements)} statements given)")
    statement = statements[0]
    if statement.type in QUERY_TYPES:
        return str(statement.query)
    explained = _EXPLAIN.match(statement.query) if statement.type == duckdb.StatementType.EXPLAIN else None
    if explained is not None:
        check_query(explained["rest"])  # EXPLAIN ANALYZE runs its statement: that one must be a query too
        return str(statement.query)
    name = str(statement.type).rsplit(".", 1)[-1]
    raise QueryRefused(
        f"only queries run here (SELECT, WITH, FROM, SUMMARIZE, DESCRIBE, SHOW, EXPLAIN), not {name} statements: "
        "the published data is read-only (to change it, change the deliveries and `din run`)"
    )


def one_line(error: BaseException) -> str:
    """DuckDB's message on one line: the error and its hint, without the caret drawing."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith("LINE ") and set(line) - {"^", " "}]
    return "; ".join(kept) or type(error).__name__


def explain_error(error: duckdb.Error, tiers: Sequence[str]) -> str:
    """One line for a failed query; a refused file access says what may be read instead."""
    if isinstance(error, duckdb.PermissionException):
        return (
            "this query may read only the published tables (" + ", ".join(f"{t}.*" for t in tiers) + "): files, "
            "databases, extensions and settings outside them are not reachable from here"
        )
    hidden = [t for t in TIERS if t not in tiers and f'schema "{t}" does not exist' in str(error)]
    if isinstance(error, duckdb.CatalogException) and hidden:
        return f"the {hidden[0]} tier is not visible to this reader (it sees {', '.join(tiers)})"
    return one_line(error)


def _stopped(timeout: float | None) -> str:
    return f"the query was stopped after {timeout or 0:g} s (--timeout)"


@contextmanager
def _deadline(con: duckdb.DuckDBPyConnection, seconds: float | None) -> Iterator[None]:
    """Interrupt the connection's running query after `seconds` (none: no limit)."""
    if not seconds:
        yield
        return
    timer = threading.Timer(seconds, con.interrupt)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
