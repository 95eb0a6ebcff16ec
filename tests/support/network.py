"""A small partner network written on the fly, for pipeline tests that need exact control."""

from __future__ import annotations

import csv
import io
import json
import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ORGANISATIONS = """\
org_id,name,sector
ORG-A,Alpha Health Board,health
ORG-B,Beta Council,other
"""
PROJECTS = """\
project_id,title,lead_org_id,sector,stage
PRJ-1,Missed appointments model,ORG-A,health,past
PRJ-2,School meals data share,ORG-B,education,ongoing
"""
# UK dates: 12/03/2026 is 12 March, as the network's config declares (`date_order: day_first`).
WORKSHOPS = """\
panel_id,workshop_id,number,held_on,title,facilitator_org_id
p1,W1,1,12/03/2026,What data is,ORG-A
p1,W2,2,2026-03-19,Past projects,ORG-B
"""
POPULATION = """\
dimension,category,share
age_band,16-34,0.5
age_band,35+,0.5
"""
ROSTER = """\
panel_id,panellist_ref,age_band,gender,consent,full_name,email,phone,postcode
p1,P1,16-34,Woman,consented,Morag Henderson,morag.h@example.co.uk,07700 900461,DD2 3AB
p1,P2,35+,Man,consented,Jamie Ross,jamie.r@example.com,0131 496 0723,EH1 1YZ
p1,P3,35+,Prefer not to say,consented,Dana Okafor,dana.o@example.org,07700 900982,G12 8QQ
"""
RESPONSES = """\
panel_id,workshop_id,panellist_ref,question_id,question_text,answer,answered_at
p1,W1,P1,Q1,How comfortable are you?,Fairly comfortable,12/03/2026 18:10
p1,W1,P2,Q1,How comfortable are you?,Prefer not to say,
p1,W1,P3,Q1,How comfortable are you?,Don't know,2026-03-12T18:12:00
p1,W1,P1,Q2,Anything else?,Ask Jamie Ross or email morag.h@example.co.uk,
"""
FEEDBACK = """\
panel_id,workshop_id,project_id,panellist_ref,benefit,risk,acceptability,conditions,comment
p1,W2,PRJ-1,P1,4,2,acceptable_with_conditions,Only with an opt-out,Good idea
p1,W2,PRJ-1,P2,3,3,Unsure,,
p1,W2,PRJ-2,P3,5,1,acceptable,,
"""


@dataclass(frozen=True)
class Network:
    root: Path
    config: Path
    data_dir: Path

    def deliver(self, relative: str, content: str | bytes) -> Path:
        path = self.root / "deliveries" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path


def write_network(root: Path, mode: str = "demo") -> Network:
    """Reference data, a roster, responses and feedback from three organisations."""
    reference = root / "reference"
    reference.mkdir(parents=True)
    for name, text in {
        "organisations": ORGANISATIONS,
        "projects": PROJECTS,
        "workshops": WORKSHOPS,
        "population": POPULATION,
    }.items():
        (reference / f"{name}.csv").write_text(text, encoding="utf-8")
    network = Network(root, root / "din.yaml", root / "data")
    network.deliver("recruiter/roster.csv", ROSTER)
    network.deliver("university/responses-w1.csv", RESPONSES)
    network.deliver("alpha/feedback-w2.csv", FEEDBACK)
    network.config.write_text(
        textwrap.dedent(f"""\
        mode: {mode}
        data_dir: data
        lock_timeout_seconds: 5
        reference:
          - {{name: organisations, organisation: ORG-DIN, kind: organisations, location: reference/organisations.csv}}
          - {{name: projects, organisation: ORG-DIN, kind: projects, location: reference/projects.csv}}
          - {{name: workshops, organisation: ORG-DIN, kind: workshops, location: reference/workshops.csv,
             format: {{date_order: day_first}}}}
          - {{name: population, organisation: ORG-DIN, kind: population, location: reference/population.csv}}
        sources:
          - {{name: recruiter-roster, organisation: ORG-RECRUIT, kind: roster, location: deliveries/recruiter}}
          - {{name: university-responses, organisation: ORG-UNI, kind: responses, location: deliveries/university,
             format: {{date_order: day_first}}}}
          - {{name: alpha-feedback, organisation: ORG-A, kind: project_feedback, location: deliveries/alpha}}
        """),
        encoding="utf-8",
    )
    return network


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block (a flow reads its key from there)."""
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- a network in every format a partner may deliver, for erasure tests --------------------------

PANEL = "pnl-9"
#: The panellist the erasure tests erase, and what identifies them (distinct from anything else in the tests).
ERASED = {
    "ref": "R-1002",
    "name": "Ailsa Drummond",
    "email": "ailsa.drummond@example.net",
    "phone": "07700 900718",
    "postcode": "PH1 5RT",
}
MIXED_PEOPLE = [
    ("R-1001", "16-34", "Man", "Callum Reid", "callum.reid@example.com", "07700 900301", "DD1 4HN"),
    ("R-1002", "35+", "Woman", ERASED["name"], ERASED["email"], ERASED["phone"], ERASED["postcode"]),
    ("R-1003", "35+", "Prefer not to say", "Dana Okafor", "dana.okafor@example.org", "07700 900982", "G12 8QQ"),
    ("R-1004", "16-34", "Woman", "Fiona Shaw", "fiona.shaw@example.com", "07700 900155", "KY16 9AJ"),
]
MIXED_WORKSHOPS = f"""\
panel_id,workshop_id,number,held_on,title,facilitator_org_id
{PANEL},W1,1,2026-03-12,What data is,ORG-A
{PANEL},W2,2,2026-03-19,Past projects,ORG-B
"""
QUALTRICS_MAPPING = f"""\
tool: qualtrics
panel_id: {PANEL}
workshop_id: W2
panellist_column: PanellistRef
questions:
  QID1: W2-Q1
  QID2_TEXT: W2-Q2
"""
GOOGLE_MAPPING = f"""\
tool: googleforms
panel_id: {PANEL}
workshop_id: W2
panellist_column: Email address
"""


def _csv(rows: list[list[str]], delimiter: str = ",", newline: str = "\n") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(rows)
    return out.getvalue()


def _roster_xlsx() -> bytes:
    import xlsxwriter

    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    sheet = book.add_worksheet("Panel roster")
    sheet.write_row(
        0, 0, ["Panel ID", "Panellist Ref", "Age band", "Gender", "Consent", "Full name", "Email", "Phone", "Postcode"]
    )
    for row, (ref, age, gender, name, email, phone, postcode) in enumerate(MIXED_PEOPLE, start=1):
        sheet.write_row(row, 0, [PANEL, ref, age, gender, "consented", name, email, phone, postcode])
    contacts = book.add_worksheet("Contacts")  # the recruiter's own sheet: never read, but it holds them too
    contacts.write_row(0, 0, ["Panellist Ref", "Full name", "Phone", "Notes"])
    for row, (ref, _, _, name, _, phone, _) in enumerate(MIXED_PEOPLE, start=1):
        contacts.write_row(row, 0, [ref, name, phone, f"called {name} in March"])
    contacts.hide()
    book.close()
    return out.getvalue()


def _responses_w1() -> bytes:
    rows = [["panel_id", "workshop_id", "panellist_ref", "question_id", "question_text", "answer"]]
    rows += [
        [PANEL, "W1", "R-1001", "Q1", "How comfortable are you?", f"I agreed with {ERASED['name']} that it\nwas fine"],
        [PANEL, "W1", "R-1002", "Q1", "How comfortable are you?", 'Quite, "mostly", yes'],
        [PANEL, "W9", "R-1002", "Q1", "How comfortable are you?", "a row set aside: no workshop W9"],
        [PANEL, "W1", "R-1003", "Q1", "How comfortable are you?", f"ask {ERASED['email']} or ring {ERASED['phone']}"],
        [PANEL, "W1", "R-1004", "Q1", "How comfortable are you?", "Don't know"],
    ]
    return b"\xef\xbb\xbf" + _csv(rows, newline="\r\n").encode("utf-8")


def _responses_w2() -> bytes:
    rows = [["panel_id", "workshop_id", "panellist_ref", "question_id", "question_text", "answer"]]
    rows += [
        [PANEL, "W2", "R-1001", "Q2", "Anything else?", "Le café était froid"],
        [PANEL, "W2", "R-1002", "Q2", "Anything else?", "Trop de réunions"],
        [PANEL, "W2", "R-1003", "Q2", "Anything else?", "Rien"],
    ]
    return _csv(rows, delimiter=";").encode("cp1252")


def _attendance() -> bytes:
    lines = [
        json.dumps({"panel_id": PANEL, "workshop_id": w, "panellist_ref": ref, "attended": "yes"})
        for w in ("W1", "W2")
        for ref, *_ in MIXED_PEOPLE
    ]
    return ("\n".join(lines) + "\n").encode()


def _feedback_rows(refs: list[str], project: str) -> list[dict[str, str]]:
    return [
        {
            "panel_id": PANEL,
            "workshop_id": "W2",
            "project_id": project,
            "panellist_ref": ref,
            "benefit": "4",
            "risk": "2",
            "acceptability": "acceptable",
            "conditions": "",
            "comment": f"{ERASED['name']} put it well" if ref == "R-1004" else "fine",
        }
        for ref in refs
    ]


def _feedback_parquet() -> bytes:
    import polars as pl

    out = io.BytesIO()
    pl.DataFrame(_feedback_rows(["R-1002", "R-1003"], "PRJ-2")).write_parquet(out)
    return out.getvalue()


def _qualtrics() -> bytes:
    names = ["StartDate", "EndDate", "Status", "Finished", "ResponseId", "PanellistRef", "Q1", "Q2"]
    labels = [
        "Start Date",
        "End Date",
        "Response Type",
        "Finished",
        "Response ID",
        "PanellistRef",
        "How was it?",
        "Anything else?",
    ]
    ids = ["startDate", "endDate", "status", "finished", "_recordId", "PanellistRef", "QID1", "QID2_TEXT"]
    rows = [names, labels, [json.dumps({"ImportId": i}) for i in ids]]
    rows += [
        ["2026-03-19 18:00:00", "2026-03-19 18:10:00", "IP Address", "True", "R_a1", "R-1001", "Good", "fine"],
        ["2026-03-19 18:01:00", "2026-03-19 18:11:00", "IP Address", "True", "R_a2", "R-1002", "Great", "call me"],
        ["2026-03-19 18:02:00", "2026-03-19 18:05:00", "IP Address", "False", "R_a3", "R-1002", "Half", ""],
        ["2026-03-19 18:03:00", "2026-03-19 18:12:00", "IP Address", "True", "R_a4", "R-1004", "OK", "none"],
    ]
    return b"\xef\xbb\xbf" + _csv(rows).encode()


def _google_forms() -> bytes:
    rows = [["Timestamp", "Email address", "How was it?"]]
    rows += [
        ["2026/03/19 6:10:53 PM GMT", "callum.reid@example.com", "Good"],
        ["2026/03/19 6:11:53 PM GMT", ERASED["email"], "Great"],
    ]
    return _csv(rows).encode()


def write_mixed_network(root: Path, mode: str = "demo") -> Network:
    """A network whose partners deliver in every format landing holds: an XLSX roster (two sheets, one
    hidden), CSV in UTF-8 with BOM and CRLF and in cp1252 with semicolons, NDJSON, JSON, Parquet, a
    Qualtrics export and a Google Forms export keyed by e-mail. `ERASED` appears in every file, in
    someone else's free text too."""
    network = write_network(root, mode)
    (root / "reference" / "workshops.csv").write_text(MIXED_WORKSHOPS, encoding="utf-8")
    for folder in ("recruiter", "university", "alpha"):
        for path in (root / "deliveries" / folder).iterdir():
            path.unlink()
    network.deliver("recruiter/roster.xlsx", _roster_xlsx())
    network.deliver("facilitator/responses_w1.csv", _responses_w1())
    network.deliver("university/responses_w2.csv", _responses_w2())
    network.deliver("facilitator/attendance.ndjson", _attendance())
    network.deliver(
        "alpha/feedback.json",
        json.dumps(
            {"exported": "2026-03-20", "rows": _feedback_rows(["R-1001", "R-1002", "R-1004"], "PRJ-1")}, indent=2
        ).encode(),
    )
    network.deliver("beta/feedback.parquet", _feedback_parquet())
    network.deliver("surveys/qualtrics/W2_export.csv", _qualtrics())
    network.deliver("surveys/google/W2_responses.csv", _google_forms())
    (root / "mappings").mkdir()
    (root / "mappings" / "qualtrics.yaml").write_text(QUALTRICS_MAPPING, encoding="utf-8")
    (root / "mappings" / "google.yaml").write_text(GOOGLE_MAPPING, encoding="utf-8")
    config = network.config.read_text(encoding="utf-8")
    sources = config[config.index("sources:") :]
    config = config.replace(
        sources,
        textwrap.dedent("""\
        sources:
          - {name: recruiter-roster, organisation: ORG-RECRUIT, kind: roster, location: deliveries/recruiter,
             format: {type: xlsx, sheet: Panel roster}}
          - {name: facilitator-responses, organisation: ORG-A, kind: responses, location: deliveries/facilitator/*.csv}
          - {name: facilitator-attendance, organisation: ORG-A, kind: attendance,
             location: deliveries/facilitator/*.ndjson}
          - {name: university-responses, organisation: ORG-UNI, kind: responses, location: deliveries/university,
             format: {type: csv, encoding: cp1252, delimiter: ";"}}
          - {name: alpha-feedback, organisation: ORG-A, kind: project_feedback, location: deliveries/alpha}
          - {name: beta-feedback, organisation: ORG-B, kind: project_feedback, location: deliveries/beta}
          - {name: qualtrics-w2, organisation: ORG-UNI, kind: responses, location: deliveries/surveys/qualtrics,
             format: {type: survey, mapping: mappings/qualtrics.yaml}}
          - {name: google-w2, organisation: ORG-B, kind: responses, location: deliveries/surveys/google,
             format: {type: survey, mapping: mappings/google.yaml}}
        """),
    )
    network.config.write_text(config, encoding="utf-8")
    return network
