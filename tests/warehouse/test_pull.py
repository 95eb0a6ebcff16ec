"""Pull lands a local source's new files several at a time, and what it records is what one at a time would:
every file, in listing order, with its content's hash; a file that fails stops the source there."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import warehouse.pull as pull
from din.config import SourceConfig
from sources import SourceUnreachable
from sources.local import LocalReader

FILES = 40


def partner_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "partner"
    (folder / "sub").mkdir(parents=True)
    for n in range(FILES):
        where = folder / "sub" if n % 3 == 0 else folder
        (where / f"responses-{n:02d}.csv").write_text(f"panel_id,answer\np1,answer {n}\n" * (n + 1))
    return folder


def source(folder: Path) -> SourceConfig:
    return SourceConfig(name="partner", organisation="ORG-A", kind="responses", location=str(folder))


class Fetches:
    """Watches the real `LocalReader.fetch`: how many run at once, and which files were fetched."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_at: str | None = None) -> None:
        self.running = self.most = 0
        self.fetched: list[str] = []
        self.lock = threading.Lock()
        real = LocalReader.fetch

        def fetch(reader: LocalReader, file: Any, dest: Any, previous: Any = None) -> Any:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
                self.fetched.append(file.relative_path)
            try:
                time.sleep(0.02)  # long enough for the files landed together to overlap
                if file.relative_path == fail_at:
                    Path(file.location).unlink()  # gone between listing and copying: the reader says so
                return real(reader, file, dest, previous)
            finally:
                with self.lock:
                    self.running -= 1

        monkeypatch.setattr(LocalReader, "fetch", fetch)


def landed(folder: Path, landing: Path) -> list[tuple[str, str | None, bool]]:
    result = pull.pull_source(source(folder), {}, landing)
    assert result.listed == FILES and result.unchanged == 0
    for file in result.files:  # each landed copy holds the bytes of the file it says
        assert Path(str(file.landing_path)).read_bytes() == (folder / file.relative_path).read_bytes()
    return [(f.relative_path, f.sha256, f.new_content) for f in result.files]


def test_files_landed_together_are_recorded_as_one_at_a_time_records_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = partner_folder(tmp_path)
    fetches = Fetches(monkeypatch)
    together = landed(folder, tmp_path / "landing-together")
    assert fetches.most > 1  # they did overlap
    expected = sorted(
        (p.relative_to(folder).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest(), True)
        for p in folder.rglob("*.csv")
    )
    assert sorted(together) == expected
    assert [name for name, _, _ in together] == [f.relative_path for f in LocalReader(str(folder)).list_files()]
    monkeypatch.setattr(pull, "LANDING_THREADS", 1)
    alone = Fetches(monkeypatch)
    assert landed(folder, tmp_path / "landing-alone") == together
    assert alone.most == 1


def test_a_reader_that_does_not_allow_it_fetches_one_file_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = partner_folder(tmp_path)
    monkeypatch.setattr(LocalReader, "concurrent_fetches", False)
    fetches = Fetches(monkeypatch)
    landed(folder, tmp_path / "landing")
    assert fetches.most == 1 and len(fetches.fetched) == FILES


def test_a_file_that_fails_stops_the_source_there_and_the_rest_is_not_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = partner_folder(tmp_path)
    failing = "responses-04.csv"
    fetches = Fetches(monkeypatch, fail_at=failing)
    with pytest.raises(SourceUnreachable, match=f"{failing} disappeared before it could be copied"):
        pull.pull_source(source(folder), {}, tmp_path / "landing")
    assert failing in fetches.fetched
    assert len(fetches.fetched) < FILES  # the files not yet started were not fetched
    time.sleep(0.1)
    assert fetches.running == 0  # and none is still being copied once the source has failed
