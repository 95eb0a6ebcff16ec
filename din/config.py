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
    DISCLOSURE_PROFILES,
    FORMAT_OPTIONS,
    PORTAL_OPTIONS,
    SOURCE_OPTIONS,
    STORAGE_OPTIONS,
    Option,
    OptionError,
    check_options,
    dask_address,
    flag,
    fraction,
    one_of,
    scheme,
    seconds,
    secret_name,
    shown,
    text,
    whole_number,
)

__all__ = [
    "Attention",
    "Config",
    "ConfigError",
    "FormatOptions",
    "PortalSettings",
    "RemoteStorage",
    "SourceConfig",
    "load_config",
]

NETWORK_SCHEMES = ("https://", "http://", "s3://", "sftp://")
INBOX = "inbox://"  # a portal inbox: `<data_dir>/inbox/<source name>/`, written by `din serve`
VALIDATION_ENGINES = ("duckdb", "gx")
TASK_RUNNERS = ("threads", "processes", "sequential", "dask")
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

    def fingerprint(self) -> str:
        """Everything that decides how a file is read, as one short hash (the mapping file by its content):
        a delivery read under another fingerprint is read again with these options."""
        import hashlib
        import json

        mapping = None
        if self.mapping is not None:
            try:
                mapping = hashlib.sha256(self.mapping.read_bytes()).hexdigest()
            except OSError:
                mapping = f"unreadable:{self.mapping}"
        basis = {
            "type": self.type,
            "sheet": self.sheet,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "mapping": mapping,
            "tool": self.tool,
            "date_order": self.date_order,
            "columns": sorted(self.columns.items()),
        }
        return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()[:16]


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
class Attention:
    """The `attention:` section: when a run's results are unusual enough to warn (and hold a publish)."""

    quarantined_share: float = 0.25  # of the rows a source's new deliveries read
    rows_lost_share: float = 0.5  # of a reference's or the roster's rows, against the published version


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
    dask_address: str | None = None  # an existing Dask scheduler; None: a LocalCluster of max_workers processes
    shared_data_dir: bool = False  # the data folder is mounted at the same path on every Dask worker
    storage: RemoteStorage | None = None  # durable copies of landing and published data in a bucket
    limits: Mapping[str, int] = field(default_factory=dict)  # the network's own limits (contract `limits`)
    portal: PortalSettings = field(default_factory=PortalSettings)
    attention: Attention = field(default_factory=Attention)
    partition_by_panel: bool = False  # publish: the row-level tables hive-partitioned by panel_id
    panel_buckets: int = 0  # publish: the row-level tables split into this many files by panel (0: one file)

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


#: The top-level settings of din.yaml and their one line of help (each block's own keys are below).
SETTINGS = {
    "version": "the registry's format version (1)",
    "title": "shown in reports",
    "mode": "production (default) or demo (demo allows the labelled demo key)",
    "data_dir": "where landing, warehouse and published data live (relative to this file)",
    "lock_timeout_seconds": "how long a second run waits for the first to finish",
    "pseudonymisation": "where the HMAC key is found: key_env, key_block",
    "validation": "engine: duckdb or gx",
    "parallelism": "runner (threads, processes, sequential, dask), max_workers, address, shared_data_dir",
    "disclosure": "profile and threshold of the open tier's small-count rule",
    "attention": "when a run warns: quarantined_share, rows_lost_share",
    "publish": "partition_by_panel or panel_buckets: the restricted tier's row-level tables as folders by panel",
    "storage": "durable copies in S3-compatible object storage",
    "limits": "the network's own caps on contract values",
    "portal": "how `din serve` behaves",
    "reference": "the network's reference data sources (a list)",
    "sources": "the partners' sources (a list)",
}
_BLOCKS: dict[str, tuple[Option, ...]] = {
    "pseudonymisation": (
        Option("key_env", secret_name, "NAME of the environment variable holding the key (default DIN_PSEUDONYM_KEY)"),
        Option("key_block", secret_name, "NAME of a Prefect Secret block holding the key"),
    ),
    "validation": (Option("engine", one_of(*VALIDATION_ENGINES), "duckdb (default) or gx"),),
    "parallelism": (
        Option("runner", one_of(*TASK_RUNNERS), "threads (default), processes, sequential or dask"),
        Option(
            "max_workers",
            whole_number(1, 256),
            "parallel batches (default: the number of cores); with runner dask and no address, the worker "
            "processes of the local Dask cluster",
        ),
        Option("address", dask_address, "runner dask: the scheduler of an existing Dask cluster, tcp://host:8786"),
        Option(
            "shared_data_dir",
            flag,
            "runner dask with an address: true when data_dir is mounted at the same path on every worker",
        ),
    ),
    "disclosure": (
        Option("profile", one_of(*DISCLOSURE_PROFILES), "suppress_under_5 (default), suppress_under_10 or round_to_5"),
        Option("threshold", whole_number(1, 1000), "raise the profile's threshold (never below the profile's own)"),
    ),
    "publish": (
        Option(
            "partition_by_panel",
            flag,
            "true: publish the restricted tier's row-level tables hive-partitioned by panel_id, one folder per "
            "panel, so that a publish rewrites only the panels that changed (default false: one file per table)",
        ),
        Option(
            "panel_buckets",
            whole_number(2, 1024),
            "publish the restricted tier's row-level tables as this many files each (a folder), every panel's rows "
            "in one file chosen by a hash of panel_id, so that a publish rewrites only the files whose panels "
            "changed; for networks of many panels, where one folder per panel means too many files "
            "(default: one file per table)",
        ),
    ),
    "attention": (
        Option(
            "quarantined_share",
            fraction,
            "a source whose new deliveries set aside more than this share of the rows read warns (default 0.25)",
        ),
        Option(
            "rows_lost_share",
            fraction,
            "a reference or roster losing more than this share of its rows against the published version warns "
            "and holds the publish until `din run --accept-drop` (default 0.5)",
        ),
    ),
}
_TOP: tuple[Option, ...] = (
    Option("version", one_of(1), SETTINGS["version"]),
    Option("title", text, SETTINGS["title"]),
    Option("mode", one_of(*MODES), SETTINGS["mode"]),
    Option("data_dir", text, SETTINGS["data_dir"]),
    Option("lock_timeout_seconds", seconds, SETTINGS["lock_timeout_seconds"]),
)


def _mirrors_landing(storage: Any) -> bool:
    return isinstance(storage, Mapping) and bool(storage.get("landing"))


def _dask_address(
    config_path: Path, parallelism: Mapping[str, Any], data_dir: Path, landing_in_bucket: bool
) -> str | None:
    """The scheduler address of `runner: dask`, checked before any work: a batch reads landing copies, so
    workers on other machines either see the data folder at the same path (a shared mount the operator
    vouches for with `shared_data_dir: true`) or read the copies from the bucket landing is mirrored to
    (`storage.landing`), sending their results back."""
    runner = parallelism.get("runner", "threads")
    address = parallelism.get("address")
    for option in ("address", "shared_data_dir"):
        if option in parallelism and runner != "dask":
            raise ConfigError(f"{config_path}: parallelism.{option} is for runner: dask, not runner: {runner}.")
    if address is not None and not parallelism.get("shared_data_dir") and not landing_in_bucket:
        raise ConfigError(
            f"{config_path}: parallelism.address {address}: Dask workers on other machines cannot reach the "
            f"landing copies under {data_dir}; mount it at the same path on every worker and set "
            "parallelism.shared_data_dir: true, or mirror landing to a bucket with storage.landing (the workers "
            "then read it there), or leave address out for a local Dask cluster."
        )
    return str(address) if address is not None else None


def _check_settings(config_path: Path, raw: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every top-level setting and every block's keys and values, against the declared schema; returns each
    checked block (empty when left out). Each mistake is one ConfigError line with a did-you-mean."""
    unknown = [str(name) for name in raw if name not in SETTINGS]
    if unknown:
        near = difflib.get_close_matches(unknown[0], list(SETTINGS), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(
            f"{config_path}: unknown setting(s) {', '.join(sorted(unknown))}{hint}; "
            f"the settings are {', '.join(SETTINGS)}."
        )
    scalars = {o.name: raw[o.name] for o in _TOP if o.name in raw and raw[o.name] is not None}
    try:
        check_options(scalars, _TOP, "settings")
    except OptionError as error:
        raise ConfigError(f"{config_path}: {str(error).replace('option ', 'setting ', 1)}.") from None
    blocks: dict[str, dict[str, Any]] = {}
    for name, specs in _BLOCKS.items():
        value = raw.get(name)
        if value is None:
            blocks[name] = {}
            continue
        if not isinstance(value, Mapping):
            keys = ", ".join(o.name for o in specs)
            raise ConfigError(f"{config_path}: {name} must be a mapping of settings ({keys}), not {shown(value)}.")
        try:
            blocks[name] = check_options(value, specs, f"{name} settings")
        except OptionError as error:
            raise ConfigError(f"{config_path}: {name}: {error}.") from None
    for name in ("reference", "sources"):
        if raw.get(name) is not None and not isinstance(raw[name], list):
            raise ConfigError(
                f"{config_path}: {name} must be a list of sources (`- name: ...` entries), not {shown(raw[name])}."
            )
    return blocks


def _build_config(config_path: Path, raw: dict[str, Any], data_dir_override: Any) -> Config:
    base = config_path.parent
    blocks = _check_settings(config_path, raw)
    mode = str(raw.get("mode") or "production")
    data_dir = Path(data_dir_override) if data_dir_override else base / str(raw.get("data_dir") or "data")
    pseudo, parallelism = blocks["pseudonymisation"], blocks["parallelism"]
    disclosure = blocks["disclosure"]
    threshold = disclosure.get("threshold")
    profile = str(disclosure.get("profile", "suppress_under_5"))
    if threshold is not None and threshold < DISCLOSURE_PROFILES[profile]:
        raise ConfigError(
            f"{config_path}: disclosure.threshold {threshold} is below the {DISCLOSURE_PROFILES[profile]} that "
            f"{profile} promises; raise it, or choose another profile."
        )
    attention = blocks["attention"]
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
        disclosure=disclosure,
        validation_engine=str(blocks["validation"].get("engine", "duckdb")),
        lock_timeout_seconds=float(raw.get("lock_timeout_seconds") or 60),
        task_runner=str(parallelism.get("runner", "threads")),
        max_workers=int(parallelism.get("max_workers", os.cpu_count() or 2)),
        dask_address=_dask_address(config_path, parallelism, data_dir, _mirrors_landing(raw.get("storage"))),
        shared_data_dir=bool(parallelism.get("shared_data_dir", False)),
        reference=reference,
        sources=sources,
        title=str(raw.get("title") or "DIN public engagement panel"),
        storage=_storage(config_path, raw.get("storage")),
        limits=_limits(config_path, raw.get("limits")),
        portal=_portal(config_path, raw.get("portal")),
        attention=Attention(
            quarantined_share=float(attention.get("quarantined_share", Attention.quarantined_share)),
            rows_lost_share=float(attention.get("rows_lost_share", Attention.rows_lost_share)),
        ),
        partition_by_panel=bool(blocks["publish"].get("partition_by_panel", False)),
        panel_buckets=_panel_buckets(config_path, blocks["publish"]),
    )


def _panel_buckets(config_path: Path, publish: Mapping[str, Any]) -> int:
    """`publish.panel_buckets`, which is one layout and `partition_by_panel: true` another: not both."""
    buckets = int(publish.get("panel_buckets") or 0)
    if buckets and publish.get("partition_by_panel"):
        raise ConfigError(
            f"{config_path}: publish.partition_by_panel and publish.panel_buckets are two layouts of the same "
            "tables (a folder per panel, or a fixed number of files); choose one."
        )
    return buckets


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
        location = _location(config_path, name, str(entry["location"]), data_dir)
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


def _location(config_path: Path, name: str, location: str, data_dir: Path) -> str:
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
    _refuse_unsafe_folder(config_path, name, path if not glob.has_magic(text) else folder, data_dir)
    return text


#: Folders of the operating system (and their parents): a source there would land system files, and their
#: lines would reach a partner's feedback page. Checked after links are followed.
SYSTEM_FOLDERS = tuple(
    Path(p)
    for p in (
        "/etc",
        "/proc",
        "/sys",
        "/dev",
        "/boot",
        "/run",
        "/root",
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/var/lib",
        "/var/log",
        "/var/run",
        "/var/spool",
        "/var/mail",
        "/var/cache",
        "/var/backups",
        "/snap",
        "/System",
        "/Library",
        "/private/etc",
        "/private/var",
    )
)


def _refuse_unsafe_folder(config_path: Path, name: str, path: Path, data_dir: Path) -> None:
    """A local source must be a folder of deliveries: not a system folder, a whole home folder, nor the
    network's own data folder (or a folder holding it), whose landing copies would be landed again."""
    where = path.resolve()
    system = next((f for f in SYSTEM_FOLDERS if where == f or f in where.parents), None)
    holds_system = where == Path(where.anchor) or any(where in f.parents for f in SYSTEM_FOLDERS)
    if system is not None or holds_system:
        folder = system or where
        raise ConfigError(
            f"{config_path}: source '{name}': {where} is {'inside ' if system and where != system else ''}"
            f"{'a system folder' if system else 'a folder holding system folders'} ({folder}); point the source at "
            "a folder that holds only the partner's deliveries."
        )
    homes = {Path.home().resolve(), *(p.resolve() for p in Path("/home").glob("*") if p.is_dir())}
    if where in homes:
        raise ConfigError(
            f"{config_path}: source '{name}': {where} is a whole home folder; point the source at a folder that "
            "holds only the partner's deliveries."
        )
    relation = "is" if where == data_dir else "is inside" if data_dir in where.parents else "holds"
    if where == data_dir or data_dir in where.parents or where in data_dir.parents:
        raise ConfigError(
            f"{config_path}: source '{name}': {where} {relation} the data folder {data_dir} (landing copies, the "
            "warehouse, published data); point the source at the partner's deliveries, and keep data_dir apart."
        )


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
