"""Check that the current published version is what was published: every file named in its
`datapackage.json` is there with the SHA-256 recorded for it, nothing else sits among the tables, and
the catalog opens and reads every table of this version.

`din verify` prints the problems; each publish checks before it decides that nothing needs publishing,
so a damaged current version (a truncated copy, a disk error, a hand edit) is published again from the
warehouse by the next run instead of being served on.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from din.paths import DataPaths
from din.sql import quote
from warehouse.marts import TIERS

CHUNK = 1 << 20


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the published data: which file, and what."""

    path: str  # relative to the published folder
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class Verification:
    version: str | None
    files_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.version is not None and not self.problems


def verify_published(paths: DataPaths, catalog: bool = True) -> Verification:
    """Verify the current version's files against its datapackage.json, and (with `catalog`) the catalog."""
    current = paths.current
    if not current.is_symlink() and not current.exists():
        return Verification(None, problems=[Problem("current", "nothing has been published yet")])
    version_dir = current.resolve()
    found = Verification(version_dir.name)
    if not version_dir.is_dir():
        found.problems.append(Problem("current", f"points to {os.readlink(current)}, which does not exist"))
        return found
    resources = _resources(version_dir, found)
    if resources is None:
        return found
    listed = set()
    for resource in resources:
        for relative, expected in resource_files(resource):
            listed.add(relative)
            found.problems.extend(_check_file(version_dir, relative, expected))
            found.files_checked += 1
    for tier in TIERS:
        for path in sorted((version_dir / tier).rglob("*.parquet")):
            relative = str(path.relative_to(version_dir))
            if relative not in listed:
                found.problems.append(Problem(_shown(version_dir, relative), "not part of the published version"))
    if catalog:
        found.problems.extend(_check_catalog(paths, version_dir.name, resources))
    return found


def _resources(version_dir: Path, found: Verification) -> list[dict[str, Any]] | None:
    package = version_dir / "datapackage.json"
    try:
        descriptor = json.loads(package.read_text(encoding="utf-8"))
        resources = descriptor["resources"]
        assert isinstance(resources, list)
    except FileNotFoundError:
        found.problems.append(Problem(_shown(version_dir, package.name), "missing: nothing to check the files against"))
        return None
    except (ValueError, KeyError, AssertionError, OSError) as error:
        found.problems.append(Problem(_shown(version_dir, package.name), f"unreadable ({type(error).__name__})"))
        return None
    return resources


def resource_files(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(relative path, recorded hash) of each file of a datapackage resource: a single file's `path` and
    `hash`, or each of a partitioned table's `parts`."""
    parts = resource.get("parts")
    if isinstance(parts, list):
        return [(str(p.get("path", "")), str(p.get("hash", ""))) for p in parts if isinstance(p, dict)]
    return [(str(resource.get("path", "")), str(resource.get("hash", "")))]


def recorded_hashes(version_dir: Path) -> dict[str, str]:
    """Each file's SHA-256 as the version's datapackage.json recorded it (empty when unreadable)."""
    resources = _resources(version_dir, Verification(version_dir.name)) or []
    return {path: digest for r in resources for path, digest in resource_files(r)}


def file_intact(version_dir: Path, relative: str, recorded: dict[str, str] | None = None) -> bool:
    """The version's file at `relative` is what its datapackage.json recorded (so it may be reused);
    `recorded` saves reading datapackage.json again for each of many files."""
    expected = (recorded if recorded is not None else recorded_hashes(version_dir)).get(relative)
    return expected is not None and not _check_file(version_dir, relative, expected)


def file_sha256(path: Path) -> str:
    """`sha256:<hex digest>` of a file's bytes, as datapackage.json records it."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def _check_file(version_dir: Path, relative: str, expected: str) -> list[Problem]:
    path = version_dir / relative
    shown = _shown(version_dir, relative)
    if not expected.startswith("sha256:"):
        return [Problem(shown, "datapackage.json records no sha256 for it")]
    try:
        digest = file_sha256(path)
    except FileNotFoundError:
        return [Problem(shown, "missing")]
    except OSError as error:
        return [Problem(shown, f"unreadable: {error.strerror}")]
    if digest != expected:
        return [Problem(shown, f"damaged: its sha256 is not the one in datapackage.json ({path.stat().st_size} bytes)")]
    return []


def _check_catalog(paths: DataPaths, version: str, resources: list[dict[str, Any]]) -> list[Problem]:
    """The catalog opens, says it is of this version, and reads every table."""
    shown = paths.catalog.name
    if not paths.catalog.exists():
        return [Problem(shown, "missing")]
    try:
        con = duckdb.connect(str(paths.catalog), read_only=True)
    except duckdb.Error as error:
        return [Problem(shown, f"cannot be opened ({type(error).__name__})")]
    try:
        con.execute(f"SET file_search_path = '{paths.published}'")
        about = dict(con.sql("SELECT key, value FROM main.catalog_metadata").fetchall())
        if about.get("run_id") != version:
            return [Problem(shown, f"describes version {about.get('run_id')}, not the current {version}")]
        problems = []
        for resource in resources:
            view = f"{quote(str(resource.get('tier')))}.{quote(str(resource.get('name')))}"
            try:
                con.sql(f"SELECT count(*) FROM {view}").fetchall()
            except duckdb.Error as error:
                problems.append(Problem(shown, f"cannot read {view}: {type(error).__name__}"))
        return problems
    except duckdb.Error as error:
        return [Problem(shown, f"unreadable ({type(error).__name__})")]
    finally:
        con.close()


def _shown(version_dir: Path, relative: str) -> str:
    return f"versions/{version_dir.name}/{relative}"
