"""Survey-tool adapters read the shared sample exports exactly as the tools write them.

Expected counts are worked out from the sample files by hand (see the README beside them): 8 Qualtrics
data rows, one a `Survey Preview` and one unfinished; 7 SurveyMonkey respondents, one of whom stopped
after two answers; 6 Microsoft Forms and 6 Google Forms responses. Five questions, the second a
three-row matrix, so 7 canonical questions; one respondent leaves the free text empty.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import SAMPLES as SAMPLE_ROOT
from transforms.adapters import (
    TOOLS,
    AdapterError,
    AdapterResult,
    MappingError,
    SurveyMapping,
    detect_tool,
    load_mapping,
    mapping_from_dict,
    read_googleforms,
    read_mentimeter,
    read_msforms,
    read_qualtrics,
    read_survey,
    read_surveymonkey,
    text_question_id,
)
from transforms.dates import DateOrder

REPO = Path(__file__).parents[2]
SAMPLES = SAMPLE_ROOT / "survey-exports"
EXAMPLES = REPO / "examples" / "mappings"
MENTIMETER = REPO / "tests" / "fixtures" / "survey" / "mentimeter_participant_results.xlsx"

QUALTRICS = SAMPLES / "qualtrics_choice_text.csv"
QUALTRICS_NUMERIC = SAMPLES / "qualtrics_numeric_values.csv"
QUALTRICS_CP1252 = SAMPLES / "qualtrics_choice_text_resaved_excel_uk_cp1252.csv"
SURVEYMONKEY_CSV = SAMPLES / "surveymonkey_expanded_answer_text.csv"
SURVEYMONKEY_XLSX = SAMPLES / "surveymonkey_expanded_answer_text.xlsx"
MSFORMS = SAMPLES / "Community climate workshop feedback(1-8).xlsx"
GOOGLE_FORMS = SAMPLES / "google_forms_download_responses.csv"
GOOGLE_SHEET = SAMPLES / "google_sheets_form_responses_1_uk_locale.csv"

MATRIX = "How much do you agree or disagree with the following statements about the workshop?"
TOPICS = "Which of these topics matter most to you? Select all that apply."
FREE_TEXT = (
    "Is there anything else you would like to tell us? If you would like a reply, please leave your contact details."
)
OTHER_TOPICS = "Flood protection; Waste & recycling; Dog fouling on the Law"
LAST_FREE_TEXT = "Tel: +44 (0)7700 900 982\nE: alasdair.macleod@example.scot\n\nPS the hall was freezing"
GENERATED_IDS = {"Q1", "Q2_1", "Q2_2", "Q2_3", "Q3", "Q4", "Q5"}  # Qualtrics: its export tags
AGE = "What is your age group?"
MODE = "How did you take part?"
ROWS = (
    "The workshop was well organised",
    "I had enough opportunity to share my views",
    "I trust the council to act on what was said",
)


def generated(matrix_row: Callable[[str], str]) -> dict[str, str]:
    """The shared survey's questions by position (Q1, Q2_1..Q2_3, Q3..Q5) -> the ids made from their texts,
    for a tool that writes a matrix row's text as `matrix_row(row)`."""
    texts = {"Q1": AGE, **{f"Q2_{i}": matrix_row(r) for i, r in enumerate(ROWS, 1)}}
    texts |= {"Q3": TOPICS, "Q4": FREE_TEXT, "Q5": MODE}
    return {position: text_question_id(text) for position, text in texts.items()}


SM = generated(lambda row: f"{MATRIX} - {row}")  # SurveyMonkey: row 1 + " - " + row 2
GF = generated(lambda row: f"{MATRIX} [{row}]")  # Google Forms: "Question [Row]"
MF = generated(lambda row: row)  # Microsoft Forms: the statement only
MM = generated(lambda row: f"{MATRIX}:: {row}")  # Mentimeter: "Prompt:: Statement"
MAPPED_IDS = {"W2-Q01", "W2-Q02-1", "W2-Q02-2", "W2-Q02-3", "W2-Q03", "W2-Q04", "W2-Q05"}
RESPONSE_SCHEMA = {
    "panel_id": pl.String,
    "workshop_id": pl.String,
    "panellist_ref": pl.String,
    "question_id": pl.String,
    "question_text": pl.String,
    "answer": pl.String,
    "answered_at": pl.String,
    "source_row": pl.Int64,
}


def load_all(tool: str, panellist_column: str, **extra: object) -> SurveyMapping:
    """A mapping that names no questions: every question loads under a generated id."""
    return mapping_from_dict(
        {"tool": tool, "panel_id": "din-pilot-2026", "workshop_id": "W2", "panellist_column": panellist_column, **extra}
    )


def answer(result: AdapterResult, panellist: str, question_id: str) -> str:
    rows = result.responses.filter((pl.col("panellist_ref") == panellist) & (pl.col("question_id") == question_id))
    assert rows.height == 1, f"{panellist}/{question_id}: {rows.height} rows"
    return rows["answer"][0]


def column_of(result: AdapterResult, panellist: str, name: str) -> list[object]:
    return result.responses.filter(pl.col("panellist_ref") == panellist)[name].unique().to_list()


def answer_counts(result: AdapterResult) -> Counter[tuple[str, str]]:
    return Counter(zip(result.responses["question_id"], result.responses["answer"], strict=True))


def triples(result: AdapterResult) -> set[tuple[str, str, str]]:
    return set(result.responses.select("panellist_ref", "question_id", "answer").iter_rows())


# --------------------------------------------------------------------------------------------------
# Qualtrics


def test_qualtrics_choice_text_export_loads_with_previews_and_partials_excluded() -> None:
    result = read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId"))

    assert result.respondents == 6
    assert result.excluded == {"preview": 1, "incomplete": 1}
    assert result.responses.height == 41  # 6 respondents x 7 questions, less one empty free text
    assert set(result.responses["question_id"]) == GENERATED_IDS
    assert result.responses.schema == pl.Schema(RESPONSE_SCHEMA)
    assert result.unmapped_columns == []
    refs = set(result.responses["panellist_ref"])
    assert "R_3Ux9Gd0aT7kNq2B" not in refs  # the Survey Preview row
    assert "R_7TnB3dKx6LpO4Ji" not in refs  # Finished False
    assert answer(result, "R_3eH7vN2bQyTg0Rc", "Q1") == "Prefer not to say"
    assert answer(result, "R_3eH7vN2bQyTg0Rc", "Q2_3") == "Don't know"
    assert answer(result, "R_1Kq8ZtXw3mPa9Lf", "Q2_2") == "Strongly agree"
    assert answer(result, "R_1Kq8ZtXw3mPa9Lf", "Q3") == "Public transport; Green spaces"
    assert answer(result, "R_2aZpL5sWm8XkD1u", "Q3") == OTHER_TOPICS  # typed "Other" text in place of the label
    assert answer(result, "R_1mC8fQ2rZv5WyHs", "Q4") == LAST_FREE_TEXT
    assert column_of(result, "R_3eH7vN2bQyTg0Rc", "question_id").count("Q4") == 0  # empty = no row
    assert column_of(result, "R_1Kq8ZtXw3mPa9Lf", "answered_at") == ["2024-03-12T18:10:53"]  # EndDate
    assert column_of(result, "R_1Kq8ZtXw3mPa9Lf", "source_row") == [5]  # rows 1-3 header, 4 the preview
    assert column_of(result, "R_1mC8fQ2rZv5WyHs", "source_row") == [11]  # multi-line cells are one row
    texts = dict(result.responses.select("question_id", "question_text").unique().iter_rows())
    assert texts["Q2_1"] == f"{MATRIX} - The workshop was well organised"
    assert texts["Q3"] == TOPICS
    assert texts["Q4"] == FREE_TEXT
    assert set(result.responses["panel_id"]) == {"din-pilot-2026"}
    assert set(result.responses["workshop_id"]) == {"W2"}


def test_qualtrics_numeric_export_gives_the_same_respondents_and_question_ids_and_keeps_unlabelled_codes() -> None:
    text = read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId"))
    numeric = read_qualtrics(QUALTRICS_NUMERIC, load_all("qualtrics", "ResponseId"))

    assert numeric.respondents == 6
    assert numeric.excluded == {"preview": 1, "incomplete": 1}  # Status 1 and Finished 0
    assert numeric.responses.height == 41
    assert set(numeric.responses["panellist_ref"]) == set(text.responses["panellist_ref"])
    assert set(numeric.responses["question_id"]) == set(text.responses["question_id"])
    assert answer(numeric, "R_3eH7vN2bQyTg0Rc", "Q1") == "7"  # no labels in the mapping: the code stays
    assert answer(numeric, "R_3eH7vN2bQyTg0Rc", "Q2_3") == "6"
    # A split multi-select's cells are just 1; the choice labels come from header row 2.
    assert answer(numeric, "R_2aZpL5sWm8XkD1u", "Q3") == OTHER_TOPICS


def test_qualtrics_numeric_export_with_value_labels_equals_the_choice_text_export() -> None:
    mapping = load_mapping(EXAMPLES / "qualtrics.yaml")

    text = read_qualtrics(QUALTRICS, mapping)
    numeric = read_qualtrics(QUALTRICS_NUMERIC, mapping)

    assert numeric.responses.height == 41
    assert triples(numeric) == triples(text)
    assert answer(numeric, "R_3eH7vN2bQyTg0Rc", "W2-Q01") == "Prefer not to say"


def test_qualtrics_cp1252_excel_resave_gives_the_same_answers_with_uk_dates() -> None:
    utf8 = read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId"))
    resaved = read_qualtrics(QUALTRICS_CP1252, load_all("qualtrics", "ResponseId"))

    assert resaved.respondents == 6
    assert resaved.excluded == {"preview": 1, "incomplete": 1}
    assert resaved.responses.height == 41
    assert triples(resaved) == triples(utf8)
    assert answer(resaved, "R_1Kq8ZtXw3mPa9Lf", "Q1") == "35–44"  # the en dash survives cp1252
    assert answer(resaved, "R_1mC8fQ2rZv5WyHs", "Q4") == LAST_FREE_TEXT
    # `12/03/2024 18:10` is 12 March (13/03 elsewhere in the file shows dd/mm); Excel dropped the seconds.
    assert column_of(resaved, "R_1Kq8ZtXw3mPa9Lf", "answered_at") == ["2024-03-12T18:10:00"]
    assert column_of(resaved, "R_2aZpL5sWm8XkD1u", "answered_at") == ["2024-03-13T09:23:00"]
    assert column_of(resaved, "R_1mC8fQ2rZv5WyHs", "source_row") == [11]


def test_qualtrics_selectors_by_tag_importid_or_label_and_unmapped_columns_reported() -> None:
    mapping = load_all(
        "qualtrics",
        "Response ID",
        questions={  # the panellist column by its row-2 label
            "QID1": "AGE",
            "Q3": "TOPICS",
            f"{MATRIX} - I trust the council to act on what was said": "TRUST",
        },
    )

    result = read_qualtrics(QUALTRICS, mapping)

    assert result.respondents == 6
    assert result.responses.height == 18  # 6 respondents x 3 questions, all answered
    assert set(result.responses["question_id"]) == {"AGE", "TOPICS", "TRUST"}
    assert answer(result, "R_3eH7vN2bQyTg0Rc", "TRUST") == "Don't know"
    assert result.unmapped_columns == ["Q2_1", "Q2_2", "Q4", "Q5"]


# --------------------------------------------------------------------------------------------------
# SurveyMonkey


@pytest.mark.parametrize("path", [SURVEYMONKEY_CSV, SURVEYMONKEY_XLSX], ids=["csv", "xlsx"])
def test_surveymonkey_export_loads_with_forward_filled_questions_and_us_dates(path: Path) -> None:
    result = read_surveymonkey(path, load_all("surveymonkey", "Respondent ID"))

    assert result.respondents == 7  # the file marks no partial responses: all are loaded
    assert result.excluded == {}
    assert result.responses.height == 43  # 5 full x 7, one without free text (6), one partial (2)
    assert set(result.responses["question_id"]) == set(SM.values())
    assert set(column_of(result, "114230199225", "question_id")) == {SM["Q1"], SM["Q2_1"]}  # the blank tail
    assert answer(result, "114230198813", SM["Q1"]) == "Prefer not to say"
    assert answer(result, "114230198813", SM["Q2_3"]) == "Don't know"
    assert answer(result, "114230198883", SM["Q3"]) == OTHER_TOPICS
    assert answer(result, "114230199383", SM["Q4"]) == LAST_FREE_TEXT
    # `03/12/2024 06:10:53 PM` is 12 March: `03/13/2024` in the same column shows mm/dd.
    assert column_of(result, "114230198765", "answered_at") == ["2024-03-12T18:10:53"]
    assert column_of(result, "114230199383", "answered_at") == ["2024-03-18T21:24:40"]
    assert column_of(result, "114230198765", "source_row") == [3]
    assert column_of(result, "114230199383", "source_row") == [9]
    texts = dict(result.responses.select("question_id", "question_text").unique().iter_rows())
    assert texts[SM["Q2_2"]] == f"{MATRIX} - I had enough opportunity to share my views"
    assert texts[SM["Q3"]] == TOPICS


def test_surveymonkey_declared_day_first_contradicting_the_dates_is_refused() -> None:
    with pytest.raises(AdapterError, match=r"surveymonkey_expanded_answer_text\.csv.*day_first.*mm/dd") as refused:
        read_surveymonkey(SURVEYMONKEY_CSV, load_all("surveymonkey", "Respondent ID"), DateOrder.DAY_FIRST)
    assert refused.value.rule == "date_order_conflict"


# --------------------------------------------------------------------------------------------------
# Microsoft Forms


def test_msforms_export_loads_likert_statements_and_semicolon_multi_selects() -> None:
    result = read_msforms(MSFORMS, load_all("msforms", "ID"))

    assert result.respondents == 6
    assert result.excluded == {}
    assert result.responses.height == 41
    # Forms loses the Likert parent: each statement is its own question, so 7 in all.
    assert set(result.responses["question_id"]) == set(MF.values())
    assert sorted(set(result.responses["panellist_ref"]), key=int) == ["1", "2", "3", "5", "6", "8"]
    assert answer(result, "2", MF["Q1"]) == "Prefer not to say"
    assert answer(result, "2", MF["Q2_3"]) == "Don't know"
    assert answer(result, "3", MF["Q3"]) == OTHER_TOPICS  # `Flood protection;Waste & recycling;Dog fouling on the Law;`
    assert answer(result, "2", MF["Q3"]) == "Home energy & insulation"
    assert answer(result, "8", MF["Q4"]) == LAST_FREE_TEXT
    assert column_of(result, "1", "answered_at") == ["2024-03-12T18:10:53"]  # Completion time, an Excel date
    assert column_of(result, "5", "answered_at") == ["2024-03-14T20:32:46"]  # not the later Last modified time
    assert column_of(result, "1", "source_row") == [2]
    assert column_of(result, "8", "source_row") == [7]
    texts = dict(result.responses.select("question_id", "question_text").unique().iter_rows())
    assert texts[MF["Q2_1"]] == "The workshop was well organised"


# --------------------------------------------------------------------------------------------------
# Google Forms


@pytest.mark.parametrize("path", [GOOGLE_FORMS, GOOGLE_SHEET], ids=["forms-download", "sheet-uk-locale"])
def test_googleforms_export_loads_grid_rows_and_both_timestamp_formats(path: Path) -> None:
    result = read_googleforms(path, load_all("googleforms", "Email address"))

    assert result.respondents == 6
    assert result.excluded == {}
    assert result.responses.height == 41
    assert set(result.responses["question_id"]) == set(GF.values())
    assert answer(result, "k.ross@example.com", GF["Q1"]) == "Prefer not to say"
    assert answer(result, "k.ross@example.com", GF["Q2_3"]) == "Don't know"
    # Undeclared, a checkbox cell cannot be told from free text, so it stays as Google joined it.
    google_joined = "Flood protection, Waste & recycling, Dog fouling on the Law"
    assert answer(result, "bill.tennant@example.net", GF["Q3"]) == google_joined
    assert answer(result, "alasdair.macleod@example.scot", GF["Q4"]) == LAST_FREE_TEXT
    assert column_of(result, "morag.h@example.co.uk", "answered_at") == ["2024-03-12T18:10:53"]
    assert column_of(result, "bill.tennant@example.net", "answered_at") == ["2024-03-13T09:23:40"]
    assert column_of(result, "alasdair.macleod@example.scot", "source_row") == [7]
    texts = dict(result.responses.select("question_id", "question_text").unique().iter_rows())
    assert texts[GF["Q2_1"]] == f"{MATRIX} [The workshop was well organised]"


def test_googleforms_declared_checkboxes_become_semicolon_lists() -> None:
    result = read_googleforms(GOOGLE_FORMS, load_all("googleforms", "Email address", multi_select=[TOPICS]))

    assert answer(result, "bill.tennant@example.net", GF["Q3"]) == OTHER_TOPICS
    assert (
        answer(result, "jamie.r99@example.com", GF["Q3"]) == "Public transport; Home energy & insulation; Green spaces"
    )
    # Free text with commas is untouched.
    assert answer(result, "morag.h@example.co.uk", GF["Q4"]).startswith("Great session, thanks. The bus links")


def test_googleforms_choices_keep_labels_containing_the_separator(tmp_path: Path) -> None:
    export = tmp_path / "responses.csv"
    export.write_text(
        "Timestamp,Email address,Which services?\n"
        '05/03/2024 10:00:00,a@example.com,"Housing, Health, social care"\n'
        '06/03/2024 11:30:00,b@example.com,"Health, social care, my own, words"\n',
        encoding="utf-8",
    )
    mapping = load_all(
        "googleforms",
        "Email address",
        multi_select=["Which services?"],
        choices={"Which services?": ["Health, social care", "Housing"]},
    )

    result = read_googleforms(export, mapping, DateOrder.DAY_FIRST)

    assert (
        answer(result, "a@example.com", text_question_id("Which services?")) == "Health, social care; Housing"
    )  # in option order
    assert answer(result, "b@example.com", text_question_id("Which services?")) == "Health, social care; my own, words"
    # No day above 12: read in the order the source declares, never guessed.
    uk = read_googleforms(export, mapping, DateOrder.DAY_FIRST)
    assert column_of(uk, "a@example.com", "answered_at") == ["2024-03-05T10:00:00"]
    us = read_googleforms(export, mapping, DateOrder.MONTH_FIRST)
    assert column_of(us, "a@example.com", "answered_at") == ["2024-05-03T10:00:00"]


# --------------------------------------------------------------------------------------------------
# Mentimeter (a fixture built from FORMATS.md: no real export was available)


def test_mentimeter_long_layout_loads_after_preamble_rows() -> None:
    result = read_mentimeter(MENTIMETER, load_all("mentimeter", "Participant (ID)"))

    assert result.respondents == 3
    assert result.excluded == {"no_panellist_ref": 2}  # two anonymous answer rows
    assert result.responses.height == 15  # p-4f1a 7, p-77c2 5 (one shown but unanswered), p-09be 3
    assert set(result.responses["question_id"]) == set(MM.values())
    assert answer(result, "p-77c2", MM["Q1"]) == "Prefer not to say"
    assert answer(result, "p-77c2", MM["Q2_3"]) == "Don't know"
    assert answer(result, "p-4f1a", MM["Q3"]) == "Public transport; Green spaces"  # two rows, one answer
    assert answer(result, "p-77c2", MM["Q3"]) == "Waste & recycling; Home energy & insulation"  # file order
    assert answer(result, "p-4f1a", MM["Q4"]) == "Great session, thanks.\nHappy to chat more: morag.h@example.co.uk"
    rows = result.responses.filter(pl.col("panellist_ref") == "p-4f1a")
    assert dict(zip(rows["question_id"], rows["source_row"], strict=True)) == {
        MM["Q1"]: 4,
        MM["Q2_1"]: 5,
        MM["Q2_2"]: 6,
        MM["Q2_3"]: 7,
        MM["Q3"]: 8,
        MM["Q4"]: 10,
        MM["Q5"]: 11,
    }
    assert dict(zip(rows["question_id"], rows["answered_at"], strict=True))[MM["Q4"]] == "2024-03-12T18:08:55"


def test_mentimeter_choices_restore_option_order() -> None:
    result = read_mentimeter(MENTIMETER, load_mapping(EXAMPLES / "mentimeter.yaml"))

    assert answer(result, "p-77c2", "W2-Q03") == "Home energy & insulation; Waste & recycling"
    assert set(result.responses["question_id"]) == MAPPED_IDS


# --------------------------------------------------------------------------------------------------
# Across tools, mappings and errors


ALL_SAMPLES = [
    ("qualtrics", QUALTRICS),
    ("qualtrics", QUALTRICS_NUMERIC),
    ("qualtrics", QUALTRICS_CP1252),
    ("surveymonkey", SURVEYMONKEY_CSV),
    ("surveymonkey", SURVEYMONKEY_XLSX),
    ("msforms", MSFORMS),
    ("googleforms", GOOGLE_FORMS),
    ("googleforms", GOOGLE_SHEET),
    ("mentimeter", MENTIMETER),
]


def test_example_mappings_load_and_give_the_same_answers_from_every_tool() -> None:
    assert sorted(p.stem for p in EXAMPLES.glob("*.yaml")) == sorted(
        TOOLS
    )  # polis.yaml: tests/transforms/test_polis.py
    results = {path.name: read_survey(path, load_mapping(EXAMPLES / f"{tool}.yaml")) for tool, path in ALL_SAMPLES}

    for result in results.values():
        assert set(result.responses["question_id"]) == MAPPED_IDS
        assert result.unmapped_columns == []
    expected = answer_counts(results[QUALTRICS.name])
    assert sum(expected.values()) == 41
    assert expected[("W2-Q03", OTHER_TOPICS)] == 1
    for path in (QUALTRICS_NUMERIC, QUALTRICS_CP1252, MSFORMS, GOOGLE_FORMS, GOOGLE_SHEET):
        assert answer_counts(results[path.name]) == expected, path.name
    # SurveyMonkey adds the partial respondent that Qualtrics excludes.
    partial = Counter({("W2-Q01", "25–34"): 1, ("W2-Q02-1", "Agree"): 1})
    assert answer_counts(results[SURVEYMONKEY_CSV.name]) == expected + partial
    assert answer_counts(results[SURVEYMONKEY_XLSX.name]) == expected + partial


def test_example_mapping_fields() -> None:
    mapping = load_mapping(EXAMPLES / "qualtrics.yaml")

    assert mapping.tool == "qualtrics"
    assert (mapping.panel_id, mapping.workshop_id, mapping.panellist_column) == ("din-pilot-2026", "W2", "ResponseId")
    assert mapping.questions["QID5"] == "W2-Q03"
    assert mapping.value_labels["QID1"]["7"] == "Prefer not to say"
    assert mapping.value_labels["QID2_3"]["6"] == "Don't know"  # a YAML alias of QID2_1's labels
    assert load_mapping(EXAMPLES / "googleforms.yaml").multi_select == (TOPICS,)


@pytest.mark.parametrize(("tool", "path"), ALL_SAMPLES, ids=lambda v: getattr(v, "name", v))
def test_tool_metadata_never_becomes_an_answer(tool: str, path: Path) -> None:
    result = read_survey(path, load_mapping(EXAMPLES / f"{tool}.yaml"))
    answers = " ".join(result.responses["answer"])

    for metadata in (
        "198.51.100.23",
        "192.0.2.140",
        "anonymous",
        "456789123",
        "k.ross@example.com",
        "Survey Preview",
        "EN-GB",
        "56.4620056152344",
        "Lochee 12 March",
    ):
        assert metadata not in answers


def test_project_feedback_mapping_gives_canonical_rows() -> None:
    agreement = {
        "Strongly disagree": 1,
        "Disagree": 2,
        "Neither agree nor disagree": 3,
        "Agree": 4,
        "Strongly agree": 5,
    }
    mapping = load_all(
        "qualtrics",
        "ResponseId",
        project_feedback=[
            {
                "project_id": "PRJ-03",
                "benefit": "QID2_1",
                "benefit_values": agreement,
                "acceptability": "Q2_3",
                "acceptability_values": {
                    "Strongly agree": "acceptable",
                    "agree": "acceptable",
                    "Neither agree nor disagree": "acceptable_with_conditions",
                    "Disagree": "unacceptable",
                    "Strongly disagree": "unacceptable",
                    "Don’t know": "unsure",
                },  # curly apostrophe and case still match
                "comment": "Q4",
            }
        ],
    )

    result = read_qualtrics(QUALTRICS, mapping)
    feedback = result.project_feedback

    assert feedback.height == 6
    assert feedback.columns == [
        "panel_id",
        "workshop_id",
        "project_id",
        "panellist_ref",
        "benefit",
        "risk",
        "acceptability",
        "conditions",
        "comment",
        "source_row",
    ]
    by_ref = {row["panellist_ref"]: row for row in feedback.iter_rows(named=True)}
    assert by_ref["R_1Kq8ZtXw3mPa9Lf"] | {"comment": None} == {
        "panel_id": "din-pilot-2026",
        "workshop_id": "W2",
        "project_id": "PRJ-03",
        "panellist_ref": "R_1Kq8ZtXw3mPa9Lf",
        "benefit": "4",
        "risk": None,
        "acceptability": "acceptable_with_conditions",
        "conditions": None,
        "comment": None,
        "source_row": 5,
    }
    assert by_ref["R_1Kq8ZtXw3mPa9Lf"]["comment"].startswith("Great session, thanks.")
    assert (by_ref["R_3eH7vN2bQyTg0Rc"]["benefit"], by_ref["R_3eH7vN2bQyTg0Rc"]["acceptability"]) == ("5", "unsure")
    assert by_ref["R_3eH7vN2bQyTg0Rc"]["comment"] is None
    assert (by_ref["R_2aZpL5sWm8XkD1u"]["benefit"], by_ref["R_2aZpL5sWm8XkD1u"]["acceptability"]) == (
        "2",
        "unacceptable",
    )
    # Questions routed to feedback are not loaded again as responses: 41 less Q2_1 (6), Q2_3 (6), Q4 (5).
    assert result.responses.height == 24
    assert set(result.responses["question_id"]) == {"Q1", "Q2_2", "Q3", "Q5"}


def test_no_feedback_mapping_gives_an_empty_canonical_frame() -> None:
    feedback = read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId")).project_feedback

    assert feedback.height == 0
    assert feedback.columns[:4] == ["panel_id", "workshop_id", "project_id", "panellist_ref"]


@pytest.mark.parametrize(
    ("reader", "path", "expected", "looks_like"),
    [
        (
            read_qualtrics,
            SURVEYMONKEY_CSV,
            "expected Qualtrics' three header rows; row 3 holds no ImportId JSON",
            "SurveyMonkey",
        ),
        (read_qualtrics, GOOGLE_FORMS, "row 3 holds no ImportId JSON", "Google Forms"),
        (read_surveymonkey, QUALTRICS, "expected SurveyMonkey's two header rows", "Qualtrics"),
        (read_msforms, SURVEYMONKEY_XLSX, "expected Microsoft Forms' header row", "SurveyMonkey"),
        (read_googleforms, MSFORMS, "expected Google Forms' header row starting 'Timestamp'", "Microsoft Forms"),
        (read_mentimeter, QUALTRICS_CP1252, "'Question' and 'Answer' columns", "Qualtrics"),
    ],
    ids=[
        "qualtrics<-surveymonkey",
        "qualtrics<-google",
        "surveymonkey<-qualtrics",
        "msforms<-surveymonkey",
        "google<-msforms",
        "mentimeter<-qualtrics",
    ],
)
def test_a_file_from_another_tool_raises_adapter_error_naming_file_and_expectation(
    reader: object, path: Path, expected: str, looks_like: str
) -> None:
    tool = {
        read_qualtrics: "qualtrics",
        read_surveymonkey: "surveymonkey",
        read_msforms: "msforms",
        read_googleforms: "googleforms",
        read_mentimeter: "mentimeter",
    }[reader]
    with pytest.raises(AdapterError) as raised:
        reader(path, load_all(tool, "ID"))

    message = str(raised.value)
    assert message.startswith(path.name)
    assert expected in message
    assert f"looks like a {looks_like} export" in message
    assert isinstance(raised.value, ValueError)


def test_qualtrics_text_entry_repeated_tags_and_helper_columns(tmp_path: Path) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "StartDate,EndDate,Status,Finished,ResponseId,Q1,Q1_3_TEXT,Q2_1,Q2_1,Q9_First Click,\n"
        "Start Date,End Date,Response Type,Finished,Response ID,Is it acceptable? - Selected Choice,"
        "Is it acceptable? - Acceptable if... - Text,Rate - <b>A</b>,Rate - B,Timing - First Click,\n"
        + ",".join(
            f'"{{""ImportId"":""{i}""}}"'
            for i in (
                "startDate",
                "endDate",
                "status",
                "finished",
                "_recordId",
                "QID1",
                "QID1_3_TEXT",
                "QID2_1",
                "QID2_117",
                "QID9_FIRST_CLICK",
            )
        )
        + ",\n"
        "2024-03-12 18:05:41,2024-03-12 18:10:53,IP Address,True,R_1,Acceptable if...,only with opt-out,Yes,No,3.2,\n"
        ",,,,,,,,,,\n"
        "2024-03-12 18:05:41,2024-03-12 18:10:53,IP Address,True,R_2,Acceptable,,,,1.0,\n",
        encoding="utf-8",
    )
    mapping = load_all(
        "qualtrics",
        "ResponseId",
        project_feedback=[
            {
                "project_id": "PRJ-01",
                "acceptability": "QID1",
                "conditions": "QID1_3_TEXT",
                "acceptability_values": {"Acceptable if...": "acceptable_with_conditions"},
            }
        ],
    )

    result = read_qualtrics(export, mapping)

    assert result.respondents == 2
    # The tag Q2_1 appears twice, so both fall back to their ImportIds; the timing column is no question.
    assert sorted(
        result.responses.select("panellist_ref", "question_id", "question_text", "answer", "source_row").iter_rows()
    ) == [
        ("R_1", "QID2_1", "Rate - A", "Yes", 4),
        ("R_1", "QID2_117", "Rate - B", "No", 4),
    ]
    feedback = result.project_feedback.select("panellist_ref", "acceptability", "conditions", "source_row")
    assert sorted(feedback.iter_rows()) == [
        ("R_1", "acceptable_with_conditions", "only with opt-out", 4),
        ("R_2", "acceptable", None, 6),  # the blank line is row 5
    ]


def test_legacy_qualtrics_export_is_refused_with_advice(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("V1,V2,V3,Q1\nResponseID,ResponseSet,Name,Age?\nR_1,Default,Anon,35\n", encoding="utf-8")

    with pytest.raises(AdapterError, match=r"legacy\.csv: a legacy \(pre-2017\) Qualtrics export"):
        read_qualtrics(legacy, load_all("qualtrics", "ResponseID"))


def test_mapping_naming_an_absent_question_or_column_raises() -> None:
    with pytest.raises(AdapterError, match=r"qualtrics_choice_text\.csv: the mapping's questions names 'QID99'"):
        read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId", questions={"QID99": "X"}))
    with pytest.raises(AdapterError, match=r"no panellist column 'Panellist ref'"):
        read_qualtrics(QUALTRICS, load_all("qualtrics", "Panellist ref"))
    with pytest.raises(AdapterError, match=r"both name 'Q1'"):
        read_qualtrics(QUALTRICS, load_all("qualtrics", "ResponseId", questions={"Q1": "A", "QID1": "B"}))


def test_malformed_mappings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="unknown key"):
        load_all("qualtrics", "ResponseId", question={"Q1": "A"})
    with pytest.raises(MappingError, match="tool 'typeform'"):
        load_all("typeform", "ResponseId")
    with pytest.raises(MappingError, match="both map to question_id 'A'"):
        load_all("qualtrics", "ResponseId", questions={"Q1": "A", "Q5": "A"})
    with pytest.raises(MappingError, match="acceptability_values map to"):
        load_all(
            "qualtrics",
            "ResponseId",
            project_feedback=[{"project_id": "P", "acceptability": "Q1", "acceptability_values": {"Yes": "ok"}}],
        )
    yes_no = tmp_path / "yes_no.yaml"
    yes_no.write_text(
        "tool: qualtrics\npanel_id: P\nworkshop_id: W1\npanellist_column: ResponseId\n"
        "value_labels:\n  Q1: {1: Yes, 2: No, 3: Off, 4: true}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(yes_no)
    assert mapping.value_labels == {"Q1": {"1": "Yes", "2": "No", "3": "Off", "4": "True"}}  # not YAML booleans
    with pytest.raises(MappingError, match=r"day_first is no longer a mapping key.*date_order"):
        load_all("qualtrics", "ResponseId", day_first=True)


@pytest.mark.parametrize(("tool", "path"), ALL_SAMPLES, ids=lambda v: getattr(v, "name", v))
def test_detect_tool_recognises_every_sample(tool: str, path: Path) -> None:
    assert detect_tool(path) == tool


def test_detect_tool_returns_none_for_other_files() -> None:
    assert detect_tool(SAMPLES / "README.md") is None
    assert detect_tool(EXAMPLES / "qualtrics.yaml") is None


# --------------------------------------------------------------------------------------------------
# Real exports as partners change them (real-exports/qualtrics/sample.csv: ropensci/qualtRics, MIT)

REAL_QUALTRICS = SAMPLE_ROOT / "real-exports" / "qualtrics" / "sample.csv"


def test_a_column_appended_to_a_real_qualtrics_export_is_kept_out_and_the_rest_loads(tmp_path: Path) -> None:
    import csv

    rows = list(csv.reader(REAL_QUALTRICS.open(encoding="utf-8", newline="")))
    rows[0].append("Caseworker notes")
    rows[1].append("Caseworker notes")
    rows[2].append("typed by hand")  # plain text in header row 3: no ImportId JSON
    for row in rows[3:]:
        row.append("called back on Tuesday")
    appended = tmp_path / "sample.csv"
    with appended.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    mapping = load_all("qualtrics", "ResponseId")

    original = read_qualtrics(REAL_QUALTRICS, mapping)
    result = read_qualtrics(appended, mapping)

    assert result.responses.equals(original.responses)  # the export's own columns load as before
    assert result.respondents == original.respondents == 1
    assert set(result.responses["question_id"]) == {"Q1", "Q2"}  # the Text iQ column is not a question either
    assert "called back on Tuesday" not in set(result.responses["answer"])
    assert result.unmapped_columns == ["Caseworker notes"]
    assert "'Caseworker notes' have no ImportId in header row 3" in result.notes[0]


def test_a_qualtrics_export_whose_row_3_has_no_import_id_at_all_is_still_refused(tmp_path: Path) -> None:
    lines = REAL_QUALTRICS.read_text(encoding="utf-8").splitlines()
    lines[2] = ",".join(["x"] * 20)
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(AdapterError, match="row 3 holds no ImportId JSON"):
        read_qualtrics(broken, load_all("qualtrics", "ResponseId"))


def test_google_forms_question_ids_stay_the_same_for_the_same_question_across_deliveries(tmp_path: Path) -> None:
    first = tmp_path / "responses-march.csv"
    first.write_text(
        "Timestamp,Email address,What is your age group?,How did you take part?\n"
        "2024/03/12 6:10:53 PM GMT,a@example.com,25–34,In person\n",
        encoding="utf-8",
    )
    # The form's owner added a question at the top and moved another: positions all changed.
    second = tmp_path / "responses-april.csv"
    second.write_text(
        "Timestamp,Email address,Which council area do you live in?,How did you take part?,What is your  age group?\n"
        "2024/04/09 7:01:02 PM GMT,a@example.com,Dundee City,Online,35–44\n",
        encoding="utf-8",
    )
    mapping = load_all("googleforms", "Email address")
    march = dict(read_googleforms(first, mapping).responses.select("question_text", "question_id").iter_rows())
    april = dict(read_googleforms(second, mapping).responses.select("question_text", "question_id").iter_rows())

    assert april["How did you take part?"] == march["How did you take part?"]
    assert april["What is your age group?"] == march["What is your age group?"]  # spacing is forgiven
    assert april["Which council area do you live in?"] not in march.values()
    assert march["What is your age group?"] == "Q87ce5368"  # pinned: a change here renames every question
    # The same text gives the same id in another tool's export too.
    assert text_question_id("What is your age group?") in set(
        read_msforms(MSFORMS, load_all("msforms", "ID")).responses["question_id"]
    )
