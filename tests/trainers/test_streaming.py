"""``Trainer.train_streaming`` on a real Dask LocalCluster (2 worker processes, one per module).

The conjugate Gaussian model of the conftest: ``theta ~ N(0, I_2)``, ``x_n ~ N(theta, I_2)``,
``n = 1..10``, posterior ``N(sum(x) / 11, I / 11)``. The network sees the flattened data as
direct conditions (the posterior mean is linear in them, so a small flow can represent it).
"""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest

import amortflow as af
from amortflow.trainers import Trainer
from amortflow.defaults import DEFAULT_STANDARDIZATION_PILOT

from .conftest import D, N_OBS, make_model

distributed = pytest.importorskip("distributed")
from amortflow.simulation.distributed import StreamingSimulations  # noqa: E402


def flat_configurator(raw):
    """Parameters and the flattened data as direct conditions (no summary network)."""
    data = np.asarray(raw["sim_data"], dtype=np.float32)
    return {"parameters": np.asarray(raw["prior_draws"], dtype=np.float32), "direct_conditions": data.reshape(len(data), -1)}


def flat_amortizer() -> af.amortizers.AmortizedPosterior:
    inference = af.networks.InvertibleNetwork(
        num_params=D, num_coupling_layers=2, coupling_settings={"dense_args": {"units": 32}, "num_dense": 1}
    )
    return af.amortizers.AmortizedPosterior(inference)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    client.run(importlib.import_module, "amortflow.simulation.distributed")  # pay the import once, here
    yield client
    client.close()
    cluster.close()


def test_streaming_training_learns_the_analytic_posterior(client, caplog):
    model = make_model()
    epochs, iterations, batch_size, capacity = 3, 250, 128, 2000
    trainer = Trainer(flat_amortizer(), model, configurator=flat_configurator, default_lr=5e-3,
                      progress=False, jit_compile=False, seed=0)  # fmt: skip
    stream = StreamingSimulations(model, client, buffer_capacity=capacity, watermark=500, chunk_size=250, seed=1)
    with caplog.at_level(logging.INFO, logger="amortflow"):
        history = trainer.train_streaming(epochs, iterations, batch_size, stream=stream, validation_sims=200)
    try:
        train = history["train_losses"]
        assert len(train) == epochs * iterations and train.groupby("Epoch").size().tolist() == [iterations] * epochs
        assert history["val_losses"]["Epoch"].tolist() == [1, 2, 3] and trainer.step == epochs * iterations
        assert caplog.text.count("Streaming, after epoch") == epochs
        # a given stream stays open: it still serves batches after training
        assert stream.next_batch(4)["sim_data"].shape == (4, N_OBS, D)
        stats = stream.stats()
        # the steps, the batch above, and the pilot batches of the amortizer's standardization statistics
        pilot_batches = -(-min(DEFAULT_STANDARDIZATION_PILOT, capacity) // batch_size)
        assert stats["active"] and stats["batches_drawn"] == epochs * iterations + 1 + pilot_batches
        assert stats["buffer_fill"] <= capacity and stats["seen_max"] > 0 and stats["seen_mean"] > 0
    finally:
        stream.close()

    # Posterior check on 4 fresh observations, S = 2000 draws each. Tolerances: the fit of a
    # tiny flow after 750 steps (on whichever simulations the cluster delivered first, so the
    # run is not bit-reproducible) was off by up to 0.3 posterior sd in the mean and 14% in
    # the sd in our runs; we allow 0.5 sd and 25%, plus 4 Monte Carlo standard errors of a
    # sample mean (4 / sqrt(S) = 0.09 sd) and of a sample sd (4 / sqrt(2 S) = 6%). An
    # untrained or prior-like network is off by ~1 prior sd = 3.3 posterior sd, and its sd by 230%.
    obs = model(4, rng=123)
    draws = trainer.amortizer.sample(flat_configurator(obs), n_samples=2000, seed=5)
    post_mean = obs["sim_data"].sum(axis=1) / (N_OBS + 1)
    post_sd = 1.0 / np.sqrt(N_OBS + 1)
    np.testing.assert_allclose(draws.mean(axis=1), post_mean, atol=(0.5 + 0.09) * post_sd)
    np.testing.assert_allclose(draws.std(axis=1), post_sd, rtol=0.25 + 0.06)


def test_a_stream_built_by_the_trainer_is_closed_afterwards(client, monkeypatch):
    closed = []
    original_close = StreamingSimulations.close

    def spy_close(self):
        closed.append(self)
        original_close(self)

    monkeypatch.setattr(StreamingSimulations, "close", spy_close)
    trainer = Trainer(flat_amortizer(), make_model(), configurator=flat_configurator, progress=False, jit_compile=False, seed=0)
    history = trainer.train_streaming(2, 4, 16, buffer_capacity=100, watermark=50, policy="reservoir", client=client)
    assert len(history["train_losses"]) == 8
    assert len(closed) == 1 and closed[0].policy == "reservoir" and closed[0].buffer_capacity == 100
    # the standardization pilot: one buffer's worth (capacity 100), at most the first epoch's 4 batches
    pilot_batches = min(-(-100 // 16), 4)
    assert closed[0].stats()["batches_drawn"] == 8 + pilot_batches and not closed[0].stats()["active"]
    # the client given to the stream is the caller's: it is still usable
    assert client.submit(sum, [1, 2]).result() == 3
