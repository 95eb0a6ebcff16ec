"""The whole registry is checked against its schema when it loads: every block, every source's keys and options.

Each mistake is one line naming the file and the setting, with a did-you-mean where one fits; a value
that looks like a secret is never repeated; `din run` stops before Prefect starts, writes nothing and exits 2.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from din.config import ConfigError, load_config
from din.source_options import looks_like_secret

SOURCE = "sources:\n  - {name: a, organisation: O, kind: roster, location: deliveries}\n"
KEY = "0f3a9c1e2b7d4a6f8e9c0b1a2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e"  # as `din keys new` prints one


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "deliveries").mkdir(exist_ok=True)
    path = tmp_path / "din.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pseudonymisation: {key_evn: X}\n", "pseudonymisation: unknown option key_evn (did you mean key_env?)"),
        ("pseudonymisation: DIN_KEY\n", "pseudonymisation must be a mapping of settings (key_env, key_block)"),
        ("parallelism: {max_workers: two}\n", "option max_workers must be a whole number from 1 to 256, not 'two'"),
        ("parallelism: {max_workers: 0}\n", "option max_workers must be a whole number from 1 to 256, not 0"),
        ("parallelism: {runner: thread}\n", "option runner must be one of threads, processes, sequential"),
        ("parallelism: {runner: dask, address: scheduler}\n", "address must be a Dask scheduler address such as"),
        ("parallelism: {runner: threads, address: 'tcp://s:8786'}\n", "parallelism.address is for runner: dask"),
        ("parallelism: {runner: dask, address: 'tcp://s:8786'}\n", "Dask workers on other machines cannot reach"),
        ("parallelism: {runner: dask, shared_data_dir: yes please}\n", "shared_data_dir must be true or false"),
        ("parallelism: {runner: dask, adress: 'tcp://s:8786'}\n", "unknown option adress (did you mean address?)"),
        ("lock_timeout_seconds: soon\n", "setting lock_timeout_seconds must be a positive number of seconds"),
        ("lock_timeout_seconds: [1]\n", "setting lock_timeout_seconds must be a positive number of seconds"),
        ("validation: {engin: gx}\n", "validation: unknown option engin (did you mean engine?)"),
        ("validation: gx\n", "validation must be a mapping of settings (engine)"),
        ("disclosure: {profile: suppress_under_3}\n", "option profile must be one of suppress_under_5"),
        ("disclosure: {profile: suppress_under_10, threshold: 5}\n", "threshold 5 is below the 10"),
        ("disclosure: {treshold: 10}\n", "unknown option treshold (did you mean threshold?)"),
        ("attention: {quarantined_share: 25}\n", "quarantined_share must be a share from 0 to 1"),
        ("attention: {rows_lost: 0.5}\n", "unknown option rows_lost (did you mean rows_lost_share?)"),
        ("mode: prod\n", "setting mode must be one of demo, production, not 'prod'"),
        ("titel: x\n", "unknown setting(s) titel (did you mean title?)"),
        ("version: 2\n", "setting version must be one of 1, not 2"),
        ("title: [a, b]\n", "setting title must be text"),
        ("sources: deliveries\n", "sources must be a list of sources"),
        ("reference: {name: r}\n", "reference must be a list of sources"),
        ("portal: yes\n", "portal: options must be a mapping"),
        ("storage: {landing: s3://b-1/l, optons: {}}\n", "unknown setting(s) optons"),
    ],
)
def test_every_block_is_checked_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text if text.startswith(("sources", "reference")) else text + SOURCE)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "entry",
    [
        "{{name: a, organisation: O, kind: roster, location: deliveries, format: {{sheet: {secret}}}}}",
        "{{name: a, organisation: O, kind: roster, location: deliveries, format: {{type: {secret}}}}}",
        "{{name: a, organisation: O, kind: roster, location: 'https://x.org/r.csv',"
        " options: {{timeout_seconds: {secret}}}}}",
    ],
)
def test_a_secret_pasted_anywhere_in_a_source_is_never_repeated(tmp_path: Path, entry: str) -> None:
    secret = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
    path = write(tmp_path, "sources:\n  - " + entry.format(secret=secret) + "\n")
    try:
        load_config(path)
    except ConfigError as error:
        assert secret not in str(error)
        assert secret[:8] not in str(error)
    else:  # a sheet name is any text: accepted, but never shown by the loader either
        assert "sheet" in entry


@pytest.mark.parametrize("pasted", [KEY, "a" + KEY[1:], "hunter2/Very-Secret+Token==", "A3f9Kd02LmQ7xZ1wPq8"])
def test_a_key_pasted_as_key_env_is_refused_and_never_echoed(tmp_path: Path, pasted: str) -> None:
    path = write(tmp_path, f"pseudonymisation: {{key_env: '{pasted}'}}\n" + SOURCE)
    with pytest.raises(ConfigError, match="must be the NAME of an environment variable") as caught:
        load_config(path)
    assert pasted not in str(caught.value)


def test_secret_detection_spares_names_and_choices() -> None:
    for value in ("DIN_PSEUDONYM_KEY", "suppress_under_10", "workshop_number_max", "PARTNER_A_TOKEN2", "day_first"):
        assert not looks_like_secret(value), value
    for value in (KEY, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"):
        assert looks_like_secret(value), value


@pytest.mark.parametrize("folder", ["/etc", "/etc/ssl", "/proc/self", "/", "/usr/share", "/var"])
def test_system_folders_are_refused_as_locations(tmp_path: Path, folder: str) -> None:
    path = write(tmp_path, f"sources:\n  - {{name: sys, organisation: O, kind: roster, location: '{folder}'}}\n")
    with pytest.raises(ConfigError, match="system folder") as caught:
        load_config(path)
    assert "source 'sys'" in str(caught.value)


def test_a_link_to_a_system_folder_and_a_glob_in_one_are_refused(tmp_path: Path) -> None:
    (tmp_path / "partner").symlink_to("/etc")
    for location in ("partner", "partner/*.conf", "/etc/*"):
        path = write(tmp_path, f"sources:\n  - {{name: l, organisation: O, kind: roster, location: '{location}'}}\n")
        with pytest.raises(ConfigError, match=r"/etc\b.*system folder"):
            load_config(path)


def test_the_data_folder_and_a_home_folder_are_refused_as_locations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "landing").mkdir(parents=True)
    (tmp_path / "home" / "alice" / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(tmp_path / "home" / "alice"))
    for location, fragment in (
        ("data/landing", "is inside the data folder"),
        ("data", "is the data folder"),
        (".", "holds the data folder"),
        ("~", "whole home folder"),
    ):
        path = write(
            tmp_path,
            f"data_dir: data\nsources:\n  - {{name: d, organisation: O, kind: roster, location: '{location}'}}\n",
        )
        with pytest.raises(ConfigError, match=fragment):
            load_config(path)


def test_a_complete_registry_keeps_every_setting(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "version: 1\ntitle: T\nmode: demo\nlock_timeout_seconds: 5\n"
        "pseudonymisation: {key_env: MY_KEY, key_block: my-key}\nvalidation: {engine: gx}\n"
        "parallelism: {runner: processes, max_workers: 3}\ndisclosure: {profile: round_to_5, threshold: 10}\n"
        "attention: {quarantined_share: 0.1, rows_lost_share: 0.3}\n" + SOURCE,
    )
    config = load_config(path)
    assert (config.key_env, config.key_block, config.validation_engine) == ("MY_KEY", "my-key", "gx")
    assert (config.task_runner, config.max_workers, config.lock_timeout_seconds) == ("processes", 3, 5.0)
    dask = load_config(
        write(tmp_path, "parallelism: {runner: dask, address: 'tls://10.0.0.5:8786', shared_data_dir: true}\n" + SOURCE)
    )
    assert (dask.task_runner, dask.dask_address, dask.shared_data_dir) == ("dask", "tls://10.0.0.5:8786", True)
    # workers that do not see the data folder read landing from the bucket it is mirrored to
    bucket = load_config(
        write(
            tmp_path,
            "parallelism: {runner: dask, address: 'tcp://s:8786'}\n"
            "storage: {landing: 's3://din-data/landing', options: {endpoint_url: 'https://objects.example.org'}}\n"
            + SOURCE,
        )
    )
    assert (bucket.dask_address, bucket.shared_data_dir) == ("tcp://s:8786", False)
    assert dict(config.disclosure) == {"profile": "round_to_5", "threshold": 10}
    assert (config.attention.quarantined_share, config.attention.rows_lost_share) == (0.1, 0.3)


DIN = [sys.executable, "-m", "app.cli"]


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("parallelism: {max_workers: two}\n" + SOURCE, {}, "max_workers must be a whole number"),
        ("mode: production\n" + SOURCE, {}, "no pseudonymisation key: set the environment variable DIN_PSEUDONYM_KEY"),
        ("mode: production\n" + SOURCE, {"DIN_PSEUDONYM_KEY": "short"}, "too short (5 characters; at least 32)"),
        (f"pseudonymisation: {{key_env: '{KEY}'}}\n" + SOURCE, {}, "must be the NAME of an environment variable"),
    ],
)
def test_din_run_stops_before_prefect_with_one_line_and_writes_nothing(
    tmp_path: Path, text: str, env: dict[str, str], expected: str
) -> None:
    path = write(tmp_path, "data_dir: data\n" + text)
    environment = {k: v for k, v in __import__("os").environ.items() if k not in ("DIN_PSEUDONYM_KEY", "PREFECT_HOME")}
    started = time.perf_counter()
    result = subprocess.run(
        [*DIN, "run", "--config", str(path)], capture_output=True, text=True, env={**environment, **env}, timeout=60
    )
    elapsed = time.perf_counter() - started
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, no traceback
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert KEY not in result.stderr and "short" not in result.stderr.replace("too short", "")
    assert not (tmp_path / "data").exists()  # nothing written, not even Prefect's home
    assert elapsed < 8  # Prefect never started (its server alone takes 10 s or more)
