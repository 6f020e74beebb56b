"""TwoLevelAmortizedPosterior: shapes, errors, variable group counts, .keras round trip, known answer."""

import keras
import numpy as np
import pytest
from scipy import stats

import amortflow as af
from amortflow.exceptions import ArgumentError, ShapeError
from tests import hierarchical_gaussian as hg


def _configured(model, n, seed, **kwargs):
    return af.amortizers.DefaultTwoLevelConfigurator()(model(n, rng=seed, **kwargs))


def test_constructor_errors():
    amortizer = hg.amortizer()
    with pytest.raises(ArgumentError, match="HierarchicalNetwork of two"):
        af.amortizers.TwoLevelAmortizedPosterior(amortizer.local_amortizer, amortizer.global_amortizer,
                                                 summary_net=af.networks.DeepSet())  # fmt: skip
    with pytest.raises(ArgumentError, match="AmortizedPosterior"):
        af.amortizers.TwoLevelAmortizedPosterior("x", amortizer.global_amortizer, summary_net=amortizer.summary_net)


def test_shapes_variable_groups_and_keras_round_trip(tmp_path):
    model = hg.model(num_groups=lambda rng: int(rng.integers(3, 9)))
    amortizer = hg.amortizer()
    trainer = af.trainers.Trainer(amortizer, model, seed=0)
    history = trainer.train_online(epochs=1, iterations_per_epoch=6, batch_size=16)
    assert np.isfinite(history["train_losses"]["Loss"]).all()
    offline = model(64, rng=5)
    trainer.train_offline(offline, epochs=1, batch_size=32, early_stopping=False)
    for groups in (2, 11):  # group counts never seen in training
        conf = _configured(model, 3, seed=groups, num_groups=groups)
        out = amortizer.sample(conf, 50, seed=1)
        assert out["global_samples"].shape == (3, 50, 1) and out["local_samples"].shape == (3, 50, groups, 1)
        assert amortizer.log_posterior(conf).shape == (3,)
    one = {k: v[:1] for k, v in conf.items()}
    assert amortizer.sample(one, 7, squeeze=True)["local_samples"].shape == (7, 11, 1)
    with pytest.raises(ShapeError, match=r"\(B, G, N, d\)"):
        amortizer.sample({"summary_conditions": conf["summary_conditions"][:, 0]}, 5)
    with pytest.raises(ShapeError, match="local_parameters"):
        amortizer.log_posterior({**conf, "local_parameters": conf["local_parameters"][:, :3]})
    path = tmp_path / "two_level.keras"
    amortizer.save(path)
    loaded = keras.saving.load_model(path)
    again, reloaded = amortizer.sample(conf, 20, seed=3), loaded.sample(conf, 20, seed=3)
    for key in again:
        np.testing.assert_array_equal(again[key], reloaded[key])
    np.testing.assert_array_equal(amortizer.log_posterior(conf), loaded.log_posterior(conf))
    assert not loaded.standardization_pending


def test_known_answer_hierarchical_gaussian():
    """After short training both levels match the exact posterior (means, sds, C2ST, SBC)."""
    model = hg.model(num_groups=lambda rng: int(rng.integers(4, 10)))
    amortizer = hg.amortizer()
    af.trainers.Trainer(amortizer, model, seed=0).train_online(epochs=8, iterations_per_epoch=150, batch_size=128)
    conf = _configured(model, 100, seed=123, num_groups=6)
    out = amortizer.sample(conf, 200, seed=0)
    exact = hg.exact_posterior(conf["summary_conditions"])
    mu, theta = out["global_samples"][..., 0], out["local_samples"][..., 0]
    # Budget of a tiny network trained for ~20 s: mean off by <= 0.3 posterior sd, sd by <= 20 %,
    # per data set; the Monte Carlo error of 200 draws adds 4 / sqrt(200) = 0.28 sd to a mean and
    # 4 / sqrt(400) = 0.2 to an sd ratio. Averaged over 100 data sets (the median is compared) these
    # tolerances hold with a wide margin for a correct posterior and fail for the prior (shift ~ 4 sd).
    mu_shift = np.abs(mu.mean(1) - exact["mu_mean"]) / exact["mu_sd"]
    theta_shift = np.abs(theta.mean(1) - exact["theta_mean"]) / exact["theta_sd"]
    assert np.median(mu_shift) < 0.3 + 0.28 and np.median(theta_shift) < 0.3 + 0.28
    assert abs(np.median(mu.std(1) / exact["mu_sd"]) - 1) < 0.2 + 0.2 / np.sqrt(100)
    assert abs(np.median(theta.std(1) / exact["theta_sd"]) - 1) < 0.2 + 0.2 / np.sqrt(100)
    # C2ST of joint draws (mu, theta_1..6) of one data set against exact draws: the budget above
    # gives a total-variation distance below ~0.2 per axis, but the joint over 7 axes can add up;
    # 0.5 + 0.15 plus 4 standard errors of the accuracy on 2 x 500 points (0.5 / sqrt(1000) = 0.016,
    # 0.063) is the bound.
    from amortflow.diagnostics.metrics.c2st import c2st

    one = {k: v[:1] for k, v in conf.items()}
    joint = amortizer.sample(one, 500, seed=2, squeeze=True)
    draws = np.concatenate([joint["global_samples"], joint["local_samples"][..., 0]], axis=-1)
    assert c2st(hg.exact_draws(one["summary_conditions"], 500)[0], draws, seed=0) < 0.65 + 0.063
    # SBC: ranks of the true parameters among 200 draws are uniform on 0..200 for a calibrated
    # posterior; a KS test at level 0.01 per level (rank / 201 against U(0, 1)).
    ranks_mu = (mu < conf["global_parameters"][:, :1]).sum(1) / 201
    ranks_theta = (theta < conf["local_parameters"][..., 0][:, None, :]).sum(1).ravel() / 201
    assert stats.kstest(ranks_mu, "uniform").pvalue > 0.01
    # The 6 ranks of one data set share its global draws (dependent); use one group per data set.
    assert stats.kstest(ranks_theta[::6], "uniform").pvalue > 0.01


def test_group_counts_and_sizes_vary_between_training_batches():
    """G and N change from batch to batch (non-batchable contexts) in online and offline training."""
    seen = []

    def recording_simulator(theta, group_size, rng):
        seen.append((theta.shape[1], group_size))
        return hg.simulator(theta, group_size, rng)

    prior = af.simulation.TwoLevelPrior(lambda b, rng: rng.normal(size=(b, 1)), hg.local_prior,
                                        num_groups=lambda rng: int(rng.integers(2, 9)))  # fmt: skip
    sizes = af.simulation.ContextGenerator(non_batchable_context_fun=lambda rng: int(rng.integers(3, 15)))
    model = af.simulation.TwoLevelGenerativeModel(prior, recording_simulator, context_generator=sizes, skip_test=True)
    amortizer = hg.amortizer()
    trainer = af.trainers.Trainer(amortizer, model, seed=0)
    history = trainer.train_online(epochs=1, iterations_per_epoch=8, batch_size=8, validation_sims=16, progress=False)
    # 8 batches of G in 2..8 and N in 3..14 (77 pairs): all equal with probability < 1e-13.
    group_counts, group_sizes = {g for g, _ in seen}, {n for _, n in seen}
    assert len(group_counts) > 1 and len(group_sizes) > 1
    assert len(history["train_losses"]) == 8 and np.isfinite(history["train_losses"]["Loss"]).all()
    assert np.isfinite(history["val_losses"].to_numpy(dtype=float)).all()
    # Offline: two stored batches of different shapes, one after the other.
    for groups, size in ((3, 4), (6, 11)):
        trainer.train_offline(_fixed_size(prior, size)(16, rng=groups, num_groups=groups), epochs=1, batch_size=8,
                              early_stopping=False, progress=False)  # fmt: skip
    # A query at a G and an N seen in no batch.
    conf = af.amortizers.DefaultTwoLevelConfigurator()(_fixed_size(prior, 30)(2, rng=9, num_groups=12))
    out = amortizer.sample(conf, 5, seed=0)
    assert out["local_samples"].shape == (2, 5, 12, 1) and np.isfinite(out["local_samples"]).all()


def _fixed_size(prior, size):
    context = af.simulation.ContextGenerator(non_batchable_context_fun=lambda rng: size)
    return af.simulation.TwoLevelGenerativeModel(prior, hg.simulator, context_generator=context, skip_test=True)


def test_ragged_groups_within_a_batch_are_refused_with_a_clear_error():
    """Groups of different sizes in one batch are not supported: every entry point says so."""
    ragged = [[np.zeros((2, 1)), np.zeros((3, 1))]]  # one data set, groups of 2 and 3 observations
    match = "same size N.*not supported"
    with pytest.raises(af.exceptions.ConfigurationError, match=match):
        af.amortizers.DefaultTwoLevelConfigurator()({"sim_data": ragged})
    with pytest.raises(ShapeError, match=match):
        hg.amortizer().sample({"summary_conditions": ragged}, 5)
    prior = af.simulation.TwoLevelPrior(lambda b, rng: rng.normal(size=(b, 1)), hg.local_prior, num_groups=2)
    with pytest.raises(af.exceptions.SimulationError, match=match):
        af.simulation.TwoLevelGenerativeModel(prior, lambda theta, rng: [ragged[0]] * len(theta))
