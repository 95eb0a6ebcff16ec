"""Erasure requests (`din forget`): take one panellist out of everything the network holds, for good.

Landing is immutable except here: the right to erasure outranks keeping files as delivered.

    find     every landing copy is searched for the person's records (by reference, and by the e-mail
             addresses their roster rows give, which survey tools key respondents by) and for mentions
             of their name, e-mail and phone in anyone else's cells (`transforms.redaction`)
    stage    each copy that changes is written redacted, as a new content-addressed object (nothing
             refers to it yet); then the journal is written: the plan, in landing, private
    landing  the landing log points at the redacted copies; the erasure register gains the person's
             erasure tokens and the redacted files (`warehouse.blocklist`)
    warehouse  in one transaction: the deliveries of the redacted copies are read again, exactly as
             their runs read them (their rows, quarantine, validation results and counts replaced;
             each keeps its run), then `ops.erasures` records the erasure
    publish  a new version without the person becomes current; `versions`: every other one is deleted
    reports, prefect  (steps given by the caller: feedback pages and reports regenerated, Prefect's
             records cleaned)
    objects  the original landing copies are deleted
    remote   the bucket forgets too (when object storage is configured)
    record   `ops.erasures` says it completed; the journal is deleted

Every step is idempotent and marked done in the journal only after its effect is durable, so a rerun
of the same `din forget` after a crash (even SIGKILL) finishes the job; until it has, `din run` and
`din rebuild` refuse to start (`before_run`). The person is identified in the journal and the audit
entry by erasure token only (keyed, `transforms.blocklist`), never by reference or pseudonym.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import duckdb

from din import faults
from din.config import Config, FormatOptions
from din.contract import KINDS, kinds_by_level
from din.errors import DinError, WarehouseBusy
from din.keys import PseudonymKey, resolve_key, resolve_previous_key
from din.lock import writer_lock
from din.paths import DataPaths
from din.sql import literal, quote
from expectations.gate import process_batch
from transforms.blocklist import Blocklist, erasure_token
from transforms.disclosure import DisclosureRule
from transforms.pseudonymise import pseudonym
from transforms.redaction import (
    Blocked,
    Layout,
    MentionFinder,
    Person,
    PolisPerson,
    Redaction,
    Whom,
    file_role,
    file_rows,
    polis_participants,
    polis_person,
    redact,
    unsearchable,
)
from transforms.scrub import AnyMentions, Mentions, PersonIdentifiers, email_key, mention_tokens
from warehouse.batches import batch_specs
from warehouse.blocklist import (
    FOLDER,
    add_erasure,
    blocklist_for_erasure,
    open_blocklist,
    read_register,
    write_private,
)
from warehouse.landing import INCOMING, land
from warehouse.manifest import LANDING_LOG, PendingDelivery, companion_files, json_text, now, read_landing_log
from warehouse.marts import published_marts
from warehouse.merge import refresh_key_conflicts, replace_results
from warehouse.publish import publish, publish_fingerprint, release_metadata
from warehouse.remote import forget_remote
from warehouse.runs import clear_leftovers, new_run_id
from warehouse.schema import connect, core_rebuild_sql, create_schema

if TYPE_CHECKING:
    from transforms.adapters import SurveyMapping

log = logging.getLogger("din")

#: Kinds whose rows are about (or written by) a panellist: every pseudonymised column names one.
PERSONAL_KINDS = tuple(name for name, kind in KINDS.items() if kind.pseudonymised_columns)


def _theirs(name: str) -> str:
    """SQL that is TRUE for a row of kind `name` about or by the person (parameters: panel, pseudonyms per column)."""
    columns = KINDS[name].pseudonymised_columns
    return "panel_id = ? AND (" + " OR ".join(f"list_contains(?, {quote(c)})" for c in columns) + ")"


def _their_params(name: str, panel_id: str, pseudonyms: Sequence[str]) -> list[Any]:
    return [panel_id, *([list(pseudonyms)] * len(KINDS[name].pseudonymised_columns))]


STEPS = ("landing", "warehouse", "publish", "versions", "reports", "prefect", "objects", "remote", "record")
JOURNAL_PREFIX = "journal-"


class PanellistNotFound(DinError):
    """Nobody with that reference on that panel: nothing was changed."""

    exit_code = 1


class ErasureIncomplete(DinError):
    """An erasure was interrupted: it must be finished (by running it again) before anything else."""


# --- what landing holds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LandingCopy:
    """One landing object, and the deliveries whose content it is."""

    relative: str  # objects/ab/ab12...csv, relative to the landing folder
    sha256: str
    name: str  # the delivered file as its source named it (for messages and its format)
    source: str | None
    delivery_ids: tuple[int, ...] = ()
    shown: str = ""  # how the contributor knows the file: its path within their source

    @property
    def label(self) -> str:
        return self.shown or self.name


def landing_copies(landing_dir: Path) -> list[LandingCopy]:
    """Every object in landing: the logged ones with their deliveries, then any the log does not name."""
    by_object: dict[str, list[dict[str, Any]]] = {}
    for entry in read_landing_log(landing_dir):
        by_object.setdefault(str(entry.get("landing_path") or ""), []).append(entry)
    copies = []
    for relative, entries in sorted(by_object.items()):
        if not (landing_dir / relative).is_file():
            continue
        first = entries[0]
        copies.append(
            LandingCopy(
                relative,
                str(first.get("sha256") or Path(relative).name[:64]),
                str(first.get("original_path") or relative),
                first.get("source"),
                tuple(sorted(int(e["delivery_id"]) for e in entries if e.get("delivery_id") is not None)),
                str(first.get("relative_path") or ""),
            )
        )
    objects = landing_dir / "objects"
    for path in sorted(objects.glob("*/*")) if objects.is_dir() else []:
        relative = path.relative_to(landing_dir).as_posix()
        if path.is_file() and not path.name.startswith(".") and relative not in by_object:
            copies.append(LandingCopy(relative, path.name[:64], relative, None))
    return copies


def layout_for(copy: LandingCopy, config: Config, data: bytes, polis: PolisPerson | None = None) -> Layout:
    """How the pipeline reads this copy: its source's format options (a survey source: its mapping); a file
    of a Polis export the person is in: who they are in that export (`polis_people`)."""
    sources = {s.name: s for s in config.all_sources}
    options = sources[copy.source].format if copy.source in sources else FormatOptions()
    if options.type == "survey" and options.mapping is not None:
        from transforms.adapters import MappingError, load_mapping

        try:
            mapping = load_mapping(options.mapping)
        except (MappingError, OSError):
            return Layout.for_file(copy.name, data)
        fmt = "xlsx" if Path(copy.relative).suffix.lower() in (".xlsx", ".xlsm") else "csv"
        keep = frozenset({"question"}) if mapping.tool == "mentimeter" else frozenset()
        return Layout(
            fmt,
            survey_column=mapping.panellist_column,
            survey_panel=mapping.panel_id,
            keep=keep,
            polis=polis if mapping.tool == "polis" else None,
        )
    return Layout.for_file(copy.name, data, options.type, options.encoding, options.delimiter, options.columns)


def _polis_mappings(config: Config) -> dict[str, SurveyMapping]:
    """The mapping of each source that delivers Polis exports, by source name."""
    from transforms.adapters import MappingError, load_mapping

    found = {}
    for source in config.all_sources:
        if source.format.type == "survey" and source.format.mapping is not None:
            try:
                mapping = load_mapping(source.format.mapping)
            except (MappingError, OSError):
                continue
            if mapping.tool == "polis":
                found[source.name] = mapping
    return found


def _export_of(copy: LandingCopy) -> tuple[str, str]:
    """The export a file belongs to: its source's files in the same folder (as `companion_files` pairs them)."""
    return str(copy.source), Path(copy.shown or copy.name).parent.as_posix()


def polis_people(
    config: Config, landing_dir: Path, copies: Sequence[LandingCopy], whom: Whom
) -> dict[str, PolisPerson]:
    """Each landing copy of a Polis export that holds the person (by `relative`): who they are in it.

    The person is looked for in every file of the export, every version of it (a participants-votes.csv's
    xid names the participant of votes.csv); each file's counts are made again with the files delivered
    with it (`_delivered_with`)."""
    from transforms.adapters.polis import participant_key

    mappings = _polis_mappings(config)
    exports: dict[tuple[str, str], list[LandingCopy]] = {}
    for copy in copies:
        if copy.source in mappings:
            exports.setdefault(_export_of(copy), []).append(copy)
    found: dict[str, PolisPerson] = {}
    for (source, _), files in exports.items():
        mapping = mappings[source]
        data = {c.relative: (landing_dir / c.relative).read_bytes() for c in files}
        key = partial(participant_key, mapping)
        participants = polis_participants(data.values(), mapping.panel_id, mapping.panellist_column or "", whom, key)
        if not participants:
            continue
        keys = {participant: key(participant) for participant in participants}
        roles = {relative: file_role(file_rows(content)) for relative, content in data.items()}
        for copy in files:
            export = {role: data[c.relative] for role, c in _delivered_with(copy, files, roles).items()}
            found[copy.relative] = polis_person(mapping.panel_id, participants, export, keys)
    return found


def _delivered_with(
    copy: LandingCopy, files: Sequence[LandingCopy], roles: Mapping[str, str | None]
) -> dict[str, LandingCopy]:
    """For each file of the export (by role), the version delivered with `copy`: the latest delivered by the
    time `copy` was (the earliest when all came later)."""

    def first(c: LandingCopy) -> int:
        return min(c.delivery_ids, default=0)

    by_role: dict[str, list[LandingCopy]] = {}
    for other in files:
        role = roles.get(other.relative)
        if role is not None:
            by_role.setdefault(role, []).append(other)
    chosen = {}
    for role, versions in by_role.items():
        if copy in versions:
            chosen[role] = copy
            continue
        earlier = [c for c in versions if first(c) <= max(copy.delivery_ids, default=0)]
        chosen[role] = max(earlier, key=first) if earlier else min(versions, key=first)
    return chosen


def _redactions(
    config: Config,
    landing_dir: Path,
    copies: Sequence[LandingCopy],
    whom: Whom,
    mentions: MentionFinder | None = None,
    among: Sequence[LandingCopy] | None = None,
) -> Iterator[tuple[LandingCopy, Redaction]]:
    """Each of `copies` redacted (`transforms.redaction.redact`) as the pipeline reads it; a Polis export's
    files with what all of the export's files (in `among`, default: all of landing) say of the person."""
    people = polis_people(config, landing_dir, landing_copies(landing_dir) if among is None else among, whom)
    polis_sources = set(_polis_mappings(config))
    for copy in copies:
        data = (landing_dir / copy.relative).read_bytes()
        redaction = redact(data, copy.name, layout_for(copy, config, data, people.get(copy.relative)), whom, mentions)
        if copy.source in polis_sources:  # a file the adapter reads that redaction cannot search is said, loudly
            why = unsearchable(landing_dir / copy.relative, data)
            if why is not None:
                redaction = replace(redaction, note="; ".join(filter(None, (redaction.note, why))), unchecked=True)
        yield copy, redaction


# --- finding the person ---------------------------------------------------------------------------


@dataclass
class Findings:
    """Where the person is in landing, and how they are identified."""

    person: Person
    changes: list[tuple[LandingCopy, Redaction]] = field(default_factory=list)
    notes: list[tuple[LandingCopy, Redaction]] = field(default_factory=list)  # copies read line by line, or not
    identities: set[str] = field(default_factory=set)  # panellist cells as typed, the reference included
    identifiers: PersonIdentifiers = field(default_factory=PersonIdentifiers)


def find_person(config: Config, landing_dir: Path, panel_id: str, panellist_ref: str) -> Findings:
    """Search every landing copy: first for the person's own records (which say who they are: names,
    e-mails, phones), then again with everything learnt, for their records and for mentions of them."""
    copies = landing_copies(landing_dir)
    person = Person(panel_id.strip(), frozenset({panellist_ref.strip()}))
    identifiers = PersonIdentifiers()
    for _, redaction in _redactions(config, landing_dir, copies, person, among=copies):
        identifiers = identifiers | redaction.identifiers
    person = Person(person.panel_id, person.refs, frozenset(email_key(e) for e in identifiers.emails))
    mentions = Mentions(identifiers)
    findings = Findings(person, identities={panellist_ref.strip()}, identifiers=identifiers)
    for copy, redaction in _redactions(config, landing_dir, copies, person, mentions, among=copies):
        if redaction.changed:
            findings.changes.append((copy, redaction))
            findings.identities |= redaction.identities
            findings.identifiers = findings.identifiers | redaction.identifiers
        if redaction.note:
            findings.notes.append((copy, redaction))
    return findings


def person_rows_in_warehouse(
    con: duckdb.DuckDBPyConnection, panel_id: str, pseudonyms: Sequence[str]
) -> dict[str, int]:
    """Rows of the person (by pseudonym) in each core table, and quarantine records naming them."""
    counts = {}
    for name in PERSONAL_KINDS:
        counts[name] = con.execute(
            f"SELECT count(*) FROM core.{quote(name)} WHERE {_theirs(name)}", _their_params(name, panel_id, pseudonyms)
        ).fetchall()[0][0]
    counts["quarantine"] = con.execute(
        "SELECT count(*) FROM ops.quarantine WHERE list_has_any(?, regexp_extract_all(\"values\", 'pn_[0-9a-f]+'))",
        [list(pseudonyms)],
    ).fetchall()[0][0]
    return {k: int(v) for k, v in counts.items()}


# --- the journal ----------------------------------------------------------------------------------


@dataclass
class FileChange:
    """One landing copy an erasure rewrites."""

    relative: str
    sha256: str
    name: str  # as the contributor knows it (path within their source)
    source: str | None
    delivery_ids: list[int]
    new_relative: str
    new_sha256: str
    new_size: int
    rows: list[str]  # where the person's records were
    mentions: int
    recounted: int = 0  # counts made from their records (a Polis export's), made again without them


@dataclass
class Journal:
    """An erasure's plan and progress, kept private in landing until it completes."""

    erasure_id: str
    panel_id: str
    token: str  # the erasure token of the reference asked for: a rerun finds its journal by it
    tokens: list[str]  # every identity's token (what the blocklist gains)
    pseudonyms: list[str]  # every identity's pseudonym under the current key (what must go from the warehouse)
    mention_tokens: list[str]  # keyed tokens of their name, e-mails, phones (the scrubber's, for later files)
    requested_by: str
    requested_at: str
    changes: list[FileChange] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # copies that could not be read as tables, and how
    done: list[str] = field(default_factory=list)
    version: str | None = None  # the version published without the person
    results: dict[str, Any] = field(default_factory=dict)  # each step's account (counts only)

    @staticmethod
    def path_for(landing_dir: Path, erasure_id: str) -> Path:
        return landing_dir / FOLDER / f"{JOURNAL_PREFIX}{erasure_id}.json"

    def save(self, landing_dir: Path) -> None:
        data = json.dumps(asdict(self), indent=1, sort_keys=True, default=str).encode("utf-8")
        write_private(self.path_for(landing_dir, self.erasure_id), data)

    @classmethod
    def load(cls, path: Path) -> Journal:
        raw = json.loads(path.read_text(encoding="utf-8"))
        raw["changes"] = [FileChange(**c) for c in raw.get("changes", [])]
        return cls(**raw)

    def remove(self, landing_dir: Path) -> None:
        self.path_for(landing_dir, self.erasure_id).unlink(missing_ok=True)


def pending_journals(landing_dir: Path) -> list[Journal]:
    """Erasures that started and have not completed, oldest first."""
    folder = landing_dir / FOLDER
    found = sorted(folder.glob(f"{JOURNAL_PREFIX}*.json")) if folder.is_dir() else []
    return sorted((Journal.load(p) for p in found), key=lambda j: j.requested_at)


def incomplete_message(journal: Journal) -> str:
    return (
        f"erasure {journal.erasure_id} (requested by {journal.requested_by} at {journal.requested_at[:19]} UTC, "
        f"panel {journal.panel_id}) was interrupted before it completed. Run the same `din forget` again to "
        "finish it; nothing else may run until it has."
    )


def refuse_if_erasure_pending(landing_dir: Path) -> None:
    """Raise ErasureIncomplete when an erasure was interrupted: it must be finished before anything runs."""
    pending = pending_journals(landing_dir)
    if pending:
        raise ErasureIncomplete(incomplete_message(pending[0]))


def before_run(config: Config, paths: DataPaths, key: PseudonymKey) -> Blocklist:
    """What a run checks before any work: no erasure half done, and the blocklist open (sealed again
    under `key` after a key rotation, given the previous key)."""
    refuse_if_erasure_pending(paths.landing)
    return open_blocklist(paths.landing, key, resolve_previous_key(config))


def requester() -> str:
    """Who runs the command (the operating-system user), for `--requested-by`'s default."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


# --- the steps ------------------------------------------------------------------------------------


@dataclass
class ErasureContext:
    """What each step works with."""

    config: Config
    paths: DataPaths
    key: PseudonymKey
    journal: Journal
    panellist_ref: str
    identifiers: PersonIdentifiers  # the person's names, e-mails, phones, postcodes (held in memory only)


Step = Callable[[ErasureContext], dict[str, Any]]


def stage(config: Config, paths: DataPaths, findings: Findings, journal: Journal) -> Journal:
    """Write each redacted copy into landing (content-addressed; nothing refers to it yet), then the journal."""
    for copy, redaction in findings.changes:
        landed = land(paths.landing, _writer(redaction.data), Path(copy.relative).suffix)
        assert landed is not None
        journal.changes.append(
            FileChange(
                copy.relative,
                copy.sha256,
                copy.label,
                copy.source,
                list(copy.delivery_ids),
                landed.path.relative_to(paths.landing).as_posix(),
                landed.sha256,
                landed.size,
                list(redaction.rows),
                redaction.mentions,
                redaction.recounted,
            )
        )
        faults.checkpoint("forget-stage")  # a redacted copy is in landing; no journal yet
    journal.notes = [_note(copy, redaction) for copy, redaction in findings.notes]
    journal.save(paths.landing)
    return journal


def _note(copy: LandingCopy, redaction: Redaction) -> dict[str, Any]:
    """A copy that could not be read as a table: how it was handled, and whether it needs a person's eyes."""
    return {"file": copy.label, "source": copy.source or "", "note": redaction.note, "unchecked": redaction.unchecked}


def _writer(data: bytes) -> Callable[[BinaryIO], bool]:
    def write(sink: BinaryIO) -> bool:
        sink.write(data)
        return True

    return write


def _write_log(landing: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """Replace the landing log atomically, through a private temporary file; its mode stays."""
    log_path = landing / LANDING_LOG
    if not log_path.exists():
        return
    mode = log_path.stat().st_mode & 0o777
    temporary = landing / f".{LANDING_LOG}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("".join(json_text(e) + "\n" for e in entries))
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, log_path)


def rewrite_landing(ctx: ErasureContext) -> dict[str, Any]:
    """The landing log names the redacted copies; the register gains the person's tokens and the redactions."""
    landing = ctx.paths.landing
    moved = {c.sha256: c for c in ctx.journal.changes}
    entries = read_landing_log(landing)
    for entry in entries:
        change = moved.get(str(entry.get("sha256")))
        if change is not None:
            entry.update(sha256=change.new_sha256, landing_path=change.new_relative, size=change.new_size)
    _write_log(landing, entries)
    erased_at = ctx.journal.requested_at
    add_erasure(
        landing,
        ctx.key,
        [
            {"token": t, "panel_id": ctx.journal.panel_id, "erasure_id": ctx.journal.erasure_id, "erased_at": erased_at}
            for t in ctx.journal.tokens
        ],
        {c.sha256: c.new_sha256 for c in ctx.journal.changes},
        ctx.journal.mention_tokens,
    )
    return {"files_redacted": len(ctx.journal.changes), "tokens_added": len(ctx.journal.tokens)}


def clean_warehouse(ctx: ErasureContext) -> dict[str, Any]:
    """In one transaction: the redacted copies' deliveries point at them and are read again; anything
    left of the person (by pseudonym) goes; `ops.erasures` records the erasure as in progress."""
    con = connect(ctx.paths.warehouse)
    try:
        create_schema(con)
        before = ctx.journal.results.get("warehouse_before")
        if before is None:  # counted once, before the first attempt (a rerun after a crash must not count 0)
            before = _table_counts(con)
            ctx.journal.results["warehouse_before"] = before
            ctx.journal.save(ctx.paths.landing)
        work = ctx.paths.run_work(ctx.journal.erasure_id)
        blocklist = open_blocklist(ctx.paths.landing, ctx.key)
        con.execute("BEGIN TRANSACTION")
        try:
            for change in ctx.journal.changes:
                new_path = str(ctx.paths.landing / change.new_relative)
                con.execute(
                    "UPDATE ops.deliveries SET sha256 = ?, landing_path = ?, size = ? WHERE sha256 = ?",
                    [change.new_sha256, new_path, change.new_size, change.sha256],
                )
                con.execute(
                    "UPDATE ops.source_files SET sha256 = ? WHERE sha256 = ?", [change.new_sha256, change.sha256]
                )
            redacted = [str(ctx.paths.landing / c.new_relative) for c in ctx.journal.changes]
            shas = [c.new_sha256 for c in ctx.journal.changes] + _reading_beside(con, ctx.config, redacted)
            reread = _read_again(con, ctx, shas, work, blocklist)
            residual = _sweep(con, ctx.journal.panel_id, ctx.journal.pseudonyms)
            after = _table_counts(con)
            removed = {name: before[name] - after[name] for name in before if before[name] != after[name]}
            con.execute(
                """INSERT OR REPLACE INTO ops.erasures (erasure_id, erased_at, panel_id, rows_removed,
                       landing_files_redacted, run_id, requested_by, requested_at, erasure_token, status, files)
                   VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, 'in_progress', ?)""",
                [
                    ctx.journal.erasure_id,
                    ctx.journal.requested_at,
                    ctx.journal.panel_id,
                    json_text(removed),
                    len(ctx.journal.changes),
                    ctx.journal.requested_by,
                    ctx.journal.requested_at,
                    ctx.journal.token,
                    json_text(_files(ctx.journal)),
                ],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
        shutil.rmtree(ctx.paths.run_work(ctx.journal.erasure_id), ignore_errors=True)
    compact(ctx.paths.warehouse)
    if residual:
        log.warning(
            "erasure %s: %d row(s) of the person had no landing copy left and were deleted",
            ctx.journal.erasure_id,
            residual,
        )
    return {"rows_removed": removed, "deliveries_read_again": reread, "rows_without_landing_copy": residual}


COMPACTING = ".compacting"


def compact(path: Path) -> None:
    """Rewrite the database file from its live contents: DuckDB leaves deleted rows' bytes in the file's
    free blocks, which must not keep what an erasure deleted. Written aside (private), then swapped in."""
    temporary = path.with_name(f".{path.name}{COMPACTING}")
    for stale in (temporary, Path(f"{temporary}.wal")):
        stale.unlink(missing_ok=True)
    mode = path.stat().st_mode & 0o777
    previous = os.umask(0o077)
    try:
        con = duckdb.connect(str(path))
        try:
            (name,) = con.execute("SELECT current_database()").fetchall()[0]
            con.execute(f"ATTACH {literal(str(temporary))} AS compacted")
            con.execute(f"COPY FROM DATABASE {quote(name)} TO compacted")
            con.execute("DETACH compacted")
        finally:
            con.close()
    finally:
        os.umask(previous)
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)
    Path(f"{path}.wal").unlink(missing_ok=True)


def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    counts = {name: con.execute(f"SELECT count(*) FROM core.{quote(name)}").fetchall()[0][0] for name in PERSONAL_KINDS}
    counts["quarantine"] = con.execute("SELECT count(*) FROM ops.quarantine").fetchall()[0][0]
    return {k: int(v) for k, v in counts.items()}


def _files(journal: Journal) -> list[dict[str, Any]]:
    files = [
        {"file": c.name, "source": c.source, "rows_blanked": len(c.rows), "mentions_replaced": c.mentions}
        | ({"counts_recomputed": c.recounted} if c.recounted else {})
        for c in journal.changes
    ]
    return sorted(files, key=lambda f: (str(f["source"]), str(f["file"])))


def _read_again(
    con: duckdb.DuckDBPyConnection, ctx: ErasureContext, shas: Sequence[str], work: Path, blocklist: Blocklist
) -> int:
    """The processed (and superseded) deliveries of these contents, read again level by level as their
    runs read them; returns how many."""
    rows = con.execute(
        """SELECT delivery_id, source, organisation, kind, original_path, landing_path, size, supersedes, status
           FROM ops.deliveries WHERE list_contains(?, sha256) AND status IN ('processed', 'superseded')
           ORDER BY delivery_id""",
        [list(shas)],
    ).fetchall()
    if not rows:
        return 0
    active = [r[0] for r in rows if r[8] == "processed"]
    os.makedirs(work, mode=0o700, exist_ok=True)
    for level, kinds in enumerate(kinds_by_level()):
        names = {k.name for k in kinds}
        pending = [PendingDelivery(*r[:8]) for r in rows if r[3] in names]
        if not pending:
            continue
        specs = batch_specs(con, ctx.config, ctx.paths, work, level, kinds, pending, ctx.key, blocklist, "erasure-l")
        results = [process_batch(spec) for spec in specs]
        touched = replace_results(con, results, active) | {p.kind for p in pending}
        for name in sorted(touched, key=lambda n: KINDS[n].level):
            con.execute(core_rebuild_sql(KINDS[name]))
            refresh_key_conflicts(con, KINDS[name], ctx.journal.erasure_id)  # their key may have been one
    return len(rows)


def _reading_beside(con: duckdb.DuckDBPyConnection, config: Config, landing_paths: Sequence[str]) -> list[str]:
    """The contents (SHA-256) of tool exports' deliveries that read one of these landing copies beside them
    (votes.csv reads comments.csv for the statements' text): they read differently once it is redacted."""
    surveys = [s.name for s in config.all_sources if s.format.type == "survey"]
    rows = con.execute(
        """SELECT delivery_id, sha256 FROM ops.deliveries
           WHERE list_contains(?, source) AND status IN ('processed', 'superseded')""",
        [surveys],
    ).fetchall()
    if not rows:
        return []
    wanted = set(landing_paths)
    beside = companion_files(con, [d for d, _ in rows])
    return sorted({sha for d, sha in rows if any(landing in wanted for _, landing in beside.get(d, ()))})


def _sweep(con: duckdb.DuckDBPyConnection, panel_id: str, pseudonyms: Sequence[str]) -> int:
    """Whatever is left of the person by pseudonym (rows whose landing copy is gone): deleted, counted."""
    found = 0
    for name in PERSONAL_KINDS:
        for schema in ("stg", "core"):
            found += con.execute(
                f"DELETE FROM {schema}.{quote(name)} WHERE {_theirs(name)}", _their_params(name, panel_id, pseudonyms)
            ).fetchall()[0][0]
    found += con.execute(
        "DELETE FROM ops.quarantine WHERE list_has_any(?, regexp_extract_all(\"values\", 'pn_[0-9a-f]+'))",
        [list(pseudonyms)],
    ).fetchall()[0][0]
    found += con.execute(  # a key two organisations delivered names the person by pseudonym
        "DELETE FROM ops.key_conflicts WHERE list_has_any(?, regexp_extract_all(key, 'pn_[0-9a-f]+'))",
        [list(pseudonyms)],
    ).fetchall()[0][0]
    samples = con.execute(
        "SELECT rowid, unexpected_sample FROM ops.validation_results WHERE list_has_any(?, "
        "regexp_extract_all(unexpected_sample, 'pn_[0-9a-f]+'))",
        [list(pseudonyms)],
    ).fetchall()
    for rowid, sample in samples:
        kept = [v for v in json.loads(sample or "[]") if not any(p in str(v) for p in pseudonyms)]
        con.execute(
            "UPDATE ops.validation_results SET unexpected_sample = ? WHERE rowid = ?", [json.dumps(kept), rowid]
        )
    return int(found)


def publish_without(ctx: ErasureContext) -> dict[str, Any]:
    """A new version, made from the warehouse without the person, becomes current."""
    rule = DisclosureRule.from_config(ctx.config.disclosure)
    version = new_run_id()
    con = connect(ctx.paths.warehouse)
    try:
        metadata = release_metadata(ctx.config, ctx.key, version, rule, reason=f"erasure {ctx.journal.erasure_id}")
        result = publish(
            con,
            ctx.paths,
            version,
            published_marts(ctx.config.partition_by_panel, ctx.config.panel_buckets),
            metadata,
            rule,
        )
        con.execute(
            "INSERT INTO ops.publishes VALUES (?, now()::TIMESTAMP, ?, ?)",
            [version, result.version, publish_fingerprint(con, ctx.config, ctx.key)],
        )
        con.execute("UPDATE ops.erasures SET run_id = ? WHERE erasure_id = ?", [result.version, ctx.journal.erasure_id])
    finally:
        con.close()
    ctx.journal.version = result.version
    return {"version": result.version, "rows": result.rows}


def drop_other_versions(ctx: ErasureContext) -> dict[str, Any]:
    """Every published version but the one made without the person is deleted."""
    assert ctx.journal.version is not None
    return {"deleted": drop_old_versions(ctx.paths.published, ctx.paths.published / "versions" / ctx.journal.version)}


def drop_old_versions(published_dir: Path, keep: Path) -> int:
    """Delete every published version but `keep`: older versions still hold the erased person."""
    removed = 0
    versions = published_dir / "versions"
    for version in versions.iterdir():
        if version.is_dir() and version.resolve() != keep.resolve():
            shutil.rmtree(version)
            removed += 1
    return removed


def delete_originals(ctx: ErasureContext) -> dict[str, Any]:
    """The original landing copies go, once nothing (log or warehouse) names them."""
    named = {str(e.get("landing_path")) for e in read_landing_log(ctx.paths.landing)}
    deleted = 0
    for change in ctx.journal.changes:
        path = ctx.paths.landing / change.relative
        if change.relative in named or not path.exists():
            continue
        os.chmod(path, 0o600)
        path.unlink()
        deleted += 1
    return {"deleted": deleted}


def forget_in_bucket(ctx: ErasureContext) -> dict[str, Any]:
    """The bucket's copies of landing and of the published versions forget too (when configured)."""
    storage = ctx.config.storage
    if storage is None:
        return {"configured": False}
    assert ctx.journal.version is not None
    gone = [c.relative for c in ctx.journal.changes]
    deleted = forget_remote(storage, ctx.paths.landing, ctx.paths.published, ctx.journal.version, gone=gone)
    return {"configured": True, "landing_objects_deleted": deleted, "version_kept": ctx.journal.version}


def record_completion(ctx: ErasureContext) -> dict[str, Any]:
    """`ops.erasures` says the erasure completed, with everything it touched (counts only)."""
    touched = {name: ctx.journal.results.get(name) for name in STEPS if name not in ("warehouse", "record")}
    con = connect(ctx.paths.warehouse)
    try:
        con.execute(
            "UPDATE ops.erasures SET status = 'completed', erased_at = ?, run_id = ?, touched = ? WHERE erasure_id = ?",
            [now(), ctx.journal.version, json_text(touched), ctx.journal.erasure_id],
        )
    finally:
        con.close()
    return {"status": "completed"}


BUILT_IN: dict[str, Step] = {
    "landing": rewrite_landing,
    "warehouse": clean_warehouse,
    "publish": publish_without,
    "versions": drop_other_versions,
    "objects": delete_originals,
    "remote": forget_in_bucket,
    "record": record_completion,
}


# --- erased panellists sent again -------------------------------------------------------------------


def redact_blocked(
    con: duckdb.DuckDBPyConnection, config: Config, paths: DataPaths, key: PseudonymKey, blocklist: Blocklist
) -> int:
    """After a run: landing copies of deliveries whose rows of erased panellists were dropped (a partner
    sent them again, in a changed file) are redacted as an erasure redacts them, so that landing does not
    keep them either; mentions of them (their names, e-mails, phones from the rows dropped) in the run's
    other files go too. Their warehouse rows need no change: the blocked rows were never loaded, and a
    blank row reads as padding. Idempotent: a copy already redacted is known by the register. Returns
    how many copies were redacted."""
    if not blocklist:
        return 0
    done = set(read_register(paths.landing).redactions.values())
    blocked = con.execute(
        """SELECT DISTINCT sha256 FROM ops.deliveries
           WHERE coalesce(rows_blocked, 0) > 0 AND status IN ('processed', 'superseded')"""
    ).fetchall()
    shas = {sha for (sha,) in blocked if sha not in done}
    if not shas:
        return 0
    everything = landing_copies(paths.landing)
    copies = _with_their_exports(config, everything, [c for c in everything if c.sha256 in shas], done)
    whom = Blocked(blocklist)
    identifiers = PersonIdentifiers()
    for _, redaction in _redactions(config, paths.landing, copies, whom, among=everything):
        identifiers = identifiers | redaction.identifiers
    mentions = AnyMentions(Mentions(identifiers), blocklist.erased_mentions())
    if mentions:  # the run's other files may mention them: those are redacted too
        runs = con.execute(
            "SELECT DISTINCT sha256 FROM ops.deliveries WHERE processed_run_id IN (SELECT processed_run_id "
            "FROM ops.deliveries WHERE list_contains(?, sha256))",
            [sorted(shas)],
        ).fetchall()
        wanted = {sha for (sha,) in runs} - done
        copies = _with_their_exports(config, everything, [c for c in everything if c.sha256 in wanted], done)
    moved: dict[str, tuple[LandingCopy, Path, int, str]] = {}
    for copy, redaction in _redactions(config, paths.landing, copies, whom, mentions, among=everything):
        if not redaction.changed:
            continue
        landed = land(paths.landing, _writer(redaction.data), Path(copy.relative).suffix)
        assert landed is not None
        moved[copy.sha256] = (copy, landed.path, landed.size, landed.sha256)
    if not moved:
        return 0
    add_erasure(paths.landing, key, [], {old: new for old, (_, _, _, new) in moved.items()})
    entries = read_landing_log(paths.landing)
    for entry in entries:
        if str(entry.get("sha256")) in moved:
            _, path, size, sha = moved[str(entry["sha256"])]
            entry.update(sha256=sha, landing_path=path.relative_to(paths.landing).as_posix(), size=size)
    _write_log(paths.landing, entries)
    con.execute("BEGIN TRANSACTION")
    try:
        for old, (_, path, size, sha) in moved.items():
            con.execute(
                "UPDATE ops.deliveries SET sha256 = ?, landing_path = ?, size = ? WHERE sha256 = ?",
                [sha, str(path), size, old],
            )
            con.execute("UPDATE ops.source_files SET sha256 = ? WHERE sha256 = ?", [sha, old])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for copy, _, _, _ in moved.values():
        original = paths.landing / copy.relative
        if original.exists():
            os.chmod(original, 0o600)
            original.unlink()
    if config.storage is not None and config.storage.landing:
        from warehouse.remote import forget_remote_landing

        forget_remote_landing(config.storage, paths.landing, [c.relative for c, _, _, _ in moved.values()])
    log.warning(
        "%d landing cop(ies) held rows of erased panellists sent again: redacted (their rows were not loaded)",
        len(moved),
    )
    return len(moved)


def _with_their_exports(
    config: Config, everything: Sequence[LandingCopy], chosen: Sequence[LandingCopy], done: set[str]
) -> list[LandingCopy]:
    """`chosen`, and the other files of the Polis exports among them (a participant is in each of an
    export's files, but only those with their votes or statements count rows blocked), not redacted yet."""
    mappings = _polis_mappings(config)
    exports = {_export_of(c) for c in chosen if c.source in mappings}
    others = [
        c
        for c in everything
        if c.source in mappings and _export_of(c) in exports and c.sha256 not in done and c not in chosen
    ]
    return [*chosen, *others]


# --- the command --------------------------------------------------------------------------------


@dataclass
class ErasureReport:
    """What an erasure did (or, in a dry run, would do): counts and file names, nothing of the person."""

    erasure_id: str | None
    panel_id: str
    requested_by: str
    requested_at: str
    files: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    resumed: bool = False
    already_erased: bool = False
    dry_run: bool = False

    @property
    def rows_removed(self) -> dict[str, int]:
        found: dict[str, int] = (self.results.get("warehouse") or {}).get("rows_removed", {})
        return found

    @property
    def landing_files_redacted(self) -> int:
        return len(self.files)

    @property
    def unchecked(self) -> list[str]:
        """Landing copies that could not be read at all: the person may be in them (they need a person's eyes)."""
        return [str(n["file"]) for n in self.notes if n.get("unchecked")]


def clear_erasure_leftovers(paths: DataPaths) -> list[Path]:
    """Temporary files interrupted landings and erasures left (only called under the writer lock)."""
    landing, objects = paths.landing, paths.landing / "objects"
    found = list(landing.glob(".redacting-*")) + list(landing.glob(f".{LANDING_LOG}.*"))
    found += list(objects.glob(f"*/{INCOMING}*")) + list(objects.glob(f"{INCOMING}*"))
    found += list((landing / FOLDER).glob(".*")) + list(paths.root.glob(f".*{COMPACTING}*"))
    for path in found:
        path.unlink(missing_ok=True)
    return found


def forget_panellist(
    config: Config,
    panel_id: str,
    panellist_ref: str,
    requested_by: str | None = None,
    *,
    steps: Mapping[str, Step] | None = None,
    dry_run: bool = False,
) -> ErasureReport:
    """Erase one panellist from landing, the warehouse, every published version, the bucket and, with
    `steps` for `reports` and `prefect`, whatever those steps clean. Resumes an interrupted erasure of
    the same person. Raises PanellistNotFound (nothing changed) for someone the network never held."""
    key = resolve_key(config)
    paths = DataPaths(config.data_dir)
    panel_id, panellist_ref = panel_id.strip(), panellist_ref.strip()
    requested_by = requested_by or requester()
    if dry_run:
        return _dry_run(config, paths, key, panel_id, panellist_ref, requested_by)
    with writer_lock(paths.lock, config.lock_timeout_seconds):
        for leftover in clear_erasure_leftovers(paths) + clear_leftovers(paths):
            log.info("removed %s, left behind by an interrupted run or erasure", leftover)
        register = read_register(paths.landing)  # no register yet: nobody was erased, no journal can exist
        previous = resolve_previous_key(config)
        known = open_blocklist(paths.landing, key, previous) if register.sealed_key is not None else None
        token = erasure_token(known.key, panel_id, panellist_ref) if known is not None else None
        pending = pending_journals(paths.landing)
        journal = next((j for j in pending if token is not None and j.token == token), None)
        if journal is None and pending:
            raise ErasureIncomplete(incomplete_message(pending[0]))
        resumed = journal is not None
        if journal is None:
            findings = find_person(config, paths.landing, panel_id, panellist_ref)
            pseudonyms = sorted({pseudonym(key.secret, panel_id, i) for i in findings.identities})
            if not findings.changes and not _in_warehouse(paths, panel_id, pseudonyms):
                if known is not None and token in known.tokens:
                    return ErasureReport(None, panel_id, requested_by, now().isoformat(), already_erased=True)
                raise PanellistNotFound(_not_found_message(paths, panel_id, panellist_ref))
            blocklist = blocklist_for_erasure(paths.landing, key)  # its key is made at the first erasure
            token = erasure_token(blocklist.key, panel_id, panellist_ref)
            identities = findings.identities | {e for e in findings.identifiers.emails}
            journal = Journal(
                "erasure-" + secrets.token_hex(6),
                panel_id,
                token,
                sorted({erasure_token(blocklist.key, panel_id, i) for i in identities}),
                pseudonyms,
                sorted(mention_tokens(blocklist.key, findings.identifiers)),
                requested_by,
                now().isoformat(),
            )
            journal = stage(config, paths, findings, journal)
            identifiers = findings.identifiers
        else:
            identifiers = _identifiers_again(config, paths, journal, panellist_ref)
        ctx = ErasureContext(config, paths, key, journal, panellist_ref, identifiers)
        available = {**BUILT_IN, **(steps or {})}
        for name in STEPS:
            if name in journal.done:
                continue
            step = available.get(name)
            journal.results[name] = step(ctx) if step is not None else {"skipped": True}
            faults.checkpoint(f"forget-{name}")  # the step's effect is durable; the journal does not say so yet
            journal.done.append(name)
            journal.save(paths.landing)
        journal.remove(paths.landing)
    return ErasureReport(
        journal.erasure_id,
        panel_id,
        journal.requested_by,
        journal.requested_at,
        _files(journal),
        journal.notes,
        journal.results,
        journal.version,
        resumed=resumed,
    )


def _identifiers_again(config: Config, paths: DataPaths, journal: Journal, panellist_ref: str) -> PersonIdentifiers:
    """On a rerun: the person's identifiers, from the original copies the journal names (while they last)."""
    person = Person(journal.panel_id, frozenset({panellist_ref}))
    found = PersonIdentifiers()
    for change in journal.changes:
        path = paths.landing / change.relative
        if path.is_file():
            copy = LandingCopy(change.relative, change.sha256, change.name, change.source)
            data = path.read_bytes()
            found = found | redact(data, change.name, layout_for(copy, config, data), person).identifiers
    return found


def _in_warehouse(paths: DataPaths, panel_id: str, pseudonyms: Sequence[str]) -> bool:
    if not paths.warehouse.exists():
        return False
    con = connect(paths.warehouse, read_only=True)
    try:
        return any(person_rows_in_warehouse(con, panel_id, pseudonyms).values())
    except duckdb.CatalogException:
        return False
    finally:
        con.close()


def _not_found_message(paths: DataPaths, panel_id: str, panellist_ref: str) -> str:
    panels: list[tuple[str, int]] = []
    if paths.warehouse.exists():
        con = connect(paths.warehouse, read_only=True)
        try:
            panels = con.execute("SELECT panel_id, count(*) FROM core.roster GROUP BY 1 ORDER BY 1").fetchall()
        except duckdb.CatalogException:
            pass
        finally:
            con.close()
    known = ", ".join(f"{p} ({n} on the roster)" for p, n in panels) or "none yet"
    return (
        f"no panellist {panellist_ref!r} on panel {panel_id!r} in landing or the warehouse; nothing was changed. "
        f"Check the reference (as on the roster) and the panel id; the panels here are: {known}."
    )


def _dry_run(
    config: Config, paths: DataPaths, key: PseudonymKey, panel_id: str, panellist_ref: str, requested_by: str
) -> ErasureReport:
    """What the erasure would change, touching nothing (no lock, no journal, read-only warehouse)."""
    findings = find_person(config, paths.landing, panel_id, panellist_ref)
    pseudonyms = sorted({pseudonym(key.secret, panel_id, i) for i in findings.identities})
    in_warehouse: dict[str, int] = {}
    if paths.warehouse.exists():
        try:
            con = connect(paths.warehouse, read_only=True)
        except duckdb.IOException:
            raise WarehouseBusy(
                "a run is writing to the warehouse; try the dry run again when it has finished"
            ) from None
        try:
            in_warehouse = person_rows_in_warehouse(con, panel_id, pseudonyms)
        finally:
            con.close()
    if not findings.changes and not any(in_warehouse.values()):
        register = read_register(paths.landing)
        if register.sealed_key is not None and register.sealed_with == key.key_id:
            blocklist = open_blocklist(paths.landing, key)
            if erasure_token(blocklist.key, panel_id, panellist_ref) in blocklist.tokens:
                return ErasureReport(None, panel_id, requested_by, now().isoformat(), already_erased=True, dry_run=True)
        raise PanellistNotFound(_not_found_message(paths, panel_id, panellist_ref))
    versions = paths.published / "versions"
    files = sorted(
        (
            {"file": c.label, "source": c.source, "rows_blanked": len(r.rows), "mentions_replaced": r.mentions}
            | ({"counts_recomputed": r.recounted} if r.recounted else {})
            for c, r in findings.changes
        ),
        key=lambda f: (str(f["source"]), str(f["file"])),
    )
    results: dict[str, Any] = {
        "warehouse": {"rows_removed": {k: v for k, v in in_warehouse.items() if v}},
        "versions": {"deleted": len([v for v in versions.iterdir() if v.is_dir()]) if versions.is_dir() else 0},
        "remote": {"configured": config.storage is not None},
    }
    return ErasureReport(
        None,
        panel_id,
        requested_by,
        now().isoformat(),
        files,
        [_note(c, r) for c, r in findings.notes],
        results,
        dry_run=True,
    )
