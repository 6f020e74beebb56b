"""``coupling_design="auto"``: splines for a compact prior support, affine couplings otherwise."""

from __future__ import annotations

import numpy as np
import pytest

import amortflow as af
from amortflow.networks.inference.invertible_network import InvertibleNetwork, auto_coupling_design
from amortflow.networks.inference.transforms import AffineTransform, RationalQuadraticSpline

TINY = {"dense_args": {"units": 8}, "num_dense": 1}


def _transform_types(net: InvertibleNetwork) -> set[type]:
    return {type(coupling.transform) for coupling in net.couplings}


@pytest.mark.parametrize(
    "lower, upper, expected",
    [
        (None, None, "affine"),
        ([-1.0, 0.0], [1.0, 2.0], "spline"),
        ([-1.0, 0.0], [1.0, np.inf], "affine"),  # half-bounded, e.g. a log-normal prior
        ([-np.inf, -np.inf], [np.inf, np.inf], "affine"),
        (-3.0, 3.0, "spline"),  # scalars broadcast to every parameter
    ],
)
def test_rule_looks_only_at_the_support(lower, upper, expected):
    assert auto_coupling_design(lower, upper, num_params=2) == expected


def test_unresolved_network_builds_affine_and_reports_it():
    net = InvertibleNetwork(num_params=2, num_coupling_layers=1, coupling_settings=TINY)
    assert net.get_config()["coupling_design"] == "auto"
    net(np.zeros((3, 2), "float32"), np.zeros((3, 1), "float32"))
    assert _transform_types(net) == {AffineTransform}
    assert net.get_config()["coupling_design"] == "affine"
    # once built the design is fixed: later bounds do not change it
    assert net.choose_coupling_design([-1.0, -1.0], [1.0, 1.0]) == "affine"


def test_explicit_design_is_never_replaced():
    net = InvertibleNetwork(num_params=2, num_coupling_layers=1, coupling_design="affine", coupling_settings=TINY)
    assert net.choose_coupling_design([-1.0, -1.0], [1.0, 1.0]) == "affine"


def test_amortizer_with_compact_prior_bounds_gets_splines_and_reloads(tmp_path):
    net = InvertibleNetwork(num_params=2, num_coupling_layers=1, coupling_settings={**TINY, "bins": 4})
    amortizer = af.amortizers.AmortizedPosterior(net, prior_bounds=([-1.0, -1.0], [1.0, 1.0]))
    assert _transform_types(net) == {RationalQuadraticSpline}
    conf = {"parameters": np.full((4, 2), 0.3, "float32"), "direct_conditions": np.ones((4, 3), "float32")}
    before = amortizer.log_posterior(conf)
    path = tmp_path / "auto.keras"
    amortizer.save(path)
    loaded = af.utils.load_amortizer(path)
    assert loaded.inference_net.get_config()["coupling_design"] == "spline"
    np.testing.assert_allclose(loaded.log_posterior(conf), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family, expected", [("uniform", "spline"), ("normal", "affine")])
def test_trainer_default_configurator_passes_the_prior_support(family, expected):
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    base = tfd.Uniform(low=[-1.0, -1.0], high=[1.0, 1.0]) if family == "uniform" else tfd.Normal([0.0, 0.0], 1.0)
    prior = af.simulation.Prior(distribution=tfd.Independent(base, reinterpreted_batch_ndims=1))

    def simulator_fun(theta, rng):
        return theta + 0.1 * rng.standard_normal(2)

    model = af.simulation.GenerativeModel(prior, af.simulation.Simulator(simulator_fun=simulator_fun))
    net = InvertibleNetwork(num_params=2, num_coupling_layers=1, coupling_settings=TINY)
    af.trainers.Trainer(amortizer=af.amortizers.AmortizedPosterior(net), generative_model=model)
    assert net.choose_coupling_design() == expected
