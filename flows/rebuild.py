"""The rebuild flow: recreate the warehouse and the published data from landing and reference data.

This is how a rule change or a key rotation is applied to history. The new warehouse is built
beside the old one (`warehouse.rebuild`) and swapped in only when complete, so a failed rebuild
changes nothing.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from din.config import DEMO_CONFIG, load_config
from din.keys import resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from flows.consolidate import flow_run_name, observed_run, run_consolidation
from warehouse.erasure import before_run
from warehouse.rebuild import prepare_rebuild, swap_in


@flow(
    name="rebuild",
    description="Recreate the warehouse and published data from the landing zone.",
    flow_run_name=flow_run_name,
)
def rebuild(config_path: str = str(DEMO_CONFIG), data_dir: str | None = None) -> dict[str, Any]:
    """Replay every landed delivery in order into a fresh warehouse, then publish from it."""
    config = load_config(config_path, data_dir)
    live = DataPaths(config.data_dir)
    with observed_run(config, live, data_dir) as (summary, progress):
        key = resolve_key(config)
        summary.demo_key, summary.pseudonym_key_id = key.is_demo, key.key_id
        with writer_lock(live.lock, config.lock_timeout_seconds):
            before_run(config, live, key)  # no erasure half done; the blocklist opens (sealed again after a rotation)
            aside = prepare_rebuild(config, live)
            run_consolidation(config, aside, key, summary, progress, pull_sources=False)
            swap_in(aside, live)
    return summary.as_dict()
