"""Normalise a delivered table into the canonical frame of its kind.

The canonical frame holds every contract column as *normalised text*: trimmed, empty as null,
enums in lower_snake_case, booleans as true/false, dates as ISO 8601 (from ISO, dd/mm/yyyy or
mm/dd/yyyy in the order decided for the file by `transforms.dates`, or Excel serial numbers),
numbers without thousands separators. Values that cannot be normalised are
kept as delivered, so validation can say exactly what was wrong. `typed` casts a validated
frame to the contract's types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import polars as pl

from din.contract import ColumnType, Kind
from transforms.dates import DateOrder
from transforms.headers import HeaderMatch
from transforms.readers import ROW, ROW_REASON, ROW_RULE

EXCEL_EPOCH = pl.date(1899, 12, 30)  # Excel's day zero (it counts 1900 as a leap year)
EXCEL_SERIAL = r"^[0-9]{5}(\.[0-9]+)?$"  # 10000..99999: 1927..2173, wide enough for panels
TRUE_WORDS = ("yes", "y", "true", "t", "1")
FALSE_WORDS = ("no", "n", "false", "f", "0")
POLARS_TYPES: dict[ColumnType, pl.DataType] = {
    ColumnType.STRING: pl.String(),
    ColumnType.TEXT: pl.String(),
    ColumnType.ENUM: pl.String(),
    ColumnType.INTEGER: pl.Int64(),
    ColumnType.DECIMAL: pl.Float64(),
    ColumnType.DATE: pl.Date(),
    ColumnType.DATETIME: pl.Datetime("us"),
    ColumnType.BOOLEAN: pl.Boolean(),
}


def canonical_frame(
    frame: pl.DataFrame, kind: Kind, match: HeaderMatch, date_order: DateOrder | None = None
) -> pl.DataFrame:
    """Rename delivered headers to canonical names, add absent optional columns, normalise values.

    Slashed dates are read in `date_order` (decided for the whole file by `transforms.dates`;
    None when no value needs it, and then either order reads them the same)."""
    return normalised_frame(renamed_frame(frame, kind, match), kind, date_order)


def renamed_frame(frame: pl.DataFrame, kind: Kind, match: HeaderMatch) -> pl.DataFrame:
    """The delivered columns under their canonical names, absent optional columns as nulls, values as
    delivered; with the reader's marks (a record's rule as read). Files renamed alike can be stacked and
    normalised together (`normalised_frame`) when their dates are read in the same order."""
    marks = [pl.col(c) for c in (ROW, ROW_RULE, ROW_REASON) if c in frame.columns]
    renamed = frame.select([pl.col(header).alias(canonical) for header, canonical in match.mapping.items()] + marks)
    absent = [c for c in kind.column_names if c not in renamed.columns]
    return renamed.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)


def normalised_frame(renamed: pl.DataFrame, kind: Kind, date_order: DateOrder | None = None) -> pl.DataFrame:
    """`renamed` (see `renamed_frame`) with its values normalised; every column that is not the kind's (the
    reader's marks, a caller's own) is carried through as it is. Each value is normalised on its own, so
    normalising several files' rows at once gives each row what normalising its file alone gives."""
    own = set(kind.column_names)
    carried = [pl.col(c) for c in renamed.columns if c not in own]
    dated = {c.name for c in kind.columns if c.type in ISO_PATTERNS}
    canonical = renamed.select(
        [normalise_expr(pl.col(c.name), c.type, date_order, c.name in dated).alias(c.name) for c in kind.columns]
        + carried
    )
    return _with_dates_converted(canonical, renamed, kind, date_order)


def _with_dates_converted(
    canonical: pl.DataFrame, delivered: pl.DataFrame, kind: Kind, date_order: DateOrder | None
) -> pl.DataFrame:
    """`canonical` (its dates as delivered, trimmed) with the dates that are not ISO yet converted by
    `normalise_expr`: only those values go through its conversions, and the rest pass by one pattern test
    (machine exports are ISO, so that is most of a file). Each value's conversion is its own, so converting
    a few values gives exactly what converting the whole column gives."""
    converted = []
    for column in kind.columns:
        if column.type not in ISO_PATTERNS:
            continue
        values = canonical[column.name]
        pending = values.str.contains(ISO_PATTERNS[column.type]).not_().fill_null(False)
        if not pending.any():
            continue
        rows = pending.arg_true()
        as_delivered = delivered[column.name].gather(rows)
        new = pl.select(normalise_expr(pl.lit(as_delivered), column.type, date_order)).to_series()
        converted.append(values.clone().scatter(rows, new))
    return canonical.with_columns(converted) if converted else canonical


#: Text that a spreadsheet runs as a formula starts with one of these (the full rule, with its exception
#: for plain numbers, is `reports.spreadsheet`): trimming must never move one to the front of a value.
_SPACE_BEFORE_FORMULA = r"^\s+[=+\-@]"


def normalise_expr(
    value: pl.Expr, column_type: ColumnType, date_order: DateOrder | None = None, iso_only: bool = False
) -> pl.Expr:
    """The normalised text of one column's values (slashed dates in `date_order`, day first when None).
    `iso_only`: the dates are only trimmed, not converted (`canonical_frame` converts the few that need it)."""
    raw = value.cast(pl.String)
    trimmed = raw.str.strip_chars()
    if column_type in (ColumnType.STRING, ColumnType.TEXT):
        # ` =1+1` is text to a spreadsheet, `=1+1` a formula: keep such leading space as delivered.
        kept = raw.str.strip_chars_end()
        trimmed = pl.when(raw.str.contains(_SPACE_BEFORE_FORMULA)).then(kept).otherwise(trimmed)
    text = pl.when(trimmed == "").then(None).otherwise(trimmed)
    if column_type is ColumnType.ENUM:
        return text.str.to_lowercase().str.replace_all(r"[\s\-/]+", "_")
    if column_type is ColumnType.BOOLEAN:
        lower = text.str.to_lowercase()
        return (
            pl.when(lower.is_in(TRUE_WORDS))
            .then(pl.lit("true"))
            .when(lower.is_in(FALSE_WORDS))
            .then(pl.lit("false"))
            .otherwise(text)
        )
    if column_type is ColumnType.INTEGER:
        return _strip_thousands(text).str.replace(r"^([+-]?[0-9]+)\.0+$", "$1")
    if column_type is ColumnType.DECIMAL:
        plain = _strip_thousands(text)
        percent = plain.str.strip_suffix("%").cast(pl.Float64, strict=False) / 100
        return pl.when(plain.str.ends_with("%") & percent.is_not_null()).then(percent.cast(pl.String)).otherwise(plain)
    if iso_only and column_type in ISO_PATTERNS:
        return text
    day_first = date_order is not DateOrder.MONTH_FIRST
    if column_type is ColumnType.DATE:
        return _fast_path(text, ISO_DATE, lambda t: _date_text(t, day_first))
    if column_type is ColumnType.DATETIME:
        return _fast_path(text, ISO_DATETIME, lambda t: _datetime_text(t, day_first))
    return text


ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
ISO_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}$"
ISO_PATTERNS = {ColumnType.DATE: ISO_DATE, ColumnType.DATETIME: ISO_DATETIME}


def _fast_path(text: pl.Expr, canonical: str, convert: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """Values already in canonical form pass straight through; only the others (usually none, and
    nulls cost nothing) go through the slower pattern extraction."""
    already = text.str.contains(canonical)
    others = pl.when(already).then(None).otherwise(text)
    return pl.when(already).then(text).otherwise(pl.coalesce(convert(others), others))


def _strip_thousands(text: pl.Expr) -> pl.Expr:
    """`1,200` → `1200` (only when the commas sit between groups of three digits)."""
    return (
        pl.when(text.str.contains(r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"))
        .then(text.str.replace_all(",", ""))
        .otherwise(text)
    )


#: day-month or month-day, `/`, `.` or `-`, four- or two-digit year; a time may follow.
SLASHED_DATE = r"^([0-9]{1,2})[/.\-]([0-9]{1,2})[/.\-]([0-9]{4}|[0-9]{2})"
CLOCK = r"(?:[ T,]+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2})(?:\.[0-9]+)?)?\s*([AaPp]\.?[Mm]\.?)?)?"


def _date_text(text: pl.Expr, day_first: bool) -> pl.Expr:
    """ISO `YYYY-MM-DD` for ISO dates (with or without a time), slashed dates and Excel serials."""
    iso = text.str.extract_groups(r"^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})(?:[T ][0-9:.]+Z?)?$")
    slashed = text.str.extract_groups(SLASHED_DATE + CLOCK + "$")
    day, month = ("1", "2") if day_first else ("2", "1")
    serial = pl.when(text.str.contains(EXCEL_SERIAL)).then(
        (EXCEL_EPOCH + pl.duration(days=text.cast(pl.Float64, strict=False).floor().cast(pl.Int64))).dt.strftime(
            "%Y-%m-%d"
        )
    )
    return pl.coalesce(
        _ymd(iso.struct.field("1"), iso.struct.field("2"), iso.struct.field("3")),
        _ymd(_year(slashed.struct.field("3")), slashed.struct.field(month), slashed.struct.field(day)),
        serial,
    )


def _datetime_text(text: pl.Expr, day_first: bool) -> pl.Expr:
    """ISO `YYYY-MM-DDTHH:MM:SS` from ISO, slashed `dd/mm/yyyy hh:mm[:ss] [AM|PM]`, a bare date or an Excel serial."""
    iso = text.str.extract_groups(
        r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\.[0-9]+)?)?Z?$"
    )
    slashed = text.str.extract_groups(SLASHED_DATE + CLOCK + "$")
    serial = pl.when(text.str.contains(EXCEL_SERIAL)).then(
        (
            EXCEL_EPOCH.cast(pl.Datetime("us"))
            + pl.duration(seconds=(text.cast(pl.Float64, strict=False) * 86400).round(0).cast(pl.Int64))
        ).dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    day, month = ("1", "2") if day_first else ("2", "1")
    field = slashed.struct.field
    return pl.coalesce(
        _ymd_hms(iso.struct.field("1"), iso.struct.field("2"), iso.struct.field("3"), iso, ("4", "5", "6"), None),
        _ymd_hms(_year(field("3")), field(month), field(day), slashed, ("4", "5", "6"), field("7")),
        serial,
    )


def _year(year: pl.Expr) -> pl.Expr:
    """A two-digit year is this century's (`25` → `2025`), as Excel writes it after a re-save."""
    return pl.when(year.str.len_chars() == 2).then(pl.lit("20") + year).otherwise(year)


def _ymd(year: pl.Expr, month: pl.Expr, day: pl.Expr) -> pl.Expr:
    return pl.concat_str([year, month.str.zfill(2), day.str.zfill(2)], separator="-")


def _ymd_hms(
    year: pl.Expr, month: pl.Expr, day: pl.Expr, groups: pl.Expr, clock: tuple[str, str, str], meridiem: pl.Expr | None
) -> pl.Expr:
    field = groups.struct.field
    hour = field(clock[0]).fill_null("0").cast(pl.Int32, strict=False)
    if meridiem is not None:
        pm = meridiem.str.to_lowercase().str.starts_with("p")
        hour = pl.when(meridiem.is_null()).then(hour).otherwise(hour % 12 + pl.when(pm).then(12).otherwise(0))
    text = pl.concat_str(
        [
            hour.cast(pl.String).str.zfill(2),
            field(clock[1]).fill_null("00"),
            field(clock[2]).fill_null("00"),
        ],
        separator=":",
    )
    return pl.concat_str([_ymd(year, month, day), text], separator="T")


Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def typed(frame: Frame, kind: Kind) -> Frame:
    """Cast a validated canonical frame to the contract's types (validation guarantees the casts)."""
    casts = []
    for column in kind.stored_columns:
        expr = pl.col(column.name)
        if column.type is ColumnType.DATE:
            expr = expr.str.to_date("%Y-%m-%d", strict=False)
        elif column.type is ColumnType.DATETIME:
            expr = expr.str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
        elif column.type is ColumnType.BOOLEAN:
            expr = expr == "true"
        else:
            expr = expr.cast(POLARS_TYPES[column.type], strict=False)
        casts.append(expr.alias(column.name))
    return frame.with_columns(casts)
