"""Day-first or month-first is never guessed: declared by the source, proven by the file, or the file is refused.

Modelled on what partners really send: a Google Forms linked Sheet downloaded with a US locale
(`8/21/2019 13:10:31`, FORMATS.md §4), and the real Qualtrics export (ropensci/qualtRics sample.csv)
after an Excel re-save in a US locale (`6/12/2025 9:41`, seconds lost, FORMATS.md §7). The same rule
holds for the contract's own kinds (a workshops file, a responses file).
"""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from din.config import FormatOptions
from din.contract import DATE_ORDER_AMBIGUOUS, DATE_ORDER_CONFLICT
from tests.conftest import SAMPLES
from transforms.adapters import AdapterError, mapping_from_dict, read_googleforms, read_qualtrics
from transforms.dates import DateOrder, DateOrderProblem, evidence, evidence_of, resolve_date_order
from transforms.delivery import REFUSED, DeliveryOutcome, DeliveryToProcess, FileProblem, read_delivery

QUALTRICS_SAMPLE = SAMPLES / "real-exports" / "qualtrics" / "sample.csv"
US_SHEET = (
    "Timestamp,Email address,What is your age group?\n"
    "8/21/2019 13:10:31,a@example.com,25–34\n"
    "8/22/2019 9:02:11,b@example.com,35–44\n"
    "9/3/2019 18:45:00,c@example.com,Prefer not to say\n"
)
AMBIGUOUS_SHEET = (
    "Timestamp,Email address,What is your age group?\n"
    "6/12/2025 9:41:00,a@example.com,25–34\n"
    "6/11/2025 10:02:00,b@example.com,35–44\n"
)


GOOGLE = mapping_from_dict(
    {"tool": "googleforms", "panel_id": "p1", "workshop_id": "W2", "panellist_column": "Email address"}
)


def resaved_qualtrics(tmp_path: Path, stamp: str) -> Path:
    """The real Qualtrics sample as Excel (US locale) saves it: every date `m/d/yyyy h:mm`, seconds lost."""
    rows = list(csv.reader(QUALTRICS_SAMPLE.open(encoding="utf-8", newline="")))
    for row in rows[3:]:
        for index in (0, 1, 7):  # StartDate, EndDate, RecordedDate
            row[index] = stamp
    path = tmp_path / "sample_resaved.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\r\n").writerows(rows)
    return path


def delivery(path: Path, kind: str, **format_options: object) -> DeliveryToProcess:
    return DeliveryToProcess(1, "s", kind, str(path), str(path), path.stat().st_size, FormatOptions(**format_options))  # type: ignore[arg-type]


# --- the rule ----------------------------------------------------------------------------------------


def test_a_day_above_twelve_proves_the_order_and_a_declaration_decides_the_rest() -> None:
    us = evidence("Timestamp", pl.Series(["8/21/2019 13:10", "6/12/2025 9:41"]))
    assert resolve_date_order(us, None) is DateOrder.MONTH_FIRST
    uk = evidence("held_on", pl.Series(["21/08/2019", "06/12/2025", "2025-06-12", "45363"]))
    assert resolve_date_order(uk, None) is DateOrder.DAY_FIRST
    undecided = evidence("held_on", pl.Series(["06/12/2025", "05/05/2025"]))
    assert resolve_date_order(undecided, DateOrder.MONTH_FIRST) is DateOrder.MONTH_FIRST
    # Values that read the same either way (05/05, ISO, Excel numbers) need no order at all.
    assert resolve_date_order(evidence("held_on", pl.Series(["05/05/2025", "2025-06-12", None])), None) is None


def test_undecidable_dates_are_refused_with_the_column_the_values_and_the_option() -> None:
    problem = resolve_date_order(evidence_of({"Answered At": ["6/12/2025 9:41", "6/11/2025 9:40"]}), None)
    assert isinstance(problem, DateOrderProblem)
    assert problem.rule == DATE_ORDER_AMBIGUOUS
    assert "`Answered At`" in problem.message
    assert "'6/12/2025 9:41' is 6 December 2025 or 12 June 2025" in problem.message
    assert "'6/11/2025 9:40'" in problem.message
    assert "date_order: day_first" in problem.message and "date_order: month_first" in problem.message


def test_mixed_orders_and_a_contradicted_declaration_are_conflicts() -> None:
    mixed = resolve_date_order(evidence_of({"a": ["21/08/2019"], "b": ["8/21/2019"]}), None)
    assert isinstance(mixed, DateOrderProblem) and mixed.rule == DATE_ORDER_CONFLICT
    assert "'21/08/2019' in `a`" in mixed.message and "'8/21/2019' in `b`" in mixed.message
    wrong = resolve_date_order(evidence("Timestamp", ["8/21/2019 13:10:31"]), DateOrder.DAY_FIRST)
    assert isinstance(wrong, DateOrderProblem) and wrong.rule == DATE_ORDER_CONFLICT
    assert "declares `date_order: day_first`" in wrong.message and "'8/21/2019 13:10:31'" in wrong.message
    # A declaration that some values support and some contradict stands: the odd values are then invalid.
    assert resolve_date_order(evidence("d", ["21/08/2019", "8/21/2019"]), DateOrder.DAY_FIRST) is DateOrder.DAY_FIRST


# --- survey exports ----------------------------------------------------------------------------------


def test_google_sheet_with_us_locale_is_read_month_first_because_the_file_proves_it(tmp_path: Path) -> None:
    export = tmp_path / "Form responses 1.csv"
    export.write_text(US_SHEET, encoding="utf-8")
    result = read_googleforms(export, GOOGLE)
    stamps = dict(result.responses.select("panellist_ref", "answered_at").iter_rows())
    assert stamps == {
        "a@example.com": "2019-08-21T13:10:31",
        "b@example.com": "2019-08-22T09:02:11",  # 22 August, never 8 of month 22
        "c@example.com": "2019-09-03T18:45:00",  # 3 September, not 9 March: the file proved month-first
    }


def test_google_sheet_whose_dates_nothing_decides_is_refused_unless_declared(tmp_path: Path) -> None:
    export = tmp_path / "Form responses 1.csv"
    export.write_text(AMBIGUOUS_SHEET, encoding="utf-8")
    with pytest.raises(AdapterError) as refused:
        read_googleforms(export, GOOGLE)
    assert refused.value.rule == DATE_ORDER_AMBIGUOUS
    assert "Form responses 1.csv" in str(refused.value) and "`Timestamp`" in str(refused.value)
    assert "date_order" in str(refused.value)
    us = read_googleforms(export, GOOGLE, DateOrder.MONTH_FIRST)
    assert dict(us.responses.select("panellist_ref", "answered_at").iter_rows())["a@example.com"] == (
        "2025-06-12T09:41:00"
    )


def test_qualtrics_resaved_in_excel_is_refused_then_read_as_declared(tmp_path: Path) -> None:
    mapping = mapping_from_dict(
        {"tool": "qualtrics", "panel_id": "p1", "workshop_id": "W1", "panellist_column": "ResponseId"}
    )
    export = resaved_qualtrics(tmp_path, "6/12/2025 9:41")
    with pytest.raises(AdapterError, match=r"`StartDate`.*'6/12/2025 9:41' is 6 December 2025 or 12 June 2025"):
        read_qualtrics(export, mapping)
    as_us = read_qualtrics(export, mapping, DateOrder.MONTH_FIRST)
    assert set(as_us.responses["answered_at"]) == {"2025-06-12T09:41:00"}
    as_uk = read_qualtrics(export, mapping, DateOrder.DAY_FIRST)
    assert set(as_uk.responses["answered_at"]) == {"2025-12-06T09:41:00"}


def test_a_refused_survey_export_names_the_rule_through_the_delivery_reader(tmp_path: Path) -> None:
    export = resaved_qualtrics(tmp_path, "6/12/2025 9:41")
    mapping = tmp_path / "qualtrics.yaml"
    mapping.write_text("tool: qualtrics\npanel_id: p1\nworkshop_id: W1\npanellist_column: ResponseId\n")
    outcome = DeliveryOutcome(1)
    problem = read_delivery(delivery(export, "responses", type="survey", mapping=mapping), outcome)
    assert isinstance(problem, FileProblem) and problem.rules == (DATE_ORDER_AMBIGUOUS,)
    assert outcome.outcome == REFUSED and "sample_resaved.csv: " in str(outcome.message)
    declared = read_delivery(
        delivery(export, "responses", type="survey", mapping=mapping, date_order="month_first"), DeliveryOutcome(1)
    )
    assert isinstance(declared, dict) and set(declared["responses"]["answered_at"]) == {"2025-06-12T09:41:00"}


# --- the contract's own kinds ------------------------------------------------------------------------


WORKSHOPS = "panel_id,workshop_id,number,held_on,title,facilitator_org_id\n"


def test_a_canonical_file_with_undecidable_dates_is_refused_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "workshops.csv"
    path.write_text(WORKSHOPS + "p1,W1,1,06/12/2025,Intro,ORG-A\np1,W2,2,07/01/2026,Deliberation,ORG-A\n")
    outcome = DeliveryOutcome(1)
    problem = read_delivery(delivery(path, "workshops"), outcome)
    assert isinstance(problem, FileProblem) and problem.rules == (DATE_ORDER_AMBIGUOUS,)
    assert problem.rows == (2, 3)  # every row is set aside with the file's reason
    assert "`held_on`" in problem.reasons[0] and "'06/12/2025' is 6 December 2025 or 12 June 2025" in problem.reasons[0]
    assert outcome.outcome == REFUSED


@pytest.mark.parametrize(
    ("order", "held_on"), [("day_first", ["2025-12-06", "2026-01-07"]), ("month_first", ["2025-06-12", "2026-07-01"])]
)
def test_a_canonical_file_is_read_in_the_declared_order(tmp_path: Path, order: str, held_on: list[str]) -> None:
    path = tmp_path / "workshops.csv"
    path.write_text(WORKSHOPS + "p1,W1,1,06/12/2025,Intro,ORG-A\np1,W2,2,07/01/2026,Deliberation,ORG-A\n")
    frames = read_delivery(delivery(path, "workshops", date_order=order), DeliveryOutcome(1))
    assert isinstance(frames, dict) and frames["workshops"]["held_on"].to_list() == held_on


def test_a_canonical_file_proves_its_own_order_across_its_date_columns(tmp_path: Path) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(
        "panel_id,workshop_id,panellist_ref,question_id,question_text,answer,answered_at\n"
        "p1,W1,P1,Q1,How?,Fine,8/21/2019 1:10 PM\n"
        "p1,W1,P2,Q1,How?,Fine,6/12/2019 9:41 AM\n"
    )
    frames = read_delivery(delivery(path, "responses"), DeliveryOutcome(1))
    assert isinstance(frames, dict)
    assert frames["responses"]["answered_at"].to_list() == ["2019-08-21T13:10:00", "2019-06-12T09:41:00"]
    wrong = read_delivery(delivery(path, "responses", date_order="day_first"), DeliveryOutcome(1))
    assert isinstance(wrong, FileProblem) and wrong.rules == (DATE_ORDER_CONFLICT,)
