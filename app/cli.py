"""The `din` command line.

Commands import only what they need: `check`, `tables`, `query`, `report` and `export` never load
Prefect's server or Great Expectations, so they start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from din.config import DEMO_CONFIG, ConfigError, load_config
from din.errors import DinError
from din.paths import DataPaths

if TYPE_CHECKING:
    import duckdb

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR, EXIT_SOURCE_ERRORS = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.handler(args))
    except ConfigError as error:
        print(f"din: configuration error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except DinError as error:
        print(f"din: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="din", description="Consolidate public-engagement outputs of a data network.")
    commands = parser.add_subparsers(dest="command")

    def add(name: str, handler: object, help_text: str, config: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if config:
            sub.add_argument(
                "--config",
                default=os.environ.get("DIN_CONFIG", str(DEMO_CONFIG)),
                help="the source registry (default: the bundled demo, or $DIN_CONFIG)",
            )
            sub.add_argument(
                "--data-dir", help="where landing, warehouse and published data live (default: the config's data_dir)"
            )
        sub.set_defaults(handler=handler)
        return sub

    add("run", _run, "Pull, validate, merge and publish every configured source.")
    add(
        "rebuild",
        _rebuild,
        "Recreate the warehouse and published data from the landing zone (after a rule change or a key rotation).",
    )
    check = add(
        "check", _check, "Check one file against the contract before sending it (no warehouse needed).", config=False
    )
    check.add_argument("file", type=Path)
    check.add_argument("--kind", help="the kind of file (guessed from its headers when omitted)")
    check.add_argument("--reference", type=Path, help="folder of reference data and rosters to check references")
    check.add_argument("--format", choices=("text", "json"), default="text")
    add("tables", _tables, "List the published tables with their row counts.")
    query = add("query", _query, "Run read-only SQL over the published catalog.")
    query.add_argument("sql")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add("runs", _runs, "Show the run history.")
    report = add("report", _report, "Build the panel report (one HTML file, open tier only) or a project's pack.")
    report.add_argument("--project", metavar="PROJECT_ID", help="build the feedback pack for this project instead")
    report.add_argument("--out", type=Path, help="the HTML file to write (default: in the data dir's reports/)")
    export = add("export", _export, "Export a published table to CSV or XLSX, safe to open in a spreadsheet.")
    export.add_argument("table")
    export.add_argument("--format", choices=("csv", "xlsx"), required=True)
    export.add_argument("--tier", choices=("open", "restricted", "ops"), help="only look in this tier (default: all)")
    export.add_argument("--out", type=Path, help="the file to write (default: reports/exports/TABLE.FORMAT)")
    forget = add(
        "forget",
        _forget,
        "Erase one panellist from everything the network holds: landing copies, the warehouse, every published "
        "version, reports and feedback, the bucket and Prefect's records; later deliveries of their rows are dropped.",
    )
    forget.add_argument("panellist_ref", help="the recruiter's reference, as on the roster")
    forget.add_argument("--panel", required=True, help="the panel the panellist belongs to")
    forget.add_argument(
        "--requested-by", help="who asked for the erasure, for the audit record (default: your user name)"
    )
    forget.add_argument("--dry-run", action="store_true", help="list what would change, and change nothing")
    keys = commands.add_parser("keys", help="Pseudonymisation keys.")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="Print a fresh random key (store it outside the repository).")
    new.set_defaults(handler=_keys_new)
    return parser


def _run(args: argparse.Namespace, rebuild: bool = False) -> int:
    config = load_config(args.config, args.data_dir)  # fail fast on config mistakes, before Prefect loads
    from warehouse.erasure import refuse_if_erasure_pending

    refuse_if_erasure_pending(DataPaths(config.data_dir).landing)  # before Prefect loads, too
    from din.settings import configure_environment

    configure_environment(config.data_dir)
    from flows.consolidate import consolidate, run_flow
    from reports.run_summary import summary_text
    from warehouse.runs import RunSummary

    if rebuild:
        from flows.rebuild import rebuild as flow
    else:
        flow = consolidate
    try:
        result = run_flow(flow, config)
    except DinError:
        raise
    except Exception as error:  # the flow's log above has the traceback; the operator gets one line
        print(
            f"din: run failed: {type(error).__name__}: {error}. The published data was left as it was; "
            "see `din runs` and the run's log above.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    summary = RunSummary.from_dict(result)
    print(summary_text(summary))
    print(
        f"published: {config.data_dir / 'published' / 'current'}  catalog: "
        f"{config.data_dir / 'published' / 'catalog.duckdb'}"
    )
    print(
        "next: `din tables` lists what was published, `din report` writes the HTML report, "
        '`din query "SQL"` queries it (see README)'
    )
    return EXIT_SOURCE_ERRORS if summary.source_errors else EXIT_OK


def _rebuild(args: argparse.Namespace) -> int:
    return _run(args, rebuild=True)


def _check(args: argparse.Namespace) -> int:
    from app.check import check_file

    if not args.file.is_file():
        print(f"din: {args.file}: no such file", file=sys.stderr)
        return EXIT_ERROR
    if args.kind:
        from din.contract import KINDS

        if args.kind not in KINDS:
            print(f"din: unknown kind {args.kind!r}; the kinds are {', '.join(KINDS)}", file=sys.stderr)
            return EXIT_ERROR
    report = check_file(args.file, args.kind, args.reference)
    print(report.as_json() if args.format == "json" else report.as_text())
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _catalog(args: argparse.Namespace) -> duckdb.DuckDBPyConnection:
    import duckdb

    config = load_config(args.config, args.data_dir)
    catalog = config.data_dir / "published" / "catalog.duckdb"
    if not catalog.exists():
        raise ConfigError(f"nothing has been published under {config.data_dir} yet; run `din run` first")
    return duckdb.connect(str(catalog), read_only=True)


def _tables(args: argparse.Namespace) -> int:
    con = _catalog(args)
    rows = con.sql(
        "SELECT schema_name, view_name, comment FROM duckdb_views() WHERE NOT internal AND schema_name != 'main' "
        "ORDER BY schema_name, view_name"
    ).fetchall()
    print(f"{'tier':<11} {'table':<22} {'rows':>10}  description")
    for schema, view, comment in rows:
        count = con.sql(f'SELECT count(*) FROM "{schema}"."{view}"').fetchall()[0][0]
        print(f"{schema:<11} {view:<22} {count:>10}  {comment or ''}")
    return EXIT_OK


def _query(args: argparse.Namespace) -> int:
    con = _catalog(args)
    try:
        relation = con.sql(args.sql)
    except Exception as error:
        print(f"din: query failed: {error}", file=sys.stderr)
        return EXIT_ERROR
    if relation is None:
        return EXIT_OK
    frame = relation.pl()
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        print(json.dumps(frame.to_dicts(), indent=2, default=str, ensure_ascii=False))
    else:
        import polars as pl

        with pl.Config(tbl_rows=50, tbl_cols=30, fmt_str_lengths=60, tbl_width_chars=200):
            print(frame)
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    import duckdb

    config = load_config(args.config, args.data_dir)
    path = config.data_dir / "warehouse.duckdb"
    if not path.exists():
        print("no runs yet")
        return EXIT_OK
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException:
        con = _catalog(args)  # the warehouse is being written: the published history is the latest we have
        rows = con.sql(
            "SELECT run_id, started_at, finished_at, outcome, deliveries_new, rows_accepted, "
            "rows_quarantined, rows_published, stage_seconds FROM ops.runs ORDER BY started_at"
        ).fetchall()
    else:
        rows = con.sql(
            "SELECT run_id, started_at, finished_at, outcome, deliveries_new, rows_accepted, "
            "rows_quarantined, rows_published, stage_seconds FROM ops.runs ORDER BY started_at"
        ).fetchall()
    print(
        f"{'run':<30} {'started':<20} {'outcome':<30} {'new':>4} {'accepted':>9} {'quarant.':>9} "
        f"{'published':>10}  stages (s)"
    )
    for run_id, started, _finished, outcome, new, accepted, quarantined, published, stages in rows:
        print(
            f"{run_id:<30} {str(started)[:19]:<20} {outcome:<30} {new or 0:>4} {accepted or 0:>9} "
            f"{quarantined or 0:>9} {published or 0:>10}  {stages or ''}"
        )
    return EXIT_OK


def _forget(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.data_dir)
    from app.forget import forget

    summary, unchecked = forget(config, args.panel, args.panellist_ref, args.requested_by, dry_run=args.dry_run)
    print(summary)
    if unchecked:
        print(
            f"din: {len(unchecked)} landing file(s) could not be read, so could not be checked for this panellist "
            f"({', '.join(unchecked)}): open them by hand, or delete them if they are not needed",
            file=sys.stderr,
        )
        return EXIT_SOURCE_ERRORS
    return EXIT_OK


def _published_paths(args: argparse.Namespace) -> tuple[DataPaths, str]:
    config = load_config(args.config, args.data_dir)
    paths = DataPaths(config.data_dir)
    if not paths.current.exists():
        raise ConfigError(f"nothing has been published under {config.data_dir} yet; run `din run` first")
    return paths, config.title


def _report(args: argparse.Namespace) -> int:
    paths, title = _published_paths(args)
    try:
        if args.project:
            from reports.packs import build_project_pack

            out = args.out or paths.reports / f"project-{args.project}.html"
            written = build_project_pack(paths.published, args.project, out)
        else:
            from reports.html import build_report

            written = build_report(paths.published, args.out or paths.reports / "report.html", title)
    except (ValueError, FileNotFoundError) as error:
        print(f"din: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(written)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from reports.export import export_table

    paths, _ = _published_paths(args)
    out = args.out or paths.reports / "exports" / f"{args.table}.{args.format}"
    try:
        written = export_table(paths.published, args.table, args.format, out, args.tier)
    except (LookupError, FileNotFoundError) as error:
        print(f"din: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(written)
    return EXIT_OK


def _keys_new(args: argparse.Namespace) -> int:
    from din.keys import new_key

    print(new_key())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
