"""Config mistakes stop the run before any work, with one message naming the file, the source and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from din.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "deliveries").mkdir(exist_ok=True)
    path = tmp_path / "din.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sources:\n  - {name: a, organisation: O, kind: surveys, location: deliveries}\n",
            "source 'a' has unknown kind 'surveys'; use one of organisations, projects",
        ),
        ("sources:\n  - {name: a, organisation: O, kind: roster, location: nowhere}\n", "source 'a':"),
        (
            "sources:\n  - {name: a, organisation: O, kind: roster, location: deliveries}\n"
            "  - {name: a, organisation: P, kind: responses, location: deliveries}\n",
            "source name 'a' is used twice",
        ),
        (
            "sources:\n  - {name: a, organisation: O, kind: roster, location: deliveries\n",
            "this is not valid YAML at line",
        ),
        ("sources:\n  - {name: a, kind: roster, location: deliveries}\n", "lacks organisation"),
        (
            "sources:\n  - {name: a, organisation: O, kind: roster, location: deliveries, format: {type: pdf}}\n",
            "format: option type must be one of auto, csv, xlsx, json, ndjson, parquet, survey, not 'pdf'",
        ),
        ("reference:\n  - {name: r, organisation: O, kind: roster, location: deliveries}\n", "move it under 'sources'"),
        ("sorces: []\n", "unknown setting(s) sorces"),
        ("sources:\n  - {name: a, organisation: O, kind: roster, location: ftp://x/y}\n", "unsupported scheme ftp://"),
    ],
)
def test_config_mistakes_are_explained(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert str(path) in message
    assert expected in message


def test_missing_folder_message_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - {name: uni, organisation: O, kind: responses, location: drop/*.csv}\n")
    with pytest.raises(ConfigError, match=r"source 'uni': folder .*drop does not exist; create it or correct"):
        load_config(path)


def test_valid_config_resolves_paths_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "mode: demo\ndata_dir: out\nsources:\n"
        "  - {name: a, organisation: O, kind: responses, location: deliveries,"
        " format: {delimiter: ';', encoding: cp1252}}\n"
        "  - {name: b, organisation: O, kind: roster, location: 'https://example.org/roster.csv'}\n",
    )
    config = load_config(path)
    assert config.data_dir == (tmp_path / "out").resolve()
    assert config.is_demo
    a, b = config.sources
    assert a.location == str(tmp_path / "deliveries")
    assert (a.format.delimiter, a.format.encoding, a.format.type) == (";", "cp1252", "auto")
    assert b.is_network and not a.is_network
    assert load_config(path, data_dir=tmp_path / "elsewhere").data_dir == (tmp_path / "elsewhere").resolve()


@pytest.mark.parametrize(
    ("location", "options", "expected"),
    [
        ("sftp://drop@sftp.example.org/in", "{pasword: SFTP_PW}", "unknown option pasword (did you mean password?)"),
        ("sftp://drop@sftp.example.org/in", "{port: '22'}", "option port must be a whole number from 1 to 65535"),
        ("sftp://drop@sftp.example.org/in", "{host_key_policy: trust_me}", "host_key_policy must be one of reject"),
        ("https://example.org/x.csv", "{timeout: 5}", "unknown option timeout (did you mean timeout_seconds?)"),
        ("https://example.org/x.csv", "{auth: {type: basic, password: P}}", "auth of type basic takes username"),
        ("https://example.org/x.csv", "{listing: yes-please}", "option listing must be one of auto, json, none"),
        ("s3://bucket/prefix", "{endpoint: 'http://x'}", "unknown option endpoint (did you mean endpoint_url?)"),
        ("s3://bucket/prefix", "{key: K}", "options key and secret go together"),
        ("deliveries", "{encoding: cp1252}", "local sources take no options"),
    ],
)
def test_source_options_are_checked_when_the_config_loads(
    tmp_path: Path, location: str, options: str, expected: str
) -> None:
    """A misspelt or mistyped option on any kind of source stops the run before any work, in one line."""
    path = write(
        tmp_path,
        f"sources:\n  - {{name: partner, organisation: O, kind: roster, location: '{location}', options: {options}}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: source 'partner': ")
    assert expected in message
    assert "\n" not in message


def test_a_pasted_secret_as_an_option_is_refused_without_repeating_it(tmp_path: Path) -> None:
    secret = "hunter2/Very-Secret+Token=="
    path = write(
        tmp_path,
        "sources:\n  - {name: p, organisation: O, kind: roster, location: 'https://example.org/x.csv',"
        f" options: {{auth: {{type: bearer, token: '{secret}'}}}}}}\n",
    )
    with pytest.raises(ConfigError, match="must be the NAME of an environment variable") as caught:
        load_config(path)
    assert secret not in str(caught.value)


def test_an_unknown_key_inside_a_source_is_a_mistake(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  - {name: a, organistion: O, kind: roster, location: deliveries}\n")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) organistion \(did you mean organisation\?\)"):
        load_config(path)


def test_valid_source_options_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sources:\n  - {name: p, organisation: O, kind: roster, location: 'sftp://drop@h/in',"
        " options: {password: SFTP_PW, port: 2222, host_key_policy: accept_new}}\n",
    )
    assert dict(load_config(path).sources[0].options) == {
        "password": "SFTP_PW",
        "port": 2222,
        "host_key_policy": "accept_new",
    }


@pytest.mark.parametrize(
    ("format_block", "expected"),
    [
        (
            "{columns: {Name of attendee: panellist_rf}}",
            "format.columns maps 'Name of attendee' to 'panellist_rf', which is not a column of attendance "
            "(did you mean panellist_ref?)",
        ),
        (
            "{columns: {Name: panellist_ref, Attendee: panellist_ref}}",
            "format.columns maps both 'Name' and 'Attendee' to panellist_ref",
        ),
        ("{date_order: us}", "format: option date_order must be one of day_first, month_first, not 'us'"),
        ("{date_ordre: day_first}", "unknown option date_ordre (did you mean date_order?)"),
        ("{type: survey, mapping: m.yaml, columns: {A: panel_id}}", "format.columns is not for survey sources"),
        ("{type: csv, tool: polis}", "format.mapping and format.tool are for `type: survey` sources only"),
        ("{encoding: klingon}", "'klingon' is not a text encoding"),
    ],
)
def test_format_options_are_checked_against_the_source_s_kind_at_load(
    tmp_path: Path, format_block: str, expected: str
) -> None:
    (tmp_path / "m.yaml").write_text("tool: polis\npanel_id: p\nworkshop_id: W\n")
    path = write(
        tmp_path,
        f"sources:\n  - {{name: a, organisation: O, kind: attendance, location: deliveries, format: {format_block}}}\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "source 'a'" in str(caught.value) and expected in str(caught.value)


def test_a_column_mapping_and_a_date_order_are_kept_as_declared(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sources:\n  - {name: a, organisation: O, kind: attendance, location: deliveries,\n"
        "     format: {date_order: month_first, columns: {' Name of attendee ': ' panellist_ref'}}}\n",
    )
    fmt = load_config(path).source("a").format
    assert (fmt.date_order, dict(fmt.columns)) == ("month_first", {"Name of attendee": "panellist_ref"})


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ("{workshop_number_mx: 6}", "unknown limit workshop_number_mx (did you mean workshop_number_max?)"),
        ("{workshop_number_max: six}", "limits.workshop_number_max must be a whole number of 1 or more, not 'six'"),
        ("{workshop_number_max: 0}", "must be a whole number of 1 or more, not 0"),
        ("[6]", "limits must be a mapping"),
    ],
)
def test_limits_name_a_contract_limit_and_are_whole_numbers(tmp_path: Path, limits: str, expected: str) -> None:
    path = write(tmp_path, f"limits: {limits}\nsources: []\n")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_config(path)
    assert load_config(write(tmp_path, "limits: {workshop_number_max: 12}\nsources: []\n")).limits == {
        "workshop_number_max": 12
    }


def _inbox_config(tmp_path: Path, source: str, portal: str = "") -> Path:
    path = tmp_path / "din.yaml"
    path.write_text(f"data_dir: data\nsources:\n{source}\n{portal}", encoding="utf-8")
    return path


def test_an_inbox_source_lives_under_the_data_folder(tmp_path: Path) -> None:
    path = _inbox_config(
        tmp_path,
        "  - {name: alpha-portal, organisation: ORG-A, kind: attendance, location: 'inbox://', "
        "options: {max_upload_mb: 5}}",
        "portal: {max_upload_mb: 10, url: 'https://din.example.org/', deployment: consolidate/consolidate}\n",
    )
    config = load_config(path)
    source = config.source("alpha-portal")
    assert source.is_inbox and not source.is_network
    assert source.inbox_folder == (tmp_path / "data" / "inbox" / "alpha-portal").resolve()
    assert config.inbox_sources == (source,) and source.options == {"max_upload_mb": 5}
    assert (config.portal.max_upload_mb, config.portal.url, config.portal.deployment) == (
        10,
        "https://din.example.org",
        "consolidate/consolidate",
    )
    moved = load_config(path, tmp_path / "elsewhere").source("alpha-portal")
    assert moved.inbox_folder == (tmp_path / "elsewhere" / "inbox" / "alpha-portal").resolve()


@pytest.mark.parametrize(
    ("source", "portal", "fragment"),
    [
        ("  - {name: a, organisation: O, kind: attendance, location: 'inbox://x/y'}", "", "`inbox://` alone"),
        ("  - {name: 'a b', organisation: O, kind: attendance, location: 'inbox://'}", "", "names its folder"),
        (
            "  - {name: a, organisation: O, kind: attendance, location: 'inbox://', options: {max_upload: 5}}",
            "",
            "did you mean max_upload_mb",
        ),
        (
            "  - {name: a, organisation: O, kind: attendance, location: 'inbox://'}",
            "portal: {deployment: nope}\n",
            "FLOW/DEPLOYMENT",
        ),
        (
            "  - {name: a, organisation: O, kind: attendance, location: 'inbox://'}",
            "portal: {max_upload_mb: 0}\n",
            "whole number from 1",
        ),
    ],
)
def test_inbox_and_portal_mistakes_stop_at_load(tmp_path: Path, source: str, portal: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_config(_inbox_config(tmp_path, source, portal))
