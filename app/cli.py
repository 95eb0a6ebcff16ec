"""The `din` command line.

Commands import only what they need: `check`, `tables`, `query`, `report` and `export` never load
Prefect's server or Great Expectations, so they start in well under a second.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from din.config import DEMO_CONFIG, Config, ConfigError, load_config
from din.errors import DinError
from din.exit_codes import ExitCode, exit_code_for
from din.paths import DataPaths
from din.source_options import DATE_ORDERS
from din.sql import quote

if TYPE_CHECKING:
    from reports.results import Written
    from warehouse.catalog import Sandbox

# The codes are defined, and documented, once: din/exit_codes.py (README's table lists them).
EXIT_OK, EXIT_PROBLEMS, EXIT_ERROR = ExitCode.OK, ExitCode.PROBLEMS, ExitCode.ERROR
EXIT_SOURCE_ERRORS, EXIT_NEEDS_ATTENTION = ExitCode.SOURCE_ERRORS, ExitCode.NEEDS_ATTENTION
TIER_CHOICES = ("open", "restricted", "ops")
TABLE_ROWS = 50  # rows `din query` shows in the table format unless asked for more (--limit, --all, --out)
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

    run = add("run", _run, "Pull, validate, merge and publish every configured source.")
    run.add_argument(
        "--accept-drop",
        action="store_true",
        help="publish even when a reference or the roster lost most of its rows against the published version "
        "(by default such a run warns and keeps the previous version; see attention.rows_lost_share)",
    )
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
    check.add_argument(
        "--source", help="read the file as this configured source reads its files (its kind, format and mapping)"
    )
    check.add_argument(
        "--config", default=os.environ.get("DIN_CONFIG"), help="the source registry for --source and limits"
    )
    check.add_argument("--mapping", type=Path, help="read a survey or Polis export with this mapping file")
    check.add_argument(
        "--date-order", choices=DATE_ORDERS, help="read slashed dates day_first or month_first (as format.date_order)"
    )
    check.add_argument(
        "--reference",
        type=Path,
        help="the network's reference export (`din references export`), or a folder of reference data and rosters",
    )
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
        default=None,
        help="csv and json escape text a spreadsheet would run as a formula",
    )
    query.add_argument("--tier", choices=TIER_CHOICES, help=TIER_HELP)
    shown = query.add_mutually_exclusive_group()
    shown.add_argument(
        "--limit",
        type=_row_count,
        metavar="N",
        help=f"write at most N rows (default: {TABLE_ROWS} in the table format; every row in csv, json and --out)",
    )
    shown.add_argument("--all", action="store_true", help="write every row, in the table format too")
    query.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the result to FILE instead (every row unless --limit; the format from --format, "
        "else from FILE's ending: .csv, .json, else a table)",
    )
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
    forget = add(
        "forget",
        _forget,
        "Erase one panellist from everything the network holds: landing copies, the warehouse, every published "
        "version, reports and feedback, the bucket and Prefect's records; later deliveries of their rows are dropped.",
    )
    forget.add_argument("panellist_ref", help="the recruiter's reference, as on the roster")
    forget.add_argument("--panel", required=True, help="the panel the panellist belongs to")
    serve = add("serve", _serve, "Serve the web portal: contributors check and deliver files, readers find tables.")
    serve.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="the port (default 8765)")
    serve.add_argument(
        "--demo-tokens",
        action="store_true",
        help="demo only: run the demo if nothing is published, then issue and print a token per role",
    )
    tokens = commands.add_parser("tokens", help="Portal tokens: issue, list, revoke (stored only as hashes).")
    tokens_commands = tokens.add_subparsers(dest="tokens_command", required=True)
    for name, handler, text in (
        ("new", _tokens_new, "Issue a token for ORG; it is printed once and stored only as a hash."),
        ("list", _tokens_list, "List the tokens issued (never the tokens themselves)."),
        ("revoke", _tokens_revoke, "Revoke every active token of ORG (or one, with --id)."),
    ):
        sub = tokens_commands.add_parser(name, help=text, description=text)
        sub.add_argument("organisation", metavar="ORG", nargs="?" if name == "list" else None)
        sub.add_argument("--config", default=os.environ.get("DIN_CONFIG", str(DEMO_CONFIG)))
        sub.add_argument("--data-dir")
        sub.set_defaults(handler=handler)
        if name == "new":
            sub.add_argument("--role", choices=("contributor", "reader", "restricted"), default="contributor")
            sub.add_argument("--label", default="", help="a note for the list, such as who holds the token")
        if name == "revoke":
            sub.add_argument("--id", dest="token_id", help="revoke only this token (see `din tokens list`)")
    references = commands.add_parser("references", help="Reference data for contributors' checks.")
    references_commands = references.add_subparsers(dest="references_command", required=True)
    export_refs = references_commands.add_parser(
        "export",
        help="Write the identifier-free reference export that `din check --reference` reads.",
        description="Write the identifier-free reference export that `din check --reference` reads: workshop, "
        "project and organisation ids, and panellist references only as keyed hashes.",
    )
    export_refs.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    export_refs.add_argument("--config", default=os.environ.get("DIN_CONFIG", str(DEMO_CONFIG)))
    export_refs.add_argument("--data-dir")
    export_refs.set_defaults(handler=_references_export)
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
    with _collector_paused():
        config = load_config(args.config, args.data_dir)  # fail fast on config mistakes, before Prefect loads
        from din.keys import check_key_before_start
        from warehouse.erasure import refuse_if_erasure_pending

        check_key_before_start(config)  # a missing or short key: one line, before Prefect's start-up

        refuse_if_erasure_pending(DataPaths(config.data_dir).landing)  # before Prefect loads, too
        from din.settings import configure_environment

        configure_environment(config.data_dir)
        from flows.consolidate import consolidate, run_flow
        from flows.rebuild import rebuild as rebuild_flow
        from reports.run_summary import summary_text
        from warehouse.runs import RunSummary

    flow = rebuild_flow if rebuild else consolidate
    parameters = {"accept_drop": True} if getattr(args, "accept_drop", False) else {}
    try:
        with _prefect_api():
            result = run_flow(flow, config, data_dir_given=args.data_dir is not None, **parameters)
    except DinError:
        raise
    except Exception as error:  # the flow's log above has the traceback; the operator gets one line
        options = f"--config {shlex.quote(str(config.path))}" + (
            f" --data-dir {shlex.quote(args.data_dir)}" if args.data_dir else ""
        )
        print(
            f"din: run failed: {type(error).__name__}: {error}. The published data was left as it was; "
            f"see `din runs {options}` and the run's log above.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    summary = RunSummary.from_dict(result)
    print(
        f"published: {config.data_dir / 'published' / 'current'}  catalog: "
        f"{config.data_dir / 'published' / 'catalog.duckdb'}"
    )
    print(summary_text(summary))
    return int(exit_code_for(summary.outcome))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a run imports Prefect and the data libraries, then their
    objects frozen out of its reach (`gc.freeze`): they live as long as the process, and the collector
    walking them again and again costs about 0.2 s of every run's start."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


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
    from dataclasses import replace

    from app.check import check_file
    from din.config import FormatOptions

    if not args.file.is_file():
        print(f"din: {args.file}: no such file", file=sys.stderr)
        return EXIT_ERROR
    if args.kind:
        from din.contract import KINDS

        if args.kind not in KINDS:
            print(f"din: unknown kind {args.kind!r}; the kinds are {', '.join(KINDS)}", file=sys.stderr)
            return EXIT_ERROR
    kind, options, limits, read_with = args.kind, FormatOptions(), {}, None
    if args.source or args.config:
        config = load_config(args.config or str(DEMO_CONFIG))
        limits = dict(config.limits)
        if args.source:
            try:
                source = config.source(args.source)
            except KeyError:
                names = ", ".join(s.name for s in config.all_sources)
                print(f"din: no source {args.source!r} in {config.path}; the sources are {names}", file=sys.stderr)
                return EXIT_ERROR
            if kind and kind != source.kind:
                print(f"din: source {source.name} delivers {source.kind}, not {kind}", file=sys.stderr)
                return EXIT_ERROR
            kind, options, read_with = source.kind, source.format, f"as source {source.name} reads its files"
    if args.mapping:
        if not args.mapping.is_file():
            print(f"din: {args.mapping}: no such mapping file", file=sys.stderr)
            return EXIT_ERROR
        options = replace(options, type="survey", mapping=args.mapping.resolve())
        read_with = f"with the mapping {args.mapping.name}"
    if args.date_order:
        options = replace(options, date_order=args.date_order)
    reference_dir, references = args.reference, None
    if args.reference is not None and args.reference.is_file():
        from warehouse.references import ReferenceExportError, read_export

        try:
            references = read_export(args.reference)
        except ReferenceExportError as error:
            print(f"din: {error}", file=sys.stderr)
            return EXIT_ERROR
        reference_dir = None
    elif args.reference is not None and not args.reference.is_dir():
        print(f"din: {args.reference}: no such reference export or folder", file=sys.stderr)
        return EXIT_ERROR
    report = check_file(args.file, kind, reference_dir, options, limits, read_with, references=references)
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
        tables = sandbox.tables()
        width = max([len("table"), *(len(table) for _, table, _ in tables)])  # the longest name sets the column
        print(f"{'tier':<11} {'table':<{width}} {'rows':>10}  description")
        for tier, table, comment in tables:
            count = next(iter(sandbox.batches(f"SELECT count(*) AS n FROM {quote(tier)}.{quote(table)}")))
            print(f"{tier:<11} {table:<{width}} {count.column(0)[0].as_py():>10}  {comment}")
    return EXIT_OK


def _query(args: argparse.Namespace) -> int:
    from reports.results import write_result

    fmt = args.format or _format_of(args.out)
    limit = None if args.all else args.limit
    if limit is None and not args.all and fmt == "table" and args.out is None:
        limit = TABLE_ROWS  # a screenful; --all, --limit or --out for more
    with _sandbox(args) as sandbox:
        batches = sandbox.batches(args.sql, timeout=args.timeout)
        if args.out is None:
            written = write_result(batches, fmt, sys.stdout, limit)
        else:
            written = _write_file(args.out, lambda handle: write_result(batches, fmt, handle, limit))
        read = sandbox.tables_read(args.sql)
    note = written.count_line()
    if written.cut:
        note += " (--limit N or --all for more, --out FILE to save them)" if args.out is None else " (--limit)"
    note += f"; read {_tiers_note(read)}"
    if args.out is not None:
        print(f"wrote {args.out}: {note}")
    elif fmt == "table":
        print(note)
    else:  # csv and json on stdout are data: the note goes to stderr
        print(f"din: {note}", file=sys.stderr)
    return EXIT_OK


def _row_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of rows (0 or more), not {text!r}")
    return value


def _format_of(out: Path | None) -> str:
    suffix = out.suffix.lower() if out is not None else ""
    return {".csv": "csv", ".json": "json"}.get(suffix, "table")


def _tiers_note(read: list[tuple[str, str]]) -> str:
    """Which published tables the query read, each with its tier: `restricted.responses (restricted tier)`."""
    if not read:
        return "no published table"
    return ", ".join(f"{tier}.{table} ({tier} tier)" for tier, table in read)


def _write_file(out: Path, write: Callable[[TextIO], Written]) -> Written:
    """Write through a temporary file beside `out`, renamed over it when complete (never a half file)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.{os.getpid()}.partial")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            written = write(handle)
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)
    return written


def _runs(args: argparse.Namespace) -> int:
    from reports.run_summary import history_table
    from warehouse.runs import run_history

    config = load_config(args.config, args.data_dir)
    rows = run_history(DataPaths(config.data_dir))
    if not rows:
        print("no runs yet")
        return EXIT_OK
    print(history_table(rows))
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


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.data_dir)
    from din.settings import configure_environment

    configure_environment(config.data_dir)
    paths = DataPaths(config.data_dir)
    if args.demo_tokens:
        if not config.is_demo:
            raise ConfigError(f"{config.path} is not in demo mode: issue real tokens with `din tokens new ORG`")
        if not paths.current.exists():
            print("nothing published yet: running the demo first (about a minute)")
            status = _run(args)
            if status not in (EXIT_OK, EXIT_SOURCE_ERRORS):
                return status
        _print_demo_tokens(config, paths)
    from din.errors import PseudonymKeyError
    from din.keys import resolve_key

    try:
        key: bytes | None = resolve_key(config).secret
    except PseudonymKeyError as error:
        key = None
        print(f"din: warning: {error} Reference checks in the portal are off.", file=sys.stderr)
    import uvicorn

    from app.portal.pages import create_app
    from app.portal.trigger import deployment_trigger

    app = create_app(config, key, deployment_trigger if config.portal.deployment else None)
    print(f"portal: http://{args.host}:{args.port}/  (data: {config.data_dir}; stop with Ctrl-C)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", proxy_headers=True, server_header=False)
    return EXIT_OK


def _print_demo_tokens(config: Config, paths: DataPaths) -> None:
    """Demo only: fresh tokens for every organisation with a portal inbox, and a reader of each tier."""
    from app.portal.auth import TokenStore

    store = TokenStore(paths.portal)
    print("demo tokens (earlier demo tokens are revoked; paste one at the sign-in page):")
    holders = [(s.organisation, "contributor") for s in config.inbox_sources]
    holders += [("demo-readers", "reader"), ("demo-analysts", "restricted")]
    for organisation, role in dict.fromkeys(holders):
        for record in store.records():
            if record.organisation == organisation and record.label == "demo" and record.active:
                store.revoke(organisation, record.token_id)
        token, _ = store.issue(organisation, role, label="demo")
        print(f"  {role:<12} {organisation:<16} {token}")


def _tokens_new(args: argparse.Namespace) -> int:
    from app.portal.auth import TokenError, TokenStore

    config = load_config(args.config, args.data_dir)
    organisations = sorted({s.organisation for s in config.all_sources})
    if args.role == "contributor" and args.organisation not in organisations:
        import difflib

        near = difflib.get_close_matches(args.organisation, organisations, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        print(
            f"din: {args.organisation!r} delivers nothing in {config.path}{hint}; contributors are the "
            f"organisations of its sources: {', '.join(organisations)}",
            file=sys.stderr,
        )
        return EXIT_ERROR
    try:
        token, record = TokenStore(DataPaths(config.data_dir).portal).issue(args.organisation, args.role, args.label)
    except TokenError as error:
        print(f"din: {error}", file=sys.stderr)
        return EXIT_ERROR
    print(token)
    print(
        f"token {record.token_id} for {record.organisation} ({record.role}): shown once, stored only as a hash; "
        f"revoke with `din tokens revoke {record.organisation} --id {record.token_id}`",
        file=sys.stderr,
    )
    return EXIT_OK


def _tokens_list(args: argparse.Namespace) -> int:
    from app.portal.auth import TokenStore

    config = load_config(args.config, args.data_dir)
    records = TokenStore(DataPaths(config.data_dir).portal).records()
    print(f"{'id':<9} {'organisation':<20} {'role':<12} {'created':<21} {'revoked':<21} label")
    for r in records:
        if args.organisation and r.organisation != args.organisation:
            continue
        print(
            f"{r.token_id:<9} {r.organisation:<20} {r.role:<12} {r.created_at:<21} {r.revoked_at or '-':<21} {r.label}"
        )
    return EXIT_OK


def _tokens_revoke(args: argparse.Namespace) -> int:
    from app.portal.auth import TokenStore

    config = load_config(args.config, args.data_dir)
    revoked = TokenStore(DataPaths(config.data_dir).portal).revoke(args.organisation, args.token_id)
    if not revoked:
        which = f"token {args.token_id} of " if args.token_id else "active tokens of "
        print(f"din: no {which}{args.organisation} to revoke (see `din tokens list`)", file=sys.stderr)
        return EXIT_ERROR
    print(f"revoked {len(revoked)} token(s) of {args.organisation}: {', '.join(r.token_id for r in revoked)}")
    return EXIT_OK


def _references_export(args: argparse.Namespace) -> int:
    import duckdb

    config = load_config(args.config, args.data_dir)
    from din.keys import resolve_key
    from warehouse.references import write_export

    key = resolve_key(config)
    paths = DataPaths(config.data_dir)
    if not paths.warehouse.is_file():
        raise ConfigError(f"nothing has been run under {config.data_dir} yet; run `din run` first")
    from din.lock import writer_lock

    with writer_lock(paths.lock, config.lock_timeout_seconds):  # a run never finds the file held open
        con = duckdb.connect(str(paths.warehouse), read_only=True)
        try:
            counts = write_export(con, config, key.secret, args.out)
        finally:
            con.close()
    print(f"{args.out}: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    print("hand it to contributors: `din check FILE --reference " + args.out.name + "` (no names, no contact details)")
    return EXIT_OK


def _keys_new(args: argparse.Namespace) -> int:
    from din.keys import new_key

    print(new_key())
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
