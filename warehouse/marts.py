"""The published tables (our marts): one YAML per table under `warehouse/models/<tier>/`, which says
what the table is, how it is built and what each of its columns means.

A table is built one of three ways (`built_by`):
- `kind`: a row-level table generated from a contract kind (so a new contract column flows through to
  publication), its columns documented by the contract itself;
- `sql`: the `.sql` file beside the YAML;
- `aggregate`: a disclosure-controlled builder in `warehouse.aggregates`.

The data dictionary, datapackage.json and the catalog's comments are generated from these
definitions; a test fails when a published column has no documentation. Table names are fixed:
report authors rely on them.

A table whose YAML says `partition_by: panel_id` may be published hive-partitioned, when the config
asks for it (`publish: {partition_by_panel: true}`, `published_marts`): a folder `<tier>/<table>/`
holding one `panel_id=<value>/part-0.parquet` per panel (the value percent-encoded, as hive readers
decode it), or one zero-row `part-0.parquet` when the table is empty. Otherwise a table is one file,
`<tier>/<table>.parquet`.

With `publish: {panel_buckets: N}` such a table is instead a folder of at most N files,
`<tier>/<table>/part-07.parquet`, every panel's rows in the one file its `panel_id` hashes to (DuckDB's
`hash`, modulo N; the panel column stays in the files). A network of thousands of panels then publishes
a few files per table, not one folder per panel, and a delivery for one panel still rewrites one file
of each table it changes. Only files that hold rows are written; an empty table is one zero-row
`part-0.parquet`, as above.

Either way the folder or file is read as one table by DuckDB, polars, pandas, pyarrow and R's arrow
(`Mart.relative_files` lists the files; `Mart.scan_path` is what `read_parquet` takes); `Mart.as_found`
gives the layout a published version actually has.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote as percent_encoded

from din.contract import ACCEPTABILITY, KINDS, SECTORS, Column, ColumnType, Kind, read_yaml
from din.sql import quote

MODELS_DIR = Path(__file__).with_name("models")
SCHEMA_VERSION = 3  # bump (and note in CHANGELOG.md) when a published column changes on purpose
TIERS = ("open", "restricted", "ops")
PSEUDONYM_COLUMN = "panellist_pseudonym"
PROVENANCE_COLUMNS = ("source_name", "delivery_id", "delivery_sha256", "source_row", "run_id")
BUILT_BY = ("kind", "sql", "aggregate")
PARTITION_COLUMNS = ("panel_id",)  # what a table may be partitioned by
PART_FILE = "part-0.parquet"  # the one file of each partition (and of an empty partitioned table)
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"  # the hive name of a partition whose value is NULL
CONSENTED = "SELECT panel_id, panellist_ref FROM core.roster WHERE consent = 'consented'"


@dataclass(frozen=True)
class ColumnDoc:
    """What a published column means, in a reader's words."""

    meaning: str
    allowed: str = ""  # valid values, as text for a reader (codes in backticks, or a range)
    unit: str = ""
    example: str = ""


@dataclass(frozen=True)
class Mart:
    name: str
    tier: str
    description: str
    sql: str  # for SQL marts; for Python-built aggregates, the name of the builder (fingerprinted)
    build: Callable[[Any, Any], Any] | None = None  # (connection, rule) -> {table name: polars frame}
    kind: Kind | None = None  # the contract kind a row-level table is generated from
    grain: str = ""
    key: tuple[str, ...] = ()
    columns: Mapping[str, ColumnDoc] = field(default_factory=dict)
    definition: Path | None = None  # the YAML file that defines it
    partition_by: str | None = None  # hive-partitioned by this column (one folder per value)
    buckets: int = 0  # with partition_by: that many files instead, each value's rows in one (0: hive folders)
    reads: tuple[str, ...] = ()  # a built table: the warehouse tables its builder reads (`schema.table`)

    @property
    def relative_path(self) -> str:
        """The table's file, or its folder when partitioned, relative to a version folder."""
        return f"{self.tier}/{self.name}" if self.partition_by else f"{self.tier}/{self.name}.parquet"

    def relative_files(self, version_dir: Path) -> list[str]:
        """The Parquet files the table has in `version_dir`, relative to it, sorted (none: not published)."""
        location = version_dir / self.relative_path
        if not self.partition_by:
            return [self.relative_path] if location.is_file() and not location.is_symlink() else []
        if not location.is_dir() or location.is_symlink():
            return []
        return [str(p.relative_to(version_dir)) for p in table_files(location)]

    @property
    def hive(self) -> bool:
        """Partitioned the hive way: one folder per value of `partition_by`, the column in the folder names."""
        return bool(self.partition_by) and not self.buckets

    def bucket_file(self, bucket: int) -> str:
        """The file of one bucket, relative to the table's folder: `part-07.parquet` (never `PART_FILE`)."""
        return f"part-{bucket:0{max(2, len(str(self.buckets - 1)))}d}.parquet"

    def bucket_sql(self, column: str | None = None) -> str:
        """The bucket of a row, in SQL over its partition column (or `column`, SQL naming it): a fixed number
        of files, whatever the number of panels. DuckDB's `hash` is the same in every process of a DuckDB
        release; a release that changed it would move panels between files, and every file, fingerprinted
        anew, is written once."""
        return f"(hash({column or quote(str(self.partition_by))}) % {self.buckets})::INTEGER"

    def rows_where(self, condition: str) -> str:
        """The table's query for its rows that meet `condition` (SQL over its partition column: its bucket).
        A table generated from a kind has the condition applied where its rows are read, before the joins
        (DuckDB does not push a condition on `hash(panel_id)` through them: at L, one bucket's rows of
        `responses` took 0.18 s through the whole query and 0.04 s this way); any other, around its query."""
        if self.kind is not None and self.build is None:
            return _row_level_sql(self.kind, only=condition)
        return f"SELECT * FROM ({self.sql}) AS q WHERE {condition}"

    def partition_sums_sql(self, order_free_sql: str) -> str:
        """Per partition of the table (its `partition_by` value, or its bucket), the row count and the xor
        and the sum of the rows' hashes (`warehouse.publish_reuse`); `order_free_sql` is the table's query
        without its ORDER BY. A table generated from a kind sums what its rows are made from instead
        (`_row_level_sums_sql`: a third of the cost; every partition the core table has rows in)."""

        def part(over: str) -> str:
            return self.bucket_sql(over) if self.buckets else over

        if self.kind is not None and self.build is None:
            return _row_level_sums_sql(self.kind, str(self.partition_by), part)
        return (
            f"SELECT {part(quote(str(self.partition_by)))}, count(*), bit_xor(hash(q)), sum(hash(q)::HUGEINT) "
            f"FROM ({order_free_sql}) AS q GROUP BY 1"
        )

    def scan_path(self, base: Path) -> str:
        """What DuckDB's `read_parquet` (or polars' `scan_parquet`) is given to read the table under `base`."""
        return (
            str(base / self.relative_path / "**" / "*.parquet") if self.partition_by else str(base / self.relative_path)
        )

    def as_found(self, version_dir: Path) -> Mart:
        """This table with the layout it has in `version_dir`: one file, hive folders or bucket files, whatever
        this deployment publishes now (a version published before the setting changed reads as written)."""
        if not self.partition_by:
            return self
        if (version_dir / f"{self.tier}/{self.name}.parquet").is_file():
            return replace(self, partition_by=None, buckets=0)
        folder = version_dir / self.relative_path
        if not folder.is_dir():
            return self
        files = table_files(folder)
        top = [p for p in files if p.parent == folder]
        if any(p.name != PART_FILE for p in top):  # the files of buckets
            return replace(self, buckets=self.buckets or len(top))
        if len(top) < len(files):  # files in folders named by value: hive
            return replace(self, buckets=0)
        return self  # an empty table (one zero-row file) reads the same in either layout

    def partition_folder(self, value: Any) -> str:
        """The folder of one partition, relative to the table's folder: `panel_id=<value percent-encoded>`."""
        shown = NULL_PARTITION if value is None else percent_encoded(str(value), safe="")
        return f"{self.partition_by}={shown}"

    def column_doc(self, name: str) -> ColumnDoc:
        """The documentation of one published column (KeyError names the file to add a missing one to)."""
        if self.kind is not None:
            return _row_level_doc(self.kind, name)
        doc = self.columns.get(name) or _provenance_doc(name) or _disclosure_doc(name) or _shared_contract_doc(name)
        if doc is None:
            raise KeyError(f"{self.name}.{name} is not documented: describe it under columns in {self.definition}")
        return doc


@cache
def marts() -> tuple[Mart, ...]:
    """Every published table, in publication order: by tier, row-level tables in contract order first."""
    found = [_mart(path) for path in sorted(MODELS_DIR.glob("*/*.yaml"))]
    kind_order = {name: index for index, name in enumerate(KINDS)}

    def order(mart: Mart) -> tuple[int, int, str]:
        position = kind_order[mart.kind.name] if mart.kind is not None else len(kind_order)
        return TIERS.index(mart.tier), position, mart.name

    return tuple(sorted(found, key=order))


def table_files(location: Path) -> list[Path]:
    """The Parquet files of a published table: `location` itself, or every file under a partitioned table's
    folder, sorted (so partitions come in the order of their folders' names), links and hidden files left out."""
    if not location.is_dir():
        return [location]
    return sorted(
        p for p in location.rglob("*.parquet") if p.is_file() and not p.is_symlink() and not p.name.startswith(".")
    )


def published_marts(partition_by_panel: bool, panel_buckets: int = 0) -> tuple[Mart, ...]:
    """The tables as this deployment publishes them: those that may be partitioned by panel are split into
    `panel_buckets` files each (the config's `publish.panel_buckets`), or hive-partitioned when
    `partition_by_panel` (`publish.partition_by_panel`); otherwise every table is one file."""
    if panel_buckets:
        return tuple(replace(m, buckets=panel_buckets) if m.partition_by else m for m in marts())
    if partition_by_panel:
        return marts()
    return tuple(replace(m, partition_by=None) if m.partition_by else m for m in marts())


def found_marts(version_dir: Path) -> tuple[Mart, ...]:
    """Every table with the layout it has in the published version `version_dir` (see `Mart.as_found`)."""
    return tuple(m.as_found(version_dir) for m in marts())


def mart(name: str) -> Mart:
    """The published table called `name`."""
    for found in marts():
        if found.name == name:
            return found
    raise KeyError(f"no published table {name!r}; the tables are {', '.join(m.name for m in marts())}")


@cache
def shared_docs() -> dict[str, Any]:
    """`models/_shared.yaml`: tier audiences and the columns many tables share."""
    loaded = read_yaml(MODELS_DIR / "_shared.yaml")
    assert isinstance(loaded, dict)
    return loaded


@cache
def documentation_version() -> str:
    """A digest of every text the tables' documentation comes from (the models' YAML and the contract):
    a published file carries its documentation, so a file written under other texts is not reused."""
    import hashlib

    from din.contract import CONTRACT_FILE

    digest = hashlib.sha256()
    for path in [*sorted(MODELS_DIR.rglob("*.yaml")), CONTRACT_FILE]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tier_audience(tier: str) -> str:
    return str(shared_docs()["tiers"][tier])


def _mart(path: Path) -> Mart:
    tier, name = path.parent.name, path.stem
    if tier not in TIERS:
        raise ValueError(f"{path}: tables live in a folder named after their tier ({', '.join(TIERS)})")
    raw = read_yaml(path)
    if not isinstance(raw, dict) or not raw.get("description"):
        raise ValueError(f"{path}: a table needs at least a description")
    unknown = sorted(set(raw) - {"description", "kind", "built_by", "grain", "key", "columns", "partition_by"})
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    built_by = str(raw.get("built_by", "kind" if raw.get("kind") else ""))
    if built_by not in BUILT_BY:
        raise ValueError(f"{path}: built_by must be one of {', '.join(BUILT_BY)}")
    description = " ".join(str(raw["description"]).split())
    columns = {str(c): _column_doc(entry, f"{path}: columns.{c}") for c, entry in (raw.get("columns") or {}).items()}
    common: dict[str, Any] = {
        "grain": " ".join(str(raw.get("grain", "")).split()),
        "key": tuple(raw.get("key") or ()),
        "columns": columns,
        "definition": path,
        "partition_by": _partition_by(raw.get("partition_by"), path),
    }
    if built_by == "kind":
        kind = KINDS[str(raw["kind"])]
        return Mart(name, tier, description, _row_level_sql(kind), kind=kind, **{**common, "key": _published_key(kind)})
    if built_by == "sql":
        sql = path.with_suffix(".sql").read_text(encoding="utf-8")
        return Mart(name, tier, description, sql, **common)
    from warehouse.aggregates import AGGREGATES

    if name not in AGGREGATES:
        raise ValueError(f"{path}: built_by aggregate, but warehouse.aggregates has no builder {name!r}")
    aggregate = AGGREGATES[name]
    return Mart(name, tier, description, f"aggregate:{name}", aggregate.build, reads=aggregate.reads, **common)


def _partition_by(value: Any, path: Path) -> str | None:
    if value is None:
        return None
    if value not in PARTITION_COLUMNS:
        raise ValueError(f"{path}: partition_by must be one of {', '.join(PARTITION_COLUMNS)}, not {value!r}")
    return str(value)


def _column_doc(entry: Any, where: str) -> ColumnDoc:
    if not isinstance(entry, dict) or not entry.get("meaning"):
        raise ValueError(f"{where}: a column needs a meaning")
    unknown = sorted(set(entry) - {"meaning", "allowed", "unit", "example"})
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {', '.join(unknown)}")
    return ColumnDoc(
        " ".join(str(entry["meaning"]).split()),
        allowed_text(entry.get("allowed")),
        str(entry.get("unit", "")),
        str(entry.get("example", "")),
    )


def vocabulary(name: str) -> tuple[str, ...]:
    """The values a `@name` in a table's YAML stands for: one list kept in the code that uses it."""
    if name == "kinds":
        return tuple(KINDS)
    if name == "sectors":
        return SECTORS
    if name == "acceptability":
        return ACCEPTABILITY
    if name == "modes":
        from din.config import MODES

        return MODES
    if name == "scrub_placeholders":
        from transforms.scrub import PLACEHOLDERS

        return tuple(PLACEHOLDERS)
    if name == "disclosure_statuses":
        from transforms.disclosure import STATUSES

        return tuple(STATUSES)
    if name == "expectation_types":
        from expectations.suites import build_suite

        return tuple(sorted({e["type"] for k in KINDS.values() for e in build_suite(k)["expectations"]}))
    raise KeyError(f"unknown vocabulary @{name}")


def allowed_text(value: Any) -> str:
    """Valid values for a reader: a list (or `@vocabulary`) as codes in backticks; other text as it is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith("@"):
        value = vocabulary(value[1:])
    if isinstance(value, list | tuple):
        return ", ".join(f"`{v}`" for v in value)
    return str(value)


#: The provenance of a row-level table's rows: (table alias, column read, published name), in published order.
_ROW_PROVENANCE = (
    ("d", "source", "source_name"),
    ("t", "delivery_id", "delivery_id"),
    ("d", "sha256", "delivery_sha256"),
    ("t", "source_row", "source_row"),
    ("d", "processed_run_id", "run_id"),
)


def _row_level_columns(kind: Kind) -> list[tuple[str, str, str]]:
    """What a kind's published table selects: (alias, column read, published name) for the core table's (`t`)
    stored columns, then the provenance (`d`: its delivery's row in ops.deliveries)."""
    columns = [
        ("t", column.name, published_name(column.name))
        for column in kind.stored_columns
        if not (kind.name == "roster" and column.name == "consent")
    ]
    return columns + list(_ROW_PROVENANCE)


def _row_level_sql(kind: Kind, only: str | None = None) -> str:
    """A kind's published rows: its core table's stored columns with their provenance, consented panellists
    only; `only`, a condition on the core table's columns its rows must meet too."""
    selected = [
        f"{alias}.{quote(read)}" + ("" if read == name else f" AS {quote(name)}")
        for alias, read, name in _row_level_columns(kind)
    ]
    rows = f"core.{quote(kind.name)}" if only is None else f"(SELECT * FROM core.{quote(kind.name)} WHERE {only})"
    where = ""
    if _withheld_without_consent(kind):
        # Withdrawal is honoured: only panellists whose consent stands on the current roster.
        where = f'WHERE (t."panel_id", t."panellist_ref") IN ({CONSENTED})'
    return f"SELECT {', '.join(selected)}\nFROM {rows} AS t JOIN ops.deliveries AS d USING (delivery_id)\n{where}"


def _withheld_without_consent(kind: Kind) -> bool:
    """Whether a kind's published rows are only those of panellists whose consent stands (`CONSENTED`)."""
    return "panellist_ref" in kind.column_names


def _row_level_sums_sql(kind: Kind, column: str, part: Callable[[str], str]) -> str:
    """Per partition of a kind's published table (`column`, its partition column; `part(sql)`, the partition
    of a row whose value of that column `sql` gives), sums that change whenever the rows `_row_level_sql`
    gives for it could: of the values it reads from each row of the core table and that row's delivery,
    and, when consent decides which rows are published, of the roster's rows of its panels (the panellist
    and whether their consent stands). Hashing what the query reads costs a third of hashing what it gives
    (at L, 0.1 s against 0.3 s for 9.9M responses): the consent check, a join of every row on two text
    columns, is most of the query's cost, and its outcome is fixed by those roster rows.

    Every partition that holds rows of the core table is listed, one whose rows are all withheld too (its
    file is then written with no rows, and not kept)."""
    read = ", ".join(f"{alias}.{quote(name)}" for alias, name, _ in _row_level_columns(kind))
    rows = (
        f"SELECT {part(f't.{quote(column)}')} AS part, hash({read}) AS h "
        f"FROM core.{quote(kind.name)} AS t JOIN ops.deliveries AS d USING (delivery_id)"
    )
    sums = "SELECT part, count(*) AS n, bit_xor(h) AS x, sum(h::HUGEINT) AS s FROM ({}) GROUP BY part"
    if not _withheld_without_consent(kind):
        return sums.format(rows)
    consent = (
        f"SELECT {part(f'r.{quote(column)}')} AS part, "
        'hash(r."panel_id", r."panellist_ref", r."consent" = \'consented\') AS h FROM core.roster AS r'
    )
    return (
        f"SELECT part, r.n, r.x, r.s, c.n, c.x, c.s\nFROM ({sums.format(rows)}) AS r\n"
        f"LEFT JOIN ({sums.format(consent)}) AS c USING (part)"
    )


def published_name(column: str) -> str:
    return PSEUDONYM_COLUMN if column == "panellist_ref" else column


def _published_key(kind: Kind) -> tuple[str, ...]:
    return tuple(published_name(c) for c in kind.key)


def _row_level_doc(kind: Kind, name: str) -> ColumnDoc:
    shared = shared_docs()
    if name in PROVENANCE_COLUMNS:
        return _column_doc(shared["provenance"][name], f"_shared.yaml: provenance.{name}")
    if name == PSEUDONYM_COLUMN:
        return _column_doc(shared["pseudonym"][name], f"_shared.yaml: pseudonym.{name}")
    column = kind.column(name)
    return ColumnDoc(column.description, published_allowed(column), column.unit, published_example(column))


@cache  # every publish documents every column in its files, its catalog and its datapackage
def published_example(column: Column) -> str:
    """The contract's example as the published table holds it (normalised: `Yes` → `true`)."""
    import polars as pl

    from transforms.normalise import normalise_expr

    frame = pl.DataFrame({"v": [column.example]}, schema={"v": pl.String})
    value = frame.select(normalise_expr(pl.col("v"), column.type)).item()
    return str(value) if value is not None else ""


def published_allowed(column: Column) -> str:
    if column.allowed:
        return allowed_text(column.allowed)
    if column.type is ColumnType.BOOLEAN:
        return allowed_text(("true", "false"))
    low, high = column.minimum, column.maximum
    if low is not None and high is not None:
        return f"{low:g} to {high:g}"
    if low is not None:
        return f"at least {low:g}"
    return ""


def _provenance_doc(name: str) -> ColumnDoc | None:
    """The provenance columns a row-level table built in SQL ends with, as every row-level table does."""
    if name not in PROVENANCE_COLUMNS:
        return None
    return _column_doc(shared_docs()["provenance"][name], f"_shared.yaml: provenance.{name}")


def _disclosure_doc(name: str) -> ColumnDoc | None:
    """The columns every disclosure-controlled aggregate carries (`disclosure` in `_shared.yaml`)."""
    docs = shared_docs()["disclosure"]
    if name in ("disclosure_rule", "total_by"):
        return _column_doc(docs[name], f"_shared.yaml: disclosure.{name}")
    if name.endswith("_status"):
        entry = dict(docs["status"])
        entry["meaning"] = str(entry["meaning"]).replace("{column}", name.removesuffix("_status"))
        return _column_doc(entry, "_shared.yaml: disclosure.status")
    return None


def _shared_contract_doc(name: str) -> ColumnDoc | None:
    """A contract column's documentation, when every kind that has a column of that name means the same."""
    found = {c for k in KINDS.values() for c in k.columns if c.name == name}
    if len(found) != 1:
        return None
    column = found.pop()
    return ColumnDoc(column.description, published_allowed(column), column.unit, column.example)
