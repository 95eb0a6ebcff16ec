"""A network whose facilitator delivers a real Polis conversation's export, for erasure tests.

Built from the shared sample (compdemocracy openData, london.youth.policing, CC BY 4.0) copied into a
temporary folder, with what a site adds that the sample leaves out, each written as Polis writes it:
the `<id>-xid.csv` export and an `xid` column (the ids the site gave Polis), a `comment-groups.csv`
derived from the participants' final votes and opinion groups as Polis' maths does, an earlier vote the
erased participant changed, and another participant's statement that names them. The roster lists every
participant, with a name, e-mail, phone and postcode each.
"""

from __future__ import annotations

import csv
import io
import shutil
import textwrap
from collections import Counter
from pathlib import Path

from tests.conftest import REPO, SAMPLES
from tests.support.network import Network

SAMPLE = SAMPLES / "real-exports" / "polis-london-youth-policing"
CONVERSATION = "9xxwa9jpkm"  # the conversation's id, as in summary.csv's url
PANEL = "din-pilot-2026"
EXPORT = "deliveries/polis/london-youth-policing"
#: The participant the tests erase (they wrote five statements and voted on 36), and who they are.
ERASED = {
    "participant": "23",
    "xid": "YP-023",
    "name": "Tamsin Achebe",
    "email": "tamsin.achebe@example.org",
    "phone": "07700 900626",
    "postcode": "E8 3QP",
}
MENTIONING = "36"  # the statement (by participant 25) that names them
CHANGED_VOTE_ON = "1"  # the statement they voted on twice (the earlier vote is response_history)
FIRST = ["Callum", "Priya", "Kwame", "Mei", "Rowan", "Sana", "Tomasz", "Aoife", "Jamal", "Isla", "Dev", "Nia", "Omar"]
LAST = ["Reid", "Nair", "Mensah", "Wong", "Kerr", "Iqbal", "Nowak"]


def xid(participant: str) -> str:
    return f"YP-{int(participant):03d}"


def rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def write(path: Path, table: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)


def participants() -> list[str]:
    return [row[0] for row in rows(SAMPLE / "participants-votes.csv")[1:]]


def person(participant: str) -> dict[str, str]:
    """A participant's roster entry (the erased one's is ERASED)."""
    if participant == ERASED["participant"]:
        return ERASED
    n = int(participant)
    first, last = FIRST[n % len(FIRST)], LAST[n % len(LAST)]
    return {
        "participant": participant,
        "xid": xid(participant),
        "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{n}@example.com",
        "phone": f"07700 900{n:03d}",
        "postcode": f"N{n % 9 + 1} {n % 9 + 1}AB",
    }


def write_export(folder: Path, with_xids: bool = True) -> Path:
    """The sample's export, with a site's additions (see the module's docstring), in `folder`."""
    shutil.copytree(SAMPLE, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    votes = rows(folder / "votes.csv")
    theirs = next(r for r in votes[1:] if r[2] == CHANGED_VOTE_ON and r[3] == ERASED["participant"])
    changed = "1" if theirs[4] != "1" else "-1"  # a minute earlier, the opposite vote
    votes.append([str(int(theirs[0]) - 60_000), theirs[1], theirs[2], theirs[3], changed])
    write(folder / "votes.csv", votes)
    comments = rows(folder / "comments.csv")
    header = comments[0]
    for row in comments[1:]:
        if row[2] == MENTIONING:
            row[header.index("comment-body")] += f" - as {ERASED['name']} said"
        if row[2] == CHANGED_VOTE_ON:  # Polis counts every vote row
            column = header.index("agrees" if changed == "1" else "disagrees")
            row[column] = str(int(row[column]) + 1)
    write(folder / "comments.csv", comments)
    if with_xids:
        table = rows(folder / "participants-votes.csv")
        at = table[0].index("xid")
        for row in table[1:]:
            row[at] = xid(row[0])
        write(folder / "participants-votes.csv", table)
        write(folder / f"{CONVERSATION}-xid.csv", [["participant", "xid"]] + [[p, xid(p)] for p in participants()])
    (folder / "comment-groups.csv").write_text(comment_groups(folder), encoding="utf-8")
    return folder


def comment_groups(folder: Path) -> str:
    """comment-groups.csv as Polis' maths makes it: per shown statement, the final votes of each opinion
    group's members (participants-votes.csv), and their totals."""
    table = rows(folder / "participants-votes.csv")
    header = table[0]
    group_at = header.index("group-id")
    groups = sorted({r[group_at] for r in table[1:] if r[group_at]}, key=int)
    shown = [r for r in rows(folder / "comments.csv")[1:] if r[6] and r[6] != "-1"]
    out = ["comment-id", "comment", "total-votes", "total-agrees", "total-disagrees", "total-passes"]
    for group in groups:
        letter = chr(ord("a") + int(group))
        out += [f"group-{letter}-{c}" for c in ("votes", "agrees", "disagrees", "passes")]
    lines = [out]
    for comment in shown:
        column = header.index(comment[2]) if comment[2] in header else None
        counts: dict[str, Counter[str]] = {g: Counter() for g in groups}
        for row in table[1:]:
            if column is not None and row[group_at] and row[column] in ("1", "-1", "0"):
                counts[row[group_at]][row[column]] += 1
        totals = sum(counts.values(), Counter())
        line = [comment[2], comment[7], *_counts(totals)]
        for group in groups:
            line += _counts(counts[group])
        lines.append(line)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(lines)
    return text.getvalue()


def _counts(votes: Counter[str]) -> list[str]:
    return [str(sum(votes.values())), str(votes["1"]), str(votes["-1"]), str(votes["0"])]


def write_polis_site(root: Path, by: str = "xid") -> Network:
    """The network: a roster naming every participant (by xid or by Polis participant id, as `by` says), the
    export delivered by the facilitator, read with examples/mappings/polis.yaml (`panellist_column: by`)."""
    (root / "reference").mkdir(parents=True)
    (root / "reference" / "organisations.csv").write_text("org_id,name,sector\nORG-UNI,University,education\n")
    (root / "reference" / "workshops.csv").write_text(
        "panel_id,workshop_id,number,held_on,title,facilitator_org_id\n"
        f"{PANEL},W4,4,2022-07-27,Deliberation on local scrutiny of policing,ORG-UNI\n"
    )
    (root / "roster").mkdir()
    entries = [person(p) for p in participants()]
    roster = [["panel_id", "panellist_ref", "consent", "full_name", "email", "phone", "postcode"]]
    roster += [[PANEL, e[by], "consented", e["name"], e["email"], e["phone"], e["postcode"]] for e in entries]
    write(root / "roster" / "roster.csv", roster)
    write_export(root / EXPORT, with_xids=by == "xid")
    mapping = (REPO / "examples" / "mappings" / "polis.yaml").read_text()
    (root / "polis.yaml").write_text(mapping.replace("panellist_column: participant", f"panellist_column: {by}"))
    config = root / "din.yaml"
    config.write_text(
        textwrap.dedent("""\
        mode: demo
        data_dir: data
        lock_timeout_seconds: 5
        reference:
          - {name: orgs, organisation: ORG-DIN, kind: organisations, location: reference/organisations.csv}
          - {name: workshops, organisation: ORG-DIN, kind: workshops, location: reference/workshops.csv}
        sources:
          - {name: roster, organisation: ORG-REC, kind: roster, location: roster}
          - name: assembly-polis
            organisation: ORG-UNI
            kind: responses
            location: deliveries/polis
            format: {type: survey, mapping: polis.yaml}
        """)
    )
    return Network(root, config, root / "data")


def authored(folder: Path, participant: str = ERASED["participant"]) -> dict[str, str]:
    """comment-id -> text of the statements `participant` wrote."""
    return {r[2]: r[7] for r in rows(folder / "comments.csv")[1:] if r[3] == participant}
