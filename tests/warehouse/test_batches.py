"""Batches: one kind each, within BATCH_BYTES, in delivery order, and as many as the runner's slots share evenly
(so that no batch runs alone at the end of a level while the other workers wait)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from warehouse.batches import BATCH_BYTES, MIN_BATCH_BYTES, plan_batches
from warehouse.manifest import PendingDelivery

MB = 1024 * 1024


def _pending(sizes: list[int], kind: str = "responses", start: int = 1) -> list[PendingDelivery]:
    return [
        PendingDelivery(start + i, "src", "ORG", kind, f"f{start + i}.csv", f"/landing/{start + i}", size, None)
        for i, size in enumerate(sizes)
    ]


def _sizes(batches: list[list]) -> list[int]:
    return [sum(d.size for d in batch) for batch in batches]


def test_two_hundred_files_on_two_workers_make_an_even_number_of_equal_batches() -> None:
    pending = _pending([634_000] * 200)  # the benchmark's S: 127 MB
    alone = plan_batches(pending, {}, slots=1)
    assert len(alone) == 3 and all(size <= BATCH_BYTES for size in _sizes(alone))
    shared = plan_batches(pending, {}, slots=2)
    assert len(shared) == 4
    assert [len(batch) for batch in shared] == [50, 50, 50, 50]
    assert [d.delivery_id for batch in shared for d in batch] == list(range(1, 201))  # in order, each once


def test_a_level_too_small_to_split_stays_one_batch_and_a_middling_one_is_shared() -> None:
    assert len(plan_batches(_pending([100_000] * 30), {}, slots=2)) == 1  # 3 MB: a task costs more than it saves
    assert len(plan_batches(_pending([MB] * 20), {}, slots=2)) == 2  # 20 MB: both workers busy
    assert len(plan_batches(_pending([MB] * 20), {}, slots=4)) == 4
    assert len(plan_batches(_pending([MB] * 20), {}, slots=8)) == 5  # one round, 4 MB a batch
    assert len(plan_batches(_pending([MB] * 3), {}, slots=8)) == 1  # never a batch below MIN_BATCH_BYTES


def test_kinds_never_share_a_batch_and_a_huge_file_is_a_batch_of_its_own() -> None:
    pending = [*_pending([MB] * 5, "attendance"), *_pending([200 * MB, MB], "responses", start=10)]
    batches = plan_batches(pending, {}, slots=2)
    assert [{d.kind for d in batch} for batch in batches] == [{"attendance"}, {"responses"}, {"responses"}]
    assert _sizes(batches)[1:] == [200 * MB, MB]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=60 * MB), min_size=1, max_size=60), st.integers(1, 8))
def test_every_file_once_in_order_within_the_limit(sizes: list[int], slots: int) -> None:
    batches = plan_batches(_pending(sizes), {}, slots=slots)
    assert [d.delivery_id for batch in batches for d in batch] == list(range(1, len(sizes) + 1))
    assert all(batch for batch in batches)
    assert all(size <= BATCH_BYTES or len(batch) == 1 for batch, size in zip(batches, _sizes(batches), strict=True))
    if sum(sizes) < 2 * MIN_BATCH_BYTES:
        assert len(batches) <= max(1, -(-sum(sizes) // BATCH_BYTES))
