"""Local (or mounted network) folders and globs."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path
from typing import BinaryIO

from sources.base import FetchResult, FetchState, RemoteFile, SourceUnreachable

#: Files that editors and operating systems leave in delivery folders; never deliveries.
IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")


class LocalReader:
    """Reads a folder (every file in it, recursively) or a glob of files."""

    def __init__(self, location: str) -> None:
        self.location = location

    def list_files(self) -> list[RemoteFile]:
        base, paths = self._paths()
        files = []
        for path in sorted(paths):
            name = os.path.basename(path)
            if name in IGNORED_NAMES or name.startswith(("~$", ".")):
                continue
            stat = os.stat(path)
            files.append(
                RemoteFile(
                    location=path,
                    relative_path=os.path.relpath(path, base),
                    size=stat.st_size,
                    modified=stat.st_mtime_ns / 1e9,
                )
            )
        return files

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        try:
            with open(file.location, "rb") as handle:
                shutil.copyfileobj(handle, dest, 1 << 20)
        except FileNotFoundError as error:
            raise SourceUnreachable(f"{file.location} disappeared before it could be copied") from error
        return FetchResult(not_modified=False)

    def _paths(self) -> tuple[str, list[str]]:
        location = self.location
        if glob.has_magic(location):
            base = location
            while glob.has_magic(base):
                base = os.path.dirname(base)
            return base, [p for p in glob.glob(location, recursive=True) if os.path.isfile(p)]
        path = Path(location)
        if path.is_file():
            return str(path.parent), [str(path)]
        if path.is_dir():
            return str(path), [str(p) for p in path.rglob("*") if p.is_file()]
        raise SourceUnreachable(f"{location} does not exist")
