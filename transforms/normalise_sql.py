"""The canonical normalisation of `transforms.normalise`, as DuckDB SQL expressions.

The fast path (`transforms.fast_read`) reads canonical files with DuckDB and normalises them here,
without a row passing through Python; every expression gives exactly the text `normalise_expr` gives
for the same value (`tests/transforms/test_normalise_sql.py` compares the two on every column type,
with generated values). The differences between the engines are handled where they are:

- polars trims *Unicode* whitespace (`char::is_whitespace`) and its regex `\\s` is Unicode-aware,
  while DuckDB's `trim` removes spaces only and RE2's `\\s` is ASCII: the whitespace set is spelled out;
- DuckDB's `regexp_extract` gives `''` for a group that took no part in the match, polars null;
- polars rounds half to even (`round_even` here);
- polars and DuckDB print some floating-point numbers differently (`0.00001` / `1e-05`): the few
  values where that can happen (a percentage whose proportion prints with an exponent, `NaN`,
  `inf`) are flagged by `unsure_sql`, and a file holding one is read by the polars path instead.
"""

from __future__ import annotations

from din.contract import ColumnType
from din.sql import literal
from transforms.normalise import CLOCK as _CLOCK
from transforms.normalise import (
    EXCEL_SERIAL,
    FALSE_WORDS,
    ISO_DATE,
    ISO_DATETIME,
    SLASHED_DATE,
    TRUE_WORDS,
)

#: Unicode White_Space, what polars' `strip_chars()` removes and Rust's `\s` matches.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
_WS = literal(WHITESPACE)
#: The same set as an RE2 character class body (RE2's own `\s` is ASCII only).
WS_CLASS = "\\t\\n\\x0b\\x0c\\r \\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"


_FORMULA_AFTER_SPACE = literal("^[" + WS_CLASS + "]+[=+\\-@]")  # `_SPACE_BEFORE_FORMULA` of transforms.normalise
_ENUM_SEPARATORS = literal("[" + WS_CLASS + "\\-/]+")
_NOT_A_POLARS_NUMBER = literal("[_" + WS_CLASS + "]")


def re2(pattern: str) -> str:
    """A polars (Rust) regex as RE2 with the same meaning: `\\s` is Unicode whitespace in both."""
    return pattern.replace("\\s", f"[{WS_CLASS}]")


def _matches(text: str, pattern: str) -> str:
    return f"regexp_matches({text}, {literal(re2(pattern))})"


def _group(text: str, pattern: str, group: int) -> str:
    """Capture group `group` of `pattern` in `text`; NULL when the group took no part (polars' null)."""
    return f"nullif(regexp_extract({text}, {literal(re2(pattern))}, {group}), '')"


def trim_sql(value: str) -> str:
    return f"trim({value}, {_WS})"


def normalise_sql(value: str, column_type: ColumnType, day_first: str | None = None) -> str:
    """The normalised text of `value` (a SQL expression) as `normalise_expr` gives it.

    `day_first` is a SQL boolean (per file: the order decided for that file); None reads slashed dates
    day first, as `normalise_expr` does without an order."""
    raw = f"CAST({value} AS VARCHAR)"
    trimmed = trim_sql(raw)
    if column_type in (ColumnType.STRING, ColumnType.TEXT):
        # ` =1+1` is text to a spreadsheet, `=1+1` a formula: such leading space stays (as in normalise_expr)
        formula = f"regexp_matches({raw}, {_FORMULA_AFTER_SPACE})"
        trimmed = f"(CASE WHEN {formula} THEN rtrim({raw}, {_WS}) ELSE {trimmed} END)"
    text = f"nullif({trimmed}, '')"
    if column_type is ColumnType.ENUM:
        return f"regexp_replace({_lower(text)}, {_ENUM_SEPARATORS}, '_', 'g')"
    if column_type is ColumnType.BOOLEAN:
        lower = f"lower({text})"
        return (
            f"(CASE WHEN {lower} IN ({', '.join(map(literal, TRUE_WORDS))}) THEN 'true' "
            f"WHEN {lower} IN ({', '.join(map(literal, FALSE_WORDS))}) THEN 'false' ELSE {text} END)"
        )
    if column_type is ColumnType.INTEGER:
        return f"regexp_replace({_strip_thousands(text)}, '^([+-]?[0-9]+)\\.0+$', '\\1')"
    if column_type is ColumnType.DECIMAL:
        plain = _strip_thousands(text)
        return f"(CASE WHEN {_percent(plain)} IS NOT NULL THEN {_float_text(_percent(plain))} ELSE {plain} END)"
    order = "true" if day_first is None else day_first
    if column_type is ColumnType.DATE:
        return _fast_path(text, ISO_DATE, _date_text(text, order))
    if column_type is ColumnType.DATETIME:
        return _fast_path(text, ISO_DATETIME, _datetime_text(text, order))
    return text


def _lower(text: str) -> str:
    """Lower case as Rust's `to_lowercase` (full case mapping): `İ` becomes two characters there."""
    return f"lower(replace({text}, '\u0130', 'i\u0307'))"


def unsure_sql(value: str, column_type: ColumnType) -> str | None:
    """TRUE for a value whose normalised text this SQL cannot promise to print as polars does (a file
    holding one goes the polars way); None for column types where every value is sure."""
    if column_type is ColumnType.ENUM:
        return f"coalesce(contains(CAST({value} AS VARCHAR), '\u03a3'), false)"  # a final sigma lowers to ς in Rust
    if column_type is not ColumnType.DECIMAL:
        return None
    percent = _percent(_strip_thousands(f"nullif({trim_sql(f'CAST({value} AS VARCHAR)')}, '')"))
    return f"coalesce(regexp_matches(CAST({percent} AS VARCHAR), '[eEna]'), false)"


def _fast_path(text: str, canonical: str, converted: str) -> str:
    """Canonical values pass as they are; the others are converted, or kept as delivered."""
    return f"(CASE WHEN {_matches(text, canonical)} THEN {text} ELSE coalesce({converted}, {text}) END)"


def _strip_thousands(text: str) -> str:
    """`1,200` → `1200` (only when the commas sit between groups of three digits)."""
    pattern = literal("^[+-]?[0-9]{1,3}(,[0-9]{3})+(\\.[0-9]+)?$")
    return f"(CASE WHEN regexp_matches({text}, {pattern}) THEN replace({text}, ',', '') ELSE {text} END)"


def _percent(plain: str) -> str:
    """`16%` as the proportion 0.16 (a DOUBLE), NULL when `plain` is not a percentage polars can parse
    (DuckDB would also read `5 %` and `1_000`, polars not)."""
    number = f"left({plain}, -1)"
    parseable = f"NOT regexp_matches({number}, {_NOT_A_POLARS_NUMBER})"
    return f"(CASE WHEN ends_with({plain}, '%') AND {parseable} THEN TRY_CAST({number} AS DOUBLE) / 100 END)"


def _float_text(number: str) -> str:
    return f"CAST({number} AS VARCHAR)"


def _year(year: str) -> str:
    """A two-digit year is this century's (`25` → `2025`)."""
    return f"(CASE WHEN length({year}) = 2 THEN '20' || {year} ELSE {year} END)"


def _ymd(year: str, month: str, day: str) -> str:
    """`YYYY-MM-DD` (NULL when a part is): polars' concat_str of zero-filled parts."""

    def padded(part: str) -> str:
        return f"lpad({part}, greatest(2, length({part}))::INTEGER, '0')"

    return f"({year} || '-' || {padded(month)} || '-' || {padded(day)})"


_ISO_DATE_LOOSE = r"^([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})(?:[T ][0-9:.]+Z?)?$"
_SLASHED = SLASHED_DATE + _CLOCK + "$"
_ISO_DATETIME_LOOSE = (
    r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[T ]([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\.[0-9]+)?)?Z?$"
)
_EXCEL_EPOCH = "DATE '1899-12-30'"


def _date_text(text: str, day_first: str) -> str:
    """ISO `YYYY-MM-DD` for ISO dates (with or without a time), slashed dates and Excel serials."""
    iso = _ymd(*(_group(text, _ISO_DATE_LOOSE, g) for g in (1, 2, 3)))
    day, month = _day_month(text, day_first)
    slashed = _ymd(_year(_group(text, _SLASHED, 3)), month, day)
    serial = (
        f"(CASE WHEN {_matches(text, EXCEL_SERIAL)} THEN strftime({_EXCEL_EPOCH} + "
        f"CAST(floor(CAST({text} AS DOUBLE)) AS BIGINT)::INTEGER, '%Y-%m-%d') END)"
    )
    return f"coalesce({iso}, {slashed}, {serial})"


def _day_month(text: str, day_first: str) -> tuple[str, str]:
    first, second = _group(text, _SLASHED, 1), _group(text, _SLASHED, 2)
    return (
        f"(CASE WHEN {day_first} THEN {first} ELSE {second} END)",
        f"(CASE WHEN {day_first} THEN {second} ELSE {first} END)",
    )


def _datetime_text(text: str, day_first: str) -> str:
    """ISO `YYYY-MM-DDTHH:MM:SS` from ISO, slashed `dd/mm/yyyy hh:mm[:ss] [AM|PM]`, a date or an Excel serial."""
    iso = [_group(text, _ISO_DATETIME_LOOSE, g) for g in range(1, 7)]
    iso_text = _ymd_hms(_ymd(iso[0], iso[1], iso[2]), iso[3], iso[4], iso[5], None)
    day, month = _day_month(text, day_first)
    clock = [_group(text, _SLASHED, g) for g in (4, 5, 6, 7)]
    slashed = _ymd_hms(_ymd(_year(_group(text, _SLASHED, 3)), month, day), *clock)
    seconds = f"CAST(round_even(CAST({text} AS DOUBLE) * 86400, 0) AS BIGINT)"
    serial = (
        f"(CASE WHEN {_matches(text, EXCEL_SERIAL)} THEN strftime(CAST({_EXCEL_EPOCH} AS TIMESTAMP) + "
        f"to_seconds({seconds}), '%Y-%m-%dT%H:%M:%S') END)"
    )
    return f"coalesce({iso_text}, {slashed}, {serial})"


def _ymd_hms(date: str, hour: str, minute: str, second: str, meridiem: str | None) -> str:
    hours = f"TRY_CAST(coalesce({hour}, '0') AS INTEGER)"
    if meridiem is not None:
        pm = f"starts_with(lower({meridiem}), 'p')"
        hours = f"(CASE WHEN {meridiem} IS NULL THEN {hours} ELSE {hours} % 12 + CASE WHEN {pm} THEN 12 ELSE 0 END END)"
    hh = f"CAST({hours} AS VARCHAR)"
    clock = (
        f"lpad({hh}, greatest(2, length({hh}))::INTEGER, '0')"
        f" || ':' || coalesce({minute}, '00') || ':' || coalesce({second}, '00')"
    )
    return f"({date} || 'T' || {clock})"
