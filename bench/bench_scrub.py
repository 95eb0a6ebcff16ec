"""Throughput of `Scrubber.scrub_frame` on clean, 1%-dirty and 100%-dirty answer columns.

Run from the repository root: .venv/bin/python -m bench.bench_scrub [rows]
"""

from __future__ import annotations

import random
import sys
import time

import polars as pl

from transforms import scrub
from transforms.scrub import Scrubber

LABELS = [
    "Agree",
    "Strongly agree",
    "Disagree",
    "Strongly disagree",
    "Neither agree nor disagree",
    "Prefer not to say",
    "Don't know",
    "1",
    "2",
    "3",
    "4",
    "5",
    "Yes",
    "No",
    "In person",
    "Online",
    "Only with an opt-out",
    "Clear benefits for patients.",
    "About 500 people in 2024",
    "£1,500 per year",
]
FIRST = ["Morag", "Jamie", "Dònall", "Alasdair", "Kirsty", "Ewan", "Fiona", "Callum", "Isla", "Ross"]
LAST = ["Henderson", "Ross", "O'Neill", "MacLeod", "Campbell", "Stewart", "Fraser", "Murray", "Reid", "Grant"]
ROSTER = [f"{f} {last}" for f, last in zip(FIRST * 3, LAST[1:] + LAST + LAST[:1], strict=False)][:30]


def dirty(rng: random.Random) -> str:
    """A free-text answer with one or two identifiers, mostly unique."""
    n = rng.randrange(1000)
    return rng.choice(
        [
            f"call me on 07700 900{n:03d} after 6pm",
            f"email morag.h{n}@example.co.uk or ring 0131 496 0{n:03d}",
            f"I'm at DD2 {n % 10}AB, jamie_r{n} at example dot com",
            f"{rng.choice(ROSTER)} said the {n} people were right",
            f"My CHI is 01017{n:04d}0, please look it up",
        ]
    )


WORDS = "the bus was late again and we need better data about how 500 people at the hall feel in 2024"


def prose(rng: random.Random) -> str:
    """A clean free-text answer, almost always distinct."""
    return " ".join(rng.choices(WORDS.split(), k=rng.randint(4, 14)))


def column(rows: int, dirty_share: float, seed: int = 1, clean: str = "labels") -> pl.DataFrame:
    rng = random.Random(seed)
    make_clean = (lambda: rng.choice(LABELS)) if clean == "labels" else (lambda: prose(rng))
    values = [dirty(rng) if rng.random() < dirty_share else make_clean() for _ in range(rows)]
    return pl.DataFrame({"answer": values})


def measure(scrubber: Scrubber, df: pl.DataFrame) -> tuple[float, int]:
    scrub._phone_ok.cache_clear()  # no phone verdicts carried over from the previous scenario
    start = time.perf_counter()
    _, counts = scrubber.scrub_frame(df, ["answer"])
    return time.perf_counter() - start, counts.total


def main(rows: int = 1_000_000) -> None:
    scrubber = Scrubber(ROSTER)
    scenarios = (
        ("clean labels", 0.0, rows, "labels"),
        ("clean prose", 0.0, rows, "prose"),
        ("1% dirty", 0.01, rows, "labels"),
        ("100% dirty", 1.0, rows // 20, "labels"),
    )
    for label, share, n, clean in scenarios:
        df = column(n, share, clean=clean)
        seconds, found = measure(scrubber, df)
        print(f"{label:>12}: {n:>9,} rows in {seconds:6.3f} s = {n / seconds:>12,.0f} rows/s ({found:,} found)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
