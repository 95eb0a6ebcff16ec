"""`din forget`: carry out an erasure request, then publish without the person."""

from __future__ import annotations

from din.config import Config
from din.disclosure_config import disclosure_rule
from din.keys import resolve_key
from din.lock import writer_lock
from din.paths import DataPaths
from transforms.pseudonymise import pseudonym
from warehouse.erasure import ErasureReport, drop_old_versions, forget
from warehouse.marts import SCHEMA_VERSION, marts
from warehouse.publish import publish
from warehouse.remote import forget_remote
from warehouse.runs import new_run_id
from warehouse.schema import connect, create_schema


def forget_panellist(config: Config, panel_id: str, panellist_ref: str) -> ErasureReport:
    """Erase one panellist from landing, warehouse and published data (older versions deleted)."""
    key = resolve_key(config)
    paths = DataPaths(config.data_dir)
    with writer_lock(paths.lock, config.lock_timeout_seconds):
        con = connect(paths.warehouse)
        try:
            create_schema(con)
            version = new_run_id()
            report = forget(
                con,
                paths.landing,
                panel_id,
                panellist_ref,
                pseudonym(key.secret, panel_id, panellist_ref),
                run_id=version,
            )
            metadata = {
                "run_id": version,
                "mode": config.mode,
                "demo_key": key.is_demo,
                "pseudonym_key_id": key.key_id,
                "schema_version": SCHEMA_VERSION,
                "title": config.title,
                "reason": f"erasure {report.erasure_id}",
            }
            result = publish(con, paths, version, marts(), metadata, disclosure_rule(config))
            con.execute("INSERT INTO ops.publishes VALUES (?, now()::TIMESTAMP, ?, 'erasure')", [version, version])
        finally:
            con.close()
        drop_old_versions(paths.published, paths.published / "versions" / result.version)
        if config.storage is not None:  # the bucket's copies hold the person too
            forget_remote(config.storage, paths.landing, paths.published, result.version)
    return report
