"""Simulation on a real Dask LocalCluster (2 worker processes): seeds, faults, fan-out, streaming.

One cluster serves the whole module; its workers import amortflow once, up front. The test
that kills a worker runs last, so the restarted worker's start-up does not slow the others.
"""

import importlib
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import dask
import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation import GenerativeModel, Prior, Simulator, iter_shard_paths, load_shard, presimulate_and_save
from amortflow.simulation.distributed import DaskGenerativeModel, StreamingSimulations, dask_presimulate_and_save
from amortflow.simulation.distributed._client import ClientHandle, child_seed, describe_workers
from amortflow.simulation.distributed.tasks import simulate_task

distributed = pytest.importorskip("distributed")


# --- models (module-level functions: Dask workers import them by name) ----------------------
def normal_prior(batch_size, rng):
    return rng.normal(size=(batch_size, 2))


def shifted_sim(params, rng):
    return params[:, None, :] + rng.normal(size=(len(params), 3, 2))


def slow_sim(params, rng):
    time.sleep(0.05 * len(params))  # a "real" simulator: 50 ms per simulation
    return shifted_sim(params, rng)


def very_slow_sim(params, rng):
    time.sleep(0.15 * len(params))
    return shifted_sim(params, rng)


def fragile_sim(theta, rng):
    if theta[0] > 1.0:
        raise ValueError("solver diverged")
    return rng.normal(theta, 1.0, size=(3, 2))


def broken_sim(theta, rng):
    raise ValueError("never converges")


def make_model(sim=shifted_sim, batched=True):
    simulator = Simulator(batch_simulator_fun=sim) if batched else Simulator(simulator_fun=sim)
    return GenerativeModel(Prior(batch_prior_fun=normal_prior), simulator, skip_test=True, name=sim.__name__)


def reference_rows(model, seed, sizes, first=0):
    """The simulations of tasks ``first, first+1, ...`` run here, one after the other (a 'one-worker' run)."""
    root = np.random.SeedSequence(seed)
    raws = [simulate_task(model, first + i, size, child_seed(root, first + i), False).raw for i, size in enumerate(sizes)]
    return np.concatenate([raw["prior_draws"] for raw in raws]), np.concatenate([raw["sim_data"] for raw in raws])


def sorted_rows(array):
    return array[np.lexsort(array.reshape(len(array), -1).T[::-1])]


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the cluster"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    client.run(importlib.import_module, "amortflow.simulation.distributed")  # pay the import once, here
    yield client
    client.close()
    cluster.close()


# --- DaskGenerativeModel ---------------------------------------------------------------------
def test_batches_are_reproducible_and_independent_of_workers(client):
    model = make_model()
    first = DaskGenerativeModel(model, client, chunk_size=3, seed=7)
    batches = [first(10), first(10)]
    assert batches[0]["prior_draws"].shape == (10, 2) and batches[0]["sim_data"].shape == (10, 3, 2)
    # The same seed in a fresh model, every task pinned to ONE worker: identical batches.
    one_worker = list(client.scheduler_info()["workers"])[:1]
    again = DaskGenerativeModel(model, client, chunk_size=3, seed=7)
    with distributed.get_task_stream(client) as stream, dask.annotate(workers=one_worker):
        repeated = [again(10), again(10)]
    assert {task["worker"] for task in stream.data} == set(one_worker)
    for batch, same in zip(batches, repeated):
        for key in ("prior_draws", "sim_data"):
            np.testing.assert_array_equal(batch[key], same[key])
    # ... and the same as running the tasks here in order (calls continue the task numbering).
    draws, data = reference_rows(model, 7, [3, 3, 3, 1, 3, 3, 3, 1])
    np.testing.assert_array_equal(np.concatenate([b["prior_draws"] for b in batches]), draws)
    np.testing.assert_array_equal(np.concatenate([b["sim_data"] for b in batches]), data)
    # Distinct streams: no two tasks (nor the two calls) repeat a draw.
    assert np.unique(draws).size == draws.size
    # rng= gives a batch that depends only on that seed.
    np.testing.assert_array_equal(first(5, rng=3)["sim_data"], again(5, rng=3)["sim_data"])


def test_calls_from_two_threads_get_disjoint_tasks(client):
    model = make_model()
    dask_model = DaskGenerativeModel(model, client, chunk_size=3, seed=4)
    with ThreadPoolExecutor(2) as pool:  # e.g. the trainer's producer thread and a validation call
        batches = list(pool.map(dask_model, [6, 6]))
    draws, _ = reference_rows(model, 4, [3] * 4)
    np.testing.assert_array_equal(sorted_rows(np.concatenate([b["prior_draws"] for b in batches])), sorted_rows(draws))


def test_simulator_errors_name_the_parameters_and_follow_on_invalid(client, caplog):
    model = make_model(fragile_sim, batched=False)  # P(theta_1 > 1) = 0.16: some tasks fail
    with pytest.raises(SimulationError, match=r"Dask task \d+ .*from parameters \[.*solver diverged"):
        DaskGenerativeModel(model, client, chunk_size=2, seed=0, on_invalid="raise")(12)
    with caplog.at_level(logging.WARNING, logger="amortflow"):
        batch = DaskGenerativeModel(model, client, chunk_size=2, seed=0, on_invalid="drop")(12)
    assert batch["prior_draws"].shape == (12, 2) and (batch["prior_draws"][:, 0] <= 1.0).all()
    assert any("dropped task" in r.message and "from parameters [" in r.message for r in caplog.records)
    again = DaskGenerativeModel(model, client, chunk_size=2, seed=0, on_invalid="drop")(12)
    np.testing.assert_array_equal(batch["sim_data"], again["sim_data"])  # replacements are seeded too


def test_a_batch_past_its_timeout_is_cancelled_with_the_workers_states(client):
    model = DaskGenerativeModel(make_model(very_slow_sim), client, chunk_size=8, seed=0, timeout=0.3)  # 1.2 s per task
    with pytest.raises(SimulationError, match=r"2 of 2 task\(s\) did not finish within timeout=0.3 s.*2 worker\(s\): .*running"):
        model(16)
    wait_for(lambda: not any(client.processing().values()))  # cancelled, not left running
    with pytest.raises(ArgumentError, match="timeout must be a positive number"):
        DaskGenerativeModel(make_model(), client, timeout=0)


def test_a_worker_paused_for_memory_is_named_in_the_timeout_error():
    # An in-process worker shares this test process's memory (hundreds of MiB with TensorFlow),
    # far above 80 % of a 50 MB limit: Dask pauses it and it takes no tasks. This is what hung
    # the SLURM test with 1 GB jobs; without a timeout the batch would wait for ever.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, memory_limit="50MB",
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as paused:  # fmt: skip
        wait_for(lambda: "paused" in describe_workers(paused))
        with pytest.raises(SimulationError, match=r"1 worker\(s\) \(1 paused for memory: raise the workers' memory limit\)"):
            DaskGenerativeModel(make_model(), paused, chunk_size=4, seed=0, timeout=2)(8)


def test_client_handle_borrows_clients_and_owns_what_it_creates(client):
    borrowed = ClientHandle(client)
    assert borrowed.client is client and not borrowed.owns_client
    borrowed.close()
    assert client.status == "running"
    cluster = distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0")
    handle = ClientHandle(cluster)  # a cluster object gets its own client, closed with the handle
    assert handle.n_threads() >= 1 and handle.owns_client
    handle.close()
    assert cluster.status.name == "running"
    cluster.close()
    own = ClientHandle(None, cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": None})
    assert own.n_threads() == 1
    inner = own._cluster
    own.close()
    assert inner.status.name == "closed"


# --- presimulation fan-out -------------------------------------------------------------------
def test_fan_out_writes_the_serial_shards_and_resumes(client, tmp_path):
    model = make_model()
    serial = presimulate_and_save(model, tmp_path / "serial", batch_size=4, n_batches=5, seed=2, progress=False)
    paths = dask_presimulate_and_save(model, tmp_path / "dask", 4, 5, seed=2, client=client, progress=False)
    assert [p.name for p in paths] == [p.name for p in serial]
    for a, b in zip(paths, serial):
        raw_a, raw_b = load_shard(a), load_shard(b)
        assert raw_a.keys() == raw_b.keys()
        np.testing.assert_array_equal(raw_a["sim_data"], raw_b["sim_data"])
    # Damage two shards; a resumed run redoes exactly those, leaving the others untouched.
    paths[2].unlink()
    paths[3].write_bytes(paths[3].read_bytes()[:50])
    mtimes = {i: paths[i].stat().st_mtime_ns for i in (0, 1, 4)}
    DaskGenerativeModel(model, client, seed=2).presimulate_and_save(tmp_path / "dask", 4, 5, progress=False)
    assert {i: paths[i].stat().st_mtime_ns for i in (0, 1, 4)} == mtimes
    for a, b in zip(paths, serial):
        np.testing.assert_array_equal(load_shard(a)["prior_draws"], load_shard(b)["prior_draws"])
    assert len(list(iter_shard_paths(tmp_path / "dask", verify=True))) == 5


# --- streaming -------------------------------------------------------------------------------
def test_stream_waits_once_for_the_watermark_then_never_blocks(client):
    model = make_model(slow_sim)  # 4 simulations per task: 0.2 s per task
    with StreamingSimulations(model, client, buffer_capacity=40, watermark=20, chunk_size=4, seed=1) as stream:
        batch = stream.next_batch(8)
        stats = stream.stats()
        assert stats["ready"] and stats["buffer_fill"] >= 20 and batch["sim_data"].shape == (8, 3, 2)
        start = time.perf_counter()
        for _ in range(200):
            stream.next_batch(8)
        elapsed = time.perf_counter() - start
        # 200 batches while simulations are still running: sampling never waits for them
        # (one batch takes ~0.1 ms; one task takes 200 ms, so waiting even once would show).
        assert elapsed < 0.2 and stream.stats()["tasks_in_flight"] > 0
        wait_for(lambda: stream.stats()["rows_added"] > 40 + 8)
        stats = stream.stats()
    assert stats["buffer_fill"] == 40  # memory bounded: FIFO evicted the oldest rows
    assert stats["rows_evicted"] == stats["rows_added"] - 40 and stats["batches_drawn"] == 201
    assert 0 < stats["seen_mean"] <= stats["seen_max"]
    assert stream.stats()["tasks_in_flight"] == 0  # close() cancelled what was running


def test_stream_times_out_when_the_watermark_is_far(client):
    with StreamingSimulations(make_model(slow_sim), client, buffer_capacity=1000, chunk_size=4, seed=2) as stream:
        with pytest.raises(TimeoutError, match="Watermark of 1000"):
            stream.next_batch(4, timeout=0.3)


@pytest.mark.parametrize("policy", ["fifo", "reservoir"])
def test_every_task_contributes_exactly_once(client, policy):
    model = make_model()
    dask_model = DaskGenerativeModel(model, client, chunk_size=4)
    capacity = 24 if policy == "fifo" else 8
    with dask_model.stream(buffer_capacity=capacity, max_simulations=24, seed=5, policy=policy) as stream:
        wait_for(lambda: not stream.stats()["active"])
        held = stream.next_batch(capacity)["prior_draws"]  # batch == fill: every row once
        stats = stream.stats()
    draws, _ = reference_rows(model, 5, [4] * 6)
    assert stats["tasks_done"] == 6 and stats["duplicates_dropped"] == 0 and stats["rows_evicted"] == 24 - capacity
    if policy == "fifo":
        np.testing.assert_array_equal(sorted_rows(held), sorted_rows(draws))
    else:
        assert all((row == draws).all(axis=1).any() for row in held)  # a subset of the simulations
    assert client.status == "running"  # the stream borrowed the model's client


def test_stream_drops_or_raises_on_failing_simulations(client):
    model = make_model(fragile_sim, batched=False)
    with StreamingSimulations(model, client, buffer_capacity=40, watermark=4, chunk_size=2, max_simulations=40,
                              seed=0, on_invalid="drop") as stream:  # fmt: skip
        wait_for(lambda: not stream.stats()["active"])  # all 20 tasks done, the collector stopped
        stats = stream.stats()
        batch = stream.next_batch(stats["buffer_fill"])
    assert stats["invalid_tasks"] > 0 and stats["tasks_done"] + stats["invalid_tasks"] == 20
    assert (batch["prior_draws"][:, 0] <= 1.0).all()
    with StreamingSimulations(model, client, buffer_capacity=40, chunk_size=2, seed=0, on_invalid="raise") as stream:
        with pytest.raises(SimulationError, match=r"task \d+ .*from parameters \["):
            stream.next_batch(4, timeout=30)
    broken = make_model(broken_sim, batched=False)  # every task fails: the stream gives up instead of spinning
    with StreamingSimulations(broken, client, buffer_capacity=40, chunk_size=10, seed=0, on_invalid="drop") as stream:
        with pytest.raises(SimulationError, match="100 of 100 simulations failed"):
            stream.next_batch(4, timeout=30)


def test_a_killed_worker_loses_and_duplicates_nothing(client):
    model = make_model(very_slow_sim)  # 2 simulations per task: 0.3 s per task
    with distributed.get_task_stream(client) as task_stream, StreamingSimulations(
        model, client, buffer_capacity=24, chunk_size=2, max_simulations=24, seed=9
    ) as stream:
        wait_for(lambda: stream.stats()["tasks_done"] >= 2)
        victim = sorted(worker for worker, keys in client.processing().items() if keys)[0]  # busy with a task
        # A dead machine does not come back: stop its nanny from restarting the process (a restart
        # would spend ~10 s importing TensorFlow before running the rescheduled task).
        client.run(lambda dask_worker: dask_worker.close_gracefully(), workers=[victim], nanny=True)
        pid = client.run(os.getpid, workers=[victim])[victim]
        # Freeze the process first, so that the tasks the scheduler sees on it cannot finish any
        # more; then kill it from outside, as the OOM killer or a failing node would (SIGKILL).
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.3)  # messages the worker sent before it froze reach the scheduler
        lost = set(client.processing()[victim])
        os.kill(pid, signal.SIGKILL)
        held = stream.next_batch(24, timeout=60)["prior_draws"]  # waits for all 24 simulations
        stats = stream.stats()
    assert victim not in client.scheduler_info()["workers"]
    assert lost, "the killed worker held no task: nothing was tested"
    survivor = next(iter(client.scheduler_info()["workers"]))
    finished_on = {task["key"]: task["worker"] for task in task_stream.data if task["key"] in lost}
    assert finished_on == dict.fromkeys(lost, survivor)  # every task of the dead worker was re-run elsewhere
    assert stats["tasks_done"] == 12 and stats["simulations_done"] == 24 and stats["duplicates_dropped"] == 0
    # Simulation i is row i of the tasks run here one after the other; its prior draw (two normal
    # numbers, distinct across the 24 rows) identifies it. Every index must arrive exactly once.
    draws, _ = reference_rows(model, 9, [2] * 12)
    matches = (held[:, None, :] == draws[None, :, :]).all(axis=2)  # (held row, simulation index)
    assert (matches.sum(axis=1) == 1).all()  # each held row is one of the simulations
    np.testing.assert_array_equal(matches.sum(axis=0), np.ones(24, dtype=int))  # each index once: none lost or doubled
