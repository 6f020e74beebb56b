"""Sequential rounds simulated on a Dask cluster (an in-process LocalCluster): the same simulations as the chunked local path.

The proposal's draws are made in this process and cut into tasks of ``chunk_size`` rows, each
simulated from its own child seed (:mod:`amortflow.inference.dask_rounds`), so for a given seed the
cluster's simulations equal :func:`simulate_chunks` run here, bit for bit. They are not those of the
local path without Dask (one stream for the whole round), so the whole run is checked by its
statistics instead: the conjugate posterior (tolerances in :mod:`tests.inference.conjugate`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import amortflow as af
from amortflow.inference import SequentialInference
from amortflow.inference.dask_rounds import simulate_at_on_dask, simulate_chunks
from tests.amortizers.helpers import tiny_flow
from tests.inference.conjugate import X_OBS, assert_matches_posterior, model

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0")
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_a_round_on_dask_equals_its_chunks_simulated_here(client):
    dask_model = af.simulation.DaskGenerativeModel(model(), client, chunk_size=16, seed=0)
    theta = np.random.default_rng(1).normal(size=(50, 2)).astype("float32")  # 3 full chunks and one of 2 rows
    on_dask = simulate_at_on_dask(dask_model, theta, np.random.default_rng(7))
    here = simulate_chunks(model(), theta, 16, np.random.default_rng(7))
    np.testing.assert_array_equal(on_dask["prior_draws"], theta)
    np.testing.assert_array_equal(on_dask["sim_data"], here["sim_data"])
    # and the simulations are the model's: xbar - theta ~ N(0, I / 10), sd 0.316; 100 values give a
    # sample sd within 4 standard errors (0.316 / sqrt(200) = 0.022 each) of it
    assert abs(np.std(on_dask["sim_data"] - theta) - 0.316) < 0.09


def test_snpe_c_rounds_on_dask_recover_the_posterior(client, tmp_path):
    dask_model = af.simulation.DaskGenerativeModel(model(), client, chunk_size=100, seed=0)
    inference = SequentialInference(dask_model, af.amortizers.AmortizedPosterior(tiny_flow(2)), X_OBS, seed=1,
                                    trainer_kwargs={"progress": False}, checkpoint_path=tmp_path / "run")  # fmt: skip
    history = inference.run(rounds=2, simulations_per_round=600, epochs=30, batch_size=128, optimizer=3e-3)
    assert [r.total_simulations for r in history] == [600, 1200]
    assert_matches_posterior(inference.sample(4000, seed=0))
    # round 2 was simulated on the cluster from its recorded seed, chunk by chunk
    entry = json.loads((tmp_path / "run" / "manifest.json").read_text())["rounds"][1]
    round_2 = inference._rounds[1]
    here = simulate_chunks(model(), round_2["prior_draws"], 100, np.random.default_rng(entry["simulation_seed"]))
    np.testing.assert_array_equal(round_2["sim_data"], here["sim_data"])
