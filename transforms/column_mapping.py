"""An organisation's column mapping for one kind: their header → our column.

Saved through the portal's mapping form as a small YAML file per organisation and kind
(`<data>/mappings/<organisation>/<kind>.yaml`), checked whenever it is loaded, and used by
`match_headers` for every delivery of that organisation and kind (through any of its sources), so
a partner whose export says `Benefit score` need not rename the column by hand each time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from din.contract import KINDS, normalise_header

MAPPING_INVALID = "column_mapping_invalid"


class ColumnMappingError(ValueError):
    """A saved mapping cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class ColumnMapping:
    """Headers as the organisation writes them, each mapped to one column of `kind`."""

    organisation: str
    kind: str
    columns: Mapping[str, str] = field(default_factory=dict)


def mapping_problems(kind_name: str, columns: Mapping[str, str]) -> list[str]:
    """Why `columns` cannot be a mapping for `kind_name` (empty when it can)."""
    if kind_name not in KINDS:
        return [f"there is no kind {kind_name!r}"]
    kind = KINDS[kind_name]
    problems = []
    claimed: dict[str, str] = {}
    for header, column in columns.items():
        if not isinstance(header, str) or not header.strip() or not isinstance(column, str):
            problems.append("every entry must map a header (text) to a column (text)")
            continue
        if column not in kind.column_names:
            problems.append(f"'{header}' is mapped to `{column}`, which is not a column of {kind_name}")
        elif column in claimed:
            problems.append(f"'{claimed[column]}' and '{header}' are both mapped to `{column}`: keep one")
        else:
            claimed[column] = header
    return problems


def mapping_path(mappings_dir: Path, organisation: str, kind: str) -> Path:
    return mappings_dir / _folder(organisation) / f"{kind}.yaml"


def load_mapping(mappings_dir: Path, organisation: str, kind: str) -> ColumnMapping | None:
    """The organisation's saved mapping for `kind`, checked; None when it has none.

    Raises ColumnMappingError when the file is there but unusable."""
    path = mapping_path(mappings_dir, organisation, kind)
    if not path.is_file():
        return None
    # Named relative to the data folder: the message reaches the organisation's feedback.
    where = f"the saved column mapping of {organisation} for {kind} (mappings/{path.parent.name}/{path.name})"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        problem = getattr(error, "problem", None) or type(error).__name__
        raise ColumnMappingError(f"{where} cannot be read ({problem}); save the mapping again in the portal") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        raise ColumnMappingError(f"{where}: expected `columns:` mapping their headers to our columns")
    if raw.get("organisation") != organisation or raw.get("kind") != kind:
        raise ColumnMappingError(f"{where}: it is the mapping of {raw.get('organisation')} for {raw.get('kind')}")
    columns = {str(k): v for k, v in raw["columns"].items()}
    problems = mapping_problems(kind, columns)
    if problems:
        raise ColumnMappingError(f"{where}: " + "; ".join(problems) + ". Save the mapping again in the portal.")
    return ColumnMapping(organisation, kind, columns)


def save_mapping(mappings_dir: Path, mapping: ColumnMapping) -> Path:
    """Write the mapping (checked first) atomically; an empty mapping removes the file."""
    problems = mapping_problems(mapping.kind, mapping.columns)
    if problems:
        raise ColumnMappingError("; ".join(problems))
    path = mapping_path(mappings_dir, mapping.organisation, mapping.kind)
    if not mapping.columns:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    document = {"organisation": mapping.organisation, "kind": mapping.kind, "columns": dict(mapping.columns)}
    partial.write_text(
        "# Saved through the portal's mapping form: the organisation's header -> the contract's column.\n"
        + yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    os.replace(partial, path)
    return path


def claims(columns: Mapping[str, str]) -> dict[str, str]:
    """The mapping keyed by normalised header, as `match_headers` compares headers."""
    return {normalise_header(header): column for header, column in columns.items()}


def _folder(organisation: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", organisation).strip("._")
    return cleaned or "unnamed"
