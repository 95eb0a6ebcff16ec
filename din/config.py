"""The source registry: one YAML file that says where deliveries come from and how to run.

Loading it is cheap (no Prefect, no GX) and strict: a mistake stops the run before any work,
with one message naming the file, the source and the fix.
"""

from __future__ import annotations

import difflib
import glob
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from din.contract import KINDS, LIMITS, REFERENCE_KINDS
from din.errors import ConfigError
from din.source_options import (
    FORMAT_OPTIONS,
    PORTAL_OPTIONS,
    SOURCE_OPTIONS,
    STORAGE_OPTIONS,
    OptionError,
    check_options,
    scheme,
)

__all__ = ["Config", "ConfigError", "FormatOptions", "PortalSettings", "RemoteStorage", "SourceConfig", "load_config"]

NETWORK_SCHEMES = ("https://", "http://", "s3://", "sftp://")
INBOX = "inbox://"  # a portal inbox: `<data_dir>/inbox/<source name>/`, written by `din serve`
VALIDATION_ENGINES = ("duckdb", "gx")
TASK_RUNNERS = ("threads", "processes", "sequential")
MODES = ("demo", "production")
DEFAULT_KEY_ENV = "DIN_PSEUDONYM_KEY"
STORAGE_KEYS = ("landing", "published", "options")
SOURCE_KEYS = ("name", "organisation", "kind", "location", "format", "options")
#: The bundled demo's registry: what `din` uses when no --config (or $DIN_CONFIG) is given.
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "demo" / "din.yaml"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class FormatOptions:
    """How to read a source's files; everything is auto-detected unless set."""

    type: str = "auto"
    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    mapping: Path | None = None  # survey-tool mapping file (type: survey)
    tool: str | None = None
    date_order: str | None = None  # day_first | month_first; None: what the file proves, else refused
    columns: Mapping[str, str] = field(default_factory=dict)  # delivered header -> contract column


@dataclass(frozen=True)
class RemoteStorage:
    """Where the durable copies live: `s3://bucket/prefix` URLs, and options naming the credentials."""

    landing: str | None
    published: str | None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PortalSettings:
    """The `portal:` section: how `din serve` behaves (all optional)."""

    max_upload_mb: int = 25
    url: str | None = None  # the public address behind the reverse proxy; feedback links point there
    deployment: str | None = None  # FLOW/DEPLOYMENT that the "process now" button runs
    session_hours: int = 12


@dataclass(frozen=True)
class SourceConfig:
    """One partner source (or one reference data source)."""

    name: str
    organisation: str
    kind: str
    location: str  # an absolute local path or glob, or a URL
    format: FormatOptions = field(default_factory=FormatOptions)
    options: Mapping[str, Any] = field(default_factory=dict)  # network options: auth, endpoint_url, ...
    reference: bool = False

    @property
    def is_network(self) -> bool:
        return self.location.startswith(NETWORK_SCHEMES)

    @property
    def is_inbox(self) -> bool:
        """A portal inbox: contributors submit files to it through `din serve`."""
        return self.location.startswith(INBOX)

    @property
    def inbox_folder(self) -> Path:
        """The folder of a portal inbox (only for inbox sources)."""
        if not self.is_inbox:
            raise ValueError(f"source {self.name} is not an inbox")
        return Path(self.location[len(INBOX) :])


@dataclass(frozen=True)
class Config:
    """The whole registry, with paths resolved against the config file's folder."""

    path: Path
    data_dir: Path
    mode: str
    key_env: str
    key_block: str | None
    disclosure: Mapping[str, Any]
    validation_engine: str
    lock_timeout_seconds: float
    reference: tuple[SourceConfig, ...]
    sources: tuple[SourceConfig, ...]
    title: str = "DIN public engagement panel"
    task_runner: str = "threads"
    max_workers: int = 2
    storage: RemoteStorage | None = None  # durable copies of landing and published data in a bucket
    limits: Mapping[str, int] = field(default_factory=dict)  # the network's own limits (contract `limits`)
    portal: PortalSettings = field(default_factory=PortalSettings)

    @property
    def inbox_sources(self) -> tuple[SourceConfig, ...]:
        """The sources contributors deliver to through the portal."""
        return tuple(s for s in self.sources if s.is_inbox)

    @property
    def all_sources(self) -> tuple[SourceConfig, ...]:
        return self.reference + self.sources

    @property
    def is_demo(self) -> bool:
        return self.mode == "demo"

    def source(self, name: str) -> SourceConfig:
        for source in self.all_sources:
            if source.name == name:
                return source
        raise KeyError(name)


def load_config(path: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None) -> Config:
    """Read and check the registry at `path`; `data_dir` overrides the file's own `data_dir`."""
    config_path = Path(path).resolve()
    if not config_path.is_file():
        raise ConfigError(f"{config_path}: no such config file. Pass --config with the path of your din.yaml.")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{config_path}: this is not valid YAML{where}: {problem}. Fix the syntax there.") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping with 'sources' (and 'reference') at the top level.")
    return _build_config(config_path, raw, data_dir)


def _build_config(config_path: Path, raw: dict[str, Any], data_dir_override: Any) -> Config:
    base = config_path.parent
    known = {
        "version",
        "title",
        "data_dir",
        "mode",
        "pseudonymisation",
        "disclosure",
        "validation",
        "lock_timeout_seconds",
        "parallelism",
        "reference",
        "sources",
        "storage",
        "limits",
        "portal",
    }
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(known))}."
        )
    mode = str(raw.get("mode", "production"))
    if mode not in MODES:
        raise ConfigError(f"{config_path}: mode must be one of {', '.join(MODES)}, not {mode!r}.")
    data_dir = Path(data_dir_override) if data_dir_override else base / str(raw.get("data_dir", "data"))
    pseudo = raw.get("pseudonymisation") or {}
    validation = raw.get("validation") or {}
    engine = str(validation.get("engine", "duckdb"))
    if engine not in VALIDATION_ENGINES:
        raise ConfigError(
            f"{config_path}: validation.engine must be one of {', '.join(VALIDATION_ENGINES)}, not {engine!r}."
        )
    parallelism = raw.get("parallelism") or {}
    runner = str(parallelism.get("runner", "threads"))
    if runner not in TASK_RUNNERS:
        raise ConfigError(
            f"{config_path}: parallelism.runner must be one of {', '.join(TASK_RUNNERS)}, not {runner!r}."
        )
    max_workers = int(parallelism.get("max_workers", os.cpu_count() or 2))
    data_dir = data_dir.resolve()
    reference = tuple(
        _source(config_path, entry, index, reference=True, data_dir=data_dir)
        for index, entry in enumerate(raw.get("reference") or [])
    )
    sources = tuple(
        _source(config_path, entry, index, reference=False, data_dir=data_dir)
        for index, entry in enumerate(raw.get("sources") or [])
    )
    _check_unique_names(config_path, reference + sources)
    return Config(
        path=config_path,
        data_dir=data_dir,
        mode=mode,
        key_env=str(pseudo.get("key_env", DEFAULT_KEY_ENV)),
        key_block=pseudo.get("key_block"),
        disclosure=dict(raw.get("disclosure") or {}),
        validation_engine=engine,
        lock_timeout_seconds=float(raw.get("lock_timeout_seconds", 60)),
        task_runner=runner,
        max_workers=max_workers,
        reference=reference,
        sources=sources,
        title=str(raw.get("title", "DIN public engagement panel")),
        storage=_storage(config_path, raw.get("storage")),
        limits=_limits(config_path, raw.get("limits")),
        portal=_portal(config_path, raw.get("portal")),
    )


def _portal(config_path: Path, raw: Any) -> PortalSettings:
    """The `portal:` section, checked against din/source_options.py's PORTAL_OPTIONS."""
    if raw is None:
        return PortalSettings()
    try:
        options = check_options(raw, PORTAL_OPTIONS, "portal settings")
    except OptionError as error:
        raise ConfigError(f"{config_path}: portal: {error}.") from None
    url = options.get("url")
    return PortalSettings(
        max_upload_mb=int(options.get("max_upload_mb", PortalSettings.max_upload_mb)),
        url=str(url).rstrip("/") if url else None,
        deployment=options.get("deployment"),
        session_hours=int(options.get("session_hours", PortalSettings.session_hours)),
    )


def _limits(config_path: Path, raw: Any) -> dict[str, int]:
    """`limits:`: the network's own caps on contract values (din/contract.yaml `limits`), whole numbers."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{config_path}: limits must be a mapping such as {{workshop_number_max: 6}}.")
    limits: dict[str, int] = {}
    for name, value in raw.items():
        if name not in LIMITS:
            near = difflib.get_close_matches(str(name), list(LIMITS), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(
                f"{config_path}: unknown limit {name}{hint}; the limits are {', '.join(LIMITS)} (see docs/contract.md)."
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{config_path}: limits.{name} must be a whole number of 1 or more, not {value!r}.")
        limits[str(name)] = value
    return limits


def _storage(config_path: Path, raw: Any) -> RemoteStorage | None:
    """The `storage:` section."""
    return storage_from_config(raw, config_path)


def storage_from_config(raw: Mapping[str, Any] | None, config_path: Path | str) -> RemoteStorage | None:
    """The `storage:` mapping of din.yaml, checked; None when it is absent or empty."""
    if not raw:
        return None
    where = f"{config_path}: storage"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping with landing, published and options.")
    unknown = sorted(set(raw) - set(STORAGE_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(STORAGE_KEYS)}."
        )
    landing = _bucket_url(where, "landing", raw.get("landing"))
    published = _bucket_url(where, "published", raw.get("published"))
    if not landing and not published:
        raise ConfigError(f"{where} needs landing, published or both, as s3://BUCKET/PREFIX.")
    if landing and published and _overlaps(landing, published):
        raise ConfigError(f"{where}: landing and published must not be the same prefix or inside one another.")
    try:
        options = check_options(raw.get("options") or {}, STORAGE_OPTIONS, "storage.options")
    except OptionError as error:
        raise ConfigError(f"{where}.options: {error}.") from None
    return RemoteStorage(landing, published, options)


def _bucket_url(where: str, name: str, value: Any) -> str | None:
    """`s3://bucket[/prefix]`, normalised (no trailing slash), or None when not set."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is not None and "@" in parts.netloc:  # checked first: the URL is not repeated
        raise ConfigError(f"{where}.{name}: do not put credentials in the URL; name them in storage.options.")
    if parts is None or parts.scheme != "s3":
        raise ConfigError(f"{where}.{name} must be an s3://BUCKET/PREFIX URL, not {value!r}.")
    if not _BUCKET.fullmatch(parts.netloc) or parts.query or parts.fragment:
        raise ConfigError(
            f"{where}.{name}: {value!r} is not s3://BUCKET/PREFIX (bucket names are 3-63 lowercase letters, digits, "
            "dots and dashes; no query)."
        )
    prefix = parts.path.strip("/")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def _overlaps(first: str, second: str) -> bool:
    return first == second or first.startswith(second + "/") or second.startswith(first + "/")


def _source(config_path: Path, entry: Any, index: int, *, reference: bool, data_dir: Path) -> SourceConfig:
    section = "reference" if reference else "sources"
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{config_path}: {section}[{index}] must be a mapping with name, organisation, kind and location."
        )
    label = f"{section}[{index}]" + (f" ({entry['name']})" if entry.get("name") else "")
    unknown = sorted(str(key) for key in set(entry) - set(SOURCE_KEYS))
    if unknown:
        near = difflib.get_close_matches(unknown[0], SOURCE_KEYS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"{config_path}: source {label} has unknown setting(s) {', '.join(unknown)}{hint}; "
            f"a source takes {', '.join(SOURCE_KEYS)}."
        )
    missing = [key for key in ("name", "organisation", "kind", "location") if not entry.get(key)]
    if missing:
        raise ConfigError(
            f"{config_path}: source {label} lacks {', '.join(missing)}; every source needs "
            "name, organisation, kind and location."
        )
    name = str(entry["name"])
    kind = str(entry["kind"])
    if kind not in KINDS:
        raise ConfigError(f"{config_path}: source '{name}' has unknown kind {kind!r}; use one of {', '.join(KINDS)}.")
    if reference and kind not in REFERENCE_KINDS:
        raise ConfigError(
            f"{config_path}: reference source '{name}' has kind {kind!r}, which partners deliver; "
            f"move it under 'sources' (reference kinds: {', '.join(REFERENCE_KINDS)})."
        )
    if str(entry["location"]).startswith(INBOX):
        location = _inbox(config_path, name, str(entry["location"]), reference, data_dir)
    else:
        location = _location(config_path, name, str(entry["location"]))
    where = scheme(location)
    try:
        options = check_options(entry.get("options") or {}, SOURCE_OPTIONS[where], f"{where} sources")
    except OptionError as error:
        raise ConfigError(f"{config_path}: source '{name}': {error}.") from None
    return SourceConfig(
        name=name,
        organisation=str(entry["organisation"]),
        kind=kind,
        location=location,
        format=_format(config_path, name, kind, entry.get("format") or {}),
        options=options,
        reference=reference,
    )


def _inbox(config_path: Path, name: str, location: str, reference: bool, data_dir: Path) -> str:
    """`inbox://` becomes `inbox://<data_dir>/inbox/<source name>`: the folder the portal writes into."""
    if reference:
        raise ConfigError(
            f"{config_path}: reference source '{name}' cannot be a portal inbox; the network maintains "
            "reference data itself (give it a folder or URL)."
        )
    if location != INBOX:
        raise ConfigError(
            f"{config_path}: source '{name}': write the location of a portal inbox as `inbox://` alone "
            "(the portal keeps it under the data folder, in inbox/<source name>)."
        )
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ConfigError(
            f"{config_path}: source '{name}': an inbox source's name names its folder: use letters, digits, "
            "'.', '_' and '-' only."
        )
    return INBOX + str(data_dir / "inbox" / name)


def _location(config_path: Path, name: str, location: str) -> str:
    if location.startswith(NETWORK_SCHEMES):
        return location
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise ConfigError(
            f"{config_path}: source '{name}' uses an unsupported scheme {scheme}://; "
            "use a local path, https://, s3:// or sftp://."
        )
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = config_path.parent / path
    text = str(path)
    folder = Path(_static_prefix(text))
    if glob.has_magic(text):
        if not folder.is_dir():
            raise ConfigError(
                f"{config_path}: source '{name}': folder {folder} does not exist; create it or correct the location."
            )
    elif not path.exists():
        raise ConfigError(
            f"{config_path}: source '{name}': {path} does not exist; create the folder or correct the location."
        )
    return text


def _static_prefix(pattern: str) -> str:
    """The folder part of a glob before its first wildcard."""
    parts = Path(pattern).parts
    static: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        static.append(part)
    return str(Path(*static)) if static else "."


def _format(config_path: Path, name: str, kind: str, raw: Any) -> FormatOptions:
    """A source's `format:`, checked against din/source_options.py and the source's kind."""
    where = f"{config_path}: source '{name}'"
    if isinstance(raw, str):
        raw = {"type": raw}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: format must be a mapping such as {{type: csv}}.")
    try:
        options = check_options(raw, FORMAT_OPTIONS, "format options")
    except OptionError as error:
        raise ConfigError(f"{where}: format: {error}.") from None
    type_ = str(options.get("type", "auto"))
    mapping_path: Path | None = None
    if options.get("mapping"):
        mapping_path = (config_path.parent / str(options["mapping"])).resolve()
        if not mapping_path.is_file():
            raise ConfigError(f"{where}: mapping file {mapping_path} does not exist.")
    if type_ == "survey" and mapping_path is None:
        raise ConfigError(
            f"{where}: a survey source needs format.mapping, the file that maps the tool's export "
            "(panel, workshop, respondent column; see docs/adapters.md)."
        )
    if type_ != "survey" and (mapping_path is not None or options.get("tool")):
        raise ConfigError(f"{where}: format.mapping and format.tool are for `type: survey` sources only.")
    columns = _column_map(where, kind, type_, options.get("columns") or {})
    delimiter = options.get("delimiter")
    return FormatOptions(
        type=type_,
        sheet=options.get("sheet"),
        delimiter=str(delimiter).encode().decode("unicode_escape") if delimiter is not None else None,
        encoding=options.get("encoding"),
        mapping=mapping_path,
        tool=options.get("tool"),
        date_order=options.get("date_order"),
        columns=columns,
    )


def _column_map(where: str, kind: str, type_: str, raw: Mapping[str, str]) -> dict[str, str]:
    """`format.columns`: each delivered header to one column of the source's kind, each column once."""
    if not raw:
        return {}
    if type_ == "survey":
        raise ConfigError(f"{where}: format.columns is not for survey sources; their mapping file names the columns.")
    names = KINDS[kind].column_names
    targets: dict[str, str] = {}
    for header, column in raw.items():
        column = column.strip()
        if column not in names:
            near = difflib.get_close_matches(column, names, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ConfigError(
                f"{where}: format.columns maps {header!r} to {column!r}, which is not a column of {kind}{hint}; "
                f"its columns are {', '.join(names)}."
            )
        if column in targets:
            raise ConfigError(
                f"{where}: format.columns maps both {targets[column]!r} and {header!r} to {column}; map one header "
                "to each column."
            )
        targets[column] = header.strip()
    return {header: column for column, header in targets.items()}


def _check_unique_names(config_path: Path, sources: tuple[SourceConfig, ...]) -> None:
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ConfigError(
                f"{config_path}: source name '{source.name}' is used twice; "
                "give each source its own name (it keys the delivery history)."
            )
        seen.add(source.name)
