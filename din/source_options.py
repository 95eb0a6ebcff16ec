"""What each kind of source (and the object-storage mirror) accepts under `options:`, declared once.

The config loader checks every source's options against these specs when the registry is read, so a
misspelt or mistyped option stops the run before any work with one message (and a did-you-mean);
the connectors in `sources/` read the same names. Secrets are given by *name* (an environment
variable or Prefect Secret), never by value, and a value that breaks that rule is never repeated.
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SECRET_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class OptionError(ValueError):
    """One option is wrong; the message names it and the fix (and never repeats a secret)."""


@dataclass(frozen=True)
class Option:
    """One option: its name, what its value must be, and a line of help."""

    name: str
    check: Callable[[str, Any], None]
    help: str


def text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise OptionError(f"option {name} must be text, not {_shown(value)}")


def flag(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise OptionError(f"option {name} must be true or false, not {_shown(value)}")


def seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OptionError(f"option {name} must be a positive number of seconds, not {_shown(value)}")


def whole_number(low: int, high: int | None = None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            upper = f" to {high}" if high is not None else " or more"
            raise OptionError(f"option {name} must be a whole number from {low}{upper}, not {_shown(value)}")

    return check


def one_of(*choices: Any) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value not in choices:
            raise OptionError(
                f"option {name} must be one of {', '.join(_word(c) for c in choices)}, not {_shown(value)}"
            )

    return check


def secret_name(name: str, value: Any) -> None:
    """A credential given by name; the value itself may be a pasted secret, so it is never shown."""
    if not isinstance(value, str) or not SECRET_NAME.fullmatch(value) or looks_like_secret(value):
        raise OptionError(
            f"option {name} must be the NAME of an environment variable or Prefect Secret (such as "
            "PARTNER_A_TOKEN), not the secret itself"
        )


HTTP_AUTH_FIELDS = {"bearer": ("token",), "basic": ("username", "password"), "header": ("name", "value")}
HTTP_AUTH_SECRETS = {"token", "password", "value"}


def http_auth(name: str, value: Any) -> None:
    if not isinstance(value, Mapping) or value.get("type") not in HTTP_AUTH_FIELDS:
        raise OptionError(
            f"option {name} must be a mapping with type bearer (token: CRED_NAME), basic (username: NAME, "
            "password: CRED_NAME) or header (name: HEADER, value: CRED_NAME)"
        )
    kind = str(value["type"])
    fields = HTTP_AUTH_FIELDS[kind]
    unknown = sorted(set(value) - {"type", *fields})
    missing = [f for f in fields if not isinstance(value.get(f), str) or not value.get(f)]
    if unknown or missing:
        raise OptionError(
            f"option {name} of type {kind} takes {', '.join(fields)} (text); "
            f"missing: {', '.join(missing) or 'none'}, unknown: {', '.join(unknown) or 'none'}"
        )
    if kind == "header" and not re.fullmatch(r"[A-Za-z0-9-]+", str(value["name"])):
        raise OptionError(f"option {name}.name must be an HTTP header name such as X-Api-Key")
    for field in fields:
        if field in HTTP_AUTH_SECRETS:
            secret_name(f"{name}.{field}", value[field])


def http_listing(name: str, value: Any) -> None:
    if value not in (True, False, "auto", "json", "none"):
        raise OptionError(f"option {name} must be one of auto, json, none, not {_shown(value)}")


_TIMEOUT = Option("timeout_seconds", seconds, "how long to wait for the source to answer (seconds)")
_S3_COMMON = (
    Option("endpoint_url", text, "the S3-compatible service's URL (MinIO, Ceph, ...); AWS when omitted"),
    Option("region", text, "the bucket's region"),
    Option("key", secret_name, "NAME of the credential holding the access key id"),
    Option("secret", secret_name, "NAME of the credential holding the secret access key"),
    Option("session_token", secret_name, "NAME of the credential holding a session token"),
    Option("addressing_style", one_of("auto", "path", "virtual"), "path- or virtual-host-style bucket URLs"),
    _TIMEOUT,
    Option("max_attempts", whole_number(1), "attempts per request, retries included"),
)

_MAX_UPLOAD = Option(
    "max_upload_mb", whole_number(1, 4096), "the largest file the portal accepts (megabytes, default 25)"
)

#: Options per kind of source location (`local` takes none).
SOURCE_OPTIONS: dict[str, tuple[Option, ...]] = {
    "local": (),
    # The portal's inbox (`location: inbox://`): a folder under the data directory that `din serve`
    # writes contributors' submitted files into; pulled like a local folder.
    "inbox": (_MAX_UPLOAD,),
    "http": (
        Option("listing", http_listing, "auto (default), json (the URL answers with a JSON listing) or none"),
        Option("auth", http_auth, "bearer, basic or header authentication, with credential names"),
        _TIMEOUT,
        Option("ca_bundle", text, "a file of PEM certificates to trust"),
        Option("allow_insecure_http", flag, "send credentials over plain http:// to a remote host"),
    ),
    "s3": (*_S3_COMMON, Option("anonymous", flag, "read a public bucket without credentials")),
    "sftp": (
        Option("username", text, "the login, when the URL does not name it"),
        Option("password", secret_name, "NAME of the credential holding the password"),
        Option("private_key", secret_name, "NAME of the credential holding an OpenSSH private key"),
        Option("private_key_passphrase", secret_name, "NAME of the credential holding the key's passphrase"),
        Option("port", whole_number(1, 65535), "the server's port (default 22)"),
        Option("known_hosts", text, "the known_hosts file (default ~/.ssh/known_hosts)"),
        Option("host_key_policy", one_of("reject", "accept_new", "auto_add"), "what to do with an unknown host key"),
        Option("insecure_accept_any_host_key", flag, "tests only: accept any host key"),
        _TIMEOUT,
    ),
}

#: Options of the object-storage mirror (`storage.options`).
STORAGE_OPTIONS: tuple[Option, ...] = _S3_COMMON

#: How a source's files are read (`format:`), whatever the source's location.
FORMAT_TYPES = ("auto", "csv", "xlsx", "json", "ndjson", "parquet", "survey")
#: The survey and deliberation tools whose exports are read as the tool writes them (`format: {type: survey}`).
SURVEY_TOOLS = ("qualtrics", "surveymonkey", "msforms", "googleforms", "mentimeter", "polis")
#: `format.date_order`: how a slashed date such as 06/12/2025 is read.
DATE_ORDERS = ("day_first", "month_first")


def one_character(name: str, value: Any) -> None:
    if not isinstance(value, str) or len(value.encode().decode("unicode_escape")) != 1:
        raise OptionError(f"option {name} must be one character (such as ; or \\t), not {_shown(value)}")


def text_encoding(name: str, value: Any) -> None:
    import codecs

    text(name, value)
    try:
        codecs.lookup(value)
    except LookupError:
        raise OptionError(
            f"option {name}: {_shown(value)} is not a text encoding (utf-8, cp1252, latin-1, ...)"
        ) from None


def header_map(name: str, value: Any) -> None:
    """`{their header: our column}`; the columns are checked against the source's kind by the config."""
    if not isinstance(value, Mapping) or not value:
        raise OptionError(
            f"option {name} must map your headers to contract columns, such as {{Name of attendee: panellist_ref}}"
        )
    for header, column in value.items():
        if not isinstance(header, str) or not header.strip() or not isinstance(column, str) or not column.strip():
            raise OptionError(f"option {name}: every entry must be `their header: contract column`, both text")


FORMAT_OPTIONS: tuple[Option, ...] = (
    Option(
        "type",
        one_of(*FORMAT_TYPES),
        "auto (from the extension and first bytes), csv, xlsx, json, ndjson, "
        "parquet, or survey (a survey or deliberation tool's own export, read with `mapping`)",
    ),
    Option("sheet", text, "the worksheet to read (default: the first that is not a notes sheet)"),
    Option("delimiter", one_character, "the CSV delimiter (default: detected among , ; tab |)"),
    Option("encoding", text_encoding, "the text encoding (default: UTF-8, else Windows cp1252)"),
    Option(
        "date_order",
        one_of(*DATE_ORDERS),
        "how slashed dates are read: day_first (06/12/2025 is 6 December) "
        "or month_first (12 June); default: what the file proves, else the file is refused",
    ),
    Option(
        "columns",
        header_map,
        "your headers for contract columns, `{Name of attendee: panellist_ref}` "
        "(not for type survey: its mapping file does this)",
    ),
    Option("mapping", text, "type survey: the mapping file (panel, workshop, respondent column, questions)"),
    Option("tool", one_of(*SURVEY_TOOLS), "type survey: the tool, when the mapping should be checked against it"),
)


def url(name: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/@]+(/[^\s]*)?", value):
        raise OptionError(f"option {name} must be an http(s):// address such as https://din.example.org")


def dask_address(name: str, value: Any) -> None:
    """A Dask scheduler's address: tcp:// on a private network, tls:// (with certificates) across one."""
    if not isinstance(value, str) or not re.fullmatch(r"(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}", value):
        raise OptionError(
            f"option {name} must be a Dask scheduler address such as tcp://scheduler:8786, not {_shown(value)}"
        )


def deployment(name: str, value: Any) -> None:
    if not isinstance(value, str) or not re.fullmatch(r"[^/\s]+/[^/\s]+", value):
        raise OptionError(
            f"option {name} must name a Prefect deployment as FLOW/DEPLOYMENT, such as consolidate/consolidate"
        )


#: `disclosure.profile`: each profile and the threshold its name promises (the lowest allowed).
DISCLOSURE_PROFILES: dict[str, int] = {"suppress_under_5": 5, "suppress_under_10": 10, "round_to_5": 5}

#: Settings of the web portal (`portal:` in din.yaml; `din serve`).
PORTAL_OPTIONS: tuple[Option, ...] = (
    _MAX_UPLOAD,
    Option("url", url, "the portal's public address (behind the reverse proxy): feedback links point there"),
    Option("deployment", deployment, "the Prefect deployment a contributor's `Process now` button runs"),
    Option("session_hours", whole_number(1, 720), "how long a sign-in lasts (hours, default 12)"),
)


def scheme(location: str) -> str:
    """Which kind of source a location is: local, inbox, http, s3 or sftp."""
    if location.startswith("inbox://"):
        return "inbox"
    if location.startswith(("https://", "http://")):
        return "http"
    if location.startswith("s3://"):
        return "s3"
    if location.startswith("sftp://"):
        return "sftp"
    return "local"


def option_names(kind: str) -> tuple[str, ...]:
    return tuple(o.name for o in SOURCE_OPTIONS[kind])


def check_options(options: Any, specs: tuple[Option, ...], what: str) -> dict[str, Any]:
    """`options` checked against `specs`: a mapping of known options with valid values.

    Raises OptionError naming the first problem (unknown names get a did-you-mean)."""
    if not isinstance(options, Mapping):
        raise OptionError(f"options must be a mapping of option: value, not {_shown(options)}")
    known = {o.name: o for o in specs}
    for name in options:
        if name not in known:
            if not known:
                raise OptionError(f"{what} take no options; remove option {name}")
            near = difflib.get_close_matches(str(name), list(known), n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise OptionError(f"unknown option {name}{hint}; {what} take {', '.join(sorted(known))}")
    for name, value in options.items():
        known[name].check(name, value)
    if bool(options.get("key")) != bool(options.get("secret")) and ("key" in known and "secret" in known):
        raise OptionError("options key and secret go together: give the names of both credentials")
    if options.get("anonymous") and options.get("key"):
        raise OptionError("option anonymous: true cannot be combined with key and secret")
    return dict(options)


def fraction(name: str, value: Any) -> None:
    """A share such as 0.25 (a quarter), from 0 to 1."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise OptionError(f"option {name} must be a share from 0 to 1 (such as 0.25), not {_shown(value)}")


def looks_like_secret(value: object) -> bool:
    """Whether a value could be a pasted key, token or password, so that no message repeats it.

    Long unbroken text is suspect on its own; shorter text when it mixes letters and digits with the
    spread of characters of a random string (`din keys new`, access keys, API tokens), which names,
    choices and settings such as `suppress_under_10` or `DIN_PSEUDONYM_KEY` do not have."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    if len(text) < 16 or any(ch.isspace() for ch in text):
        return False
    if len(text) >= 32:
        return True
    mixed = any(ch.isdigit() for ch in text) and any(ch.isalpha() for ch in text)
    counts = Counter(text)
    bits = -sum(n * math.log2(n / len(text)) for n in counts.values())
    return mixed and bits >= 64


def _word(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


def shown(value: Any) -> str:
    """A value as a message may show it: short, typed, and never a secret."""
    return _shown(value)


def _shown(value: Any) -> str:
    """A value for a message: short, and typed so that `'5'` and `5` can be told apart."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if looks_like_secret(value):
        return "a value that looks like a secret (not repeated here)"
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
