"""Deterministic demo data: the pilot panel's network, and a scale-up for benchmarks.

`write_demo` writes a small, realistic network of deliveries (several organisations, formats and
encodings) with a documented set of planted faults and identifiers; `write_scaled` writes canonical
response CSVs of any size for benchmarks. Same seed, same bytes. Nothing in the data is real:
emails use example.* domains and phone numbers Ofcom's drama ranges.

    python -m tools.demo_data examples/demo                  # regenerate the committed demo
    python -m tools.demo_data /tmp/bench --scaled 1000000 --files 10
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import xlsxwriter

from din.contract import KINDS

PANEL_ID = "din-pilot-2026"
DEMO_SEED = 2026
SCALED_SEED = 7
DEMO_DATA_DIR = "../../data/demo"

#: Fixed creation time written into every workbook, so that XLSX files are byte-identical.
_WORKBOOK_CREATED = dt.datetime(2026, 3, 1, 9, 0, 0)

# --------------------------------------------------------------------------------------------
# Manifest types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoFile:
    """One delivered or reference file of the demo."""

    path: str  # relative to the demo folder, with forward slashes
    kind: str
    organisation: str
    source: str  # the source's name in din.yaml
    format: str  # csv, xlsx, json, ndjson or parquet
    rows: int  # data rows (records), header excluded
    columns: tuple[str, ...]  # headers as written in the file
    encoding: str = "utf-8"
    delimiter: str = ","
    reference: bool = False


@dataclass(frozen=True)
class PlantedFault:
    """A fault planted on purpose, located as a contributor sees it in a spreadsheet."""

    path: str
    row: int | None  # spreadsheet row (header = row 1; record n of JSON/Parquet = row n+1); None: whole file
    column: str  # the header as the file spells it
    canonical_column: str
    rule: str
    value: str
    quarantined: bool  # False: reported, but not an error
    explanation: str


@dataclass(frozen=True)
class PlantedIdentifier:
    """A direct identifier planted in free text: the scrubber must remove it."""

    path: str
    row: int
    column: str  # the header as the file spells it
    identifier: str  # full_name, email, phone, postcode or chi
    value: str


@dataclass(frozen=True)
class DemoManifest:
    """What `write_demo` wrote: files, row counts, planted faults and identifiers."""

    out_dir: Path
    config: Path
    panel_id: str
    files: tuple[DemoFile, ...]
    faults: tuple[PlantedFault, ...]
    identifiers: tuple[PlantedIdentifier, ...]
    withdrawn: tuple[str, ...]
    withdrawn_rows: dict[str, int] = field(default_factory=dict)  # file → rows about withdrawn panellists

    @property
    def rows_by_file(self) -> dict[str, int]:
        return {f.path: f.rows for f in self.files}

    @property
    def rows_by_kind(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for f in self.files:
            counts[f.kind] = counts.get(f.kind, 0) + f.rows
        return dict(sorted(counts.items()))

    def file(self, path: str) -> DemoFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)

    @property
    def quarantined_rows(self) -> dict[str, tuple[int, ...]]:
        """Spreadsheet rows each file should lose to quarantine (all of them for a missing column)."""
        rows: dict[str, set[int]] = {}
        for fault in self.faults:
            if not fault.quarantined:
                continue
            if fault.row is None:
                rows[fault.path] = set(range(2, self.file(fault.path).rows + 2))
            else:
                rows.setdefault(fault.path, set()).add(fault.row)
        return {path: tuple(sorted(found)) for path, found in sorted(rows.items())}


@dataclass(frozen=True)
class ScaledManifest:
    """What `write_scaled` wrote: response files, row counts and exact fault counts."""

    out_dir: Path
    config: Path
    files: tuple[Path, ...]
    rows_per_file: tuple[int, ...]
    response_rows: int
    panels: int
    panellists_per_panel: int
    questions_per_workshop: int
    roster_rows: int
    workshop_rows: int
    faults: dict[str, int] = field(default_factory=dict)  # per type; duplicate_key counts keys (2 rows each)
    faults_per_file: tuple[dict[str, int], ...] = ()

    @property
    def duplicate_rows(self) -> int:
        return 2 * self.faults.get("duplicate_key", 0)

    @property
    def faulty_rows(self) -> int:
        """Rows that must end in quarantine."""
        single = sum(n for name, n in self.faults.items() if name != "duplicate_key")
        return single + self.duplicate_rows

    @property
    def valid_rows(self) -> int:
        return self.response_rows - self.faulty_rows


# --------------------------------------------------------------------------------------------
# The pilot network: reference data
# --------------------------------------------------------------------------------------------

ORGANISATIONS: tuple[tuple[str, str, str], ...] = (
    ("ORG-DIN", "Data & Intelligence Network", "other"),
    ("ORG-EDU-EDI", "Edinburgh Schools Data Unit", "education"),
    ("ORG-ENV-FOR", "Forth Environment Trust", "environment"),
    ("ORG-FAC-NTH", "Northlight Facilitation CIC", "third_sector"),
    ("ORG-HSCP-FIF", "Fife Health and Social Care Partnership", "social_care"),
    ("ORG-JUS-GLA", "Glasgow Community Justice Partnership", "justice"),
    ("ORG-NHS-TAY", "NHS Tayside", "health"),
    ("ORG-REC", "Ceilidh Research Recruitment", "other"),
    ("ORG-UNI-DUN", "University of Dundee Public Engagement Team", "education"),
)


@dataclass(frozen=True)
class _Project:
    project_id: str
    title: str
    lead_org_id: str
    sector: str
    stage: str
    workshop: int  # the workshop that reviewed it
    benefit: float  # mean perceived benefit (1..5)
    risk: float  # mean perceived risk (1..5)


PROJECTS: tuple[_Project, ...] = (
    _Project("PRJ-01", "Predicting missed GP appointments", "ORG-NHS-TAY", "health", "past", 2, 3.9, 2.3),
    _Project(
        "PRJ-02",
        "Linking hospital discharge and care-at-home records",
        "ORG-HSCP-FIF",
        "social_care",
        "past",
        2,
        4.2,
        2.8,
    ),
    _Project(
        "PRJ-03", "Air quality sensors outside primary schools", "ORG-ENV-FOR", "environment", "past", 3, 4.0, 1.6
    ),
    _Project("PRJ-04", "School attendance early-warning dashboard", "ORG-EDU-EDI", "education", "past", 3, 3.4, 3.1),
    _Project(
        "PRJ-05", "Reoffending risk scores for support referrals", "ORG-JUS-GLA", "justice", "ongoing", 5, 2.9, 3.9
    ),
    _Project("PRJ-06", "AI triage of dermatology referrals", "ORG-NHS-TAY", "health", "ongoing", 5, 3.8, 2.9),
    _Project(
        "PRJ-07", "Falls prevention with smart home sensors", "ORG-HSCP-FIF", "social_care", "future", 6, 3.7, 3.2
    ),
    _Project(
        "PRJ-08", "Flood risk register of vulnerable households", "ORG-ENV-FOR", "environment", "future", 6, 4.1, 2.4
    ),
    _Project(
        "PRJ-09",
        "Sharing school leavers' data with employability services",
        "ORG-EDU-EDI",
        "education",
        "future",
        6,
        3.2,
        3.4,
    ),
    _Project("PRJ-10", "Community sentence outcomes dashboard", "ORG-JUS-GLA", "justice", "past", 3, 3.3, 2.6),
)

WORKSHOPS: tuple[tuple[int, dt.date, str, str], ...] = (
    (1, dt.date(2026, 3, 7), "Introduction: data, data protection and data ethics", "ORG-FAC-NTH"),
    (2, dt.date(2026, 3, 21), "Past projects: risks and benefits (part 1)", "ORG-FAC-NTH"),
    (3, dt.date(2026, 4, 4), "Past projects: risks and benefits (part 2)", "ORG-UNI-DUN"),
    (4, dt.date(2026, 4, 18), "Deliberation: acceptable and unacceptable uses of data", "ORG-UNI-DUN"),
    (5, dt.date(2026, 5, 2), "Testing our principles: ongoing and future projects (part 1)", "ORG-FAC-NTH"),
    (6, dt.date(2026, 5, 16), "Testing our principles: ongoing and future projects (part 2)", "ORG-FAC-NTH"),
)

#: The population the panel should reflect (Tayside, Fife, Edinburgh and Glasgow), as shares that sum to 1.
POPULATION: dict[str, tuple[tuple[str, str], ...]] = {
    "age_band": (
        ("16-24", "0.13"),
        ("25-34", "0.16"),
        ("35-44", "0.15"),
        ("45-54", "0.16"),
        ("55-64", "0.17"),
        ("65-74", "0.13"),
        ("75+", "0.10"),
    ),
    "gender": (("Woman", "0.515"), ("Man", "0.480"), ("Non-binary", "0.005")),
    "ethnic_group": (
        ("White Scottish", "0.77"),
        ("White Other British", "0.08"),
        ("White Polish", "0.02"),
        ("White Other", "0.04"),
        ("Asian", "0.05"),
        ("African, Caribbean or Black", "0.015"),
        ("Mixed or multiple", "0.01"),
        ("Other ethnic group", "0.015"),
    ),
    "simd_quintile": (("1", "0.2"), ("2", "0.2"), ("3", "0.2"), ("4", "0.2"), ("5", "0.2")),
    "urban_rural": (
        ("Large urban area", "0.42"),
        ("Other urban area", "0.33"),
        ("Accessible small town", "0.09"),
        ("Remote small town", "0.02"),
        ("Accessible rural area", "0.11"),
        ("Remote rural area", "0.03"),
    ),
    "council_area": (
        ("Angus", "0.060"),
        ("City of Edinburgh", "0.266"),
        ("Dundee City", "0.077"),
        ("Fife", "0.193"),
        ("Glasgow City", "0.324"),
        ("Perth and Kinross", "0.080"),
    ),
}

#: How the 30 seats were filled per dimension (the recruiter boosted smaller groups).
_QUOTAS: dict[str, tuple[tuple[str, int], ...]] = {
    "age_band": (("16-24", 4), ("25-34", 5), ("35-44", 4), ("45-54", 5), ("55-64", 5), ("65-74", 4), ("75+", 3)),
    "gender": (("Woman", 15), ("Man", 13), ("Non-binary", 1), ("Prefer not to say", 1)),
    "ethnic_group": (
        ("White Scottish", 20),
        ("White Other British", 2),
        ("White Polish", 1),
        ("White Other", 1),
        ("Asian", 2),
        ("African, Caribbean or Black", 1),
        ("Mixed or multiple", 1),
        ("Other ethnic group", 1),
        ("Prefer not to say", 1),
    ),
    "simd_quintile": (("1", 6), ("2", 6), ("3", 6), ("4", 6), ("5", 6)),
    "council_area": (
        ("Glasgow City", 8),
        ("City of Edinburgh", 7),
        ("Fife", 6),
        ("Dundee City", 4),
        ("Perth and Kinross", 3),
        ("Angus", 2),
    ),
}

_URBAN_RURAL = {
    "Glasgow City": ("Large urban area",),
    "City of Edinburgh": ("Large urban area",),
    "Dundee City": ("Large urban area",),
    "Fife": ("Other urban area", "Other urban area", "Accessible small town", "Accessible rural area"),
    "Angus": ("Other urban area", "Accessible small town", "Accessible rural area", "Remote rural area"),
    "Perth and Kinross": ("Other urban area", "Accessible rural area", "Remote small town", "Remote rural area"),
}
_POSTCODE_DISTRICTS = {
    "Glasgow City": ("G3", "G12", "G31", "G42"),
    "City of Edinburgh": ("EH3", "EH6", "EH11", "EH16"),
    "Fife": ("KY1", "KY2", "KY11", "KY16"),
    "Dundee City": ("DD1", "DD2", "DD3", "DD4", "DD5"),
    "Perth and Kinross": ("PH1", "PH2", "PH7"),
    "Angus": ("DD8", "DD10", "DD11"),
}
_FIRST_NAMES = {
    "default": {
        "Woman": (
            "Morag",
            "Eilidh",
            "Kirsty",
            "Fiona",
            "Mhairi",
            "Catriona",
            "Shona",
            "Ailsa",
            "Isla",
            "Rhona",
            "Lorna",
            "Heather",
            "Iona",
            "Claire",
            "Gillian",
            "Elspeth",
            "Moira",
            "Kirsten",
        ),
        "Man": (
            "Callum",
            "Fraser",
            "Hamish",
            "Ewan",
            "Lewis",
            "Ruaridh",
            "Alasdair",
            "Gregor",
            "Douglas",
            "Craig",
            "Kenneth",
            "Stuart",
            "Angus",
            "Finlay",
            "Niall",
            "Graeme",
        ),
        "other": ("Jordan", "Alex", "Robin", "Sam", "Rowan"),
    },
    "polish": {"Woman": ("Agnieszka", "Katarzyna"), "Man": ("Tomasz", "Piotr"), "other": ("Alex",)},
    "asian": {
        "Woman": ("Priya", "Aisha", "Mei", "Nadia"),
        "Man": ("Imran", "Wei", "Arjun", "Bilal"),
        "other": ("Sam",),
    },
    "african": {"Woman": ("Amara", "Ngozi"), "Man": ("Kwame", "Chidi"), "other": ("Tobi",)},
}
_SURNAMES = {
    "default": (
        "Henderson",
        "MacLeod",
        "Campbell",
        "Stewart",
        "Robertson",
        "Thomson",
        "Anderson",
        "Murray",
        "Paterson",
        "Sinclair",
        "Baird",
        "Ferguson",
        "Mackenzie",
        "Kerr",
        "Grant",
        "Cameron",
        "Munro",
        "Crawford",
        "Boyd",
        "Gallacher",
        "Docherty",
        "McIntyre",
        "Fleming",
        "Lindsay",
        "Hughes",
        "Davies",
        "Rossi",
        "Fernandes",
    ),
    "polish": ("Nowak", "Kowalski", "Zielinski"),
    "asian": ("Khan", "Ahmed", "Sharma", "Chen", "Patel", "Hussain"),
    "african": ("Okafor", "Mensah", "Adeyemi"),
    "other": ("Haddad", "Rahimi", "Nazari"),
}
_NAME_FAMILY = {
    "White Polish": "polish",
    "Asian": "asian",
    "African, Caribbean or Black": "african",
    "Other ethnic group": "other",
}
_EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "example.co.uk")
_POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
_WITHDRAWN = "P023"

# --------------------------------------------------------------------------------------------
# The pilot network: questions and free text
# --------------------------------------------------------------------------------------------

_DK, _PNS = "Don't know", "Prefer not to say"
_COMFORT = ("Very comfortable", "Fairly comfortable", "Not very comfortable", "Not at all comfortable", _DK, _PNS)
_CLEAR = ("Very clear", "Fairly clear", "Not very clear", "Not at all clear")
_USEFUL = ("Very useful", "Quite useful", "Not very useful", "Not at all useful")
_ACCEPT = ("Acceptable", "Acceptable with conditions", "Unacceptable", "Unsure")
_MEETS = ("Yes", "Partly", "No", _DK)

_FREE_TEXT: dict[str, tuple[str, ...]] = {
    "word": (
        "Fairness",
        "Trust",
        "Privacy",
        "Respect",
        "Honesty",
        "Confusing",
        "Important",
        "Consent",
        "Transparency",
        "Safety",
        "Responsibility",
        _DK,
    ),
    "learn": (
        "Who decides which projects go ahead.",
        "How long data is kept and when it is deleted.",
        "What happens when something goes wrong, like a data breach.",
        "Whether private companies ever get our data.",
        "How anonymisation actually works.",
        "Real examples from Scotland, not just theory.",
        "How algorithms make decisions about people.",
        "What rights I have to see my own data.",
        _DK,
    ),
    "confidence": (
        "Being told in plain English what the data is used for.",
        "Knowing there is an independent check before data is shared.",
        "Seeing the results, not just the promises.",
        "An easy way to opt out without losing services.",
        "If the data stayed inside the NHS and was not sold on.",
        "Regular reports back to the public.",
        "Clear rules about who can see the linked records.",
        "Nothing would, I think this is already fine.",
    ),
    "worried": (
        "That pupils could be labelled early and never shake it off.",
        "Nothing really – the air quality one seemed sensible.",
        "Who sees the dashboards and whether they are kept secure.",
        "The sentencing data could be used against people later.",
        "Not enough said about how long data is kept.",
        "Whether small villages could be identified from the maps.",
        "The café example made it feel less serious than it is.",
    ),
    "tell_teams": (
        "Please come back and tell us what changed because of our views.",
        "Explain the projects with fewer acronyms.",
        "Good to see the schools project asked parents first.",
        "Involve young people in the next round.",
        "Publish the evaluation results.",
        "Thank you – it was interesting to hear how the data is really used.",
    ),
    "condition": (
        "People must be told and able to opt out.",
        "An independent body checks it first.",
        "The data is anonymised before anyone sees it.",
        "There has to be a clear benefit to the public, not profit.",
        "It is reviewed every year and stopped if it does harm.",
        "A human makes the final decision.",
        "Only the minimum data needed is used.",
    ),
    "change": (
        "Have a person check every referral the algorithm flags.",
        "Tell people their data is being used and let them say no.",
        "Test it for bias against people from deprived areas first.",
        "Publish how accurate the scores are.",
        "Give the panel a say before it is rolled out further.",
        "Stop using postcode as a predictor.",
    ),
    "one_thing": (
        "Keep the panel going and pay people for their time.",
        "Publish a register of every data project.",
        "Act on our recommendations and show us how.",
        "Set up an ethics board with public members.",
        "Make the principles part of every new project.",
        "Talk to more young people and people in rural areas.",
    ),
    "panel_comments": (
        "I learned a lot and felt listened to.",
        "The sessions were too short for the big topics.",
        "Well run – the facilitators were excellent.",
        "Would have liked more time in small groups.",
        "It changed my mind about data sharing for research.",
        "More notice of dates would help people who work shifts.",
        _PNS,
    ),
}

_Question = tuple[str, tuple[str, ...] | str]  # (text, options) or (text, free-text pool name)

QUESTIONS: dict[int, tuple[_Question, ...]] = {
    1: (
        (
            "Before today, how much did you know about how public services use people's data?",
            ("A great deal", "A fair amount", "Not very much", "Nothing at all", _DK),
        ),
        (
            "How much do you trust public services in Scotland to keep your data secure?",
            ("A great deal", "Quite a lot", "Not very much", "Not at all", _DK, _PNS),
        ),
        ("Is a postcode on its own personal data?", ("Yes", "No", _DK)),
        (
            "Should people be asked for permission before their data is used for research?",
            ("Always", "Usually", "Only for sensitive data", "Never", _DK),
        ),
        ("What one word comes to mind when you hear 'data ethics'?", "word"),
        ("What would you like to learn more about in the next workshops?", "learn"),
    ),
    2: (
        ("How clear was the explanation of the two projects?", _CLEAR),
        ("How comfortable are you with GP appointment data being used to predict missed appointments?", _COMFORT),
        ("How comfortable are you with hospital and care-at-home records being linked?", _COMFORT),
        ("In these projects, did the benefits outweigh the risks?", ("Yes", "No", "It depends", _DK)),
        (
            "Which risk worries you most?",
            (
                "Being identified",
                "Data shared with private companies",
                "Unfair treatment of some groups",
                "Data being lost or hacked",
                "None of these",
                _DK,
            ),
        ),
        ("What would make you more confident about projects like these?", "confidence"),
        ("How useful did you find today's session?", _USEFUL),
    ),
    3: (
        ("How clear was the explanation of the three projects?", _CLEAR),
        ("How comfortable are you with air quality sensors near schools collecting data?", _COMFORT),
        ("How comfortable are you with school attendance data being used to flag pupils at risk?", _COMFORT),
        ("How comfortable are you with community sentence outcomes being analysed?", _COMFORT),
        (
            "Should the public be told when data about them is used in projects like these?",
            ("Always", "Only if asked", "Not necessary", _DK),
        ),
        ("What, if anything, worried you about today’s projects?", "worried"),
        ("Anything else you’d like to tell the project teams?", "tell_teams"),
    ),
    4: (
        ("Linking health and social care records to plan services – is this acceptable?", _ACCEPT),
        ("Using school data to identify children who need extra support – is this acceptable?", _ACCEPT),
        ("Sharing anonymised NHS data with university researchers – is this acceptable?", _ACCEPT),
        ("Sharing data with private companies to develop new technology – is this acceptable?", _ACCEPT),
        ("Using data to predict who may reoffend – is this acceptable?", _ACCEPT),
        (
            "Who should oversee decisions about sharing public-sector data?",
            (
                "An independent ethics board",
                "A panel of members of the public",
                "The organisations themselves",
                "The Scottish Government",
                _DK,
            ),
        ),
        ("What is the most important condition for data use to be acceptable?", "condition"),
        (
            "How confident did you feel sharing your views today?",
            ("Very confident", "Fairly confident", "Not very confident", "Not at all confident", _PNS),
        ),
    ),
    5: (
        ("Does the reoffending risk score project meet our principle of fairness?", _MEETS),
        ("Does AI triage of dermatology referrals meet our principle of transparency?", _MEETS),
        (
            "Should a human always review decisions made with the help of an algorithm?",
            ("Always", "Usually", "Only for important decisions", "Never", _DK),
        ),
        (
            "Which principle was hardest to apply?",
            ("Fairness", "Transparency", "Consent", "Security", "Public benefit", _DK),
        ),
        ("How would you change either project to make it acceptable?", "change"),
        ("How useful did you find today's session?", _USEFUL),
    ),
    6: (
        ("Do smart home sensors for falls prevention respect people's privacy?", _MEETS),
        ("Should households be told if they are on a flood risk register?", ("Yes", "No", "Only if they ask", _DK)),
        (
            "Should school leavers be able to opt out of data sharing with employability services?",
            ("Yes", "No", _DK, _PNS),
        ),
        (
            "How well do our principles work for future projects?",
            ("Very well", "Fairly well", "Not very well", "Not at all well", _DK),
        ),
        ("Would you take part in a standing panel?", ("Yes", "Maybe", "No", _PNS)),
        ("What is the one thing the network should do after this panel?", "one_thing"),
        ("Any other comments about the panel as a whole?", "panel_comments"),
    ),
}

_CONDITIONS = (
    "Only with an opt-out",
    "Only if the data is anonymised first",
    "If an independent board approves it",
    "Only if a clinician reviews every decision",
    "If people are told before it starts",
    "Only if the data is not shared with private companies",
    "If results are published every year",
)
_COMMENTS = (
    "Clear benefits for patients.",
    "I worry about who else could see this.",
    "Sounds sensible if it is done carefully.",
    "The explanation was very helpful.",
    "Not convinced the benefits are real yet.",
    "This could help people who fall through the cracks.",
    "Feels like surveillance to me.",
    "Good idea but needs more public consultation.",
)

RECOMMENDATIONS: tuple[tuple[str, str, str, float], ...] = (
    ("R01", "transparency", "Tell people, in plain language, how their data is used and by whom.", 0.9),
    ("R02", "consent", "Give people a simple way to opt out of data uses that are not essential to their care.", 0.8),
    ("R03", "oversight", "Set up an independent ethics board with public members to approve new data uses.", 0.75),
    ("R04", "security", "Publish how data is kept secure and report breaches openly.", 0.85),
    ("R05", "fairness", "Test algorithms for bias against particular groups before and after they are used.", 0.8),
    ("R06", "public_benefit", "Only share data with private companies when there is a clear public benefit.", 0.6),
    ("R07", "accountability", "Name a person who is accountable for each data-led project.", 0.7),
    ("R08", "oversight", "A human should always review decisions made with the help of an algorithm.", 0.85),
    ("R09", "transparency", "Publish a register of all data-led projects, including ones that stopped.", 0.75),
    ("R10", "engagement", "Keep a standing citizens' panel to review new projects.", 0.9),
)
_RECOMMENDATIONS_PER_WORKSHOP = {4: 6, 5: 8, 6: 10}

# --------------------------------------------------------------------------------------------
# Tables and writers
# --------------------------------------------------------------------------------------------

_Row = dict[str, Any]


@dataclass
class _Fault:
    column: str  # canonical column
    rule: str
    value: str
    explanation: str


@dataclass
class _Table:
    """A file to write: rows keyed by canonical column, plus how the file spells and encodes them."""

    path: str
    kind: str
    organisation: str
    source: str
    format: str
    columns: tuple[str, ...]  # canonical (or extra) column names, in file order
    rows: list[_Row]
    headers: dict[str, str] = field(default_factory=dict)  # canonical → header as written, when different
    encoding: str = "utf-8"
    delimiter: str = ","
    newline: str = "\n"
    datetime_format: str = "%Y-%m-%dT%H:%M:%S"
    date_format: str = "%Y-%m-%d"
    sheet: str = "Sheet1"
    reference: bool = False
    whole_file_faults: list[_Fault] = field(default_factory=list)

    def header(self, column: str) -> str:
        return self.headers.get(column, column)


def _render(value: Any, table: _Table) -> str:
    """A cell as text in a CSV file."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime(table.datetime_format)
    if isinstance(value, dt.date):
        return value.strftime(table.date_format)
    return str(value)


def _write_csv(table: _Table, path: Path) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=table.delimiter, lineterminator=table.newline)
    writer.writerow([table.header(c) for c in table.columns])
    for row in table.rows:
        writer.writerow([_render(row.get(c), table) for c in table.columns])
    path.write_bytes(buffer.getvalue().encode(table.encoding))


def _write_xlsx(table: _Table, path: Path) -> None:
    workbook = xlsxwriter.Workbook(str(path))
    workbook.set_properties({"created": _WORKBOOK_CREATED, "author": table.organisation})
    bold = workbook.add_format({"bold": True})
    date_cell = workbook.add_format({"num_format": "dd/mm/yyyy"})
    sheet = workbook.add_worksheet(table.sheet)
    for col, name in enumerate(table.columns):
        sheet.write_string(0, col, table.header(name), bold)
        sheet.set_column(col, col, max(12, len(table.header(name)) + 2))
    for r, row in enumerate(table.rows, start=1):
        for col, name in enumerate(table.columns):
            value = row.get(name)
            if value is None:
                continue
            if isinstance(value, dt.date):
                sheet.write_datetime(r, col, dt.datetime.combine(value, dt.time()), date_cell)
            elif isinstance(value, int | float):
                sheet.write_number(r, col, value)
            else:
                sheet.write_string(r, col, str(value))
    workbook.close()


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


def _records(table: _Table) -> list[dict[str, Any]]:
    return [{table.header(c): _json_value(row.get(c)) for c in table.columns} for row in table.rows]


def _write_json(table: _Table, path: Path) -> None:
    path.write_text(json.dumps(_records(table), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_ndjson(table: _Table, path: Path) -> None:
    lines = [json.dumps(record, ensure_ascii=False) for record in _records(table)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_INTEGER_COLUMNS = frozenset({"benefit", "risk", "simd_quintile", "votes_for", "votes_against", "votes_abstain"})


def _write_parquet(table: _Table, path: Path) -> None:
    schema = {table.header(c): pl.Int64 if c in _INTEGER_COLUMNS else pl.String for c in table.columns}
    frame = pl.DataFrame(_records(table), schema=schema)
    frame.write_parquet(path, compression="zstd", statistics=False)


_WRITERS = {
    "csv": _write_csv,
    "xlsx": _write_xlsx,
    "json": _write_json,
    "ndjson": _write_ndjson,
    "parquet": _write_parquet,
}


# --------------------------------------------------------------------------------------------
# The pilot network: generation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    ref: str
    row: _Row  # the roster row, canonical columns


def _quota_column(dimension: str, rng: random.Random) -> list[str]:
    values = [category for category, count in _QUOTAS[dimension] for _ in range(count)]
    rng.shuffle(values)
    return values


def _name(gender: str, ethnic: str, rng: random.Random, used: set[str]) -> tuple[str, str]:
    family = _NAME_FAMILY.get(ethnic, "default")
    firsts = _FIRST_NAMES.get(family, _FIRST_NAMES["default"])
    group = gender if gender in ("Woman", "Man") else "other"
    surnames = _SURNAMES[family] if ethnic != "Mixed or multiple" else _SURNAMES["default"] + _SURNAMES["african"]
    while True:
        first, last = rng.choice(firsts[group]), rng.choice(surnames)
        if f"{first} {last}" not in used:
            used.add(f"{first} {last}")
            return first, last


def _email(first: str, last: str, rng: random.Random, used: set[str]) -> str:
    while True:
        domain = rng.choice(_EMAIL_DOMAINS)
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{last[0]}{rng.randint(10, 99)}"))
        email = f"{local.lower().replace(' ', '')}@{domain}"
        if email not in used:
            used.add(email)
            return email


def _phone(council: str, rng: random.Random, used: set[str]) -> str:
    while True:
        if council == "City of Edinburgh" and rng.random() < 0.5:
            phone = f"0131 496 0{rng.randint(0, 999):03d}"
        else:
            phone = f"07700 900{rng.randint(0, 999):03d}"
        if phone not in used:
            used.add(phone)
            return phone


def _postcode(council: str, rng: random.Random, used: set[str]) -> str:
    while True:
        inward = f"{rng.randint(1, 9)}{rng.choice(_POSTCODE_LETTERS)}{rng.choice(_POSTCODE_LETTERS)}"
        postcode = f"{rng.choice(_POSTCODE_DISTRICTS[council])} {inward}"
        if postcode not in used:
            used.add(postcode)
            return postcode


def _roster(rng: random.Random) -> list[_Person]:
    columns = {dimension: _quota_column(dimension, rng) for dimension in _QUOTAS}
    used: set[str] = set()
    people = []
    for i in range(30):
        ref = f"P{i + 1:03d}"
        gender, ethnic, council = columns["gender"][i], columns["ethnic_group"][i], columns["council_area"][i]
        first, last = _name(gender, ethnic, rng, used)
        row: _Row = {
            "panel_id": PANEL_ID,
            "panellist_ref": ref,
            "age_band": columns["age_band"][i],
            "gender": gender,
            "ethnic_group": ethnic,
            "council_area": council,
            "simd_quintile": int(columns["simd_quintile"][i]),
            "urban_rural": rng.choice(_URBAN_RURAL[council]),
            "consent": "withdrawn" if ref == _WITHDRAWN else "consented",
            "full_name": f"{first} {last}",
            "email": _email(first, last, rng, used),
            "phone": _phone(council, rng, used),
            "postcode": _postcode(council, rng, used),
        }
        people.append(_Person(ref, row))
    return people


_ABSENT = {1: 2, 2: 2, 3: 3, 4: 3, 5: 4, 6: 4}


def _attendees(people: list[_Person], rng: random.Random) -> dict[int, list[str]]:
    """Who attended each workshop: a few absences each time; the withdrawn panellist left after W2."""
    consented = [p.ref for p in people if p.ref != _WITHDRAWN]
    attended = {}
    for number, _, _, _ in WORKSHOPS:
        absent = set(rng.sample(consented, _ABSENT[number]))
        present = [ref for ref in consented if ref not in absent]
        if number <= 2:
            present.append(_WITHDRAWN)
        attended[number] = sorted(present)
    return attended


def _weights(options: Sequence[str]) -> list[float]:
    base = (3.0, 4.0, 2.0, 1.2, 1.0, 1.0)
    return [0.5 if o in (_DK, _PNS) else base[i % len(base)] for i, o in enumerate(options)]


def _session_time(number: int, question: int, rng: random.Random) -> dt.datetime:
    start = dt.datetime.combine(WORKSHOPS[number - 1][1], dt.time(10, 5))
    return start + dt.timedelta(minutes=18 * question + rng.randint(0, 9), seconds=rng.randint(0, 59))


def _responses(number: int, attendees: list[str], rng: random.Random) -> list[_Row]:
    rows = []
    for ref in attendees:
        for q, (text, options) in enumerate(QUESTIONS[number]):
            if isinstance(options, str):
                if rng.random() < 0.3:  # free text is often skipped: no row
                    continue
                answer = rng.choice(_FREE_TEXT[options])
            else:
                answer = rng.choices(options, weights=_weights(options))[0]
            rows.append(
                {
                    "panel_id": PANEL_ID,
                    "workshop_id": f"W{number}",
                    "panellist_ref": ref,
                    "question_id": f"W{number}-Q{q + 1:02d}",
                    "question_text": text,
                    "answer": answer,
                    "answered_at": _session_time(number, q, rng),
                }
            )
    return rows


def _score(mean: float, rng: random.Random) -> int:
    return max(1, min(5, round(rng.gauss(mean, 0.9))))


def _acceptability(benefit: int, risk: int, rng: random.Random) -> str:
    net = benefit - risk + rng.gauss(0, 0.8)
    if rng.random() < 0.08:
        return "unsure"
    if net > 1.5:
        return "acceptable"
    if net > -0.5:
        return "acceptable_with_conditions"
    return "unacceptable" if net < -1.5 else "unsure"


def _feedback(project: _Project, attendees: list[str], rng: random.Random) -> list[_Row]:
    rows = []
    for ref in attendees:
        benefit, risk = _score(project.benefit, rng), _score(project.risk, rng)
        verdict = _acceptability(benefit, risk, rng)
        rows.append(
            {
                "panel_id": PANEL_ID,
                "workshop_id": f"W{project.workshop}",
                "project_id": project.project_id,
                "panellist_ref": ref,
                "benefit": benefit,
                "risk": None if rng.random() < 0.05 else risk,
                "acceptability": verdict,
                "conditions": rng.choice(_CONDITIONS) if verdict == "acceptable_with_conditions" else None,
                "comment": rng.choice(_COMMENTS) if rng.random() < 0.35 else None,
                "reviewed_on": WORKSHOPS[project.workshop - 1][1] + dt.timedelta(days=rng.randint(1, 6)),
            }
        )
    return rows


def _recommendations(attendees: dict[int, list[str]], rng: random.Random) -> list[_Row]:
    rows = []
    for number, count in _RECOMMENDATIONS_PER_WORKSHOP.items():
        present = len(attendees[number])
        for rec_id, theme, text, support in RECOMMENDATIONS[:count]:
            voting = present - rng.randint(0, 2)
            against = max(0, round(voting * (1 - support) * rng.uniform(0.5, 1.0)))
            abstain = rng.randint(0, max(0, min(3, voting - against)))
            rows.append(
                {
                    "panel_id": PANEL_ID,
                    "workshop_id": f"W{number}",
                    "recommendation_id": rec_id,
                    "text": text,
                    "theme": theme,
                    "votes_for": voting - against - abstain,
                    "votes_against": against,
                    "votes_abstain": abstain,
                }
            )
    return rows


# --------------------------------------------------------------------------------------------
# Planting faults and identifiers
# --------------------------------------------------------------------------------------------


def _mark(row: _Row, fault: _Fault) -> None:
    row.setdefault("_faults", []).append(fault)


def _mark_identifier(row: _Row, column: str, identifier: str, value: str) -> None:
    row.setdefault("_identifiers", []).append((column, identifier, value))


def _pick(rows: list[_Row], rng: random.Random, question: str | None = None) -> _Row:
    """A clean row (no fault, no planted identifier, not the withdrawn panellist's), optionally of one question."""
    candidates = [
        r
        for r in rows
        if "_faults" not in r
        and "_identifiers" not in r
        and r.get("panellist_ref") != _WITHDRAWN
        and (question is None or r.get("question_id") == question)
    ]
    return rng.choice(candidates)


def _other_name(people: list[_Person], author: str, rng: random.Random) -> str:
    others = [p.row["full_name"] for p in people if p.ref not in (author, _WITHDRAWN)]
    return str(rng.choice(others))


def _chi(rng: random.Random) -> str:
    """A CHI-like number: ddmmyy of a real date, three digits and a valid modulus-11 check digit."""
    while True:
        stem = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{rng.randint(40, 99):02d}{rng.randint(0, 999):03d}"
        check = (11 - sum(int(d) * w for d, w in zip(stem, range(10, 1, -1), strict=True)) % 11) % 11
        if check != 10:
            return f"{stem}{check}"


def _plant_identifier(
    rows: list[_Row],
    question: str,
    identifier: str,
    value: str | None,
    template: str,
    people: dict[str, _Row],
    rng: random.Random,
) -> None:
    """Write `template` into the answer of a clean row of `question`; `value` None: the author's own identifier."""
    row = _pick(rows, rng, question)
    value = people[row["panellist_ref"]][identifier] if value is None else value
    row["answer"] = template.format(value)
    _mark_identifier(row, "answer", identifier, value)


def _plant_response_identifiers(responses: dict[int, list[_Row]], people: list[_Person], rng: random.Random) -> None:
    roster = {p.ref: p.row for p in people}
    _plant_identifier(responses[1], "W1-Q06", "email", None, "Please send me the slides at {}", roster, rng)
    row = _pick(responses[2], rng, "W2-Q06")
    name = _other_name(people, row["panellist_ref"], rng)
    row["answer"] = f"I agreed with {name} that people should be able to opt out."
    _mark_identifier(row, "answer", "full_name", name)
    _plant_identifier(
        responses[3],
        "W3-Q06",
        "postcode",
        None,
        "There is a sensor right outside our school in {} and nobody asked us.",
        roster,
        rng,
    )
    _plant_identifier(
        responses[5], "W5-Q05", "phone", None, "Happy to talk more about this, my number is {}.", roster, rng
    )
    _plant_identifier(
        responses[6],
        "W6-Q07",
        "chi",
        _chi(rng),
        "My CHI number is {} – I'd like to know which projects have used my records.",
        roster,
        rng,
    )


def _plant_response_faults(responses: dict[int, list[_Row]], rng: random.Random) -> None:
    original = _pick(responses[1], rng, "W1-Q02")
    again = dict(original)
    options = QUESTIONS[1][1][1]
    again["answer"] = next(o for o in options if o != original["answer"])
    again["answered_at"] = original["answered_at"] + dt.timedelta(minutes=41)
    explanation = "the same panellist answered the same question twice (a double submission); which answer stands?"
    key = "panel_id, workshop_id, panellist_ref, question_id"
    for row in (original, again):
        _mark(row, _Fault(key, "duplicate_key", f"{row['panellist_ref']} / {row['question_id']}", explanation))
    responses[1].append(again)

    anonymous = dict(_pick(responses[2], rng, "W2-Q04"))
    anonymous.update(panellist_ref=None, answer="It depends")
    _mark(anonymous, _Fault("panellist_ref", "missing_value", "", "an anonymous poll answer: panellist_ref is empty"))
    responses[2].append(anonymous)

    row = _pick(responses[3], rng, "W3-Q02")
    row["answered_at"] = "31/04/2026 11:20"
    _mark(row, _Fault("answered_at", "invalid_date", "31/04/2026 11:20", "there is no 31 April"))

    row = _pick(responses[6], rng, "W6-Q03")
    row["workshop_id"] = "W7"
    _mark(row, _Fault("workshop_id", "unknown_workshop", "W7", "the pilot has six workshops (W1..W6): a typo for W6"))


# --------------------------------------------------------------------------------------------
# The pilot network: files
# --------------------------------------------------------------------------------------------

_ROSTER_HEADERS = {
    "panel_id": "Panel ID",
    "panellist_ref": "Panellist Ref",
    "age_band": "Age band",
    "gender": "Gender",
    "ethnic_group": "Ethnic group",
    "council_area": "Council area",
    "simd_quintile": "SIMD quintile",
    "urban_rural": "Urban/rural",
    "consent": "Consent",
    "full_name": "Full name",
    "email": "Email",
    "phone": "Phone",
    "postcode": "Postcode",
}
_EXPORT_HEADERS = {
    "panel_id": "Panel ID",
    "workshop_id": "Workshop ID",
    "panellist_ref": "Panellist Ref",
    "question_id": "Question ID",
    "question_text": "Question Text",
    "answer": "Answer",
    "answered_at": "Answered At",
}
_FEEDBACK_HEADERS = {
    "panel_id": "Panel ID",
    "workshop_id": "Workshop ID",
    "project_id": "Project ID",
    "panellist_ref": "Panellist Ref",
    "benefit": "Benefit",
    "risk": "Risk",
    "acceptability": "Acceptability",
    "conditions": "Conditions",
    "comment": "Comment",
    "reviewed_on": "Reviewed on",
}
_FEEDBACK = KINDS["project_feedback"].column_names
_RESPONSES = KINDS["responses"].column_names


def _reference_tables() -> list[_Table]:
    def table(name: str, columns: tuple[str, ...], rows: list[_Row]) -> _Table:
        return _Table(f"reference/{name}.csv", name, "ORG-DIN", f"din-{name}", "csv", columns, rows, reference=True)

    organisations = [dict(zip(("org_id", "name", "sector"), org, strict=True)) for org in ORGANISATIONS]
    projects = [
        {
            "project_id": p.project_id,
            "title": p.title,
            "lead_org_id": p.lead_org_id,
            "sector": p.sector,
            "stage": p.stage,
        }
        for p in PROJECTS
    ]
    workshops = [
        {
            "panel_id": PANEL_ID,
            "workshop_id": f"W{n}",
            "number": n,
            "held_on": day,
            "title": title,
            "facilitator_org_id": org,
        }
        for n, day, title, org in WORKSHOPS
    ]
    population = [
        {"dimension": dimension, "category": category, "share": share}
        for dimension, shares in POPULATION.items()
        for category, share in shares
    ]
    return [
        table("organisations", ("org_id", "name", "sector"), organisations),
        table("projects", ("project_id", "title", "lead_org_id", "sector", "stage"), projects),
        table("workshops", ("panel_id", "workshop_id", "number", "held_on", "title", "facilitator_org_id"), workshops),
        table("population", ("dimension", "category", "share"), population),
    ]


def _attendance_table(people: list[_Person], attendees: dict[int, list[str]]) -> _Table:
    rows: list[_Row] = [
        {
            "panel_id": PANEL_ID,
            "workshop_id": f"W{n}",
            "panellist_ref": p.ref,
            "attended": "yes" if p.ref in attendees[n] else "no",
        }
        for n in attendees
        for p in people
    ]
    reserve = {"panel_id": PANEL_ID, "workshop_id": "W5", "panellist_ref": "P031", "attended": "yes"}
    _mark(
        reserve,
        _Fault(
            "panellist_ref",
            "unknown_panellist",
            "P031",
            "a reserve who stood in at W5 but was never added to the roster",
        ),
    )
    rows.append(reserve)
    rows.sort(key=lambda r: (r["workshop_id"], r["panellist_ref"]))
    return _Table(
        "deliveries/northlight-facilitation/attendance.csv",
        "attendance",
        "ORG-FAC-NTH",
        "northlight-attendance",
        "csv",
        ("panel_id", "workshop_id", "panellist_ref", "attended"),
        rows,
    )


def _response_tables(responses: dict[int, list[_Row]]) -> list[_Table]:
    tables = []
    for number, rows in responses.items():
        if number in (3, 4):  # the university's laptop: Excel "CSV" export, Windows code page, UK dates
            tables.append(
                _Table(
                    f"deliveries/uni-dundee/W{number}_poll_export.csv",
                    "responses",
                    "ORG-UNI-DUN",
                    "uni-responses",
                    "csv",
                    _RESPONSES,
                    rows,
                    headers=_EXPORT_HEADERS,
                    encoding="cp1252",
                    delimiter=";",
                    newline="\r\n",
                    datetime_format="%d/%m/%Y %H:%M",
                )
            )
        else:
            tables.append(
                _Table(
                    f"deliveries/northlight-facilitation/responses_W{number}.csv",
                    "responses",
                    "ORG-FAC-NTH",
                    "northlight-responses",
                    "csv",
                    _RESPONSES,
                    rows,
                )
            )
    return tables


def _feedback_tables(people: list[_Person], attendees: dict[int, list[str]], rng: random.Random) -> list[_Table]:
    feedback = {p.project_id: _feedback(p, attendees[p.workshop], rng) for p in PROJECTS}

    def rows_of(*projects: str) -> list[_Row]:
        return [row for project in projects for row in feedback[project]]

    nhs = rows_of("PRJ-01", "PRJ-06")
    row = _pick(nhs, rng)
    row["acceptability"] = "depends"
    _mark(row, _Fault("acceptability", "not_allowed", "depends", "not one of the allowed verdicts"))
    row = _pick([r for r in nhs if r["project_id"] == "PRJ-01"], rng)
    name = _other_name(people, row["panellist_ref"], rng)
    row["comment"] = f"{name} and I both missed appointments because of shift work, so this matters."
    _mark_identifier(row, "comment", "full_name", name)

    forth = rows_of("PRJ-03", "PRJ-08")
    row = _pick(forth, rng)
    row["benefit"] = "yes"
    _mark(row, _Fault("benefit", "not_an_integer", "yes", "benefit is a score from 1 to 5, not yes/no"))

    fife = _Table(
        "deliveries/fife-hscp/project_feedback_2026.xlsx",
        "project_feedback",
        "ORG-HSCP-FIF",
        "fife-hscp-feedback",
        "xlsx",
        (*_FEEDBACK, "reviewed_on"),
        rows_of("PRJ-02", "PRJ-07"),
        headers=_FEEDBACK_HEADERS,
        sheet="Feedback",
    )
    fife.whole_file_faults.append(
        _Fault(
            "reviewed_on",
            "extra_column",
            "Reviewed on",
            "a column the contract does not have (Excel date cells); the rows are accepted",
        )
    )
    glasgow = _Table(
        "deliveries/glasgow-justice/feedback_scores.csv",
        "project_feedback",
        "ORG-JUS-GLA",
        "glasgow-justice-feedback",
        "csv",
        tuple(c for c in _FEEDBACK if c not in ("acceptability", "conditions")),
        rows_of("PRJ-10", "PRJ-05"),
    )
    glasgow.whole_file_faults.append(
        _Fault("acceptability", "missing_column", "", "the required column acceptability is missing: every row fails")
    )
    return [
        _Table(
            "deliveries/nhs-tayside/project_feedback.json",
            "project_feedback",
            "ORG-NHS-TAY",
            "nhs-tayside-feedback",
            "json",
            _FEEDBACK,
            nhs,
        ),
        fife,
        _Table(
            "deliveries/forth-environment/project_feedback.csv",
            "project_feedback",
            "ORG-ENV-FOR",
            "forth-environment-feedback",
            "csv",
            _FEEDBACK,
            forth,
            encoding="utf-8-sig",
        ),
        _Table(
            "deliveries/edinburgh-schools/project_feedback.parquet",
            "project_feedback",
            "ORG-EDU-EDI",
            "edinburgh-schools-feedback",
            "parquet",
            _FEEDBACK,
            rows_of("PRJ-04", "PRJ-09"),
        ),
        glasgow,
    ]


def _demo_tables(seed: int) -> list[_Table]:
    rng = random.Random(seed)
    people = _roster(rng)
    attendees = _attendees(people, rng)
    responses = {n: _responses(n, attendees[n], rng) for n in attendees}
    _plant_response_identifiers(responses, people, rng)
    _plant_response_faults(responses, rng)
    roster = _Table(
        "deliveries/ceilidh-recruitment/panel_roster.xlsx",
        "roster",
        "ORG-REC",
        "ceilidh-roster",
        "xlsx",
        tuple(_ROSTER_HEADERS),
        [p.row for p in people],
        headers=_ROSTER_HEADERS,
        sheet="Panel roster",
    )
    recommendations = _Table(
        "deliveries/uni-dundee/recommendations.ndjson",
        "recommendations",
        "ORG-UNI-DUN",
        "uni-recommendations",
        "ndjson",
        (
            "panel_id",
            "workshop_id",
            "recommendation_id",
            "text",
            "theme",
            "votes_for",
            "votes_against",
            "votes_abstain",
        ),
        _recommendations(attendees, rng),
    )
    return [
        *_reference_tables(),
        roster,
        _attendance_table(people, attendees),
        *_response_tables(responses),
        *_feedback_tables(people, attendees, rng),
        recommendations,
    ]


def _faults_of(table: _Table) -> list[PlantedFault]:
    def fault(row: int | None, f: _Fault, quarantined: bool = True) -> PlantedFault:
        column = f.column if f.column not in table.columns else table.header(f.column)
        return PlantedFault(table.path, row, column, f.column, f.rule, f.value, quarantined, f.explanation)

    found = [fault(None, f, f.rule != "extra_column") for f in table.whole_file_faults]
    for number, row in enumerate(table.rows, start=2):
        found.extend(fault(number, f) for f in row.get("_faults", ()))
    return found


def _identifiers_of(table: _Table) -> list[PlantedIdentifier]:
    return [
        PlantedIdentifier(table.path, number, table.header(column), identifier, value)
        for number, row in enumerate(table.rows, start=2)
        for column, identifier, value in row.get("_identifiers", ())
    ]


def _demo_file(table: _Table) -> DemoFile:
    return DemoFile(
        path=table.path,
        kind=table.kind,
        organisation=table.organisation,
        source=table.source,
        format=table.format,
        rows=len(table.rows),
        columns=tuple(table.header(c) for c in table.columns),
        encoding=table.encoding,
        delimiter=table.delimiter,
        reference=table.reference,
    )


def write_demo(out_dir: Path, seed: int = DEMO_SEED, data_dir: str = DEMO_DATA_DIR) -> DemoManifest:
    """Write the demo network (reference data, deliveries, din.yaml) into `out_dir`; same seed, same bytes."""
    out_dir = Path(out_dir)
    tables = _demo_tables(seed)
    for table in tables:
        path = out_dir / table.path
        path.parent.mkdir(parents=True, exist_ok=True)
        _WRITERS[table.format](table, path)
    config = out_dir / "din.yaml"
    config.write_text(_demo_config(tables, data_dir), encoding="utf-8")
    return DemoManifest(
        out_dir=out_dir,
        config=config,
        panel_id=PANEL_ID,
        files=tuple(sorted((_demo_file(t) for t in tables), key=lambda f: f.path)),
        faults=tuple(sorted((f for t in tables for f in _faults_of(t)), key=lambda f: (f.path, f.row or 0))),
        identifiers=tuple(sorted((i for t in tables for i in _identifiers_of(t)), key=lambda i: (i.path, i.row))),
        withdrawn=(_WITHDRAWN,),
        withdrawn_rows={t.path: n for t in sorted(tables, key=lambda t: t.path) if (n := _rows_about(t, _WITHDRAWN))},
    )


def _rows_about(table: _Table, ref: str) -> int:
    return sum(row.get("panellist_ref") == ref for row in table.rows)


# --------------------------------------------------------------------------------------------
# din.yaml
# --------------------------------------------------------------------------------------------

_SOURCE_LOCATIONS = {
    "ceilidh-roster": ("deliveries/ceilidh-recruitment", "{type: xlsx, sheet: Panel roster}"),
    "northlight-attendance": ("deliveries/northlight-facilitation/attendance*.csv", "{type: csv}"),
    "northlight-responses": ("deliveries/northlight-facilitation/responses_*.csv", "{type: csv}"),
    # UK-dated poll exports: their slashed dates are day-first, declared rather than left to the file.
    "uni-responses": (
        "deliveries/uni-dundee/*.csv",
        '{type: csv, encoding: cp1252, delimiter: ";", date_order: day_first}',
    ),
    "uni-recommendations": ("deliveries/uni-dundee/*.ndjson", "{type: ndjson}"),
    "nhs-tayside-feedback": ("deliveries/nhs-tayside", "{type: json}"),
    "fife-hscp-feedback": ("deliveries/fife-hscp", "{type: xlsx, sheet: Feedback}"),
    "forth-environment-feedback": ("deliveries/forth-environment", None),
    "edinburgh-schools-feedback": ("deliveries/edinburgh-schools", None),
    "glasgow-justice-feedback": ("deliveries/glasgow-justice", None),
}


#: Portal inboxes (`din serve`): organisations that may also deliver these kinds through the portal.
_INBOX_SOURCES = (
    ("forth-environment-portal", "ORG-ENV-FOR", "project_feedback"),
    ("nhs-tayside-portal", "ORG-NHS-TAY", "project_feedback"),
    ("northlight-portal", "ORG-FAC-NTH", "responses"),
)


def _source_entry(name: str, organisation: str, kind: str, location: str, fmt: str | None) -> str:
    lines = [f"  - name: {name}", f"    organisation: {organisation}", f"    kind: {kind}", f"    location: {location}"]
    if fmt:
        lines.append(f"    format: {fmt}")
    return "\n".join(lines)


def _demo_config(tables: list[_Table], data_dir: str) -> str:
    reference = [_source_entry(t.source, t.organisation, t.kind, t.path, None) for t in tables if t.reference]
    seen: dict[str, _Table] = {}
    for table in tables:
        if not table.reference:
            seen.setdefault(table.source, table)
    sources = [
        _source_entry(name, seen[name].organisation, seen[name].kind, *_SOURCE_LOCATIONS[name])
        for name in _SOURCE_LOCATIONS
    ]
    sources += [
        _source_entry(name, organisation, kind, "inbox://", None) for name, organisation, kind in _INBOX_SOURCES
    ]
    return (
        "# The demo network's source registry (generated by `python -m tools.demo_data examples/demo`).\n"
        "# Locations are relative to this file; outputs go to data_dir, outside examples/.\n"
        "version: 1\n"
        "title: DIN public engagement panel (demo)\n"
        "mode: demo\n"
        f"data_dir: {data_dir}\n"
        "limits:\n"
        "  workshop_number_max: 6   # the pilot panel runs six workshops\n"
        "reference:\n" + "\n".join(reference) + "\n"
        "sources:\n" + "\n".join(sources) + "\n"
    )


# --------------------------------------------------------------------------------------------
# Scale-up for benchmarks
# --------------------------------------------------------------------------------------------

SCALED_PANELLISTS = 50
SCALED_QUESTIONS = 8
_CHUNK_ROWS = 1_000_000
_SCALED_EXTRA: tuple[_Question, ...] = (
    ("How useful did you find today's session?", _USEFUL),
    ("Would you recommend taking part to a friend?", ("Yes", "No", "Maybe", _DK)),
)
_FAULT_TYPES = ("unknown_workshop", "empty_panellist_ref", "invalid_date", "duplicate_key")


def _scaled_questions() -> list[tuple[str, tuple[str, ...]]]:
    """Eight questions per workshop (flattened: workshop-major), each with its answer options."""
    flat = []
    for number in range(1, 7):
        questions = (QUESTIONS[number] + _SCALED_EXTRA)[:SCALED_QUESTIONS]
        for text, options in questions:
            flat.append((text, _FREE_TEXT[options] if isinstance(options, str) else options))
    return flat


def _held_on(panel: np.ndarray, workshop: np.ndarray) -> np.ndarray:
    """Workshop dates as days since the epoch: panels start a week apart, workshops a fortnight apart."""
    start = (dt.date(2026, 3, 7) - dt.date(1970, 1, 1)).days
    days: np.ndarray = start + 7 * (panel % 26) + 14 * workshop
    return days


def _split(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` by largest remainder (ties to the earlier part)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _fault_totals(rows: int, fault_rate: float) -> dict[str, int]:
    """Exact counts per fault type, about `fault_rate` of rows in all (a duplicate key is two rows)."""
    target = round(rows * fault_rate)
    pairs = target // 8
    rest = target - 2 * pairs
    return {
        "unknown_workshop": rest // 3 + (rest % 3 > 0),
        "empty_panellist_ref": rest // 3 + (rest % 3 > 1),
        "invalid_date": rest // 3,
        "duplicate_key": pairs,
    }


def _plan_faults(start: int, n: int, counts: dict[str, int], rng: np.random.Generator) -> np.ndarray:
    """Fault codes (0 none, 1..4 per _FAULT_TYPES) for a file's rows.

    Faults sit only on odd question indexes past the file's first row, so a duplicated row's twin
    (the row before, one question earlier) is always clean and in the same file.
    """
    codes = np.zeros(n, dtype=np.int8)
    local = np.arange(1, n, dtype=np.int64)
    candidates = local[(start + local) % SCALED_QUESTIONS % 2 == 1]
    needed = sum(counts.values())
    if needed > len(candidates):
        raise ValueError(f"{needed} faults do not fit in a file of {n} rows; lower fault_rate or use fewer files")
    chosen = rng.choice(candidates, size=needed, replace=False)
    offset = 0
    for code, name in enumerate(_FAULT_TYPES, start=1):
        codes[chosen[offset : offset + counts[name]]] = code
        offset += counts[name]
    return codes


def _lookup(values: Sequence[str], index: np.ndarray) -> pl.Series:
    return pl.Series(values, dtype=pl.String).gather(pl.Series(index, dtype=pl.UInt32))


@dataclass(frozen=True)
class _AnswerTable:
    """The scaled questionnaire, flattened: question k = workshop index * 8 + question index."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    options: tuple[str, ...]  # every question's options, one after the other
    offsets: np.ndarray  # where question k's options start in `options`
    counts: np.ndarray  # how many options question k has

    @classmethod
    def build(cls) -> _AnswerTable:
        flat = _scaled_questions()
        counts = np.array([len(opts) for _, opts in flat], dtype=np.int64)
        return cls(
            ids=tuple(f"W{k // SCALED_QUESTIONS + 1}-Q{k % SCALED_QUESTIONS + 1:02d}" for k in range(len(flat))),
            texts=tuple(text for text, _ in flat),
            options=tuple(o for _, opts in flat for o in opts),
            offsets=np.concatenate(([0], np.cumsum(counts)[:-1])),
            counts=counts,
        )


_REFS = tuple(f"P{n + 1:03d}" for n in range(SCALED_PANELLISTS))
_WORKSHOP_IDS = tuple(f"W{n}" for n in range(1, 13))  # W7..W12: the unknown workshops
_BAD_DATES = ("2026-02-30T10:15:00", "not a date")


def _scaled_chunk(
    start: int, codes: np.ndarray, rng: np.random.Generator, table: _AnswerTable, panel_ids: Sequence[str]
) -> pl.DataFrame:
    """Response rows `start .. start+len(codes)`, with the faults `codes` say (see _FAULT_TYPES)."""
    n = len(codes)
    i = np.arange(start, start + n, dtype=np.int64)
    q = i % SCALED_QUESTIONS
    p = (i // SCALED_QUESTIONS) % SCALED_PANELLISTS
    w = (i // (SCALED_QUESTIONS * SCALED_PANELLISTS)) % 6
    panel = i // (SCALED_QUESTIONS * SCALED_PANELLISTS * 6)
    q = np.where(codes == 4, q - 1, q)  # a duplicate repeats the previous row's question
    k = w * SCALED_QUESTIONS + q
    choice = table.offsets[k] + (rng.random(n) * table.counts[k]).astype(np.int64)
    seconds = _held_on(panel, w) * 86_400 + 36_300 + q * 900 + rng.integers(0, 600, n)
    frame = pl.DataFrame(
        {
            "panel_id": _lookup(panel_ids, panel),
            "workshop_id": _lookup(_WORKSHOP_IDS, np.where(codes == 1, w + 6, w)),
            "panellist_ref": _lookup(_REFS, p),
            "question_id": _lookup(table.ids, k),
            "question_text": _lookup(table.texts, k),
            "answer": _lookup(table.options, choice),
            "answered_at": pl.from_epoch(pl.Series(seconds), time_unit="s").dt.to_string("%Y-%m-%dT%H:%M:%S"),
            "bad_date": _lookup(_BAD_DATES, i % 2),
            "code": codes,
        }
    )
    return frame.select(
        "panel_id",
        "workshop_id",
        pl.when(pl.col("code") == 2).then(None).otherwise(pl.col("panellist_ref")).alias("panellist_ref"),
        "question_id",
        "question_text",
        "answer",
        pl.when(pl.col("code") == 3).then(pl.col("bad_date")).otherwise(pl.col("answered_at")).alias("answered_at"),
    )


def _write_scaled_file(
    path: Path, start: int, n: int, counts: dict[str, int], seed: int, index: int, panel_ids: Sequence[str]
) -> None:
    """One response file, written in chunks of at most _CHUNK_ROWS rows."""
    if n == 0:
        path.write_text(",".join(_RESPONSES) + "\n", encoding="utf-8")
        return
    rng = np.random.default_rng([seed, index])
    codes = _plan_faults(start, n, counts, rng)
    table = _AnswerTable.build()
    with path.open("wb") as handle:
        for offset in range(0, n, _CHUNK_ROWS):
            size = min(_CHUNK_ROWS, n - offset)
            chunk = _scaled_chunk(start + offset, codes[offset : offset + size], rng, table, panel_ids)
            chunk.write_csv(handle, include_header=offset == 0)


def _scaled_roster(panel_ids: list[str], rng: np.random.Generator) -> pl.DataFrame:
    n = len(panel_ids) * SCALED_PANELLISTS
    columns: dict[str, Any] = {
        "panel_id": np.repeat(panel_ids, SCALED_PANELLISTS),
        "panellist_ref": np.tile([f"P{i + 1:03d}" for i in range(SCALED_PANELLISTS)], len(panel_ids)),
    }
    for dimension in ("age_band", "gender", "ethnic_group", "council_area", "simd_quintile", "urban_rural"):
        categories = [c for c, _ in POPULATION[dimension]]
        shares = np.array([float(s) for _, s in POPULATION[dimension]])
        columns[dimension] = rng.choice(categories, size=n, p=shares / shares.sum())
    columns["consent"] = np.full(n, "consented")
    return pl.DataFrame(columns).select(
        "panel_id",
        "panellist_ref",
        "age_band",
        "gender",
        "ethnic_group",
        "council_area",
        "simd_quintile",
        "urban_rural",
        "consent",
    )


def _scaled_workshops(panel_ids: list[str]) -> pl.DataFrame:
    panels = np.repeat(np.arange(len(panel_ids)), 6)
    numbers = np.tile(np.arange(6), len(panel_ids))
    days = _held_on(panels, numbers)
    return pl.DataFrame(
        {
            "panel_id": np.repeat(panel_ids, 6),
            "workshop_id": [f"W{n + 1}" for n in numbers],
            "number": numbers + 1,
            "held_on": pl.Series(days, dtype=pl.Int32).cast(pl.Date),
            "title": [WORKSHOPS[n][2] for n in numbers],
            "facilitator_org_id": [WORKSHOPS[n][3] for n in numbers],
        }
    )


def _scaled_config(data_dir: str) -> str:
    reference = [
        _source_entry(f"din-{name}", "ORG-DIN", name, f"reference/{name}.csv", None)
        for name in ("organisations", "projects", "workshops", "population")
    ]
    sources = [
        _source_entry("recruiter-roster", "ORG-REC", "roster", "deliveries/roster", "{type: csv}"),
        _source_entry("facilitator-responses", "ORG-FAC-NTH", "responses", "deliveries/responses", "{type: csv}"),
    ]
    return (
        "# Benchmark network (generated by tools.demo_data.write_scaled).\n"
        "version: 1\n"
        "title: DIN public engagement panel (benchmark)\n"
        "mode: demo\n"
        f"data_dir: {data_dir}\n"
        "limits:\n"
        "  workshop_number_max: 6   # the pilot panel runs six workshops\n"
        "reference:\n" + "\n".join(reference) + "\n"
        "sources:\n" + "\n".join(sources) + "\n"
    )


def write_scaled(
    out_dir: Path,
    response_rows: int,
    files: int,
    fault_rate: float = 0.01,
    seed: int = SCALED_SEED,
    data_dir: str = "data",
) -> ScaledManifest:
    """Write `response_rows` canonical responses in `files` CSVs, with reference data, roster and din.yaml.

    Rows are spread evenly over the files; keys are unique across the set except the planted duplicates.
    About `fault_rate` of rows are faulty (unknown workshop, empty panellist_ref, invalid answered_at,
    duplicated key within a file); the manifest has exact counts. Generated file by file, in chunks.
    """
    if response_rows < 0 or files < 1:
        raise ValueError("response_rows must be >= 0 and files >= 1")
    if not 0 <= fault_rate <= 0.4:
        raise ValueError("fault_rate must be between 0 and 0.4")
    out_dir = Path(out_dir)
    per_panel = SCALED_QUESTIONS * SCALED_PANELLISTS * 6
    panel_ids = [f"scale-{n:05d}" for n in range(max(1, -(-response_rows // per_panel)))]
    sizes = _split(response_rows, [1] * files)
    totals = _fault_totals(response_rows, fault_rate)
    split = {name: _split(totals[name], sizes) if response_rows else [0] * files for name in _FAULT_TYPES}
    per_file = [{name: split[name][index] for name in _FAULT_TYPES} for index in range(files)]
    _write_scaled_reference(out_dir, panel_ids, seed)
    folder = out_dir / "deliveries" / "responses"
    folder.mkdir(parents=True, exist_ok=True)
    paths, start = [], 0
    for index, (size, counts) in enumerate(zip(sizes, per_file, strict=True)):
        path = folder / f"part-{index + 1:05d}.csv"
        _write_scaled_file(path, start, size, counts, seed, index, panel_ids)
        paths.append(path)
        start += size
    config = out_dir / "din.yaml"
    config.write_text(_scaled_config(data_dir), encoding="utf-8")
    return ScaledManifest(
        out_dir=out_dir,
        config=config,
        files=tuple(paths),
        rows_per_file=tuple(sizes),
        response_rows=response_rows,
        panels=len(panel_ids),
        panellists_per_panel=SCALED_PANELLISTS,
        questions_per_workshop=SCALED_QUESTIONS,
        roster_rows=len(panel_ids) * SCALED_PANELLISTS,
        workshop_rows=len(panel_ids) * 6,
        faults=totals,
        faults_per_file=tuple(per_file),
    )


def _write_scaled_reference(out_dir: Path, panel_ids: list[str], seed: int) -> None:
    for table in _reference_tables():
        if table.kind != "workshops":
            path = out_dir / table.path
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_csv(table, path)
    _scaled_workshops(panel_ids).write_csv(out_dir / "reference" / "workshops.csv")
    roster = out_dir / "deliveries" / "roster"
    roster.mkdir(parents=True, exist_ok=True)
    _scaled_roster(panel_ids, np.random.default_rng([seed, 1 << 30])).write_csv(roster / "roster.csv")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def file_table(manifest: DemoManifest) -> str:
    """The demo's files as a Markdown table with the rows each should lose to quarantine."""
    lines = [
        "| file | kind | from | format | rows | quarantined | accepted |",
        "|---|---|---|---|---|---|---|",
    ]
    quarantined = manifest.quarantined_rows
    for f in manifest.files:
        lost = len(quarantined.get(f.path, ()))
        form = {"utf-8": f.format, "utf-8-sig": f"{f.format} (UTF-8 with BOM)"}.get(
            f.encoding, f"{f.format} ({f.encoding}, `{f.delimiter}`)"
        )
        lines.append(f"| `{f.path}` | {f.kind} | {f.organisation} | {form} | {f.rows} | {lost} | {f.rows - lost} |")
    return "\n".join(lines)


def fault_table(manifest: DemoManifest) -> str:
    """The planted faults as a Markdown table (examples/README.md carries it verbatim)."""
    lines = ["| file | row | column | value | rule | expected outcome |", "|---|---|---|---|---|---|"]
    for f in manifest.faults:
        row = "whole file" if f.row is None else str(f.row)
        value = f"`{f.value}`" if f.value else "(empty)"
        outcome = ("quarantined: " if f.quarantined else "kept, reported: ") + f.explanation
        lines.append(f"| `{f.path}` | {row} | {f.column} | {value} | {f.rule} | {outcome} |")
    return "\n".join(lines)


def identifier_table(manifest: DemoManifest) -> str:
    """The planted identifiers as a Markdown table (examples/README.md carries it verbatim)."""
    lines = ["| file | row | column | identifier | value |", "|---|---|---|---|---|"]
    lines += [f"| `{i.path}` | {i.row} | {i.column} | {i.identifier} | `{i.value}` |" for i in manifest.identifiers]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tools.demo_data OUT_DIR` regenerates the demo; `--scaled ROWS` writes a benchmark set."""
    parser = argparse.ArgumentParser(prog="python -m tools.demo_data", description=main.__doc__)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--scaled", type=int, metavar="ROWS", help="write ROWS benchmark responses instead")
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--fault-rate", type=float, default=0.01)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.scaled is not None:
        scaled = write_scaled(
            args.out_dir,
            args.scaled,
            args.files,
            args.fault_rate,
            SCALED_SEED if args.seed is None else args.seed,
            args.data_dir or "data",
        )
        print(f"{scaled.response_rows} responses in {len(scaled.files)} files, faults {scaled.faults}", end="")
    else:
        demo = write_demo(args.out_dir, DEMO_SEED if args.seed is None else args.seed, args.data_dir or DEMO_DATA_DIR)
        print(f"{len(demo.files)} files, rows by kind {demo.rows_by_kind}, {len(demo.faults)} planted faults", end="")
    print(f" ({time.perf_counter() - began:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
