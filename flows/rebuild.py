"""The rebuild flow: recreate the warehouse and the published data from landing and reference data.

This is how a rule change or a key rotation is applied to history. The new warehouse is built
beside the old one and swapped in only when complete, so a failed rebuild changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow

from din.config import load_config
from din.keys import resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from flows.consolidate import DEFAULT_CONFIG, _artifacts, run_consolidation
from warehouse.rebuild import replay_landing
from warehouse.remote import pull_landing
from warehouse.schema import connect, create_schema

REBUILDING = "warehouse.rebuild.duckdb"


@flow(name="rebuild", description="Recreate the warehouse and published data from the landing zone.")
def rebuild(config_path: str = str(DEFAULT_CONFIG), data_dir: str | None = None) -> dict[str, Any]:
    """Replay every landed delivery in order into a fresh warehouse, then publish from it."""
    config = load_config(config_path, data_dir)
    key = resolve_key(config)
    live = DataPaths(config.data_dir)
    aside = DataPaths(config.data_dir, warehouse_file=REBUILDING)
    with writer_lock(live.lock, config.lock_timeout_seconds):
        if config.storage is not None and config.storage.landing:
            pull_landing(config.storage, live.landing)  # a fresh machine gets the landing zone back first
        for stale in (aside.warehouse, Path(str(aside.warehouse) + ".wal")):
            stale.unlink(missing_ok=True)
        con = connect(aside.warehouse)
        try:
            create_schema(con)
            replay_landing(con, live.landing, config, live.warehouse if live.warehouse.exists() else None)
        finally:
            con.close()
        summary = run_consolidation(config, aside, key, pull_sources=False)
        os.replace(aside.warehouse, live.warehouse)
    _artifacts(summary)
    return summary.as_dict()
