"""A small partner network written on the fly, for pipeline tests that need exact control."""

from __future__ import annotations

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
