"""Scrub free text of direct identifiers before it reaches the warehouse.

Emails, UK phone numbers, full UK postcodes, CHI/NHS numbers and the roster's own names are replaced
with typed placeholders (`PLACEHOLDERS`). `Scrubber.scrub` handles one string; `Scrubber.scrub_frame`
handles whole polars columns: one Rust regex (polars) picks the values that could hold an identifier,
and only their distinct values go through Python.

The prefilter is a *superset* of what the Python detectors can find: every detector needs a match of
one of the prefilter patterns in the same text, so values the prefilter skips would come back
unchanged. To keep the two regex engines in agreement, the shared patterns use explicit ASCII classes
rather than engine-dependent shorthands such as `\\w` or `\\s`. Names are matched on folded text
(`_fold`: one character to one character, so spans carry over); the prefilter looks for a roster last
name case-insensitively, and in values with non-ASCII characters again after the same folding done
with `str.replace_many`.

Design choices:
- phones: `phonenumbers.PhoneNumberMatcher` with `Leniency.POSSIBLE`. `VALID` and stricter leniencies
  reject the Ofcom drama mobiles (07700 900xxx) because they are unassigned, and POSSIBLE on its own
  also matches years and counts, so each match must also: start with 0, + or (0, contain at least ten
  digits, and be a full-length possible number (not "local only"). Short helplines (0800 1111) stay.
- postcodes: only full postcodes (outward + inward) whose area is a real UK postcode area and whose
  inward letters avoid C I K M O V; "A1", "M8", "DD2", "9am" and lower-case ordinals ("M8 3rd") stay.
- health ids: ten digits (plain, 3-3-4 or 6-4) whose first six are a ddmmyy date (a CHI number,
  typos included) or that pass the NHS mod-11 check; not when written after an international prefix.
- names: full roster name and first + last name, case- and accent-insensitive, on word boundaries;
  single-word names and first names alone are never scrubbed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from itertools import pairwise
from typing import Any

import polars as pl

from din.sql import literal

PLACEHOLDERS = {
    "email": "[email]",
    "phone": "[phone]",
    "postcode": "[postcode]",
    "health_id": "[health-id]",
    "name": "[name]",
}
#: What each placeholder replaces, in words (the privacy statement is generated from this).
SCRUB_RULES: dict[str, str] = {
    "email": "email addresses, including spelled-out forms such as `name (at) example (dot) org`",
    "phone": "phone numbers of ten or more digits starting with 0, + or (0; short helplines such as 0800 1111 stay",
    "postcode": "full UK postcodes (outward and inward code, real postcode area); partial ones such as DD2 stay",
    "health_id": "CHI and NHS numbers: ten digits whose first six are a ddmmyy date or that pass the NHS check digit",
    "name": "the roster's own names (full name, and first + last name), case- and accent-insensitive; "
    "single names and first names alone stay",
}


@dataclass(frozen=True)
class ScrubCounts:
    """How many identifiers of each type were replaced."""

    email: int = 0
    phone: int = 0
    postcode: int = 0
    health_id: int = 0
    name: int = 0

    @property
    def total(self) -> int:
        return sum(self.as_dict().values())

    def __add__(self, other: ScrubCounts) -> ScrubCounts:
        if not isinstance(other, ScrubCounts):
            return NotImplemented
        return ScrubCounts(**{k: v + getattr(other, k) for k, v in self.as_dict().items()})

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def _scaled(counts: ScrubCounts, factor: int) -> ScrubCounts:
    return ScrubCounts(**{k: v * factor for k, v in counts.as_dict().items()})


# --- shared building blocks (valid in both Python `re` and polars' Rust regex) -------------------------

_WS = "[ \t\u00a0]"
_OPEN, _CLOSE = r"[(\[{<]", r"[)\]}>]"
_LOCAL = r"[A-Za-z0-9_%+\-](?:[A-Za-z0-9._%+'’\-]*[A-Za-z0-9_%+\-])?"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
#: separators allowed between the digit groups of a written number
_GAP = "[ \t\r\n\u00a0\\-\u2010-\u2015\u2212./()\\[\\]~]"
#: ten or more digits, separated by at most four separator characters: every phone and health id
_DIGIT_RUN = f"[0-9](?:{_GAP}{{0,4}}[0-9]){{9,}}"
_POSTCODE_SHAPE = "[A-Za-z]{1,2}[0-9][A-Za-z0-9]?[ \u00a0]?[0-9][A-Za-z]{2}"

#: an obfuscated email: a free-standing "at", later on the same line a "." or "dot"
_AT_THEN_DOT = "[^A-Za-z0-9][aA][tT][^A-Za-z0-9][^\n]*(?:\\.|[dD][oO][tT])"
#: the polars prefilter (without names): implied by every Python detector
_PREFILTER = f"@|{_DIGIT_RUN}|{_POSTCODE_SHAPE}|{_AT_THEN_DOT}"

# --- emails ------------------------------------------------------------------------------------------

_TLDS = (
    "com|org|net|edu|gov|info|biz|io|co|uk|scot|wales|cymru|london|ac|nhs|sch|ie|eu|de|fr|es|it|nl"
    "|be|ch|at|se|no|dk|fi|pl|pt|ca|us|au|nz|in|me|tv|app|dev|online|email|mail|xyz"
)
_EMAIL_RE = re.compile(rf"{_LOCAL} ?@ ?{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,}}(?![A-Za-z0-9\-])")
_AT = rf"(?P<at>{_WS}*{_OPEN}{_WS}*[aA][tT]{_WS}*{_CLOSE}{_WS}*|{_WS}+[aA][tT]{_WS}+)"
_DOT = rf"(?:{_WS}*{_OPEN}{_WS}*[dD][oO][tT]{_WS}*{_CLOSE}{_WS}*|{_WS}+[dD][oO][tT]{_WS}+|\.)"
_OBFUSCATED_RE = re.compile(
    rf"(?P<local>{_LOCAL}){_AT}(?P<domain>{_LABEL}(?:{_DOT}{_LABEL})*{_DOT}(?i:{_TLDS}))(?![A-Za-z0-9\-])"
)
_SPELLED_DOT_RE = re.compile("[dD][oO][tT]")
_AT_THEN_DOT_RE = re.compile(_AT_THEN_DOT)


def _obfuscated_ok(m: re.Match[str]) -> bool:
    """`x at y.com` needs a local part that is not a plain word (so "look at gov.scot" stays)."""
    bracketed = any(c in "([{<" for c in m.group("at"))
    spelled = bool(_SPELLED_DOT_RE.search(m.group("domain")))
    return bracketed or spelled or not m.group("local").isalpha()


def _scrub_emails(text: str) -> tuple[str, int]:
    n = 0
    if "@" in text:
        text, n = _EMAIL_RE.subn(PLACEHOLDERS["email"], text)
    if _AT_THEN_DOT_RE.search(text):
        text, k = _sub_if(_OBFUSCATED_RE, text, PLACEHOLDERS["email"], _obfuscated_ok)
        n += k
    return text, n


# --- health ids (CHI, NHS) ----------------------------------------------------------------------------

_HEALTH_RE = re.compile(r"(?<![0-9])(?:[0-9]{10}|[0-9]{3}([ \-])[0-9]{3}\1[0-9]{4}|[0-9]{6}[ \-][0-9]{4})(?![0-9])")
_INTL_PREFIX_RE = re.compile(r"(?:\+|(?<![0-9])00)[0-9]{1,3}[ \-]?(?:\(0\)[ \-]?)?$")


def _is_ddmmyy(digits: str) -> bool:
    try:
        dt.date(2000 + int(digits[4:6]), int(digits[2:4]), int(digits[0:2]))
    except ValueError:
        return False
    return True


def _mod11_ok(digits: str) -> bool:
    """The NHS/CHI modulus-11 check digit."""
    check = 11 - sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True)) % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def _health_ok(m: re.Match[str]) -> bool:
    if _INTL_PREFIX_RE.search(m.string, max(0, m.start() - 12), m.start()):
        return False
    digits = re.sub("[^0-9]", "", m.group())
    return _is_ddmmyy(digits) or _mod11_ok(digits)


def _scrub_health_ids(text: str) -> tuple[str, int]:
    return _sub_if(_HEALTH_RE, text, PLACEHOLDERS["health_id"], _health_ok)


# --- phones -------------------------------------------------------------------------------------------

_DIGIT_RUN_RE = re.compile(_DIGIT_RUN)
_GROUP_RE = re.compile("[0-9]+")
_MAX_PHONE_DIGITS = 17


@lru_cache(maxsize=65536)
def _phone_ok(sub: str) -> bool:
    """`sub` is, as a whole, one phone number in a form we accept."""
    if sub.count("(") != sub.count(")") or sub.lstrip("(")[:1] not in ("0", "+"):
        return False
    if not _DIGIT_RUN_RE.search(sub):
        return False
    import phonenumbers  # here: ~0.1 s to import, and only free text with digit runs needs it
    from phonenumbers import Leniency, ValidationResult

    for m in phonenumbers.PhoneNumberMatcher(sub, "GB", leniency=Leniency.POSSIBLE):
        return (
            m.start <= 1
            and m.end == len(sub)
            and phonenumbers.is_possible_number_with_reason(m.number) == ValidationResult.IS_POSSIBLE
        )
    return False


def _phone_in_run(text: str, leads: Sequence[int], groups: Sequence[re.Match[str]]) -> tuple[int, int] | None:
    """The longest phone number starting at one of `leads` and ending with one of `groups`."""
    ends, digits = [], 0
    for g in groups:
        digits += g.end() - g.start()
        if digits > _MAX_PHONE_DIGITS:
            break
        if digits >= 10:
            ends.append(g.end())
    for end in reversed(ends):
        for lead in leads:
            if _phone_ok(text[lead:end]):
                return lead, end
    return None


def _phone_spans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of phone numbers: tried from each digit group of a digit run that starts with 0 or +."""
    for run in _DIGIT_RUN_RE.finditer(text):
        groups = list(_GROUP_RE.finditer(text, run.start(), run.end()))
        start = run.start()
        cursor = start - 1 if start and text[start - 1] in "+(" else start
        for i, g in enumerate(groups):
            if g.start() < cursor:
                continue
            opened = g.start() - 1 >= cursor and text[g.start() - 1] in "+("
            leads = [g.start() - 1, g.start()] if opened else [g.start()]
            if text[g.start()] != "0" and text[leads[0]] != "+":
                continue
            span = _phone_in_run(text, leads, groups[i:])
            if span is not None:
                yield span
                cursor = span[1]


def _scrub_phones(text: str) -> tuple[str, int]:
    spans = list(_phone_spans(text))
    return _replace_spans(text, spans, PLACEHOLDERS["phone"]), len(spans)


# --- postcodes ----------------------------------------------------------------------------------------

_AREAS = (
    "AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E EC EH "
    "EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M "
    "ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST "
    "SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO ZE"
)
_POSTCODE_AREAS = frozenset(_AREAS.split())
_POSTCODE_RE = re.compile("(?<![A-Za-z0-9])([A-Za-z]{1,2})[0-9][A-Za-z0-9]?[ \u00a0]?[0-9]([A-Za-z]{2})(?![A-Za-z0-9])")
_ORDINALS = frozenset({"st", "nd", "rd", "th"})


def _postcode_ok(m: re.Match[str]) -> bool:
    area, inward = m.group(1).upper(), m.group(2)
    return area in _POSTCODE_AREAS and not set(inward.upper()) & set("CIKMOV") and inward not in _ORDINALS


def _scrub_postcodes(text: str) -> tuple[str, int]:
    return _sub_if(_POSTCODE_RE, text, PLACEHOLDERS["postcode"], _postcode_ok)


# --- names --------------------------------------------------------------------------------------------

#: letters that do not decompose into a base letter and an accent; Greek final sigma
_EXTRA_FOLDS = {"ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ı": "i", "ħ": "h", "Ħ": "h", "ς": "σ"}
#: Latin (with Latin-1, Extended-A/B and Extended Additional), Greek and Cyrillic letters
_FOLDED_RANGES = (range(0x41, 0x5B), range(0xC0, 0x250), range(0x370, 0x530), range(0x1E00, 0x1F00))


def _fold_table() -> dict[str, str]:
    """One character to one character: lower case, accents off, curly apostrophes straightened."""
    table: dict[str, str] = {}
    for ch in map(chr, (cp for r in _FOLDED_RANGES for cp in r)):
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)).lower()
        low = ch.lower()
        if len(base) == 1 and base != ch:
            table[ch] = base
        elif len(low) == 1 and low != ch:
            table[ch] = low
    table.update(dict.fromkeys("’‘ʼ", "'"))
    table.update(_EXTRA_FOLDS)
    return table


_FOLD = _fold_table()
_FOLD_TRANSLATION = str.maketrans(_FOLD)


def _fold(text: str) -> str:
    """`text` folded for matching names; the same length, so spans carry over to the original."""
    return text.translate(_FOLD_TRANSLATION)


def _name_forms(name: str) -> list[str]:
    """The forms of a roster name that are scrubbed: full, and first + last."""
    tokens = _fold(name).split()
    if len(tokens) < 2:
        return []
    return list(dict.fromkeys([" ".join(tokens), f"{tokens[0]} {tokens[-1]}"]))


class _Names:
    """Matches the roster's names in text."""

    def __init__(self, names: Iterable[str]) -> None:
        forms = sorted({f for n in names if n for f in _name_forms(n)}, key=lambda f: (-len(f), f))
        self.pattern: re.Pattern[str] | None = None
        #: Rust regex for the folded text: every match of `pattern` holds one of these last names
        self.prefilter: str | None = None
        if not forms:
            return
        alternatives = "|".join(r"\s+".join(map(re.escape, f.split())) for f in forms)
        self.pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        lasts = sorted({f.split()[-1] for f in forms})
        self.prefilter = "(?i:" + "|".join(map(re.escape, lasts)) + ")"

    def scrub(self, text: str) -> tuple[str, int]:
        if self.pattern is None:
            return text, 0
        spans = [m.span() for m in self.pattern.finditer(_fold(text))]
        return _replace_spans(text, spans, PLACEHOLDERS["name"]), len(spans)


# --- helpers ------------------------------------------------------------------------------------------


def _sub_if(
    pattern: re.Pattern[str], text: str, placeholder: str, accept: Callable[[re.Match[str]], bool]
) -> tuple[str, int]:
    """Replace the matches of `pattern` that `accept` approves; count them."""
    spans = [m.span() for m in pattern.finditer(text) if accept(m)]
    return _replace_spans(text, spans, placeholder), len(spans)


def _replace_spans(text: str, spans: Sequence[tuple[int, int]], placeholder: str) -> str:
    if not spans:
        return text
    out, last = [], 0
    for start, end in spans:
        out += [text[last:start], placeholder]
        last = end
    out.append(text[last:])
    return "".join(out)


# --- the scrubber -------------------------------------------------------------------------------------


class Scrubber:
    """Replaces emails, phones, postcodes, health ids and the roster's names with placeholders; with
    `erased`, also the names of people erased before (who are no longer on the roster)."""

    def __init__(self, names: Iterable[str] = (), erased: ErasedMentions | None = None) -> None:
        self._names = _Names(names)
        self._erased = erased if erased else None
        steps: list[tuple[str, Callable[[str], tuple[str, int]]]] = [
            ("email", _scrub_emails),
            ("health_id", _scrub_health_ids),
            ("phone", _scrub_phones),
            ("postcode", _scrub_postcodes),
            ("name", self._names.scrub),
        ]
        if self._erased is not None:
            steps.append(("name", self._erased.redact_names))
        self._steps = tuple(steps)

    def scrub(self, text: str | None) -> tuple[str | None, ScrubCounts]:
        """`text` with identifiers replaced, and how many of each were found. None and "" pass through."""
        if not text:
            return text, ScrubCounts()
        found: dict[str, int] = {}
        for kind, step in self._steps:
            text, n = step(text)
            if n:
                found[kind] = found.get(kind, 0) + n
        return text, ScrubCounts(**found)

    def candidates(self, values: pl.Series) -> pl.Series:
        """The values that could hold an identifier: a cheap superset of those `scrub` changes.

        One Rust regex over every value; for names, values with non-ASCII characters that it missed
        are folded like `_fold` does (with polars) and tried again; with erased people, the values left
        that hold a word whose token is an erased last name.
        """
        names = self._names.prefilter
        pattern = _PREFILTER if names is None else f"{_PREFILTER}|{names}"
        hit = values.str.contains(pattern)
        if names is not None:
            wide = values.filter(~hit & (values.str.len_bytes() != values.str.len_chars()))
            folded = wide.str.replace_many(list(_FOLD), list(_FOLD.values()))
            hit = hit | values.is_in(wide.filter(folded.str.contains(names)).implode())
        if self._erased is not None:
            hit = hit | values.is_in(self._erased.candidates(values.filter(~hit)).implode())
        return values.filter(hit)

    def sql_candidates(self, value: str) -> str:
        """`candidates` as a DuckDB condition on the text expression `value` (RE2 reads these patterns as
        Rust's regex does), for the fast path: TRUE for every value `scrub` could change. People erased
        before are not in it: with them (`finds_erased`), the values it leaves out still need
        `erased_candidates`."""
        names = self._names.prefilter
        pattern = _PREFILTER if names is None else f"{_PREFILTER}|{names}"
        condition = f"regexp_matches({value}, {literal(pattern)})"
        if names is not None:
            folded = f"translate({value}, {literal(''.join(_FOLD))}, {literal(''.join(_FOLD.values()))})"
            condition += f" OR (strlen({value}) <> length({value}) AND regexp_matches({folded}, {literal(names)}))"
        return f"coalesce({condition}, false)"

    @property
    def finds_erased(self) -> bool:
        """Whether people erased before are looked for too (then `erased_candidates` is needed)."""
        return self._erased is not None

    def erased_candidates(self, values: pl.Series) -> pl.Series:
        """Of `values` (distinct, none of them an `sql_candidates` hit), those that could mention an erased person."""
        if self._erased is None:
            return values.clear()
        return self._erased.candidates(values)

    def scrub_frame(self, df: pl.DataFrame, columns: Sequence[str]) -> tuple[pl.DataFrame, ScrubCounts]:
        """`df` with `columns` scrubbed; only the distinct candidate values go through Python."""
        scrubbed, counts = self.scrub_frame_by(df, columns, None)
        return scrubbed, counts.get(None, ScrubCounts())

    def scrub_frame_by(
        self, df: pl.DataFrame, columns: Sequence[str], by: str | None
    ) -> tuple[pl.DataFrame, dict[Any, ScrubCounts]]:
        """`scrub_frame`, with what was replaced counted by the value of column `by` (the delivery each row
        came from, when several files are scrubbed at once; None: one count, under None). Each distinct
        candidate value still goes through Python once."""
        total: dict[Any, ScrubCounts] = {}
        replacements = []
        for column in columns:
            dtype = df.schema[column]
            if dtype == pl.Null:
                continue
            if dtype != pl.String:
                raise TypeError(f"column {column!r} is {dtype}, not text")
            expr = self._scrub_column(df, column, by, total)
            if expr is not None:
                replacements.append(expr)
        return (df.with_columns(replacements) if replacements else df), total

    def _scrub_column(
        self, df: pl.DataFrame, column: str, by: str | None, total: dict[Any, ScrubCounts]
    ) -> pl.Expr | None:
        """The replacement of `column`'s values that hold identifiers (None: none do); what they held is
        added to `total`, by the value of `by`."""
        found = self.candidates(df.get_column(column))
        if by is None:
            counted = found.value_counts(name="n").select(pl.lit(None).alias("by"), column, "n")
        else:
            held = df.filter(pl.col(column).is_in(found.unique().implode()))
            counted = held.group_by(pl.col(by).alias("by"), column).len(name="n")
        old, new, seen = [], [], {}
        for group, value, n in counted.iter_rows():
            if value not in seen:
                seen[value] = self.scrub(value)
                if seen[value][1].total:
                    old.append(value)
                    new.append(seen[value][0])
            counts = seen[value][1]
            if counts.total:
                total[group] = total.get(group, ScrubCounts()) + _scaled(counts, n)
        if not old:
            return None
        return pl.col(column).replace(old, new)


# --- one person's own identifiers (erasure) -----------------------------------------------------------


@dataclass(frozen=True)
class PersonIdentifiers:
    """What identifies one person in other people's text: roster names, e-mail addresses, phone numbers.

    Postcodes are kept for the record (a check that nothing of the person is left) but never looked
    for in text: neighbours share them."""

    names: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    postcodes: frozenset[str] = frozenset()

    def __or__(self, other: PersonIdentifiers) -> PersonIdentifiers:
        return PersonIdentifiers(
            self.names | other.names,
            self.emails | other.emails,
            self.phones | other.phones,
            self.postcodes | other.postcodes,
        )


def email_key(text: str) -> str:
    """An e-mail address as compared: spaces around `@` removed, case folded."""
    return re.sub(f"{_WS}*@{_WS}*", "@", text.strip()).casefold()


def phone_key(text: str) -> str:
    """A phone number as compared: its national significant digits (`+44 (0)7700 900461` = `07700900461`)."""
    digits = re.sub("[^0-9]", "", text)
    if digits.startswith("0044"):
        digits = digits[4:]
    elif digits.startswith("44") and text.lstrip().startswith("+"):
        digits = digits[2:]
    return digits.lstrip("0")


def _obfuscated_key(m: re.Match[str]) -> str:
    domain = re.sub(_DOT, ".", m.group("domain"))
    return f"{m.group('local')}@{domain}".casefold()


class Mentions:
    """Finds one person's name, e-mail addresses and phone numbers in anyone's text and replaces them
    with the scrubber's placeholders. Used by an erasure on the landing copies, where the general
    scrubber does not run: names are matched as the scrubber matches roster names (full name and
    first + last, case- and accent-insensitive, on word boundaries); e-mails as written, spelled out or
    not; phones by their digits, however they are grouped."""

    def __init__(self, identifiers: PersonIdentifiers) -> None:
        self.identifiers = identifiers
        self._names = _Names(identifiers.names)
        self._emails = frozenset(email_key(e) for e in identifiers.emails if "@" in e)
        self._phones = frozenset(k for k in (phone_key(p) for p in identifiers.phones) if len(k) >= 9)
        needles = []
        if self._names.prefilter:
            needles.append(self._names.prefilter)
        needles += [re.escape(_fold(e.split("@")[0])) for e in self._emails]
        # the last six digits of each phone, with up to three separators between any two of them
        needles += ["[^0-9]{0,3}".join(k[-6:]) for k in self._phones]
        self._prefilter = re.compile("|".join(needles), re.IGNORECASE) if needles else None

    def __bool__(self) -> bool:
        return self._prefilter is not None

    def might_mention(self, text: str) -> bool:
        """A cheap test: False means `redact` would change nothing."""
        return self._prefilter is not None and bool(text) and self._prefilter.search(_fold(text)) is not None

    def redact(self, text: str) -> tuple[str, int]:
        """`text` with the person's identifiers replaced, and how many were."""
        if not self.might_mention(text):
            return text, 0
        total = 0
        if self._emails:
            spans = [m.span() for m in _EMAIL_RE.finditer(text) if email_key(m.group()) in self._emails]
            spans += [
                m.span()
                for m in _OBFUSCATED_RE.finditer(text)
                if _obfuscated_ok(m) and _obfuscated_key(m) in self._emails
            ]
            spans = _disjoint(spans)
            text, total = _replace_spans(text, spans, PLACEHOLDERS["email"]), total + len(spans)
        if self._phones:
            spans = [(s, e) for s, e in _phone_spans(text) if phone_key(text[s:e]) in self._phones]
            text, total = _replace_spans(text, spans, PLACEHOLDERS["phone"]), total + len(spans)
        text, n = self._names.scrub(text)
        return text, total + n


def _disjoint(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted, overlapping ones dropped (the earlier, longer one wins)."""
    kept: list[tuple[int, int]] = []
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if not kept or start >= kept[-1][1]:
            kept.append((start, end))
    return kept


# --- people erased before, known only by keyed tokens ---------------------------------------------------

_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\-])*[^\W\d_]|[^\W\d_]")
MENTION_TOKEN_PREFIX = "em_"


def mention_token(key: bytes, kind: str, value: str) -> str:
    """The keyed token of one of an erased person's identifiers (`name`, `last`, `email`, `phone`)."""
    message = f"din-erased-mention\x1f{kind}\x1f{value}".encode()
    return MENTION_TOKEN_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def mention_tokens(key: bytes, identifiers: PersonIdentifiers) -> set[str]:
    """Tokens that let `ErasedMentions` recognise this person's name, e-mails and phones, and nothing else
    (the name's forms as the scrubber matches them, its last word, e-mail and phone keys)."""
    tokens = set()
    for name in identifiers.names:
        for form in _name_forms(name):
            tokens |= {mention_token(key, "name", form), mention_token(key, "last", form.split()[-1])}
    tokens |= {mention_token(key, "email", email_key(e)) for e in identifiers.emails if "@" in e}
    tokens |= {mention_token(key, "phone", k) for k in map(phone_key, identifiers.phones) if len(k) >= 9}
    return tokens


class ErasedMentions:
    """Finds mentions of people erased before, of whom only keyed tokens are kept (the erasure register):
    each word, e-mail address and phone number in a text is made into its token and looked up. A name is
    matched as the scrubber matches roster names (full, or first + last; case- and accent-insensitive);
    only texts with a word whose token is an erased person's last name are looked at closely."""

    def __init__(self, key: bytes, tokens: Iterable[str]) -> None:
        self._key = key
        self._tokens = frozenset(tokens)
        self._words: dict[str, bool] = {}  # folded word -> is an erased last name

    def __bool__(self) -> bool:
        return bool(self._tokens)

    def _is(self, kind: str, value: str) -> bool:
        return mention_token(self._key, kind, value) in self._tokens

    def _last_name(self, word: str) -> bool:
        found = self._words.get(word)
        if found is None:
            found = self._words[word] = self._is("last", word)
        return found

    def might_mention(self, text: str) -> bool:
        if not self._tokens or not text:
            return False
        if any(self._last_name(w) for w in _WORD.findall(_fold(text))):
            return True
        return _AT_THEN_DOT_RE.search(text) is not None or "@" in text or _DIGIT_RUN_RE.search(text) is not None

    def redact(self, text: str) -> tuple[str, int]:
        """`text` with erased people's names, e-mails and phones replaced, and how many were."""
        if not self.might_mention(text):
            return text, 0
        emails = [m.span() for m in _EMAIL_RE.finditer(text) if self._is("email", email_key(m.group()))]
        emails += [
            m.span()
            for m in _OBFUSCATED_RE.finditer(text)
            if _obfuscated_ok(m) and self._is("email", _obfuscated_key(m))
        ]
        emails = _disjoint(emails)
        text = _replace_spans(text, emails, PLACEHOLDERS["email"])
        phones = [(s, e) for s, e in _phone_spans(text) if self._is("phone", phone_key(text[s:e]))]
        text = _replace_spans(text, phones, PLACEHOLDERS["phone"])
        names = self._name_spans(text)
        text = _replace_spans(text, names, PLACEHOLDERS["name"])
        return text, len(emails) + len(phones) + len(names)

    def redact_names(self, text: str) -> tuple[str, int]:
        """`text` with erased people's names replaced (the scrubber has replaced every e-mail and phone already)."""
        if not self._tokens or not text:
            return text, 0
        spans = self._name_spans(text)
        return _replace_spans(text, spans, PLACEHOLDERS["name"]), len(spans)

    def _name_spans(self, text: str) -> list[tuple[int, int]]:
        folded = _fold(text)
        words = list(_WORD.finditer(folded))
        spans = []
        for index, word in enumerate(words):
            if not self._last_name(word.group()):
                continue
            for first in range(max(0, index - 3), index):  # the longest form first: "first middle last"
                window = words[first : index + 1]
                if not all(folded[a.end() : b.start()].isspace() for a, b in pairwise(window)):
                    continue
                if self._is("name", " ".join(w.group() for w in window)):
                    spans.append((window[0].start(), word.end()))
                    break
        return _disjoint(spans)

    def candidates(self, values: pl.Series) -> pl.Series:
        """The values that could mention an erased person: each distinct word is made into a token once."""
        found = [v for v in values.unique().drop_nulls().to_list() if self.might_mention(v)]
        return pl.Series(values.name, found, dtype=pl.String)


class AnyMentions:
    """Several mention finders as one (an erasure's own person, and people erased before)."""

    def __init__(self, *finders: Mentions | ErasedMentions) -> None:
        self._finders = tuple(f for f in finders if f)

    def __bool__(self) -> bool:
        return bool(self._finders)

    def might_mention(self, text: str) -> bool:
        return any(f.might_mention(text) for f in self._finders)

    def redact(self, text: str) -> tuple[str, int]:
        total = 0
        for finder in self._finders:
            text, n = finder.redact(text)
            total += n
        return text, total
