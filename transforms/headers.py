"""Match delivered headers to a kind's canonical columns (case-, space- and punctuation-insensitive)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from din.contract import DUPLICATE_COLUMNS, KINDS, Kind, normalise_header


@dataclass(frozen=True)
class HeaderProblem:
    """One reason a file's headers cannot be used: the rule, the column, and what to do."""

    rule: str
    column: str
    message: str
    suggestion: str | None = None


@dataclass(frozen=True)
class HeaderMatch:
    """How a file's headers line up with a kind's contract."""

    kind: str
    mapping: dict[str, str]  # delivered header -> canonical column
    extra: tuple[str, ...]  # delivered headers the contract does not know (kept in landing, reported)
    missing_required: tuple[str, ...]
    missing_optional: tuple[str, ...]
    duplicates: dict[str, tuple[str, ...]] = field(default_factory=dict)  # canonical -> clashing headers
    suggestions: dict[str, str] = field(default_factory=dict)  # missing canonical -> near-miss delivered header
    declared: dict[str, str] = field(default_factory=dict)  # the source's `format.columns`: header -> column
    absent_declared: tuple[str, ...] = ()  # headers `format.columns` names that the file does not have

    @property
    def usable(self) -> bool:
        return not self.missing_required and not self.duplicates

    def problems(self) -> list[HeaderProblem]:
        """Why the whole file cannot be used: each missing required column (rule `<column>_present`, as in
        the kind's suite) and each set of headers that mean the same column (rule `duplicate_columns`)."""
        kind = KINDS[self.kind]
        found = []
        expected_as = {column: header for header, column in self.declared.items()}
        for name in self.missing_required:
            column, hint = kind.column(name), self.suggestions.get(name)
            suggestion = f"the file has '{hint}': did you mean `{name}`? rename the header" if hint else None
            if name in expected_as and expected_as[name] in self.absent_declared:
                suggestion = (
                    f"the source's format.columns reads `{name}` from a header '{expected_as[name]}', which this "
                    f"file does not have" + (f"; the file has '{hint}'" if hint else "")
                )
            found.append(HeaderProblem(column.present_rule, name, column.missing_message, suggestion))
        for name, headers in self.duplicates.items():
            message = (
                f"the header {headers[0]!r} is given {len(headers)} times: nothing says which of those columns holds "
                f"`{name}`"
                if len(set(headers)) == 1
                else f"columns {', '.join(repr(h) for h in headers)} all mean `{name}`"
            )
            found.append(HeaderProblem(DUPLICATE_COLUMNS, name, message, "keep one of them"))
        return found

    def problem(self) -> str | None:
        """The problems above as one sentence, in words a contributor can act on."""
        parts = [p.message + (f" ({p.suggestion})" if p.suggestion else "") for p in self.problems()]
        return "; ".join(parts) if parts else None


def match_headers(headers: Sequence[str], kind: Kind, columns: Mapping[str, str] | None = None) -> HeaderMatch:
    """Line up `headers` with `kind`'s columns; near misses become suggestions, never silent matches.

    `columns` is the source's own header for a contract column (`format.columns` in din.yaml, or the
    organisation's mapping saved in the portal): such a header means that column, matched like any header
    (case-, space- and punctuation-insensitively)."""
    declared = {header: column for header, column in (columns or {}).items()}
    declared_by_key = {normalise_header(header): column for header, column in declared.items()}
    canonical_by_key = {normalise_header(c.name): c.name for c in kind.columns}
    claimed: dict[str, list[str]] = {}
    extra: list[str] = []
    for header in headers:
        key = normalise_header(header)
        canonical = declared_by_key.get(key) or canonical_by_key.get(key)
        if canonical is None:
            extra.append(header)
        else:
            claimed.setdefault(canonical, []).append(header)
    mapping = {hs[0]: canonical for canonical, hs in claimed.items() if len(hs) == 1}
    duplicates = {canonical: tuple(hs) for canonical, hs in claimed.items() if len(hs) > 1}
    missing = [c for c in kind.columns if c.name not in claimed]
    suggestions = {}
    for column in missing:
        near = closest(column.name, extra)
        if near is not None:
            suggestions[column.name] = near
    return HeaderMatch(
        kind=kind.name,
        mapping=mapping,
        extra=tuple(extra),
        missing_required=tuple(c.name for c in missing if c.required),
        missing_optional=tuple(c.name for c in missing if not c.required),
        duplicates=duplicates,
        suggestions=suggestions,
        declared=declared,
        absent_declared=tuple(h for h in declared if normalise_header(h) not in {normalise_header(x) for x in headers}),
    )


def guess_kind(headers: Sequence[str]) -> tuple[str | None, float]:
    """The kind whose columns best match `headers`, with the share of its required columns found."""
    keys = {normalise_header(h) for h in headers}
    best: tuple[str | None, float, int] = (None, 0.0, 0)
    for kind in KINDS.values():
        required = [normalise_header(c) for c in kind.required_columns]
        found = sum(1 for c in required if c in keys)
        share = found / len(required)
        all_found = sum(1 for c in kind.columns if normalise_header(c.name) in keys)
        if (share, all_found) > (best[1], best[2]):
            best = (kind.name, share, all_found)
    return best[0], best[1]


def closest(name: str, candidates: Sequence[str], max_distance: int = 2) -> str | None:
    """The candidate header within `max_distance` edits of `name` (after normalising both), if any."""
    target = normalise_header(name)
    scored = [(edit_distance(target, normalise_header(c)), c) for c in candidates]
    scored = [(d, c) for d, c in scored if d <= max_distance]
    return min(scored)[1] if scored else None


def edit_distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions count as one edit)."""
    if abs(len(a) - len(b)) > 3:
        return 99
    previous2: list[int] | None = None
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if previous2 is not None and i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]
