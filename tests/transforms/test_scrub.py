"""Free-text scrubbing: exact outputs, exact counts, and scrub_frame agreeing with scrub."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import REPO
from tests.conftest import SAMPLES as SAMPLE_ROOT
from transforms.delivery import roster_names
from transforms.scrub import (
    PLACEHOLDERS,
    ErasedMentions,
    Mentions,
    PersonIdentifiers,
    Scrubber,
    ScrubCounts,
    email_key,
    mention_tokens,
    phone_key,
)

SAMPLES = SAMPLE_ROOT / "survey-exports"
FREE_TEXT_QUESTION = (
    "Is there anything else you would like to tell us? If you would like a reply, please leave your contact details."
)
SCRUBBED_SAMPLE_ANSWERS = [
    "Great session, thanks. The bus links from Lochee are terrible though – please look at the 22 route.\n"
    "Happy to chat more: [email]",
    None,
    "Nobody listens. ring me [phone] if you actually want to hear it",
    "email me - [email] (not putting it in properly cos spam!!)",
    "Could you send the slides? [email] or call [phone] (work, Mon–Thu)",
    "Tel: [phone]\nE: [email]\n\nPS the hall was freezing",
]
CONTACT_DETAILS = [
    "morag.h@example.co.uk",
    "07700 900461",
    "jamie_r99 at example dot com",
    "d.o'neill@example.org",
    "0131 496 0723",
    "+44 (0)7700 900 982",
    "alasdair.macleod@example.scot",
]
ROSTER = ["Morag Anne Henderson", "Dònall O'Neill", "Ali Green"]


def counts(**found: int) -> ScrubCounts:
    return ScrubCounts(**found)


# --- (1) the sample exports ---------------------------------------------------------------------------


def _assert_sample_scrubbed(df: pl.DataFrame, column: str, expected: list[str | None]) -> None:
    original = df[column].to_list()
    scrubbed, found = Scrubber().scrub_frame(df, [column])
    values = scrubbed[column].to_list()
    assert values == expected
    assert found == counts(email=4, phone=3)
    assert not [d for d in CONTACT_DETAILS for v in values if v and d in v]
    assert [d for d in CONTACT_DETAILS if any(v and d in v for v in original)] == CONTACT_DETAILS


def test_google_forms_free_text_is_scrubbed() -> None:
    df = pl.read_csv(SAMPLES / "google_forms_download_responses.csv")
    _assert_sample_scrubbed(df, FREE_TEXT_QUESTION, SCRUBBED_SAMPLE_ANSWERS)


def test_qualtrics_free_text_is_scrubbed() -> None:
    df = pl.read_csv(SAMPLES / "qualtrics_choice_text.csv", skip_rows_after_header=2)
    expected = ["test test - ignore (LM)", *SCRUBBED_SAMPLE_ANSWERS[:5], None, SCRUBBED_SAMPLE_ANSWERS[5]]
    _assert_sample_scrubbed(df, "Q4", expected)


# --- (2) tricky cases ---------------------------------------------------------------------------------

POSITIVES = [
    # emails
    ("morag.h@example.co.uk", "[email]", "email"),
    ("Happy to chat more: morag.h@example.co.uk.", "Happy to chat more: [email].", "email"),
    ("email me - jamie_r99 at example dot com (spam!!)", "email me - [email] (spam!!)", "email"),
    ("name (at) domain (dot) org", "[email]", "email"),
    ("jamie [at] example [dot] co [dot] uk", "[email]", "email"),
    ("JAMIE AT EXAMPLE DOT COM", "[email]", "email"),
    ("jamie at example dot co dot uk", "[email]", "email"),
    ("morag.h at example.co.uk", "[email]", "email"),
    ("Contact: <morag@example.com>", "Contact: <[email]>", "email"),
    ("(morag@example.com)", "([email])", "email"),
    ("[morag@example.com]", "[[email]]", "email"),
    ("'k.ross@example.com'", "'[email]'", "email"),
    ("Tel: 01382 123456\nE: x@y.scot", "Tel: [phone]\nE: [email]", None),
    ("d.o'neill@example.org", "[email]", "email"),
    ("d.o’neill@example.org", "[email]", "email"),
    # a spelled-out web address after "at" reads as an email: over-scrubbing is the safe side
    ("we looked at data dot gov dot uk", "we [email]", "email"),
    # phones
    ("07700 900461", "[phone]", "phone"),
    ("07700900461", "[phone]", "phone"),
    ("+44 (0)7700 900 982", "[phone]", "phone"),
    ("+44 7700 900982", "[phone]", "phone"),
    ("+447700900982", "[phone]", "phone"),
    ("0131 496 0723", "[phone]", "phone"),
    ("(0131) 496 0723", "[phone]", "phone"),
    ("(07700 900461)", "([phone])", "phone"),
    ("0044 131 496 0723", "[phone]", "phone"),
    ("Tel: 01382 123456", "Tel: [phone]", "phone"),
    ("07700-900-461", "[phone]", "phone"),
    ("0131–496–0723", "[phone]", "phone"),
    ("+1 202 555 0143", "[phone]", "phone"),
    ("ring me 07700 900461 if you want", "ring me [phone] if you want", "phone"),
    ("my number is 07700900461.", "my number is [phone].", "phone"),
    ("Room 12 07700 900461", "Room 12 [phone]", "phone"),
    ("in 2024 07700 900461", "in 2024 [phone]", "phone"),
    ("call 0131 496 0723 (work, Mon–Thu)", "call [phone] (work, Mon–Thu)", "phone"),
    ("+44 1314960723", "[phone]", "phone"),
    # postcodes
    ("DD2 3AB", "[postcode]", "postcode"),
    ("dd23ab", "[postcode]", "postcode"),
    ("EH1 1YZ", "[postcode]", "postcode"),
    ("G12 8QQ", "[postcode]", "postcode"),
    ("SW1A 1AA", "[postcode]", "postcode"),
    ("I live at EH11 2AB, Edinburgh", "I live at [postcode], Edinburgh", "postcode"),
    # health ids
    ("CHI 0101701234", "CHI [health-id]", "health_id"),
    ("CHI: 010170 1234", "CHI: [health-id]", "health_id"),
    ("CHI 010-170-1234", "CHI [health-id]", "health_id"),
    ("my CHI is 3112991239.", "my CHI is [health-id].", "health_id"),
    ("NHS number 943 476 5919", "NHS number [health-id]", "health_id"),
    ("9434765919", "[health-id]", "health_id"),
]

NEGATIVES = [
    "2024",
    "In 2024 we met 500 people",
    "1,200 respondents",
    "about 10,000,000 people",
    "at 18:10 on 12/03/2024",
    "2024-03-12 18:10:53",
    "£1,500 a year",
    "45% agreed, 12.5% did not",
    "3",
    "Agree",
    "Prefer not to say",
    "Don't know",
    "look at the data dot points",
    "please look at the 22 route.",
    "Have a look at gov.scot for details",
    "room 101 at 10.30am",
    "@council on twitter",
    "Meet @ 5pm.",
    "the A1 and the M8",
    "DD2 is my area",
    "take the M8 3rd exit",
    "meet at 9am or 5pm",
    "B1 9am",
    "Q3 2024",
    "100 200 300 400",
    "1.2.3.4.5.6.7.8.9.0",
    "0800 1111",  # a short helpline number, not a person's
    "tel 1234 5678",
    "invoice 943 476 5918",  # ten digits, but neither a ddmmyy date nor mod-11 valid
    "Morag Henderson",  # no roster given
]


@pytest.mark.parametrize(("text", "expected", "kind"), POSITIVES)
def test_identifiers_are_replaced(text: str, expected: str, kind: str | None) -> None:
    scrubbed, found = Scrubber().scrub(text)
    assert scrubbed == expected
    if kind is not None:
        assert found == counts(**{kind: 1})


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_text_is_kept(text: str) -> None:
    assert Scrubber().scrub(text) == (text, ScrubCounts())


def test_valid_leniency_rejects_drama_range_mobiles() -> None:
    """Why POSSIBLE (plus our own checks): VALID drops the unassigned 07700 900xxx numbers."""

    def found(text: str, leniency: phonenumbers.Leniency) -> list[str]:
        return [m.raw_string for m in phonenumbers.PhoneNumberMatcher(text, "GB", leniency=leniency)]

    assert found("ring 07700 900461", phonenumbers.Leniency.VALID) == []
    assert found("ring 07700 900461", phonenumbers.Leniency.POSSIBLE) == ["07700 900461"]
    assert found("in 2024", phonenumbers.Leniency.POSSIBLE) == ["2024"]  # hence the extra checks
    assert Scrubber().scrub("ring 07700 900461 in 2024") == ("ring [phone] in 2024", counts(phone=1))


# --- (3) counts ---------------------------------------------------------------------------------------


def test_counts_per_type_are_exact() -> None:
    text = (
        "Tel: +44 (0)7700 900 982 or 07700 900461 / E: a.b@example.scot, c at example dot com / EH1 1YZ / "
        "CHI 0101701234 / Morag Henderson, morag anne henderson"
    )
    scrubbed, found = Scrubber(ROSTER).scrub(text)
    assert scrubbed == ("Tel: [phone] or [phone] / E: [email], [email] / [postcode] / CHI [health-id] / [name], [name]")
    assert found == counts(email=2, phone=2, postcode=1, health_id=1, name=2)
    assert found.total == 8
    assert found.as_dict() == {"email": 2, "phone": 2, "postcode": 1, "health_id": 1, "name": 2}


def test_counts_add_up() -> None:
    assert counts(email=1, name=2) + counts(email=3, phone=1) == counts(email=4, phone=1, name=2)
    assert ScrubCounts().total == 0
    assert set(ScrubCounts().as_dict()) == set(PLACEHOLDERS)


def test_frame_counts_every_row_not_every_distinct_value() -> None:
    df = pl.DataFrame({"a": ["ring 07700 900461"] * 3 + ["Agree", None], "b": ["DD2 3AB", None, "", "x", "y"]})
    scrubbed, found = Scrubber().scrub_frame(df, ["a", "b"])
    assert scrubbed.to_dict(as_series=False) == {
        "a": ["ring [phone]"] * 3 + ["Agree", None],
        "b": ["[postcode]", None, "", "x", "y"],
    }
    assert found == counts(phone=3, postcode=1)


# --- (4) roster names ---------------------------------------------------------------------------------

NAME_CASES = [
    ("Morag Anne Henderson spoke first", "[name] spoke first", 1),
    ("morag henderson agreed", "[name] agreed", 1),
    ("Morag Henderson's idea was good", "[name]'s idea was good", 1),
    ("MORAG\nHENDERSON", "[name]", 1),
    ("Donall O'Neill and Dònall O’Neill", "[name] and [name]", 2),
    ("DÒNALL O'NEILL", "[name]", 1),
    ("Ask Ali Green.", "Ask [name].", 1),
    ("Morag said so", "Morag said so", 0),
    ("Henderson said so", "Henderson said so", 0),
    ("Ali liked the Green spaces", "Ali liked the Green spaces", 0),
    ("Moragh Henderson", "Moragh Henderson", 0),
    ("Morag Hendersons", "Morag Hendersons", 0),
    ("Morag Anne said", "Morag Anne said", 0),
]


@pytest.mark.parametrize(("text", "expected", "n"), NAME_CASES)
def test_roster_names(text: str, expected: str, n: int) -> None:
    assert Scrubber(ROSTER).scrub(text) == (expected, counts(name=n))


def test_single_word_names_are_not_scrubbed() -> None:
    assert Scrubber(["Cher", ""]).scrub("Cher said") == ("Cher said", ScrubCounts())


def test_names_in_a_frame() -> None:
    df = pl.DataFrame(
        {"c": ["Morag Henderson's idea", "Morag's idea", "dònall o'neill", "Mòrag Hènderson – £5", "Agree"]}
    )
    scrubbed, found = Scrubber(ROSTER).scrub_frame(df, ["c"])
    assert scrubbed["c"].to_list() == ["[name]'s idea", "Morag's idea", "[name]", "[name] – £5", "Agree"]
    assert found == counts(name=3)


def test_a_large_roster_still_works() -> None:
    letters = "bcdfghjklmnpqrstvwxz"
    roster = [f"{letters[i % 20]}a{letters[i // 20 % 20]}o {letters[i // 400]}e{letters[i % 7]}ux" for i in range(4000)]
    df = pl.DataFrame({"c": [f"Ask {roster[1234].upper()}", "Agree", f"{roster[3999].split()[0]} alone"]})
    scrubbed, found = Scrubber(roster).scrub_frame(df, ["c"])
    assert scrubbed["c"].to_list() == ["Ask [name]", "Agree", f"{roster[3999].split()[0]} alone"]
    assert found == counts(name=1)


# --- (5) scrub_frame agrees with scrub -----------------------------------------------------------------

PIECES = [
    "the",
    "bus",
    "Agree",
    "at",
    "dot",
    "look",
    "com",
    "example",
    "jamie_r99",
    "morag.h",
    "(at)",
    "[dot]",
    "07700 900461",
    "+44 (0)7700 900 982",
    "0131 496 0723",
    "(0131)",
    "0044",
    "morag.h@example.co.uk",
    "d.o'neill@example.org",
    "DD2 3AB",
    "dd23ab",
    "SW1A",
    "1AA",
    "M8",
    "3rd",
    "0101701234",
    "943 476 5919",
    "Morag",
    "Henderson",
    "HENDERSON",
    "Dònall",
    "O’Neill",
    "o'neill",
    "Ali",
    "Green",
    "2024",
    "£1,500",
    "12/03/2024",
    "18:10",
    "45%",
    "1,200",
]
SEPARATORS = [" ", "", ", ", "\n", " at ", " dot ", ".", "-", "(", ")", "@", "'s "]
piece = st.one_of(
    st.sampled_from(PIECES),
    st.integers(min_value=0, max_value=10**12).map(str),
    st.text(max_size=3),
)
free_text = st.lists(st.tuples(piece, st.sampled_from(SEPARATORS)), max_size=10).map(
    lambda parts: "".join(p + s for p, s in parts)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.none(), free_text), min_size=1, max_size=6))
def test_scrub_frame_matches_scrub_row_by_row(rows: list[str | None]) -> None:
    scrubber = Scrubber(ROSTER)
    df = pl.DataFrame({"t": rows}, schema={"t": pl.String})
    scrubbed, found = scrubber.scrub_frame(df, ["t"])
    one_by_one = [scrubber.scrub(r) for r in rows]
    assert scrubbed["t"].to_list() == [text for text, _ in one_by_one]
    assert found == sum((c for _, c in one_by_one), ScrubCounts())


# --- (6) None, empty, types -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_none_and_empty_pass_through(value: str | None) -> None:
    assert Scrubber(ROSTER).scrub(value) == (value, ScrubCounts())


def test_frame_keeps_nulls_other_columns_and_null_columns() -> None:
    df = pl.DataFrame(
        {"id": [1, 2, 3], "t": [None, "", "07700 900461"], "empty": [None, None, None]},
    )
    scrubbed, found = Scrubber().scrub_frame(df, ["t", "empty"])
    assert scrubbed.to_dict(as_series=False) == {
        "id": [1, 2, 3],
        "t": [None, "", "[phone]"],
        "empty": [None, None, None],
    }
    assert found == counts(phone=1)


def test_frame_rejects_non_text_columns() -> None:
    with pytest.raises(TypeError, match="'id' is Int64"):
        Scrubber().scrub_frame(pl.DataFrame({"id": [1]}), ["id"])


# --- one person's mentions (erasure) ------------------------------------------------------------------

ROWAN = PersonIdentifiers(
    frozenset({"Rowan Kerr", "Rowan Alasdair Kerr"}),
    frozenset({"rowan.kerr@example.org"}),
    frozenset({"07700 900385"}),
    frozenset({"KY1 1ER"}),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I agreed with Rowan Kerr that", "I agreed with [name] that"),
        ("ROWAN  KERR said so", "[name] said so"),
        ("Rówan Kérr too", "[name] too"),
        ("Rowan Alasdair Kerr, in full", "[name], in full"),
        ("write to Rowan.Kerr@Example.org", "write to [email]"),
        ("rowan.kerr (at) example (dot) org", "[email]"),
        ("rowan.kerr at example dot org", "[email]"),
        ("call +44 (0)7700 900 385 or 07700900385", "call [phone] or [phone]"),
    ],
)
def test_mentions_of_one_person_are_replaced_however_they_are_written(text: str, expected: str) -> None:
    assert Mentions(ROWAN).redact(text)[0] == expected


@pytest.mark.parametrize(
    "text",
    [
        "Rowan said so",  # a first name alone: not them for certain
        "Kerry Rowan and Mr Kerr",
        "Rowan Kerridge",
        "rowan.kerr@example.com is someone else",
        "07700 900386 is another number",
        "KY1 1ER is a postcode neighbours share",
        "",
    ],
)
def test_mentions_leave_everyone_else_alone(text: str) -> None:
    mentions = Mentions(ROWAN)
    assert mentions.redact(text) == (text, 0)


def test_mentions_prefilter_never_skips_what_redact_would_change() -> None:
    mentions = Mentions(ROWAN)
    for text in ("ask ROWAN KERR", "rowan.kerr at example dot org", "07700-900-385", "Rówan Kérr"):
        assert mentions.might_mention(text)
    assert not Mentions(PersonIdentifiers())


def test_phone_and_email_keys_compare_numbers_and_addresses_as_written_differently() -> None:
    assert phone_key("+44 (0)7700 900461") == phone_key("07700 900461") == phone_key("0044 7700 900461")
    assert email_key(" Rowan.Kerr @ Example.org ") == "rowan.kerr@example.org"


def test_erased_people_are_found_by_token_alone_in_anyones_text() -> None:
    key = b"b" * 32
    erased = ErasedMentions(key, mention_tokens(key, ROWAN))
    assert erased.redact("I agreed with Rowan Kerr, and rówan alasdair KERR too") == (
        "I agreed with [name], and [name] too",
        2,
    )
    assert erased.redact("mail rowan.kerr (at) example (dot) org or ring 07700 900 385") == (
        "mail [email] or ring [phone]",
        2,
    )
    assert erased.redact("Rowan said; Kerr too; Kerry Rowan; Rowan Kerridge") == (
        "Rowan said; Kerr too; Kerry Rowan; Rowan Kerridge",
        0,
    )
    assert ErasedMentions(b"x" * 32, mention_tokens(key, ROWAN)).redact("Rowan Kerr")[1] == 0  # another key: nothing
    tokens = " ".join(mention_tokens(key, ROWAN))
    assert "kerr" not in tokens.lower() and "900385" not in tokens


def test_the_scrubber_scrubs_erased_names_no_roster_lists_any_more() -> None:
    key = b"b" * 32
    scrubber = Scrubber(["Morag Henderson"], ErasedMentions(key, mention_tokens(key, ROWAN)))
    frame = pl.DataFrame({"t": ["ask Rowan Kerr", "ask Rowan Kerr", "Morag Henderson and Rowan Kerr", "fine", None]})
    scrubbed, found = scrubber.scrub_frame(frame, ["t"])
    assert scrubbed["t"].to_list() == ["ask [name]", "ask [name]", "[name] and [name]", "fine", None]
    assert found == counts(name=4)


def test_roster_names_come_from_each_landing_copy_that_names_people(tmp_path: Path) -> None:
    """Names are read from every roster copy with a full_name column (CSV or spreadsheet, its header in any
    case); a CSV roster without one is passed over on its header, and an unreadable copy is skipped."""
    named = tmp_path / "named.csv"
    named.write_text("panel_id,panellist_ref,Full Name\np1,P1, Morag Henderson \np1,P2,\np1,P3,Ali Green\n")
    nameless = tmp_path / "nameless.csv"
    nameless.write_text("panel_id,panellist_ref,age_band\np1,P4,16-24\n")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"")
    demo = REPO / "examples" / "demo" / "deliveries" / "ceilidh-recruitment" / "panel_roster.xlsx"
    assert roster_names([str(named), str(nameless), str(broken)]) == ["Ali Green", "Morag Henderson"]
    from_sheet = roster_names([str(demo)])
    assert len(from_sheet) == 30 and all(" " in name for name in from_sheet)
    assert roster_names([str(nameless)]) == []
