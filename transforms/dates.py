"""Day-first or month-first: how a file's slashed dates are read, decided once per file, never guessed.

`6/12/2025` is 6 December in the UK and 12 June in the US. A file's dates are read in the order its
source declares (`format.date_order` in din.yaml), else in the order the file itself proves (a value
whose first part is above 12 can only be day-first, one whose second part is above 12 only
month-first). When neither decides and a value could be read both ways, the file is refused with a
message that names the columns, shows the values and names the option to set. ISO dates
(`2025-06-12`), year-first dates (`2025/06/12`) and Excel date numbers need no order.

The same rule serves canonical files (`transforms.normalise`) and survey-tool exports
(`transforms.adapters`).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl

from din.contract import DATE_ORDER_AMBIGUOUS, DATE_ORDER_CONFLICT

#: A day-month or month-day date at the start of a value (a time may follow): `6/12/2025`, `06.12.25 9:41`.
SLASHED = r"^\s*([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4}|[0-9]{2})(?:$|[ T,])"
EXAMPLES = 3  # values quoted in a message, per kind of evidence
OPTION_HINT = (
    "set `date_order: day_first` or `date_order: month_first` under this source's `format:` in din.yaml "
    "(`din check --date-order`)"
)
MONTHS = tuple(calendar.month_name)[1:]


class DateOrder(StrEnum):
    """The order of day and month in a slashed date."""

    DAY_FIRST = "day_first"  # 06/12/2025 is 6 December 2025 (UK, most of Europe)
    MONTH_FIRST = "month_first"  # 06/12/2025 is 12 June 2025 (US)

    @property
    def words(self) -> str:
        return "day-first (dd/mm)" if self is DateOrder.DAY_FIRST else "month-first (mm/dd)"


DATE_ORDERS = tuple(order.value for order in DateOrder)


@dataclass
class DateEvidence:
    """What a file's date values say about their order, with a few examples of each (column, value)."""

    day_first: list[tuple[str, str]] = field(default_factory=list)  # first part above 12
    month_first: list[tuple[str, str]] = field(default_factory=list)  # second part above 12
    ambiguous: list[tuple[str, str]] = field(default_factory=list)  # both parts 1..12 and different
    counts: dict[str, int] = field(default_factory=lambda: {"day_first": 0, "month_first": 0, "ambiguous": 0})

    def add(self, other: DateEvidence) -> None:
        for name in ("day_first", "month_first", "ambiguous"):
            mine: list[tuple[str, str]] = getattr(self, name)
            mine.extend(getattr(other, name)[: max(0, EXAMPLES - len(mine))])
            self.counts[name] += other.counts[name]


@dataclass(frozen=True)
class DateOrderProblem:
    """Why a file's dates cannot be read without guessing: the rule broken and the words for it."""

    rule: str
    message: str


def evidence(column: str, values: pl.Series | Iterable[object]) -> DateEvidence:
    """What the text values of one column say about the order of day and month (other values are ignored)."""
    series = values if isinstance(values, pl.Series) else pl.Series([v for v in values if isinstance(v, str)])
    found = DateEvidence()
    if series.len() == 0:
        return found
    text = series.cast(pl.String).drop_nulls()
    text = text.filter(text.str.contains(SLASHED))  # most values are ISO (or empty): skip them early
    if text.len() == 0:  # nothing slashed: nothing to say (1 ms a file of the frames below, for no evidence)
        return found
    parts = text.str.extract_groups(SLASHED)
    frame = pl.DataFrame(
        {
            "value": text,
            "first": parts.struct.field("1").cast(pl.Int32, strict=False),
            "second": parts.struct.field("2").cast(pl.Int32, strict=False),
        }
    ).filter(pl.col("first").is_not_null() & pl.col("second").is_not_null())
    kinds = {
        "day_first": (pl.col("first") > 12) & (pl.col("second") <= 12),
        "month_first": (pl.col("second") > 12) & (pl.col("first") <= 12),
        "ambiguous": (pl.col("first") <= 12) & (pl.col("second") <= 12) & (pl.col("first") != pl.col("second")),
    }
    for name, condition in kinds.items():
        matching = frame.filter(condition)["value"]
        found.counts[name] = matching.len()
        getattr(found, name).extend((column, v.strip()) for v in matching.unique(maintain_order=True).head(EXAMPLES))
    return found


def evidence_of(columns: Mapping[str, pl.Series | Iterable[object]]) -> DateEvidence:
    """The evidence of several columns of one file (a file's dates share one locale)."""
    found = DateEvidence()
    for name, values in columns.items():
        found.add(evidence(name, values))
    return found


def resolve_date_order(found: DateEvidence, declared: DateOrder | None) -> DateOrder | DateOrderProblem | None:
    """The order to read the file's dates in, the problem that stops it, or None when no value needs one.

    A declaration is used unless every telling value contradicts it; without one, the file's own
    evidence decides; a file whose values could be read both ways and nothing decides is refused."""
    supports = {DateOrder.DAY_FIRST: found.day_first, DateOrder.MONTH_FIRST: found.month_first}
    if declared is not None:
        other = DateOrder.MONTH_FIRST if declared is DateOrder.DAY_FIRST else DateOrder.DAY_FIRST
        if supports[other] and not supports[declared]:
            return DateOrderProblem(
                DATE_ORDER_CONFLICT,
                f"the source declares `date_order: {declared.value}`, but the dates are {other.words}: "
                f"{_shown(supports[other])} cannot be {declared.words}; correct `date_order` for this source",
            )
        return declared
    if found.day_first and found.month_first:
        return DateOrderProblem(
            DATE_ORDER_CONFLICT,
            f"the dates mix day-first values ({_shown(found.day_first)}) and month-first values "
            f"({_shown(found.month_first)}); correct the file, or {OPTION_HINT} to read it one way",
        )
    if found.day_first:
        return DateOrder.DAY_FIRST
    if found.month_first:
        return DateOrder.MONTH_FIRST
    if found.ambiguous:
        (_, first), *others = found.ambiguous
        also = f" (also {', '.join(repr(v) for _, v in others)})" if others else ""
        return DateOrderProblem(
            DATE_ORDER_AMBIGUOUS,
            f"the dates in {_columns(found.ambiguous)} can be read day-first or month-first: "
            f"{_both_ways(first)}{also}, and no value has a day above 12 to tell: {OPTION_HINT}",
        )
    return None


def date_order_option(value: str | None) -> DateOrder | None:
    """The `date_order` format option as a DateOrder (the config has checked the value)."""
    return DateOrder(value) if value else None


def _shown(examples: list[tuple[str, str]]) -> str:
    return ", ".join(f"'{value}' in `{column}`" for column, value in examples[:EXAMPLES])


def _columns(examples: list[tuple[str, str]]) -> str:
    names = list(dict.fromkeys(column for column, _ in examples))
    return ", ".join(f"`{name}`" for name in names)


def _both_ways(value: str) -> str:
    """'6/12/2025' -> '6 December 2025 or 12 June 2025'."""
    match = re.match(SLASHED, value + " ")
    if match is None:
        return value
    first, second, year = int(match[1]), int(match[2]), match[3]
    return f"'{value}' is {first} {MONTHS[second - 1]} {year} or {second} {MONTHS[first - 1]} {year}"
