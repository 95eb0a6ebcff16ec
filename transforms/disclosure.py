"""Statistical disclosure control for open (publishable) aggregates.

Every open aggregate passes through these pure polars functions before it is written:

* **primary suppression**: counts from 1 to ``threshold - 1`` are nulled, status ``"suppressed"``;
  true zeros stay ``0`` with status ``"zero"`` (not disclosive under this policy);
* **secondary suppression**: further cells and totals are nulled, status ``"suppressed_secondary"``,
  until no suppressed value can be worked out from the published cells and totals;
* **derived values**: means and shares based on fewer than ``threshold`` contributors, or on a
  suppressed count, are nulled;
* **round_to_5**: after suppression every published count, totals included, is rounded to the
  nearest multiple of 5, status ``"rounded"``.

Each protected column ``x`` gets a ``x_status`` column (see :data:`STATUSES`) and every output
carries the rule's label in a ``disclosure_rule`` column.

The maths works on the *extended table*: in 1-D the ``n`` cells followed by their total; in 2-D the
``(r+1) x (c+1)`` array whose last column holds the row totals, last row the column totals and
corner the grand total. Every line of the extended 2-D table is an additive constraint. Taking the
lines as vertices and the suppressed entries as edges of a bipartite graph, the null space of the
constraints restricted to the suppressed entries is the graph's cycle space, so a suppressed entry
can be recomputed exactly iff it is a *bridge* (lies on no cycle). Secondary suppression closes a
cheapest cycle through each bridge until none is left; :func:`recoverable` re-checks the result
with plain linear algebra.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from din.source_options import DISCLOSURE_PROFILES

PUBLISHED = "published"
ZERO = "zero"
SUPPRESSED = "suppressed"
SUPPRESSED_SECONDARY = "suppressed_secondary"
ROUNDED = "rounded"
STATUSES = (PUBLISHED, ZERO, SUPPRESSED, SUPPRESSED_SECONDARY, ROUNDED)

IS_TOTAL = "is_total"
RULE_COLUMN = "disclosure_rule"
TOTAL_BY = "total_by"  # in a totals table: the column(s) a total is given per, or OVERALL
OVERALL = "all"

#: What each status means, in the words a report and the data dictionary both use (`{limit}`: the threshold).
STATUS_MEANINGS: dict[str, str] = {
    PUBLISHED: "published as counted",
    ZERO: "a true zero, published as 0",
    SUPPRESSED: "a count from 1 to {below} (under {limit}), left blank",
    SUPPRESSED_SECONDARY: "left blank so that no suppressed count can be worked out from the totals",
    ROUNDED: "published rounded to the nearest multiple of 5",
}


def status_meaning(status: str, limit: int) -> str:
    """What a status means under a rule whose threshold is `limit`."""
    return STATUS_MEANINGS[status].format(below=limit - 1, limit=limit)


# profile -> the threshold its name promises (the lowest allowed)
PROFILES: dict[str, int] = DISCLOSURE_PROFILES  # declared once, beside the config's other settings
ROUNDING_BASE = 5

_OPEN, _PRIMARY, _SECONDARY = 0, 1, 2
_CODE = "_disclosure_code"
_UNREACHED = (float("inf"), 0)


@dataclass(frozen=True)
class DisclosureRule:
    """A disclosure profile and its threshold (``None``: the threshold the profile's name promises).

    The threshold may be raised above the profile's own (e.g. ``round_to_5`` with 10), never lowered:
    a rule named ``suppress_under_10`` that suppressed only under 5 would mislead readers.
    """

    profile: str = "suppress_under_5"
    threshold: int | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown disclosure profile {self.profile!r}; expected one of {sorted(PROFILES)}")
        minimum = PROFILES[self.profile]
        threshold = minimum if self.threshold is None else self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int):
            raise TypeError(f"threshold must be an integer, got {threshold!r}")
        if threshold < minimum:
            raise ValueError(f"threshold {threshold} is below the {minimum} that {self.profile!r} promises")
        object.__setattr__(self, "threshold", threshold)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> DisclosureRule:
        """Build from a config mapping ``{"profile": ..., "threshold": ...}`` (both optional)."""
        config = dict(config or {})
        unknown = set(config) - {"profile", "threshold"}
        if unknown:
            raise ValueError(f"unknown disclosure setting(s): {sorted(unknown)}")
        return cls(profile=config.get("profile", "suppress_under_5"), threshold=config.get("threshold"))

    @property
    def limit(self) -> int:
        """The threshold as an int: counts 1..limit-1 are suppressed."""
        assert self.threshold is not None  # set by __post_init__
        return self.threshold

    @property
    def rounding(self) -> int | None:
        """Rounding base for published counts, or ``None`` when counts are published exactly."""
        return ROUNDING_BASE if self.profile == "round_to_5" else None

    @property
    def label(self) -> str:
        """Short name written to the ``disclosure_rule`` column, e.g. ``"suppress_under_5"``."""
        if self.rounding is None:
            return f"suppress_under_{self.limit}"
        return self.profile if self.limit == PROFILES[self.profile] else f"{self.profile}_suppress_under_{self.limit}"

    @property
    def description(self) -> str:
        """The rule in plain words, for documentation and report footnotes."""
        t = self.limit
        text = (
            f"Counts from 1 to {t - 1} are suppressed (left blank and marked 'suppressed'); zeros are shown "
            "as 0. Other counts and totals are also suppressed where needed (marked 'suppressed_secondary') "
            "so that no suppressed count can be worked out from the published counts and totals. Means and "
            f"shares based on fewer than {t} people, or on a suppressed count, are suppressed."
        )
        if self.rounding is None:
            return text
        return text + (
            f" Every published count, totals included, is then rounded to the nearest multiple of "
            f"{self.rounding} (a remainder of 1 or 2 rounds down, 3 or 4 rounds up) and marked 'rounded', "
            "whether or not its value changed; totals are rounded on their own, so rounded counts need not "
            "add up to their rounded total. Shares are recomputed from the rounded counts."
        )


# --------------------------------------------------------------------------------------------------
# Linear algebra: which suppressed entries can be recomputed (used as a final check and by tests)


def margin_constraints(shape: tuple[int] | tuple[int, int]) -> np.ndarray:
    """Constraint matrix ``A`` with ``A @ extended.ravel() == 0`` for a table of ``shape`` cells.

    Columns follow the extended layout (1-D: cells then total; 2-D: ``(r+1) x (c+1)`` row-major);
    one row per line: its cells with +1, its total with -1.
    """
    if len(shape) == 1:
        return np.append(np.ones(shape[0]), -1.0)[None, :]
    r, c = shape
    in_row = np.where(np.arange(c + 1) < c, 1.0, -1.0)
    in_col = np.where(np.arange(r + 1) < r, 1.0, -1.0)
    lines = []
    for a in range(r + 1):
        line = np.zeros((r + 1, c + 1))
        line[a, :] = in_row
        lines.append(line.ravel())
    for b in range(c + 1):
        line = np.zeros((r + 1, c + 1))
        line[:, b] = in_col
        lines.append(line.ravel())
    return np.array(lines)


def recoverable(suppressed: np.ndarray) -> np.ndarray:
    """Which suppressed entries of an extended table are uniquely determined by the published ones.

    ``suppressed`` is a boolean mask in the extended layout (shape ``(n+1,)`` or ``(r+1, c+1)``).
    Entry ``k`` is determined iff its unit vector lies in the row space of the margin constraints
    restricted to the suppressed entries, i.e. iff every null-space vector of that system is 0 at
    ``k`` (one SVD; the rank is the number of singular values above numpy's ``matrix_rank`` tolerance).
    """
    mask = np.asarray(suppressed, dtype=bool)
    out = np.zeros(mask.size, dtype=bool)
    unknowns = np.flatnonzero(mask.ravel())
    if unknowns.size:
        system = margin_constraints(tuple(s - 1 for s in mask.shape))[:, unknowns]
        _, singular, vh = np.linalg.svd(system)
        rank = int((singular > singular.max(initial=0.0) * max(system.shape) * np.finfo(float).eps).sum())
        null_space = vh[rank:].T  # one column per free direction of the suppressed values
        out[unknowns] = np.abs(null_space).max(axis=1, initial=0.0) < 1e-9
    return out.reshape(mask.shape)


def is_recoverable(suppressed: np.ndarray) -> bool:
    """True when at least one suppressed entry of the extended table can be recomputed."""
    return bool(recoverable(suppressed).any())


# --------------------------------------------------------------------------------------------------
# Suppression patterns on numpy arrays (extended layout; codes _OPEN / _PRIMARY / _SECONDARY)


def _primary(values: np.ndarray, threshold: int) -> np.ndarray:
    """Primary codes: values in 1..threshold-1 are suppressed."""
    return np.where((values > 0) & (values < threshold), _PRIMARY, _OPEN).astype(np.int8)


def _suppress_1d(extended: np.ndarray, threshold: int) -> np.ndarray:
    """Codes for cells followed by their total.

    A lone suppressed entry is revealed by the total, so the smallest published non-zero entry
    (cells before the total on ties, then by position) is suppressed with it.
    """
    codes = _primary(extended, threshold)
    if np.count_nonzero(codes) == 1:
        candidates = np.flatnonzero((codes == _OPEN) & (extended > 0))
        codes[candidates[np.argsort(extended[candidates], kind="stable")[0]]] = _SECONDARY
    return codes


def _bridges(codes: np.ndarray) -> list[tuple[int, int]]:
    """Suppressed entries of an extended 2-D table that lie on no cycle (Tarjan, iterative)."""
    n_rows = codes.shape[0]
    edges = [(int(i), int(j)) for i, j in np.argwhere(codes != _OPEN)]
    adjacency: list[list[tuple[int, int]]] = [[] for _ in range(sum(codes.shape))]
    for index, (i, j) in enumerate(edges):
        adjacency[i].append((n_rows + j, index))
        adjacency[n_rows + j].append((i, index))
    found: list[tuple[int, int]] = []
    discovered = [-1] * len(adjacency)
    low = [0] * len(adjacency)
    clock = 0
    for root in range(len(adjacency)):
        if discovered[root] != -1 or not adjacency[root]:
            continue
        discovered[root] = low[root] = clock
        clock += 1
        stack: list[tuple[int, int, Iterator[tuple[int, int]]]] = [(root, -1, iter(adjacency[root]))]
        while stack:
            vertex, via, pending = stack[-1]
            for neighbour, edge in pending:
                if edge == via:
                    continue
                if discovered[neighbour] == -1:
                    discovered[neighbour] = low[neighbour] = clock
                    clock += 1
                    stack.append((neighbour, edge, iter(adjacency[neighbour])))
                    break
                low[vertex] = min(low[vertex], discovered[neighbour])
            else:
                stack.pop()
                if stack:
                    parent = stack[-1][0]
                    low[parent] = min(low[parent], low[vertex])
                    if low[vertex] > discovered[parent]:
                        found.append(edges[via])
    return sorted(found)


def _cheapest_path(extended: np.ndarray, codes: np.ndarray, entry: tuple[int, int]) -> list[tuple[int, int]]:
    """Entries on the cheapest path from ``entry``'s row line to its column line, avoiding ``entry``.

    Edges are the non-zero entries; already suppressed ones cost 0, published ones their value
    (smallest values first); ties go to fewer entries, then to the lowest line index.
    """
    n_rows, n_cols = extended.shape
    cost_of = np.where(codes != _OPEN, 0, extended).tolist()
    usable = (extended > 0).tolist()
    usable[entry[0]][entry[1]] = False
    start, goal = entry[0], n_rows + entry[1]
    best: dict[int, tuple[int, int]] = {start: (0, 0)}
    previous: dict[int, tuple[int, tuple[int, int]]] = {}
    heap = [(0, 0, start)]
    while heap:
        cost, hops, vertex = heapq.heappop(heap)
        if vertex == goal:
            break
        if (cost, hops) > best[vertex]:
            continue
        for neighbour, (i, j) in _lines_through(vertex, n_rows, n_cols):
            step = (cost + cost_of[i][j], hops + 1)
            if usable[i][j] and step < best.get(neighbour, _UNREACHED):
                best[neighbour] = step
                previous[neighbour] = (vertex, (i, j))
                heapq.heappush(heap, (*step, neighbour))
    path, vertex = [], goal
    while vertex != start:
        vertex, cell = previous[vertex]
        path.append(cell)
    return path


def _lines_through(vertex: int, n_rows: int, n_cols: int) -> Iterator[tuple[int, tuple[int, int]]]:
    """(other line, entry) pairs for every entry on a line of the extended table."""
    if vertex < n_rows:
        for j in range(n_cols):
            yield n_rows + j, (vertex, j)
    else:
        for i in range(n_rows):
            yield i, (i, vertex - n_rows)


def _suppress_2d(extended: np.ndarray, threshold: int) -> np.ndarray:
    """Codes for an extended 2-D table: primary, then close a cheapest cycle through each bridge."""
    codes = _primary(extended, threshold)
    for _ in range(extended.size + 1):
        bridges = _bridges(codes)
        if not bridges:
            return codes
        for cell in _cheapest_path(extended, codes, bridges[0]):
            if codes[cell] == _OPEN:
                codes[cell] = _SECONDARY
    raise RuntimeError("secondary suppression did not reach a fixed point")  # pragma: no cover


def _assert_safe(codes: np.ndarray) -> None:
    """Last line of defence: refuse to publish a table with a recoverable suppressed entry."""
    if is_recoverable(codes != _OPEN):
        raise RuntimeError("disclosure check failed: a suppressed value is recoverable")  # pragma: no cover


# --------------------------------------------------------------------------------------------------
# polars front end


def protect_counts(
    df: pl.DataFrame,
    *,
    count: str,
    groups: Sequence[str],
    categories: str | None = None,
    rule: DisclosureRule,
    by: Sequence[str] = (),
) -> pl.DataFrame:
    """Protect a table of counts, adding its totals.

    ``df`` has one row per cell: the ``by``, ``groups`` and optional ``categories`` columns (no nulls,
    unique together) and a non-negative integer ``count``; no other columns. Each distinct ``by`` value
    is an independent table (totals never cross it). Without ``categories`` a table is 1-D: its cells
    plus one total. With ``categories`` it is groups x categories (missing combinations are zeros and
    are output): per-group totals, per-category totals and a grand total.

    Returns ``[*by, *groups, categories, count, f"{count}_status", "is_total", "disclosure_rule"]``,
    sorted by key, cells before totals. Total rows have ``is_total`` true and null in the columns they
    sum over (a group total has a null category; a category total null groups; the grand total both).
    ``count`` is Int64, null where suppressed.
    """
    by, groups = list(by), list(groups)
    if not groups:
        raise ValueError("groups must name at least one column")
    keys = [*by, *groups, *([categories] if categories is not None else [])]
    _check_cells(df, count, keys)
    if categories is None and df.height:
        out = _tables_1d(df, count, by, groups, rule.limit)
        return _mark(out, count, rule).select(*keys, count, f"{count}_status", IS_TOTAL, RULE_COLUMN)
    if categories is None or not df.height:
        return _protect_per_table(df, count=count, groups=groups, categories=categories, rule=rule, by=by)
    # 2-D: a table without a small cell has no small margin (a margin in 1..t-1 has a cell in 1..t-1), so
    # nothing in it is suppressed and it is built set-wise; only tables with small cells need the search.
    small = (pl.col(count) > 0) & (pl.col(count) < rule.limit)
    needing = df.filter(small.any().over(by) if by else small.any())
    easy = df.filter(~(small.any().over(by) if by else small.any()))
    pieces = []
    if easy.height:
        out = _mark(_tables_2d_unsuppressed(easy, count, by, groups, categories), count, rule)
        pieces.append(out.select(*keys, count, f"{count}_status", IS_TOTAL, RULE_COLUMN, "_order"))
    if needing.height:
        out = _protect_per_table(needing, count=count, groups=groups, categories=categories, rule=rule, by=by)
        pieces.append(out.with_columns(_piece_order(groups, categories).alias("_order")))
    return pl.concat(pieces).sort([*by, "_order", *groups, categories], nulls_last=True).drop("_order")


def _piece_order(groups: list[str], category: str) -> pl.Expr:
    """Where a row of a 2-D table comes in its output: cells, group totals, category totals, grand total."""
    no_group = pl.all_horizontal(pl.col(groups).is_null())
    no_category = pl.col(category).is_null()
    return (
        pl.when(~no_group & ~no_category)
        .then(0)
        .when(~no_group)
        .then(1)
        .when(~no_category)
        .then(2)
        .otherwise(3)
        .cast(pl.Int8)
    )


def _tables_2d_unsuppressed(
    df: pl.DataFrame, count: str, by: list[str], groups: list[str], category: str
) -> pl.DataFrame:
    """Every groups x categories table of `df` (none with a small cell) and its margins, set-wise, all
    codes open: missing combinations are zeros, as in :func:`_table_2d`."""
    cells = df.select(*by, *groups, category, pl.col(count).cast(pl.Int64))
    rows = cells.select(*by, *groups).unique()
    cols = cells.select(*by, category).unique()
    grid = (rows.join(cols, on=by, how="inner") if by else rows.join(cols, how="cross")).join(
        cells, on=[*by, *groups, category], how="left", nulls_equal=True
    )
    grid = grid.with_columns(pl.col(count).fill_null(0))
    margins = [
        grid.group_by([*by, *groups]).agg(pl.col(count).sum()),
        grid.group_by([*by, category]).agg(pl.col(count).sum()),
        grid.group_by(by).agg(pl.col(count).sum()) if by else grid.select(pl.col(count).sum()),
    ]
    table = pl.concat(
        [grid.with_columns(pl.lit(False).alias(IS_TOTAL))]
        + [m.with_columns(pl.lit(True).alias(IS_TOTAL)) for m in margins],
        how="diagonal",
    )
    return table.with_columns(pl.lit(_OPEN, pl.Int8).alias(_CODE), _piece_order(groups, category).alias("_order"))


def _protect_per_table(
    df: pl.DataFrame, *, count: str, groups: list[str], categories: str | None, rule: DisclosureRule, by: list[str]
) -> pl.DataFrame:
    """:func:`protect_counts` one table at a time in numpy (2-D tables; the reference for 1-D ones)."""
    keys = [*by, *groups, *([categories] if categories is not None else [])]
    pieces = []
    for key, part in _partitions(df, by):
        table = (
            _table_1d(part, count, groups, rule.limit)
            if categories is None
            else _table_2d(part, count, groups, categories, rule.limit)
        )
        pieces.append(table.with_columns(pl.lit(v, dtype=df.schema[b]).alias(b) for b, v in zip(by, key, strict=True)))
    if not pieces:
        empty = df.select(keys).with_columns(pl.lit(None, pl.Int64).alias(count), pl.lit(None, pl.Int8).alias(_CODE))
        pieces = [empty.with_columns(pl.lit(None, pl.Boolean).alias(IS_TOTAL))]
    out = pl.concat(pieces, how="diagonal")
    return _mark(out, count, rule).select(*keys, count, f"{count}_status", IS_TOTAL, RULE_COLUMN)


def split_totals(
    protected: pl.DataFrame, *, groups: Sequence[str], categories: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The cells and the totals of :func:`protect_counts` output, as two tables.

    A plain sum over the cells is then right, and the totals table says in ``total_by`` what each total is
    given per: the group or category column(s) it keeps (``workshop_id``: one total per workshop, summed
    over the categories), or ``all`` for the grand total of each ``by`` table. Neither has ``is_total``.
    """
    dimensions = [*groups, *([categories] if categories is not None else [])]
    kept = pl.concat_str(
        [pl.when(pl.col(d).is_not_null()).then(pl.lit(d)) for d in dimensions], separator=", ", ignore_nulls=True
    )
    total_by = pl.when(kept.is_null() | (kept == "")).then(pl.lit(OVERALL)).otherwise(kept).alias(TOTAL_BY)
    cells = protected.filter(~pl.col(IS_TOTAL)).drop(IS_TOTAL)
    totals = protected.filter(pl.col(IS_TOTAL)).drop(IS_TOTAL).with_columns(total_by)
    return cells, totals


def protect_means(df: pl.DataFrame, *, n: str, values: Sequence[str], rule: DisclosureRule) -> pl.DataFrame:
    """Null each mean in ``values`` where it rests on fewer than ``threshold`` contributors (``n``).

    Adds ``f"{v}_status"`` ("published" or "suppressed"; n = 0 counts as suppressed). ``n`` is itself
    a count and is protected too (primary suppression, rounding under round_to_5), unless it already
    carries ``f"{n}_status"`` from :func:`protect_counts` (a secondary-suppressed n is at least
    ``threshold``, so its means stay published). Means are not rounded.
    """
    _require(df, [n, *values])
    out = _ensure_protected(df, n, rule)
    few = pl.col(f"{n}_status").is_in([SUPPRESSED, ZERO])
    return out.with_columns(
        *(pl.when(few).then(None).otherwise(pl.col(v)).alias(v) for v in values),
        *(pl.when(few).then(pl.lit(SUPPRESSED)).otherwise(pl.lit(PUBLISHED)).alias(f"{v}_status") for v in values),
    )


def protect_shares(
    df: pl.DataFrame,
    *,
    count: str,
    share: str,
    rule: DisclosureRule,
    denominator: str | None = None,
) -> pl.DataFrame:
    """Null each ``share`` computed from a suppressed ``count`` or from too few contributors.

    ``count`` (and ``denominator``, the count the share is out of) are protected by primary suppression
    unless they already carry a status column from :func:`protect_counts` (pass its output, joined with
    the group total, to keep the secondary pattern). Share status follows the count's: "suppressed",
    "suppressed_secondary", "zero", else "published". A suppressed denominator suppresses the share too
    (count / share would reveal it). Without ``denominator`` the caller guarantees the denominator is
    published and at least ``threshold``. Under round_to_5 the share is recomputed as rounded count /
    rounded denominator and marked "rounded", so ``denominator`` is required.
    """
    _require(df, [count, share, *([denominator] if denominator else [])])
    if rule.rounding is not None and denominator is None:
        raise ValueError("round_to_5 recomputes shares from rounded counts: pass denominator=")
    out = _ensure_protected(df, count, rule)
    status = pl.col(f"{count}_status")
    primary, secondary = status == SUPPRESSED, status == SUPPRESSED_SECONDARY
    value = pl.col(share).cast(pl.Float64)
    if denominator is not None:
        out = _ensure_protected(out, denominator, rule)
        den_status = pl.col(f"{denominator}_status")
        primary = primary | den_status.is_in([SUPPRESSED, ZERO])
        secondary = secondary | (den_status == SUPPRESSED_SECONDARY)
        if rule.rounding is not None:
            value = pl.col(count) / pl.col(denominator)
    share_status = (
        pl.when(primary)
        .then(pl.lit(SUPPRESSED))
        .when(secondary)
        .then(pl.lit(SUPPRESSED_SECONDARY))
        .when(status == ZERO)
        .then(pl.lit(ZERO))
        .otherwise(pl.lit(PUBLISHED if rule.rounding is None else ROUNDED))
    )
    return out.with_columns(
        pl.when(primary | secondary).then(None).otherwise(value).alias(share),
        share_status.alias(f"{share}_status"),
    )


def _tables_1d(df: pl.DataFrame, count: str, by: list[str], groups: list[str], threshold: int) -> pl.DataFrame:
    """Every 1-D table of `df` at once, set-wise (the rule of :func:`_suppress_1d`, without a loop per table).

    Each ``by`` table is its cells (sorted by ``groups``) followed by their total. Counts 1..threshold-1
    are primary; where a table has exactly one primary entry, its smallest published non-zero entry is
    suppressed with it (cells before the total on ties, then by position). A 1-D table has one
    constraint, so no suppressed entry can be worked out as long as no table has exactly one."""
    cells = df.sort([*by, *groups]).select(*by, *groups, pl.col(count).cast(pl.Int64))
    within = pl.int_range(pl.len()).over(by) if by else pl.int_range(pl.len())
    cells = cells.with_columns(within.alias("_position"), pl.lit(False).alias(IS_TOTAL))
    totals = (
        cells.group_by(by, maintain_order=True).agg(pl.col(count).sum(), pl.len().alias("_position"))
        if by
        else cells.select(pl.col(count).sum(), pl.len().alias("_position"))
    ).with_columns(pl.col("_position").cast(cells.schema["_position"]), pl.lit(True).alias(IS_TOTAL))
    table = pl.concat([cells, totals], how="diagonal")
    value = pl.col(count)
    primary = (value > 0) & (value < threshold)

    def per_table(expr: pl.Expr) -> pl.Expr:
        return expr.over(by) if by else expr

    lone = per_table(primary.sum()) == 1
    candidate = lone & ~primary & (value > 0)
    # by value, then position (a column first: inside a window `max()` would be the window's own)
    table = table.with_columns((value * (pl.col("_position").max() + 1) + pl.col("_position")).alias("_order"))
    order = pl.col("_order")
    chosen = candidate & (order == per_table(pl.when(candidate).then(order).min()))
    codes = pl.when(primary).then(_PRIMARY).when(chosen).then(_SECONDARY).otherwise(_OPEN).cast(pl.Int8)
    table = table.with_columns(codes.alias(_CODE)).drop("_order")
    hidden = (pl.col(_CODE) != _OPEN).sum().alias("hidden")
    per_table_hidden = table.group_by(by).agg(hidden) if by else table.select(hidden)
    if (per_table_hidden["hidden"] == 1).any():  # last line of defence, as _assert_safe for 2-D tables
        raise RuntimeError("disclosure check failed: a suppressed value is recoverable")  # pragma: no cover
    return table.sort([*by, IS_TOTAL, "_position"]).drop("_position")


def _table_1d(part: pl.DataFrame, count: str, groups: list[str], threshold: int) -> pl.DataFrame:
    """One 1-D table: its cells (sorted by key) and their total, with suppression codes."""
    cells = part.sort(groups).select(*groups, pl.col(count).cast(pl.Int64))
    extended = np.append(cells[count].to_numpy(), int(cells[count].sum()))
    codes = _suppress_1d(extended, threshold)
    _assert_safe(codes)
    return pl.concat(
        [_coded(cells, codes[:-1], total=False), _coded(pl.DataFrame({count: extended[-1:]}), codes[-1:])],
        how="diagonal",
    )


def _table_2d(part: pl.DataFrame, count: str, groups: list[str], category: str, threshold: int) -> pl.DataFrame:
    """One groups x categories table and its margins, with suppression codes."""
    rows = part.select(groups).unique().sort(groups)
    cols = part.select(category).unique().sort(category)
    r, c = rows.height, cols.height
    grid = (
        rows.with_row_index("_r")
        .join(cols.with_row_index("_c"), how="cross")
        .join(part.select(*groups, category, count), on=[*groups, category], how="left")
        .sort("_r", "_c")
        .select(*groups, category, pl.col(count).fill_null(0).cast(pl.Int64))
    )
    extended = np.zeros((r + 1, c + 1), dtype=np.int64)
    extended[:r, :c] = grid[count].to_numpy().reshape(r, c)
    extended[:r, c] = extended[:r, :c].sum(axis=1)
    extended[r, :] = extended[:r, :].sum(axis=0)
    codes = _suppress_2d(extended, threshold)
    _assert_safe(codes)
    pieces = [
        _coded(grid, codes[:r, :c].ravel(), total=False),
        _coded(rows.with_columns(pl.Series(count, extended[:r, c])), codes[:r, c]),
        _coded(cols.with_columns(pl.Series(count, extended[r, :c])), codes[r, :c]),
        _coded(pl.DataFrame({count: extended[r:, c]}), codes[r:, c]),
    ]
    return pl.concat(pieces, how="diagonal")


def _coded(frame: pl.DataFrame, codes: np.ndarray, *, total: bool = True) -> pl.DataFrame:
    """Attach suppression codes and the total flag to a piece of a table."""
    return frame.with_columns(pl.Series(_CODE, codes, dtype=pl.Int8), pl.lit(total).alias(IS_TOTAL))


def _mark(frame: pl.DataFrame, count: str, rule: DisclosureRule) -> pl.DataFrame:
    """Turn codes into published values and ``f"{count}_status"``; add the rule column."""
    code, value = pl.col(_CODE), pl.col(count).cast(pl.Int64)
    if rule.rounding is not None:
        base = rule.rounding
        value = (value + base // 2) // base * base  # integers: remainder 1-2 down, 3-4 up (base 5)
    status = (
        pl.when(code == _PRIMARY)
        .then(pl.lit(SUPPRESSED))
        .when(code == _SECONDARY)
        .then(pl.lit(SUPPRESSED_SECONDARY))
        .when(pl.col(count) == 0)
        .then(pl.lit(ZERO))
        .otherwise(pl.lit(PUBLISHED if rule.rounding is None else ROUNDED))
    )
    return frame.with_columns(
        pl.when(code == _OPEN).then(value).otherwise(None).alias(count),
        status.alias(f"{count}_status"),
        pl.lit(rule.label).alias(RULE_COLUMN),
    ).drop(_CODE)


def _ensure_protected(df: pl.DataFrame, column: str, rule: DisclosureRule) -> pl.DataFrame:
    """Primary-protect count ``column`` unless it already has a status column (from this rule)."""
    if RULE_COLUMN in df.columns and (df[RULE_COLUMN] != rule.label).any():
        raise ValueError(f"frame was protected under another rule than {rule.label!r}")
    if f"{column}_status" in df.columns:
        return df.with_columns(pl.lit(rule.label).alias(RULE_COLUMN))
    _check_count(df, column)
    code = pl.when((pl.col(column) > 0) & (pl.col(column) < rule.limit)).then(_PRIMARY).otherwise(_OPEN)
    return _mark(df.with_columns(code.cast(pl.Int8).alias(_CODE)), column, rule)


def _partitions(df: pl.DataFrame, by: list[str]) -> list[tuple[tuple[Any, ...], pl.DataFrame]]:
    """Independent tables, one per distinct ``by`` value, in sorted order."""
    if not by:
        return [((), df)] if df.height else []
    return sorted(df.partition_by(by, as_dict=True).items(), key=lambda item: item[0])


def _check_cells(df: pl.DataFrame, count: str, keys: list[str]) -> None:
    """Validate a cell frame for :func:`protect_counts`."""
    _require(df, [*keys, count])
    if len(set(keys)) != len(keys) or count in keys:
        raise ValueError("by, groups, categories and count must be distinct columns")
    extra = set(df.columns) - {*keys, count}
    if extra:
        raise ValueError(f"unprotected extra columns {sorted(extra)}: select them out, join after protecting")
    reserved = {f"{count}_status", IS_TOTAL, RULE_COLUMN} & set(keys)
    if reserved:
        raise ValueError(f"reserved column name(s) {sorted(reserved)}")
    if df.select(pl.any_horizontal(pl.col(keys).is_null()).any()).item():
        raise ValueError(f"null key in {keys}: label missing values explicitly before aggregating")
    if df.select(keys).is_duplicated().any():
        raise ValueError(f"more than one row per cell {keys}")
    _check_count(df, count)


def _check_count(df: pl.DataFrame, column: str) -> None:
    """A count column must be integer, non-null and non-negative."""
    if not df.schema[column].is_integer():
        raise TypeError(f"count column {column!r} must be an integer type, got {df.schema[column]}")
    if df[column].null_count() or (df[column] < 0).any():
        raise ValueError(f"count column {column!r} must be non-null and non-negative")


def _require(df: pl.DataFrame, columns: Sequence[str]) -> None:
    """Raise if any of ``columns`` is missing."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"missing column(s) {missing}")
