"""Two replicas writing one document at once, on one Milvus: every interleaving of their steps.

Milvus has no transactions and no compare-and-set, so MilvusIndex writes versions and only ever
removes versions older than a committed one (retrieval/milvus_index.py). Here two MilvusIndex
objects on one milvus-lite store (each with its own version tag, as two replicas have) run
`add_steps` and `delete_steps` in every order their steps can take, and each time the document
must come out whole: one version row, that version's chunks and no others, its text one of the
writers' texts; or, after a delete, nothing of it left but the tombstone."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from retrieval.embedder import Embedder
from retrieval.ingest_plan import DocumentInput
from retrieval.milvus_index import MilvusIndex
from retrieval.milvus_schema import document_key, literal

OLD = "Issa Morrow keeps the Drellish Lighthouse. She lights it with whale-oil lamps every night of the year."
# Two new versions with different chunk counts (chunks of about 8 words), so that mixed chunks show.
NEW_A = " ".join(f"Version A sentence {n} says the keeper is Issa Morrow of Ombravik." for n in range(3))
NEW_B = " ".join(f"Version B sentence {n} says the keeper is Tobin Reyes of Narth." for n in range(5))


@pytest.fixture()
def replicas(tmp_path, embedder: Embedder) -> Iterator[tuple[MilvusIndex, MilvusIndex]]:
    path = str(tmp_path / "shared.db")
    first = MilvusIndex(path, embedder, chunk_words=8)
    second = MilvusIndex(path, embedder, chunk_words=8)
    assert first._tag != second._tag or pytest.skip("the two tags drew the same number: 1 in 4096")
    yield first, second
    second.close()
    first.close()


def orders(a: int, b: int) -> Iterator[tuple[int, ...]]:
    """Every interleaving of `a` steps of writer 0 and `b` of writer 1: who moves at each turn."""
    for turns in itertools.combinations(range(a + b), a):
        yield tuple(0 if t in turns else 1 for t in range(a + b))


def steps(run: Generator[None, None, Any]) -> int:
    """How many `next`s a run of steps takes to end (it is run through)."""
    for n in itertools.count(1):
        try:
            next(run)
        except StopIteration:
            return n
    raise AssertionError("unreachable")


def interleave(runs: list[Generator[None, None, Any]], order: tuple[int, ...]) -> list[Any]:
    """Advance the runs in this order; what each returned."""
    results: list[Any] = [None] * len(runs)
    for who in order:
        try:
            next(runs[who])
        except StopIteration as done:
            results[who] = done.value
    return results


def seed(index: MilvusIndex, ids: list[str]) -> None:
    index.add_documents([DocumentInput(OLD, "Lighthouse", doc_id=i) for i in ids])
    index.save()


def sealed_now_and_then(index: MilvusIndex, n: int) -> None:
    """Flush every 25 rounds, as the service flushes after each upload: milvus-lite's filters over
    unsealed rows slow down as they pile up (0.23 s a round after 50 rounds, 0.64 s after 250)."""
    if n % 25 == 24:
        index.save()


def state(index: MilvusIndex, doc_id: str) -> tuple[list[dict], list[dict]]:
    """Every version row and chunk the store holds for a document."""
    key = literal(document_key("default", doc_id))
    rows = index.client.query(index._versions, filter=f"key == {key}", output_fields=["version", "deleted"])
    chunks = index.client.query(index._chunks, filter=f"doc_key == {key}", output_fields=["version"])
    return rows, chunks


def assert_whole(index: MilvusIndex, doc_id: str, texts: set[str], order: tuple[int, ...]) -> str:
    """The document is one version, complete, with nothing older left; its text."""
    rows, chunks = state(index, doc_id)
    assert len(rows) == 1 and not rows[0]["deleted"], (order, rows)
    record, text = index.get(doc_id), index.text(doc_id)
    assert record is not None and text in texts, (order, text)
    assert {c["version"] for c in chunks} == {rows[0]["version"]} and len(chunks) == record.n_chunks, (order, chunks)
    return text


def whole_or_gone(index: MilvusIndex, doc_id: str, texts: set[str], order: tuple[int, ...]) -> str:
    """The document is whole (its text), or gone: "deleted"."""
    if index.get(doc_id) is not None:
        return assert_whole(index, doc_id, texts, order)
    rows, chunks = state(index, doc_id)
    # Its tombstone is the only row, and no chunk of any version is left.
    assert len(rows) == 1 and rows[0]["deleted"] and chunks == [] and index.text(doc_id) == "", (order, rows, chunks)
    return "deleted"


def step_counts(first: MilvusIndex, second: MilvusIndex) -> tuple[int, int]:
    """How many steps a write and a delete take: a probe document written, another deleted."""
    n_write = steps(first.add_steps([DocumentInput(NEW_A, doc_id="probe")]))
    seed(first, ["probe-delete"])
    return n_write, steps(second.delete_steps("probe-delete"))


def run_orders(
    index: MilvusIndex,
    all_orders: list[tuple[int, ...]],
    runs_for: Callable[[str], list[Generator[None, None, Any]]],
    outcome: Callable[[str, tuple[int, ...], list[Any]], str],
) -> tuple[list[str], set[str]]:
    """Each order on a document of its own (seeded with OLD): the documents, and the outcomes seen."""
    ids = [f"doc-{n}" for n in range(len(all_orders))]
    seed(index, ids)
    outcomes = set()
    for n, (doc_id, order) in enumerate(zip(ids, all_orders)):
        sealed_now_and_then(index, n)
        outcomes.add(outcome(doc_id, order, interleave(runs_for(doc_id), order)))
    return ids, outcomes


def test_two_writers_of_one_document_leave_it_whole_in_every_interleaving(replicas) -> None:
    first, second = replicas
    n_write, _ = step_counts(first, second)
    all_orders = list(orders(n_write, n_write))

    def whole(doc_id: str, order: tuple[int, ...], results: list[Any]) -> str:
        assert [r[0].status for r in results] == ["replaced", "replaced"], order
        return assert_whole(first, doc_id, {NEW_A, NEW_B}, order)

    ids, winners = run_orders(
        first,
        all_orders,
        lambda doc_id: [
            first.add_steps([DocumentInput(NEW_A, doc_id=doc_id)]),
            second.add_steps([DocumentInput(NEW_B, doc_id=doc_id)]),
        ],
        whole,
    )
    assert n_write >= 4 and len(all_orders) >= 70
    assert winners == {NEW_A, NEW_B}  # both orders of commit were among the interleavings
    # Nothing else anywhere: every document's chunks are its current version's.
    assert first.chunk_count() == sum(r.n_chunks for r in first.list(limit=10_000)) and first.count() == len(ids) + 1
    # A writer that starts after another ended always wins, whichever process's clock is behind.
    second.add_documents([DocumentInput(NEW_B, doc_id="doc-0")])
    first.add_documents([DocumentInput(NEW_A, doc_id="doc-0")])
    assert first.text("doc-0") == NEW_A


def test_a_delete_and_a_write_at_once_leave_the_document_whole_or_gone(replicas) -> None:
    first, second = replicas
    n_write, n_delete = step_counts(first, second)
    ids, outcomes = run_orders(
        first,
        list(orders(n_write, n_delete)),
        lambda doc_id: [first.add_steps([DocumentInput(NEW_A, doc_id=doc_id)]), second.delete_steps(doc_id)],
        lambda doc_id, order, _: whole_or_gone(first, doc_id, {NEW_A}, order),
    )
    assert n_delete >= 3 and outcomes == {"deleted", NEW_A}
    gone = [i for i in ids if first.get(i) is None]
    assert first.count() == len(ids) - len(gone) + 1  # and the probe written (the other was deleted)
    # A document deleted, then written again, is back, newer than its tombstone.
    first.add_documents([DocumentInput(NEW_B, doc_id=gone[0])])
    assert first.text(gone[0]) == NEW_B and [r["deleted"] for r in state(first, gone[0])[0]] == [False]


def test_two_writers_and_a_delete_leave_the_document_whole_or_gone(replicas) -> None:
    """Three at once: too many interleavings to run all (252,252), so the one that needs the
    tombstone, then 60 drawn at random (seeded). A delete that only removed rows would lose the
    race where one writer's older version commits after the newer version and the delete."""
    first, second = replicas
    n_write, n_delete = step_counts(first, second)
    moves = [0] * n_write + [1] * n_write + [2] * n_delete
    # Writer 0 encodes and inserts its chunks; writer 1 and the delete run through; writer 0 ends.
    rng = random.Random(16)
    all_orders = [(0, 0, *[1] * n_write, *[2] * n_delete, *[0] * (n_write - 2))]
    all_orders += [tuple(rng.sample(moves, len(moves))) for _ in range(60)]
    ids, outcomes = run_orders(
        first,
        all_orders,
        lambda doc_id: [
            first.add_steps([DocumentInput(NEW_A, doc_id=doc_id)]),
            second.add_steps([DocumentInput(NEW_B, doc_id=doc_id)]),
            second.delete_steps(doc_id),
        ],
        lambda doc_id, order, _: whole_or_gone(first, doc_id, {NEW_A, NEW_B}, order),
    )
    assert first.get(ids[0]) is None  # the scripted order: the delete came after the newest write
    assert outcomes == {"deleted", NEW_A, NEW_B}
