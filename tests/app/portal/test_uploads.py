"""Uploads are parsed as they stream in, written to disk, and refused the moment they pass the limit."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import polars as pl
import pytest

from app.portal.uploads import StagedCheck, UploadRefused, receive_upload, run_check, stored_name_for
from din.config import load_config
from tests.conftest import REPO, SAMPLES

BOUNDARY = "----dinboundary"


def _body(file_bytes: bytes, name: str = "feedback.csv") -> bytes:
    return (
        (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\ntok\r\n'
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + file_bytes
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def _chunks(data: bytes, size: int = 1000, seen: list[int] | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if seen is not None:
            seen.append(start)
        yield data[start : start + size]


def _receive(data: bytes, dest: Path, limit: int, length: str | None = None, seen: list[int] | None = None):
    return asyncio.run(
        receive_upload(f"multipart/form-data; boundary={BOUNDARY}", length, _chunks(data, seen=seen), dest, limit)
    )


def test_the_file_is_streamed_to_disk_and_the_fields_kept(tmp_path: Path) -> None:
    content = b"panel_id,workshop_id\n" + b"p1,W1\n" * 5000
    upload = _receive(_body(content, "../evil name.csv"), tmp_path / "upload", limit=1 << 20)
    assert (tmp_path / "upload").read_bytes() == content
    assert upload.fields == {"csrf": "tok"} and upload.size == len(content) and upload.sent_as == "../evil name.csv"


def test_a_file_over_the_limit_is_refused_while_it_streams(tmp_path: Path) -> None:
    body = _body(b"x" * 50_000)
    seen: list[int] = []
    with pytest.raises(UploadRefused) as refused:
        _receive(body, tmp_path / "upload", limit=10_000, seen=seen)
    assert refused.value.status == 413 and "larger than" in refused.value.message
    assert len(seen) < len(body) // 1000  # stopped reading long before the end


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    seen: list[int] = []
    with pytest.raises(UploadRefused) as refused:
        _receive(_body(b"x"), tmp_path / "upload", limit=10_000, length=str(5 << 20), seen=seen)
    assert refused.value.status == 413 and seen == []


def test_a_body_that_is_not_a_form_gets_a_4xx_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(UploadRefused) as refused:
        asyncio.run(receive_upload("application/json", None, _chunks(b"{}"), tmp_path / "u", 1000))
    assert refused.value.status == 415
    with pytest.raises(UploadRefused) as refused:
        _receive(b"--" + BOUNDARY.encode() + b"\r\ngarbage without headers end", tmp_path / "u", 1000)
    assert refused.value.status == 400


def _staged(tmp_path: Path, sent_as: str, content: bytes, kind: str | None) -> tuple[StagedCheck, Path]:
    path = tmp_path / "received"
    path.write_bytes(content)
    stored = stored_name_for(sent_as, path)
    target = tmp_path / stored
    path.rename(target)
    return StagedCheck(
        "c" * 24, "ORG-A", "t0k3n1d", sent_as, len(content), kind, "2026-12-01T10:00:00Z", stored
    ), target


def test_a_file_sent_without_a_suffix_keeps_the_one_its_content_shows(tmp_path: Path) -> None:
    workbook = tmp_path / "book.xlsx"
    pl.DataFrame({"panel_id": ["p1"]}).write_excel(workbook)
    staged, _ = _staged(tmp_path, "feedback export", workbook.read_bytes(), None)
    assert staged.stored_name == "feedback_export.xlsx"
    assert _staged(tmp_path, "notes", b"panel_id,workshop_id\np1,W1\n", None)[0].stored_name == "notes.csv"


def test_a_survey_tool_export_is_checked_through_its_inbox_adapter(tmp_path: Path) -> None:
    shutil.copy(REPO / "examples" / "mappings" / "qualtrics.yaml", tmp_path / "qualtrics.yaml")
    (tmp_path / "din.yaml").write_text(
        "mode: demo\ndata_dir: data\nsources:\n"
        "  - {name: a-survey, organisation: ORG-A, kind: responses, location: 'inbox://', "
        "format: {type: survey, mapping: qualtrics.yaml}}\n"
    )
    config = load_config(tmp_path / "din.yaml")
    sample = (SAMPLES / "survey-exports" / "qualtrics_choice_text.csv").read_bytes()
    for choice in ("responses", None):
        staged, path = _staged(tmp_path, "W2_March 12, 2024_18.30.csv", sample, choice)
        report, saved, error = run_check(config, tmp_path / "mappings", path, staged, None)
        assert report.kind == "responses" and saved is None and error is None
        assert (report.tool, report.respondents) == ("qualtrics", 6)
        assert report.excluded == {"incomplete": 1, "preview": 1}
        assert report.rows > 6 and not report.whole_file_refused
    broken, path = _staged(tmp_path, "not-a-survey.csv", b"a,b\n1,2\n", "responses")
    report, _, _ = run_check(config, tmp_path / "mappings", path, broken, None)
    assert report.whole_file_refused and report.problems[0].rule == "survey_export_unreadable"
