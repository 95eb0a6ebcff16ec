"""The portal's routes: sign-in, upload and check, mapping, submit, deliveries, feedback, catalog.

Every page is rendered server-side from templates with autoescaping on (a partner's cell can hold
`<script>`), sent with a strict Content-Security-Policy, and every form carries a CSRF token.
A bad request gets a page that says what went wrong and a 4xx status, never a traceback.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import app.portal.catalog as catalog_data
import app.portal.deliveries as delivery_data
from app.portal.auth import CSRF_COOKIE, SESSION_COOKIE, Signer, TokenStore, Visitor, new_nonce
from app.portal.downloads import FORMATS, MEDIA_TYPES, problems_file, scratch, table_file
from app.portal.uploads import (
    CheckStore,
    StagedCheck,
    UploadRefused,
    inbox_kinds,
    mapping_rows,
    receive_upload,
    run_check,
    save_form_mapping,
    stored_name_for,
    submit_check,
    upload_limit,
)
from din.config import Config
from din.contract import KINDS
from din.paths import DataPaths
from sources.inbox import now_text
from transforms.column_mapping import ColumnMappingError
from warehouse.references import ReferenceKeys, from_warehouse

log = logging.getLogger("din.portal")
TEMPLATES = Path(__file__).with_name("templates")
STATIC_CSS = TEMPLATES / "portal.css"
PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
#: The HTML report and feedback pages are self-contained (inline CSS and SVG), never scripts.
DOCUMENT_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'"
)


class PageError(Exception):
    """A request that cannot be served: the status, a title and words that say what to do."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


@dataclass
class Portal:
    """What every request needs: the config, the data folder, tokens, signing, the key."""

    config: Config
    key: bytes | None = field(repr=False)  # the pseudonymisation key: server-side reference checks
    trigger: Callable[[str], str] | None = None  # runs a deployment, returns the flow run's id
    paths: DataPaths = field(init=False)
    tokens: TokenStore = field(init=False)
    signer: Signer = field(init=False)
    checks: CheckStore = field(init=False)
    _references: tuple[float, ReferenceKeys] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.paths = DataPaths(self.config.data_dir)
        self.tokens = TokenStore(self.paths.portal)
        self.signer = Signer(self.paths.portal)
        self.checks = CheckStore(self.paths.portal)

    def references(self) -> tuple[ReferenceKeys | None, str | None]:
        """Reference keys from the warehouse (cached until it changes), or why there are none."""
        if self.key is None:
            return None, "references were not checked: the portal was started without the pseudonymisation key"
        warehouse = self.paths.warehouse
        if not warehouse.is_file():
            return None, "references were not checked: nothing has been run yet"
        stamp = warehouse.stat().st_mtime
        if self._references is not None and self._references[0] == stamp:
            return self._references[1], None
        with delivery_data.warehouse_reader(self.paths) as con:
            if con is None:
                if self._references is not None:
                    return self._references[1], None  # the keys as of before this run
                return None, "references were not checked: a run is updating the warehouse; check again shortly"
            keys = from_warehouse(con, self.key)
        self._references = (stamp, keys)
        return keys, None


def create_app(config: Config, key: bytes | None, trigger: Callable[[str], str] | None = None) -> FastAPI:
    """The portal for the data folder of `config`."""
    portal = Portal(config, key, trigger)
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
    )
    environment.filters["number"] = lambda n: f"{int(n):,}" if n is not None else ""
    environment.filters["size"] = _size
    app = FastAPI(title="DIN portal", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.portal = portal

    def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        try:
            visitor = _visitor(portal, request)
        except Exception:  # an error page must render even when the token store is what failed
            if template != "error.html":
                raise
            visitor = None
        nonce = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_nonce", None) or new_nonce()
        request.state.csrf_nonce = nonce
        body = environment.get_template(template).render(
            visitor=visitor,
            csrf=portal.signer.csrf_token(nonce),
            title=config.title,
            demo=config.is_demo,
            path=request.url.path,
            **context,
        )
        return HTMLResponse(body, status_code=status)

    @app.middleware("http")
    async def security(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.csrf_nonce = request.cookies.get(CSRF_COOKIE) or new_nonce()
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
        if CSRF_COOKIE not in request.cookies:
            response.set_cookie(
                CSRF_COOKIE,
                request.state.csrf_nonce,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    @app.exception_handler(PageError)
    async def page_error(request: Request, error: PageError) -> HTMLResponse:
        return render(request, "error.html", error.status, heading=error.title, message=error.message)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> HTMLResponse:
        words = {404: ("Not found", "There is nothing at this address, or it is not yours to see.")}
        heading, message = words.get(error.status_code, ("Request not accepted", str(error.detail)))
        return render(request, "error.html", error.status_code, heading=heading, message=message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> HTMLResponse:
        return render(
            request, "error.html", 400, heading="Request not accepted", message="The address or form was not valid."
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> HTMLResponse:
        log.exception("portal error on %s", request.url.path)
        return render(
            request,
            "error.html",
            500,
            heading="Something went wrong",
            message="The portal could not finish this request. The data team can see what happened in its log.",
        )

    # --- signing in -----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        visitor = _visitor(portal, request)
        if visitor is None:
            return RedirectResponse("/signin", 303)
        return RedirectResponse("/upload" if visitor.is_contributor else "/catalog", 303)

    @app.get("/signin", response_class=HTMLResponse)
    async def signin_page(request: Request) -> Response:
        return render(request, "signin.html", error=None)

    @app.post("/signin", response_class=HTMLResponse)
    async def signin(request: Request) -> Response:
        form = await _small_form(request, portal)
        record = portal.tokens.verify(str(form.get("token", "")))
        if record is None:
            return render(
                request,
                "signin.html",
                401,
                error="That token was not recognised. Check it was copied whole, or ask the data team for a new one.",
            )
        response = RedirectResponse("/upload" if record.role == "contributor" else "/catalog", 303)
        response.set_cookie(
            SESSION_COOKIE,
            portal.signer.session(record, config.portal.session_hours),
            max_age=config.portal.session_hours * 3600,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        response.set_cookie(
            CSRF_COOKIE, new_nonce(), httponly=True, samesite="strict", secure=request.url.scheme == "https"
        )
        return response

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        await _small_form(request, portal)
        response = RedirectResponse("/signin", 303)
        response.delete_cookie(SESSION_COOKIE)
        return response

    @app.get("/portal.css")
    async def stylesheet() -> Response:
        return FileResponse(STATIC_CSS, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # --- contributors: upload, check, map, submit ----------------------------------------------

    @app.get("/upload", response_class=HTMLResponse)
    async def upload_page(request: Request) -> Response:
        visitor = _contributor(portal, request)
        kinds = inbox_kinds(config, visitor.organisation)
        return render(
            request,
            "upload.html",
            kinds=sorted(kinds),
            descriptions={k: KINDS[k].description for k in KINDS},
            limit_mb=upload_limit(config, visitor.organisation) // (1024 * 1024),
            error=None,
        )

    @app.post("/upload", response_class=HTMLResponse)
    async def upload(request: Request) -> Response:
        visitor = _contributor(portal, request)
        kinds = inbox_kinds(config, visitor.organisation)
        limit = upload_limit(config, visitor.organisation)
        check_id, folder = portal.checks.new_folder()
        try:
            received = await receive_upload(
                request.headers.get("content-type", ""),
                request.headers.get("content-length"),
                request.stream(),
                folder / "upload",
                limit,
            )
            if not portal.signer.csrf_valid(request.cookies.get(CSRF_COOKIE), received.fields.get("csrf")):
                raise UploadRefused(403, "the form had expired; open the upload page again and resend the file")
            if received.path is None or not received.sent_as or received.size == 0:
                raise UploadRefused(400, "no file was chosen, or the file was empty: choose a file and send it again")
            choice = received.fields.get("kind") or None
            if choice is not None and choice not in kinds:
                raise UploadRefused(400, f"your organisation does not deliver {choice!r} files through the portal")
        except UploadRefused as refused:
            portal.checks.discard(check_id)
            return render(
                request,
                "upload.html",
                refused.status,
                kinds=sorted(kinds),
                descriptions={k: KINDS[k].description for k in KINDS},
                limit_mb=limit // (1024 * 1024),
                error=refused.message,
            )
        portal.checks.keep(
            folder,
            folder / "upload",
            StagedCheck(
                check_id,
                visitor.organisation,
                visitor.token.token_id,
                received.sent_as,
                received.size,
                choice,
                now_text(),
                stored_name_for(received.sent_as, folder / "upload"),
            ),
        )
        return RedirectResponse(f"/upload/{check_id}", 303)

    def _staged(visitor: Visitor, check_id: str) -> StagedCheck:
        staged = portal.checks.get(check_id, visitor.organisation)
        if staged is None:
            raise PageError(
                404, "Not found", "This check is not there any more (checks are kept for a day): upload the file again."
            )
        return staged

    def _check_page(
        request: Request, visitor: Visitor, staged: StagedCheck, status: int = 200, **extra: Any
    ) -> Response:
        references, not_checked = portal.references()
        report, saved, mapping_error = run_check(
            config, portal.paths.mappings, portal.checks.file(staged), staged, references
        )
        kinds = inbox_kinds(config, visitor.organisation)
        if not_checked:
            report.notes.append(not_checked)
        groups = _grouped(report)
        return render(
            request,
            "check.html",
            status,
            staged=staged,
            report=report,
            groups=groups,
            rows=_problem_table(report),
            mapping=mapping_rows(report, saved),
            mapping_error=mapping_error,
            can_submit=report.kind in kinds and not report.whole_file_refused,
            delivers_kind=report.kind in kinds,
            kinds=sorted(kinds),
            **{"mapping_message": None, **extra},
        )

    @app.get("/upload/{check_id}", response_class=HTMLResponse)
    async def check_page(request: Request, check_id: str) -> Response:
        visitor = _contributor(portal, request)
        return _check_page(request, visitor, _staged(visitor, check_id))

    @app.post("/upload/{check_id}/mapping", response_class=HTMLResponse)
    async def mapping(request: Request, check_id: str) -> Response:
        visitor = _contributor(portal, request)
        staged = _staged(visitor, check_id)
        form = await _small_form(request, portal)
        references, _ = portal.references()
        report, _, _ = run_check(config, portal.paths.mappings, portal.checks.file(staged), staged, references)
        if report.kind is None:
            raise PageError(400, "No kind", "Choose the kind of file first: the mapping is saved for one kind.")
        try:
            save_form_mapping(portal.paths.mappings, visitor.organisation, report.kind, report.headers, form)
        except ColumnMappingError as error:
            return _check_page(request, visitor, staged, 400, mapping_message=f"The mapping was not saved: {error}.")
        return RedirectResponse(f"/upload/{check_id}?mapping=saved", 303)

    @app.post("/upload/{check_id}/submit", response_class=HTMLResponse)
    async def submit(request: Request, check_id: str) -> Response:
        visitor = _contributor(portal, request)
        staged = _staged(visitor, check_id)
        await _small_form(request, portal)
        references, _ = portal.references()
        path = portal.checks.file(staged)
        report, _, _ = run_check(config, portal.paths.mappings, path, staged, references)
        source = inbox_kinds(config, visitor.organisation).get(report.kind or "")
        if source is None or report.whole_file_refused:
            raise PageError(
                400,
                "Not submitted",
                "This file cannot be submitted as it is: fix the problems with the file itself (see the check) first.",
            )
        with _operations(portal) as (con, _):
            delivered = delivery_data.organisation_deliveries(con, visitor.organisation) if con is not None else []
        pending = {s.sha256 for s in delivery_data.waiting_submissions(config, visitor.organisation, delivered)}
        submission = submit_check(source, path, staged, source.kind, pending)
        portal.checks.discard(check_id)
        log.info("portal: %s submitted %s to %s", visitor.token.token_id, submission.stored_name, source.name)
        return RedirectResponse(f"/deliveries?submitted={url_quote(submission.stored_name)}", 303)

    @app.post("/process", response_class=HTMLResponse)
    async def process(request: Request) -> Response:
        _contributor(portal, request)
        await _small_form(request, portal)
        if config.portal.deployment is None or portal.trigger is None:
            raise PageError(
                409, "No deployment", "The portal cannot start runs here: the next scheduled run will take your file."
            )
        try:
            run_id = await run_in_threadpool(portal.trigger, config.portal.deployment)
        except Exception as error:
            log.error("portal: could not start %s: %s", config.portal.deployment, error)
            raise PageError(
                503,
                "Run not started",
                "The run could not be started just now; the next scheduled run will take your file.",
            ) from None
        return RedirectResponse(f"/deliveries?started={url_quote(run_id)}", 303)

    # --- contributors: deliveries and feedback --------------------------------------------------

    @app.get("/deliveries", response_class=HTMLResponse)
    async def deliveries(request: Request) -> Response:
        visitor = _contributor(portal, request)
        with _operations(portal) as (con, live):
            delivered = delivery_data.organisation_deliveries(con, visitor.organisation) if con is not None else []
            if con is not None and live:  # under the writer lock: no run is listing the inbox now
                delivery_data.tidy_inboxes(config, visitor.organisation, delivered)
        return render(
            request,
            "deliveries.html",
            delivered=delivered,
            waiting=delivery_data.waiting_submissions(config, visitor.organisation, delivered),
            runs=delivery_data.feedback_runs(delivered),
            live=live,
            submitted=request.query_params.get("submitted"),
            started=request.query_params.get("started"),
            can_trigger=config.portal.deployment is not None and portal.trigger is not None,
        )

    @app.get("/deliveries/{delivery_id}", response_class=HTMLResponse)
    async def delivery(request: Request, delivery_id: int) -> Response:
        visitor = _contributor(portal, request)
        with _operations(portal) as (con, live):
            found = delivery_data.find_delivery(con, visitor.organisation, delivery_id) if con is not None else None
            if con is None or found is None:
                raise StarletteHTTPException(404)
            detail = delivery_data.delivery_detail(con, config, portal.paths, found, visitor.organisation)
        return render(request, "delivery.html", detail=detail, live=live, row_limit=delivery_data.ROW_LIMIT)

    @app.get("/deliveries/{delivery_id}/problems.{fmt}")
    async def delivery_problems(request: Request, delivery_id: int, fmt: str) -> Response:
        visitor = _contributor(portal, request)
        if fmt not in ("csv", "xlsx"):
            raise StarletteHTTPException(404)
        folder = scratch()
        with _operations(portal) as (con, _):
            found = delivery_data.find_delivery(con, visitor.organisation, delivery_id) if con is not None else None
            if con is None or found is None:
                shutil.rmtree(folder, ignore_errors=True)
                raise StarletteHTTPException(404)
            rows = [
                (p.row, p.column, p.value, p.rule, p.reason)
                for p in delivery_data.problem_rows(con, config, portal.paths, found, visitor.organisation)
            ]
        name = f"problems-delivery-{delivery_id}"
        out = problems_file(rows, name, fmt, folder)
        return _download(out, f"{name}.{fmt}", fmt, folder)

    @app.get("/feedback/{run_id}", response_class=HTMLResponse)
    async def feedback(request: Request, run_id: str) -> Response:
        visitor = _contributor(portal, request)
        from reports.feedback import organisation_feedback_html

        with _operations(portal) as (con, live):
            if con is None or not live:
                raise PageError(
                    503, "Try again shortly", "A run is updating the warehouse; feedback pages are back when it ends."
                )
            html = organisation_feedback_html(con, run_id, visitor.organisation)
        if html is None:
            raise StarletteHTTPException(404)
        return HTMLResponse(html, headers={"Content-Security-Policy": DOCUMENT_POLICY})

    @app.get("/feedback/{run_id}/rejected_rows.csv")
    async def feedback_csv(request: Request, run_id: str) -> Response:
        """Every row of the run's deliveries that was set aside, values as typed (never a pseudonym)."""
        visitor = _contributor(portal, request)
        folder = scratch()
        with _operations(portal) as (con, _):
            own = (
                [
                    d
                    for d in delivery_data.organisation_deliveries(con, visitor.organisation)
                    if d.processed_run_id == run_id
                ]
                if con is not None
                else []
            )
            if con is None or not own:
                shutil.rmtree(folder, ignore_errors=True)
                raise StarletteHTTPException(404)
            rows = [
                (d.file, p.row, p.column, p.value, p.rule, p.reason)
                for d in own
                for p in delivery_data.problem_rows(con, config, portal.paths, d, visitor.organisation)
            ]
        out = problems_file(rows, "rejected_rows", "csv", folder, with_file=True)
        return _download(out, f"rejected_rows-{run_id}.csv", "csv", folder)

    # --- report authors: the catalog -------------------------------------------------------------

    @app.get("/catalog", response_class=HTMLResponse)
    async def catalog(request: Request) -> Response:
        visitor = _reader(portal, request)
        return render(
            request,
            "catalog.html",
            tables=catalog_data.tables(portal.paths, visitor.tiers),
            release=catalog_data.release(portal.paths),
        )

    def _table(visitor: Visitor, name: str) -> catalog_data.TableEntry:
        entry = catalog_data.table(portal.paths, visitor.tiers, name)
        if entry is None:
            raise StarletteHTTPException(404)
        return entry

    @app.get("/catalog/{name}", response_class=HTMLResponse)
    async def table(request: Request, name: str) -> Response:
        visitor = _reader(portal, request)
        if "." in name:
            stem, _, fmt = name.rpartition(".")
            return await table_download(request, stem, fmt)
        entry = _table(visitor, name)
        release = catalog_data.release(portal.paths)
        headers, rows = catalog_data.preview(entry)
        return render(
            request,
            "table.html",
            entry=entry,
            release=release,
            columns=catalog_data.columns(entry, release.disclosure_rule if release else ""),
            preview_headers=headers,
            preview_rows=rows,
            snippets=catalog_data.code_snippets(entry, portal.paths.catalog),
        )

    async def table_download(request: Request, name: str, fmt: str) -> Response:
        visitor = _reader(portal, request)
        if fmt not in FORMATS:
            raise StarletteHTTPException(404)
        entry = _table(visitor, name)
        folder = scratch()
        out = table_file(entry.path, entry.name, fmt, folder)
        return _download(out, f"{entry.name}.{fmt}", fmt, folder)

    @app.get("/report", response_class=HTMLResponse)
    async def report(request: Request) -> Response:
        _reader(portal, request)
        release = catalog_data.release(portal.paths)
        if release is None:
            raise PageError(404, "Nothing published yet", "The report appears once the first run has published.")
        cached = portal.paths.portal / "cache" / f"report-{release.version}.html"
        if not cached.is_file():
            from reports.html import build_report

            cached.parent.mkdir(parents=True, exist_ok=True)
            build_report(portal.paths.published, cached, config.title)
        return FileResponse(cached, media_type="text/html", headers={"Content-Security-Policy": DOCUMENT_POLICY})

    return app


# --- helpers ----------------------------------------------------------------------------------------


def _visitor(portal: Portal, request: Request) -> Visitor | None:
    token_id = portal.signer.session_token_id(request.cookies.get(SESSION_COOKIE))
    record = portal.tokens.find(token_id) if token_id else None
    return Visitor(record) if record is not None else None


def _signed_in(portal: Portal, request: Request) -> Visitor:
    visitor = _visitor(portal, request)
    if visitor is None:
        raise PageError(401, "Please sign in", "Sign in with the token the data team gave you to see this page.")
    return visitor


def _contributor(portal: Portal, request: Request) -> Visitor:
    visitor = _signed_in(portal, request)
    if not visitor.is_contributor:
        raise PageError(403, "Not for this token", "This page is for organisations that deliver files.")
    return visitor


def _reader(portal: Portal, request: Request) -> Visitor:
    visitor = _signed_in(portal, request)
    if not visitor.tiers:
        raise PageError(403, "Not for this token", "The catalog is for report authors: sign in with a reader token.")
    return visitor


async def _small_form(request: Request, portal: Portal) -> dict[str, str]:
    """A url-encoded form (no files), its CSRF token checked."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise PageError(400, "Request not accepted", "Send this form from the portal's own page.")
    body = await request.body()
    if len(body) > 64 * 1024:
        raise PageError(413, "Request not accepted", "The form sent far more than it holds.")
    from urllib.parse import parse_qsl

    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not portal.signer.csrf_valid(request.cookies.get(CSRF_COOKIE), form.get("csrf")):
        raise PageError(
            403, "Form expired", "The form had expired or did not come from this portal: open the page again."
        )
    return form


class _operations:
    """`deliveries.operations`, or (None, False) when nothing has been delivered yet."""

    def __init__(self, portal: Portal) -> None:
        self.context = delivery_data.operations(portal.paths)

    def __enter__(self) -> tuple[duckdb.DuckDBPyConnection | None, bool]:
        try:
            return self.context.__enter__()
        except delivery_data.WarehouseUnavailable:
            self.context = None  # type: ignore[assignment]
            return None, True

    def __exit__(self, *exc: object) -> None:
        if self.context is not None:
            self.context.__exit__(*exc)  # type: ignore[arg-type]


def _download(path: Path, filename: str, fmt: str, folder: Path) -> Response:
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[fmt],
        filename=filename,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _grouped(report: Any) -> list[dict[str, Any]]:
    """The check's problems summed up by rule: how many rows, the rule in words, an example."""
    groups: dict[str, dict[str, Any]] = {}
    for problem in report.problems:
        entry = groups.setdefault(
            problem.rule, {"rule": problem.rule, "column": problem.column, "rows": 0, "example": problem.message}
        )
        entry["rows"] += 1
    return sorted(groups.values(), key=lambda g: -int(g["rows"]))


def _problem_table(report: Any, limit: int = 500) -> list[Any]:
    return [p for p in report.problems if p.row is not None][:limit]


def _size(value: int) -> str:
    if value < 1024:
        return f"{value} bytes"
    if value < 1024 * 1024:
        return f"{value / 1024:.1f} KB"
    return f"{value / (1024 * 1024):.1f} MB"
