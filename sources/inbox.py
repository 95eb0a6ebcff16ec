"""A portal inbox: the folder `din serve` writes contributors' submitted files into.

It is read like a local folder (listed by size and modification time, copied into landing), so a
submitted file gets the same landing, provenance and immutability as any other delivery. Only the
portal writes here, and never under a name a contributor chose: the stored name is made of letters,
digits, '.', '_' and '-' only (`safe_file_name`), so a re-submitted file of the same name supersedes
the earlier delivery, as at any other source. What the portal knows of each submission (who sent it,
the name as sent) sits beside it in `.submissions/`, which is never listed as a delivery. Once a
run has landed a file, the portal removes it from the inbox (`remove_landed`): its one copy is then
the immutable landing copy.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from sources.base import FetchResult, FetchState, RemoteFile, SkippedFile, SourceUnreachable

SUBMISSIONS = ".submissions"  # sidecar records, one JSON per stored file
#: What a submitted file may be called at its end: the formats the readers accept.
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".json", ".ndjson", ".jsonl", ".parquet")


@dataclass(frozen=True)
class Submission:
    """One file submitted through the portal and waiting in (or already taken from) an inbox."""

    stored_name: str  # the file's name in the inbox: also its path within the source
    sent_as: str  # the name the contributor's file had (display only, never a path)
    organisation: str
    kind: str
    size: int
    sha256: str
    submitted_at: str  # ISO 8601, UTC
    token_id: str  # which token submitted it (never the token)
    replaced_pending: bool = False  # it replaced an earlier submission no run had taken yet


def safe_file_name(sent_as: str, fallback_suffix: str = ".csv") -> str:
    """A stored name for a file the contributor called `sent_as`: its last path part, with every
    character but letters, digits, '.', '_' and '-' replaced, no leading dots, and a known suffix."""
    base = re.split(r"[\\/]", sent_as)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in SUFFIXES:
        stem, suffix = base, fallback_suffix
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "delivery"
    return cleaned + suffix


class InboxReader:
    """Lists the files stored in an inbox folder (not its sidecars) and copies them into landing."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        #: Only the portal writes here (the sidecars in `.submissions/` are its own): anything else that is
        #: not a regular file was put there by hand, and is reported like at any local source.
        self.skipped: list[SkippedFile] = []

    def list_files(self) -> list[RemoteFile]:
        self.skipped = []
        if not self.folder.is_dir():
            return []  # nothing submitted yet
        files = []
        for entry in sorted(os.scandir(self.folder), key=lambda e: e.name):
            if entry.name == SUBMISSIONS:
                continue
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                self.skipped.append(SkippedFile(entry.name, "not a file the portal stored: it is not taken"))
                continue
            stat = entry.stat(follow_symlinks=False)
            files.append(
                RemoteFile(
                    location=entry.path, relative_path=entry.name, size=stat.st_size, modified=stat.st_mtime_ns / 1e9
                )
            )
        return files

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        try:
            with open(file.location, "rb") as handle:
                shutil.copyfileobj(handle, dest, 1 << 20)
        except FileNotFoundError as error:
            raise SourceUnreachable(f"{file.relative_path} left the inbox before it could be copied") from error
        return FetchResult(not_modified=False)


def submit(folder: Path, staged: Path, submission: Submission) -> Path:
    """Move the checked file `staged` into the inbox as `submission.stored_name`, atomically (a run
    never sees half a file), with its sidecar record. Returns the stored file."""
    if safe_file_name(submission.stored_name) != submission.stored_name:
        raise ValueError(f"{submission.stored_name!r} is not a stored name made by safe_file_name")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    (folder / SUBMISSIONS).mkdir(exist_ok=True, mode=0o700)
    target = folder / submission.stored_name
    handle, partial = tempfile.mkstemp(dir=folder, prefix=".incoming-")
    os.close(handle)
    try:
        shutil.copyfile(staged, partial)
        os.chmod(partial, 0o600)
        _write_json(folder / SUBMISSIONS / f"{submission.stored_name}.json", asdict(submission))
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def submissions(folder: Path) -> list[Submission]:
    """Every submission whose file is still in the inbox, newest first (unreadable records skipped)."""
    records = []
    for path in sorted((folder / SUBMISSIONS).glob("*.json")):
        try:
            record = Submission(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if (folder / record.stored_name).is_file():
            records.append(record)
    return sorted(records, key=lambda r: r.submitted_at, reverse=True)


def remove_landed(folder: Path, landed_sha256: set[str]) -> list[str]:
    """Delete the inbox files (and their records) whose content is already in landing; returns their names.

    Once landed, a submitted file lives on only in landing (immutable, content-addressed, where
    erasure finds it), so the raw copy in the inbox is not kept."""
    removed = []
    for record in submissions(folder):
        path = folder / record.stored_name
        if record.sha256 in landed_sha256 and _sha256(path) == record.sha256:
            path.unlink(missing_ok=True)
            (folder / SUBMISSIONS / f"{record.stored_name}.json").unlink(missing_ok=True)
            removed.append(record.stored_name)
    return removed


def _sha256(path: Path) -> str | None:
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, value: object) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(value, ensure_ascii=False, indent=1), encoding="utf-8")
    os.chmod(partial, 0o600)
    os.replace(partial, path)
