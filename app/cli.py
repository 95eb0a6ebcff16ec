"""The `din` command line.

Commands import only what they need: `check`, `tables`, `query`, `report` and `export` never load
Prefect's server or Great Expectations, so they start in well under a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from din.config import DEMO_CONFIG, ConfigError, load_config
from din.errors import DinError
from din.paths import DataPaths
from din.sql import quote

if TYPE_CHECKING:
    from warehouse.catalog import Sandbox

EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR, EXIT_SOURCE_ERRORS = 0, 1, 2, 3
TIER_CHOICES = ("open", "restricted", "ops")
TIER_HELP = "see only what a reader of this tier sees: open; open and restricted; or all (default: what you can read)"


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
    except BrokenPipeError:  # `din query ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


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
    tables = add("tables", _tables, "List the published tables with their row counts.")
    tables.add_argument("--tier", choices=TIER_CHOICES, help=TIER_HELP)
    query = add(
        "query",
        _query,
        "Run one read-only query over the published tables (nothing else is reachable: no files, no writes).",
    )
    query.add_argument("sql")
    query.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="csv and json escape text a spreadsheet would run as a formula",
    )
    query.add_argument("--tier", choices=TIER_CHOICES, help=TIER_HELP)
    query.add_argument(
        "--timeout", type=float, default=300.0, metavar="SECONDS", help="stop the query after this long (default 300)"
    )
    add("runs", _runs, "Show the run history.")
    add(
        "verify",
        _verify,
        "Check the current published version against the SHA-256 of every file in its datapackage.json, "
        "and that the catalog reads every table.",
    )
    report = add("report", _report, "Build the panel report (one HTML file, open tier only) or a project's pack.")
    report.add_argument("--project", metavar="PROJECT_ID", help="build the feedback pack for this project instead")
    report.add_argument("--out", type=Path, help="the HTML file to write (default: in the data dir's reports/)")
    export = add("export", _export, "Export a published table to CSV or XLSX, safe to open in a spreadsheet.")
    export.add_argument("table")
    export.add_argument("--format", choices=("csv", "xlsx"), required=True)
    export.add_argument("--tier", choices=("open", "restricted", "ops"), help="only look in this tier (default: all)")
    export.add_argument("--out", type=Path, help="the file to write (default: reports/exports/TABLE.FORMAT)")
    forget = add("forget", _forget, "Erase one panellist from landing copies, the warehouse and published data.")
    forget.add_argument("panellist_ref", help="the recruiter's reference, as on the roster")
    forget.add_argument("--panel", required=True, help="the panel the panellist belongs to")
    keys = commands.add_parser("keys", help="Pseudonymisation keys.")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    new = keys_commands.add_parser("new", help="Print a fresh random key (store it outside the repository).")
    new.set_defaults(handler=_keys_new)
    return parser


def _run(args: argparse.Namespace, rebuild: bool = False) -> int:
    config = load_config(args.config, args.data_dir)  # fail fast on config mistakes, before Prefect loads
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
        with _prefect_api():
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


@contextmanager
def _prefect_api() -> Iterator[None]:
    """The configured Prefect API, or a temporary server of our own that dies with this process
    (`app.prefect_server`: Prefect's own ephemeral server outlives a killed run)."""
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    if get_current_settings().api.url:
        yield
        return
    from app.prefect_server import temporary_server

    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120"))
    with temporary_server(Path(os.environ["PREFECT_HOME"]), timeout) as url, temporary_settings({PREFECT_API_URL: url}):
        try:
            yield
        finally:
            _drain_prefect_workers()  # logs and events still queued reach the server before it stops


def _drain_prefect_workers() -> None:
    """Send Prefect's queued logs and events now (what its test harness does before stopping its server)."""
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        try:
            logs: object = APILogWorker.instance().drain()
            if inspect.isawaitable(logs):
                await logs
        except RuntimeError:  # never started
            pass
        events: object = EventsWorker.drain_all()
        if inspect.isawaitable(events):
            await events

    run_coro_as_sync(drain())


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


def _sandbox(args: argparse.Namespace) -> Sandbox:
    """The published data as this reader may see it (`--tier`, else every tier the account can read)."""
    from warehouse.catalog import TIERS_SEEN, open_sandbox

    config = load_config(args.config, args.data_dir)
    paths = DataPaths(config.data_dir)
    if not paths.current.exists():
        raise ConfigError(f"nothing has been published under {config.data_dir} yet; run `din run` first")
    return open_sandbox(paths, TIERS_SEEN[args.tier] if args.tier else None)


def _tables(args: argparse.Namespace) -> int:
    with _sandbox(args) as sandbox:
        print(f"{'tier':<11} {'table':<22} {'rows':>10}  description")
        for tier, table, comment in sandbox.tables():
            count = next(iter(sandbox.batches(f"SELECT count(*) AS n FROM {quote(tier)}.{quote(table)}")))
            print(f"{tier:<11} {table:<22} {count.column(0)[0].as_py():>10}  {comment}")
    return EXIT_OK


def _query(args: argparse.Namespace) -> int:
    from reports.results import write_result

    with _sandbox(args) as sandbox:
        write_result(sandbox.batches(args.sql, timeout=args.timeout), args.format, sys.stdout)
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from warehouse.runs import run_history

    config = load_config(args.config, args.data_dir)
    rows = run_history(DataPaths(config.data_dir))
    if not rows:
        print("no runs yet")
        return EXIT_OK
    print(
        f"{'run':<30} {'started':<20} {'outcome':<30} {'new':>4} {'accepted':>9} {'quarant.':>9} "
        f"{'published':>10}  stages (s)"
    )
    for row in rows:
        print(
            f"{row['run_id']:<30} {str(row['started_at'])[:19]:<20} {row['outcome']:<30} "
            f"{row['deliveries_new'] or 0:>4} {row['rows_accepted'] or 0:>9} {row['rows_quarantined'] or 0:>9} "
            f"{row['rows_published'] or 0:>10}  {row['stage_seconds'] or ''}"
        )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    from warehouse.verify import verify_published

    config = load_config(args.config, args.data_dir)
    check = verify_published(DataPaths(config.data_dir))
    if check.ok:
        print(
            f"version {check.version}: {check.files_checked} files match the sha256 in datapackage.json; "
            "the catalog reads every table"
        )
        return EXIT_OK
    print(f"version {check.version or '(none)'}: {len(check.problems)} problem(s)")
    for problem in check.problems:
        print(f"  {problem}")
    if check.version is not None:
        print(
            "the next `din run` publishes the current version again from the warehouse "
            "(`din rebuild` if the warehouse itself is lost)"
        )
    return EXIT_PROBLEMS


def _forget(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.data_dir)
    from warehouse.erasure import forget_panellist

    report = forget_panellist(config, args.panel, args.panellist_ref)
    removed = sum(report.rows_removed.values())
    print(
        f"{report.erasure_id}: removed {removed} row(s) "
        f"({', '.join(f'{k} {v}' for k, v in report.rows_removed.items() if v)}), "
        f"redacted {report.landing_files_redacted} landing file(s), republished; older versions deleted"
    )
    if removed == 0:
        print("note: nobody with that reference was found on that panel", file=sys.stderr)
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
