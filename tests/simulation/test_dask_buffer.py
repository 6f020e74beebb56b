"""The pieces of the Dask layer that need no cluster: buffer policies, seen counts, bookkeeping, seeds."""

import sys

import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation.distributed import DaskGenerativeModel, IndexLedger, SimulationBuffer
from amortflow.simulation.distributed._client import ClientHandle, child_seed, root_seed_sequence
from amortflow.simulation.distributed.tasks import merge_raw


def chunk(start, stop, context=None):
    """Rows ``start..stop-1``; each row's value is its index, so rows can be tracked."""
    values = np.arange(start, stop, dtype=float)
    return {"prior_draws": values[:, None], "sim_data": np.repeat(values[:, None, None], 3, axis=1),
            "sim_non_batchable_context": context}  # fmt: skip


def held_rows(buffer):
    return sorted(buffer.sample(buffer.fill, rng=0)["prior_draws"][:, 0].astype(int))


def test_fifo_keeps_the_newest_rows_and_counts_evictions():
    buffer = SimulationBuffer(capacity=10, policy="fifo")
    for start in range(0, 100, 7):
        buffer.add(chunk(start, min(start + 7, 100)))
        assert buffer.fill == min(10, buffer.total_added)  # bounded at capacity from the start
    assert held_rows(buffer) == list(range(90, 100))
    stats = buffer.stats()
    assert stats["rows_added"] == 100 and stats["rows_evicted"] == 90 and stats["rows_evicted_unseen"] == 90


def test_a_chunk_larger_than_the_buffer_keeps_its_last_rows():
    buffer = SimulationBuffer(capacity=4, policy="fifo")
    buffer.add(chunk(0, 3))
    buffer.add(chunk(3, 12))
    assert held_rows(buffer) == [8, 9, 10, 11]
    assert buffer.evicted == 8


def test_reservoir_holds_a_uniform_sample_of_all_rows():
    # Algorithm R keeps each of n rows with probability capacity / n = 10 / 100 = 0.1.
    # Over R = 500 independent runs each row's inclusion frequency has standard error
    # sqrt(0.1 * 0.9 / 500) = 0.0134; 4.5 standard errors (0.060) bound all 100 rows at once
    # (P(any |z| > 4.5) < 100 * 6.8e-6). FIFO, by contrast, gives 1.0 for rows 90..99, 0 for the rest.
    n_runs, counts = 500, np.zeros(100)
    for run in range(n_runs):
        buffer = SimulationBuffer(capacity=10, policy="reservoir", seed=run)
        for start in range(0, 100, 7):
            buffer.add(chunk(start, min(start + 7, 100)))
        counts[held_rows(buffer)] += 1
    assert buffer.fill == 10 and buffer.evicted == 90
    np.testing.assert_allclose(counts / n_runs, 0.1, atol=4.5 * np.sqrt(0.1 * 0.9 / n_runs))


def test_seen_counts_track_draws_and_reset_when_a_row_is_replaced():
    buffer = SimulationBuffer(capacity=6, policy="fifo", seed=0)
    buffer.add(chunk(0, 6))
    batch = buffer.sample(6, rng=1)
    assert sorted(batch["prior_draws"][:, 0]) == list(range(6))  # batch <= fill: without replacement
    for _ in range(9):
        buffer.sample(4, rng=2)
    assert buffer.seen.sum() == 6 + 9 * 4
    stats = buffer.stats()
    assert stats["seen_mean"] == pytest.approx(42 / 6) and stats["seen_max"] == buffer.seen.max()
    buffer.add(chunk(6, 8))  # replaces rows 0 and 1, both seen at least once
    assert buffer.seen[:2].tolist() == [0, 0] and buffer.evicted == 2 and buffer.evicted_unseen == 0
    assert buffer.sample(20, rng=3)["sim_data"].shape == (20, 3, 1)  # batch > fill: with replacement


def test_contexts_are_kept_per_row_and_shared():
    buffer = SimulationBuffer(capacity=5)
    raw = chunk(0, 3, context=np.int64(3))
    raw["sim_batchable_context"] = ["a", "b", "c"]  # non-numeric contexts are kept as objects
    buffer.add(raw)
    out = buffer.sample(3, rng=0)
    assert out["sim_non_batchable_context"] == 3 and out["prior_batchable_context"] is None
    labels = {0: "a", 1: "b", 2: "c"}
    assert [labels[int(v)] for v in out["prior_draws"][:, 0]] == out["sim_batchable_context"]


def test_chunks_that_cannot_share_a_batch_are_refused():
    buffer = SimulationBuffer(capacity=5)
    buffer.add(chunk(0, 2, context=3))
    with pytest.raises(SimulationError, match="sim_non_batchable_context"):
        buffer.add(chunk(2, 4, context=4))
    bad = chunk(2, 4, context=3)
    bad["sim_data"] = bad["sim_data"][:, :2]
    with pytest.raises(ShapeError, match=r"shape \(2, 1\) per simulation.*\(3, 1\)"):
        buffer.add(bad)
    with pytest.raises(ArgumentError, match="policy"):
        SimulationBuffer(4, policy="lifo")
    with pytest.raises(SimulationError, match="empty"):
        SimulationBuffer(4).sample(2)


def test_index_ledger_counts_each_task_once():
    ledger = IndexLedger()
    assert [ledger.add(i) for i in (2, 0, 1, 1, 2, 5)] == [True, True, True, False, False, True]
    assert ledger.low == 3 and 5 in ledger and 4 not in ledger


def test_child_seed_is_the_spawned_child_whatever_the_order():
    root = root_seed_sequence(11)
    spawned = np.random.SeedSequence(11).spawn(5)
    for index in (4, 0, 3):
        assert child_seed(root, index).generate_state(4).tolist() == spawned[index].generate_state(4).tolist()
    assert root_seed_sequence(np.random.default_rng(3)).entropy == root_seed_sequence(np.random.default_rng(3)).entropy
    with pytest.raises(ArgumentError, match="seed"):
        root_seed_sequence(-1)


def test_merge_raw_concatenates_rows_and_checks_shared_context():
    merged = merge_raw([chunk(0, 2, 5), chunk(2, 5, 5)])
    assert merged["prior_draws"][:, 0].tolist() == [0, 1, 2, 3, 4] and merged["sim_non_batchable_context"] == 5
    with pytest.raises(SimulationError, match="chunk_size >= batch_size"):
        merge_raw([chunk(0, 2, 5), chunk(2, 5, 6)])


def test_missing_dask_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # makes `import distributed` fail
    with pytest.raises(ImportError, match=r"pip install amortflow\[distributed\]"):
        DaskGenerativeModel(lambda batch_size, rng=None: {}, chunk_size=2)


def test_client_argument_is_checked():
    with pytest.raises(ArgumentError, match="client must be"):
        ClientHandle(client=42)
