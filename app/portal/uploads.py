"""Uploads: a file streamed to disk under a size limit, checked the way `din check` checks it, its
column mapping saved, and, when the contributor submits it, moved into their inbox.

A file being checked lives in `<data>/portal/checks/<check id>/` (mode 0700) under a fixed name,
never the name it was sent as, with a record of who sent it; it is deleted when submitted and
after a day otherwise. Only the organisation that uploaded it can see or submit it.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header

from app.check import CheckReport, check_file, check_survey_export
from din.config import Config, SourceConfig
from din.contract import KINDS
from sources.inbox import Submission, now_text, safe_file_name, submit
from transforms.column_mapping import ColumnMapping, ColumnMappingError, load_mapping, mapping_problems, save_mapping
from transforms.readers import SNIFF_BYTES, ReadOptions, detect_format
from warehouse.landing import file_sha256
from warehouse.references import ReferenceKeys

CHECK_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
CHECK_LIFETIME_SECONDS = 24 * 3600
FIELD_LIMIT = 4096  # bytes of any form field that is not the file
MAX_PARTS = 8
NOT_OURS = ""  # the mapping form's choice for "not one of our columns"


class UploadRefused(Exception):
    """The upload cannot be taken: `status` (400, 413, 415) and words a contributor can act on."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Upload:
    """What a multipart form sent: its small fields, and the one file streamed to `path`."""

    fields: dict[str, str] = field(default_factory=dict)
    sent_as: str | None = None
    size: int = 0
    path: Path | None = None


async def receive_upload(
    content_type: str, content_length: str | None, body: AsyncIterator[bytes], dest: Path, limit: int
) -> Upload:
    """Parse a multipart/form-data body as it arrives, writing its file part to `dest` and refusing
    (UploadRefused 413) as soon as the file passes `limit` bytes; nothing is held in memory."""
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRefused(415, "the upload must be sent from the portal's upload form")
    if content_length and content_length.isdigit() and int(content_length) > limit + 64 * 1024:
        raise UploadRefused(413, _too_large(limit))
    upload = Upload()
    state: dict[str, object] = {"headers": {}, "name": None, "filename": None, "buffer": bytearray(), "parts": 0}
    header_field = bytearray()
    header_value = bytearray()
    handle = None

    def on_part_begin() -> None:
        state.update(headers={}, name=None, filename=None, buffer=bytearray())
        state["parts"] = int(state["parts"]) + 1  # type: ignore[call-overload]
        if int(state["parts"]) > MAX_PARTS:  # type: ignore[call-overload]
            raise UploadRefused(400, "the form sent more fields than the upload form has")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        state["headers"][bytes(header_field).lower()] = bytes(header_value)  # type: ignore[index]
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        nonlocal handle
        disposition = state["headers"].get(b"content-disposition", b"")  # type: ignore[attr-defined]
        _, options = parse_options_header(disposition)
        state["name"] = options.get(b"name", b"").decode("utf-8", "replace")
        if b"filename" in options:
            if upload.path is not None:
                raise UploadRefused(400, "send one file at a time")
            state["filename"] = options[b"filename"].decode("utf-8", "replace")
            upload.sent_as = str(state["filename"])
            upload.path = dest
            handle = open(dest, "wb")  # noqa: SIM115 (closed at the part's end or on error)

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["filename"] is not None:
            upload.size += end - start
            if upload.size > limit:
                raise UploadRefused(413, _too_large(limit))
            assert handle is not None
            handle.write(data[start:end])
        else:
            buffer = state["buffer"]
            assert isinstance(buffer, bytearray)
            buffer.extend(data[start:end])
            if len(buffer) > FIELD_LIMIT:
                raise UploadRefused(400, "a form field was far longer than the form allows")

    def on_part_end() -> None:
        nonlocal handle
        if state["filename"] is not None and handle is not None:
            handle.close()
            handle = None
        elif state["name"]:
            buffer = state["buffer"]
            assert isinstance(buffer, bytearray)
            upload.fields[str(state["name"])] = buffer.decode("utf-8", "replace")

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        async for chunk in body:
            parser.write(chunk)
        parser.finalize()
    except UploadRefused:
        raise
    except Exception as error:  # a malformed body: the parser's own errors
        raise UploadRefused(400, f"the upload was not a well-formed form ({type(error).__name__})") from None
    finally:
        if handle is not None:
            handle.close()
    return upload


def _too_large(limit: int) -> str:
    return (
        f"the file is larger than {limit // (1024 * 1024)} MB, the most this portal accepts; split it into "
        "smaller files (for example one per workshop) or ask the data team to raise the limit"
    )


# --- files being checked ------------------------------------------------------------------------


@dataclass(frozen=True)
class StagedCheck:
    """An uploaded file waiting to be submitted."""

    check_id: str
    organisation: str
    token_id: str
    sent_as: str
    size: int
    kind_choice: str | None  # what the contributor chose; None: let the headers decide
    uploaded_at: str
    stored_name: str  # the file's safe name in the check folder (and in the inbox once submitted)


class CheckStore:
    """The files being checked, one folder each, visible only to the organisation that sent them."""

    def __init__(self, portal_dir: Path) -> None:
        self.dir = portal_dir / "checks"

    def new_folder(self) -> tuple[str, Path]:
        self.expire()
        check_id = secrets.token_urlsafe(18)
        folder = self.dir / check_id
        folder.mkdir(parents=True, mode=0o700)
        return check_id, folder

    def keep(self, folder: Path, received: Path, staged: StagedCheck) -> None:
        """Give the received file its safe name and record who sent it."""
        os.replace(received, folder / staged.stored_name)
        (folder / "check.json").write_text(json.dumps(asdict(staged)), encoding="utf-8")

    def file(self, staged: StagedCheck) -> Path:
        return self.dir / staged.check_id / staged.stored_name

    def get(self, check_id: str, organisation: str) -> StagedCheck | None:
        """The check, when it exists and belongs to `organisation` (else None: the same answer either way)."""
        if not CHECK_ID.fullmatch(check_id):
            return None
        try:
            staged = StagedCheck(**json.loads((self.dir / check_id / "check.json").read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None
        if staged.organisation != organisation or safe_file_name(staged.stored_name) != staged.stored_name:
            return None
        return staged if self.file(staged).is_file() else None

    def discard(self, check_id: str) -> None:
        if CHECK_ID.fullmatch(check_id):
            shutil.rmtree(self.dir / check_id, ignore_errors=True)

    def expire(self, now: float | None = None) -> None:
        if not self.dir.is_dir():
            return
        cutoff = (now or time.time()) - CHECK_LIFETIME_SECONDS
        for folder in self.dir.iterdir():
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)


# --- the check ----------------------------------------------------------------------------------


def stored_name_for(sent_as: str, received: Path) -> str:
    """A safe name for the file: from the name it was sent as, its suffix from its content when the
    name has none the readers know (a workbook sent as `feedback` is kept as `feedback.xlsx`)."""
    with open(received, "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    detected = detect_format("", head)
    return safe_file_name(sent_as, fallback_suffix=FORMAT_SUFFIXES.get(detected, ".csv"))


FORMAT_SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx", "json": ".json", "ndjson": ".ndjson", "parquet": ".parquet"}


def inbox_kinds(config: Config, organisation: str) -> dict[str, SourceConfig]:
    """The kinds the organisation delivers through the portal, each with its inbox source."""
    found: dict[str, SourceConfig] = {}
    for source in config.inbox_sources:
        if source.organisation == organisation:
            found.setdefault(source.kind, source)
    return found


def upload_limit(config: Config, organisation: str) -> int:
    """Bytes: the largest of the organisation's inboxes' limits (the portal's when none sets one)."""
    limits = [
        int(s.options.get("max_upload_mb", config.portal.max_upload_mb))
        for s in inbox_kinds(config, organisation).values()
    ]
    return max(limits or [config.portal.max_upload_mb]) * 1024 * 1024


def run_check(
    config: Config, mappings_dir: Path, path: Path, staged: StagedCheck, references: ReferenceKeys | None
) -> tuple[CheckReport, ColumnMapping | None, str | None]:
    """The check of a staged file, as the run will read it: the organisation's saved mapping, the
    inbox's format options (a survey-tool inbox through its adapter), references from the warehouse.
    Also returns the saved mapping, and why it could not be used (if it could not)."""
    inboxes = inbox_kinds(config, staged.organisation)
    chosen = inboxes.get(staged.kind_choice or "")
    if chosen is not None and chosen.format.type == "survey":
        return _survey_check(chosen, path, staged, references), None, None
    report = check_file(path, staged.kind_choice, name=staged.sent_as)
    kind = report.kind
    if kind is None:
        for source in (s for s in inboxes.values() if s.format.type == "survey" and staged.kind_choice is None):
            survey = _survey_check(source, path, staged, references)
            if not survey.whole_file_refused:
                return survey, None, None
        return report, None, None
    saved: ColumnMapping | None = None
    mapping_error = None
    try:
        saved = load_mapping(mappings_dir, staged.organisation, kind)
    except ColumnMappingError as error:
        mapping_error = str(error)
    inbox = inboxes.get(kind)
    fmt = inbox.format if inbox is not None else None
    options = ReadOptions(fmt.type, fmt.sheet, fmt.delimiter, fmt.encoding) if fmt is not None else None
    report = check_file(
        path,
        kind,
        options=options,
        references=references,
        columns=saved.columns if saved else None,
        name=staged.sent_as,
    )
    report.kind_guessed = staged.kind_choice is None
    return report, saved, mapping_error


def _survey_check(
    source: SourceConfig, path: Path, staged: StagedCheck, references: ReferenceKeys | None
) -> CheckReport:
    """A survey-tool export for an inbox that reads one: the adapter's rows, checked."""
    assert source.format.mapping is not None  # the config requires a mapping for survey sources
    report = check_survey_export(path, source.format.mapping, references=references, name=staged.sent_as)
    if not report.whole_file_refused:
        report.kind, report.kind_guessed = source.kind, staged.kind_choice is None
    return report


def mapping_rows(report: CheckReport, saved: ColumnMapping | None) -> list[dict[str, object]]:
    """The mapping form's rows: every delivered header, what it is matched to now, and the choices."""
    if report.kind is None:
        return []
    saved_columns = dict(saved.columns) if saved else {}
    return [
        {
            "header": header,
            "current": report.mapping.get(header, NOT_OURS),
            "saved": header in saved_columns,
            "choices": list(KINDS[report.kind].column_names),
        }
        for header in report.headers
    ]


def save_form_mapping(
    mappings_dir: Path, organisation: str, kind: str, headers: list[str], posted: Mapping[str, str]
) -> ColumnMapping:
    """Save what the mapping form posted (`map:<header index>` -> our column or "") as the
    organisation's mapping for `kind`, merged with what it had saved for other headers.

    Only headers whose name differs from the column chosen are stored: the rest match anyway."""
    try:
        saved = load_mapping(mappings_dir, organisation, kind)
    except ColumnMappingError:
        saved = None  # a broken saved mapping is replaced by the one the form sends
    columns = dict(saved.columns) if saved else {}
    for index, header in enumerate(headers):
        choice = posted.get(f"map:{index}")
        if choice is None:
            continue
        columns.pop(header, None)
        if choice != NOT_OURS and choice != header:
            columns[header] = choice
    problems = mapping_problems(kind, columns)
    if problems:
        raise ColumnMappingError("; ".join(problems))
    mapping = ColumnMapping(organisation, kind, columns)
    save_mapping(mappings_dir, mapping)
    return mapping


def submit_check(
    source: SourceConfig, path: Path, staged: StagedCheck, kind: str, pending_shas: set[str]
) -> Submission:
    """Move the checked file into the source's inbox, under a safe name derived from its own."""
    folder = source.inbox_folder
    stored = staged.stored_name
    previous = folder / stored
    replaced_pending = False
    if previous.is_file():
        replaced_pending = file_sha256(previous) in pending_shas
    submission = Submission(
        stored_name=stored,
        sent_as=staged.sent_as[:200],
        organisation=staged.organisation,
        kind=kind,
        size=os.path.getsize(path),
        sha256=file_sha256(path),
        submitted_at=now_text(),
        token_id=staged.token_id,
        replaced_pending=replaced_pending,
    )
    submit(folder, path, submission)
    return submission
