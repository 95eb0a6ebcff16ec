"""Reports for readers: the panel report, project feedback packs and spreadsheet exports.

Everything here reads the *published* folder (never the warehouse), so a report always matches a
published version. The panel report reads the open tier only; see `docs/reporting.md`.
"""
