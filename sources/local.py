"""Local (or mounted network) folders and globs.

Only regular files inside the source's folder are deliveries. Everything else found there is skipped
with a reason the run reports (`skipped`): hidden files and folders, clutter, unfinished uploads,
FIFOs, sockets and devices (never opened: reading a FIFO would hang the run), links that lead out of
the folder (a partner's folder must not be a door to the rest of the machine), links to folders, and
files the pipeline's account cannot read. The checks are made again when a file is fetched, on the
open file itself, so a file swapped for a link in between is refused too.
"""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path
from typing import BinaryIO

from sources.base import (
    FetchResult,
    FetchState,
    RemoteFile,
    SkippedFile,
    SourceError,
    SourceUnreachable,
    skipped_by_name,
)

#: Kept for the other readers' imports; the full list of names that are never deliveries is in sources.base.
IGNORED_NAMES = (".DS_Store", "Thumbs.db", "desktop.ini")
CHUNK = 1 << 20
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


class LocalReader:
    """Reads a folder (every file in it, recursively) or a glob of files."""

    #: `fetch` may run for several files at once (it keeps no state between calls): `warehouse.pull` lands them
    #: on threads.
    concurrent_fetches = True

    def __init__(self, location: str) -> None:
        self.location = location
        self.skipped: list[SkippedFile] = []
        self._real: dict[str, str] = {}  # listed location -> the real file it reads (links inside the folder)

    def list_files(self) -> list[RemoteFile]:
        self.skipped, self._real = [], {}
        base, candidates = self._candidates()
        real_base = os.path.realpath(base)
        files = []
        for path in sorted(candidates):
            relative = os.path.relpath(path, base)
            real = os.path.realpath(path)  # once: at 2,000 files, each resolution is a dozen lstat calls
            skipped = skipped_by_name(relative) or _skipped_by_file(path, relative, real_base, real)
            if skipped is not None:
                self.skipped.append(skipped)
                continue
            info = os.stat(real)
            self._real[path] = real
            files.append(
                RemoteFile(location=path, relative_path=relative, size=info.st_size, modified=info.st_mtime_ns / 1e9)
            )
        return files

    def fetch(self, file: RemoteFile, dest: BinaryIO, previous: FetchState | None = None) -> FetchResult:
        real = self._real.get(file.location) or os.path.realpath(file.location)
        try:
            # O_NOFOLLOW: the real path was checked at listing; a link put there since is refused.
            # O_NONBLOCK: a FIFO put there since does not hang the run (it is refused below).
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except FileNotFoundError as error:
            raise SourceUnreachable(f"{file.location} disappeared before it could be copied") from error
        except OSError as error:
            raise SourceError(f"{file.location} could not be opened: {error.strerror}") from error
        with open(fd, "rb", closefd=True) as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SourceError(f"{file.location} is no longer a regular file; not copied")
            while chunk := handle.read(CHUNK):
                dest.write(chunk)
        return FetchResult(not_modified=False)

    def _candidates(self) -> tuple[str, list[str]]:
        """The folder paths are relative to, and every path in it that might be a delivery (not yet judged)."""
        location = self.location
        if glob.has_magic(location):
            base = location
            while glob.has_magic(base):
                base = os.path.dirname(base)
            matches = glob.glob(location, recursive=True, include_hidden=True)
            return base, [p for p in matches if not os.path.isdir(p) or os.path.islink(p)]
        path = Path(location)
        if path.is_file() or (path.exists() and not path.is_dir()):
            return str(path.parent), [str(path)]
        if path.is_dir():
            return str(path), list(self._walk(str(path)))
        raise SourceUnreachable(f"{location} does not exist")

    def _walk(self, top: str) -> list[str]:
        """Every non-folder entry under `top`, without entering hidden folders or links to folders."""
        found = []
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except PermissionError:
                self.skipped.append(SkippedFile(os.path.relpath(folder, top), "a folder the pipeline may not read"))
                continue
            for entry in entries:
                relative = os.path.relpath(entry.path, top)
                if entry.is_dir(follow_symlinks=False):
                    if entry.name.startswith("."):
                        self.skipped.append(SkippedFile(relative + "/", "a hidden folder: nothing in it is taken"))
                    else:
                        stack.append(entry.path)
                else:
                    found.append(entry.path)
        return found


def _skipped_by_file(path: str, relative: str, real_base: str, real: str) -> SkippedFile | None:
    """Why the file at `path` (`real`: its real path) is not a delivery, judged by what it is (links, file
    type, permissions)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return SkippedFile(relative, "disappeared while the folder was being listed")
    if os.path.commonpath([real, real_base]) != real_base:  # the file, or a folder on its way, is a link out
        return SkippedFile(relative, "a link to a file outside the source's folder: not followed")
    if stat.S_ISLNK(info.st_mode):
        try:
            info = os.stat(real)
        except FileNotFoundError:
            return SkippedFile(relative, "a link to a file that does not exist")
        if stat.S_ISDIR(info.st_mode):
            return SkippedFile(relative, "a link to a folder: not followed (put the files themselves in the folder)")
    if not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
        return SkippedFile(relative, f"{kind}, not a file: not read")
    if not os.access(path, os.R_OK):
        return SkippedFile(relative, "the pipeline's account may not read this file (permissions)")
    return None
