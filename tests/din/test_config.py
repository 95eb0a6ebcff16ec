"""Config mistakes stop the run before any work, with one message naming the file, the source and the fix."""

from __future__ import annotations

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
            "format type 'pdf' is not one of",
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
