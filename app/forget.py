"""`din forget`: an erasure request carried out end to end, and told in words.

The erasure itself is `warehouse.erasure.forget_panellist` (landing, warehouse, published versions,
the bucket); this command adds the steps that reach above the warehouse: regenerating every report
(`reports.erasure`) and cleaning Prefect's records (`app.prefect_records`). No Prefect server is
started.
"""

from __future__ import annotations

from din.config import Config
from warehouse.erasure import forget_panellist


def forget(
    config: Config, panel_id: str, panellist_ref: str, requested_by: str | None, *, dry_run: bool = False
) -> tuple[str, list[str]]:
    """Erase (or, with `dry_run`, say what erasing would change); returns the summary to print and the
    landing copies that could not be read at all (the person may be in them: someone must look)."""
    from app.prefect_records import clean_prefect
    from reports.erasure import erasure_text, refresh_reports

    report = forget_panellist(
        config,
        panel_id,
        panellist_ref,
        requested_by,
        steps={"reports": refresh_reports, "prefect": clean_prefect},
        dry_run=dry_run,
    )
    return erasure_text(report), report.unchecked
