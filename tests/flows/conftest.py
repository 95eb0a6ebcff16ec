"""One `prefect server` per test session (per xdist worker): a cold start costs ~30 s, so every `din`,
`prefect` and worker subprocess of these tests points at the same one.

The scenario modules keep their expensive set-up in module-scoped fixtures; `./dev test` distributes
tests by file (`--dist loadfile`), so a module's set-up runs once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.ops import PrefectServer, prefect_server


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with prefect_server(tmp_path_factory.mktemp("prefect")) as running:
        yield running
