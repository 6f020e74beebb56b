"""``Benchmark(name)``: generative model, configurator and observations, wired into amortflow."""

import numpy as np
import pytest

import amortflow as af
from amortflow.benchmarks import Benchmark, SetDataConfigurator, StandardizingPosteriorConfigurator
from amortflow.parameter_space import ParameterSpace
from amortflow.exceptions import ArgumentError


@pytest.mark.parametrize("name", ["gaussian_linear", "slcp_distractors", "sir"])
def test_benchmark_gives_a_generative_model_and_a_configurator(name):
    bench = Benchmark(name, n_pilot=2000)
    task = bench.task
    assert isinstance(bench.generative_model, af.simulation.GenerativeModel)
    assert bench.prior.param_names == list(task.param_names)
    out = bench.generative_model(batch_size=5, rng=0)
    assert out["prior_draws"].shape == (5, task.dim_parameters)
    assert out["sim_data"].shape == (5, task.dim_data)
    conf = bench.configurator(out)
    assert conf["parameters"].dtype == np.float32 and conf["parameters"].shape == (5, task.dim_parameters)
    assert conf["direct_conditions"].dtype == np.float32 and conf["direct_conditions"].shape == (5, task.dim_data)
    assert conf["summary_conditions"] is None
    observed = bench.configured_observation(3)
    assert observed["parameters"] is None and observed["direct_conditions"].shape == (1, task.dim_data)
    np.testing.assert_array_equal(bench.true_parameters(3), task.true_parameters(3))


def test_configurator_standardizes_the_data():
    bench = Benchmark("lotka_volterra", n_pilot=3000)
    out = bench.generative_model(batch_size=3000, rng=1)
    z = bench.configurator(out)["direct_conditions"]
    # winsorized statistics of the pilot run: the bulk of fresh simulations is centred and of unit scale
    median_abs = np.median(np.abs(np.median(z, axis=0)))
    assert median_abs < 0.5
    iqr = np.subtract(*np.quantile(z, [0.75, 0.25], axis=0))
    assert np.all((iqr > 0.2) & (iqr < 3.0))
    np.testing.assert_array_equal(bench.configurator(out)["parameters"], out["prior_draws"].astype(np.float32))


def test_standardizer_handles_constant_entries_and_wrong_shapes():
    data = np.column_stack([np.zeros(100), np.arange(100.0)])
    data[0, 0] = 1.0  # almost always 0, like SIR's day-0 count
    conf = StandardizingPosteriorConfigurator.from_simulations(data)
    assert np.all(np.isfinite(conf.std)) and np.all(conf.std > 0)
    assert conf.std[0] == pytest.approx(np.std(data[:, 0]))
    with pytest.raises(ArgumentError, match=r"\(B, 2\)"):
        conf({"sim_data": np.zeros((4, 3)), "prior_draws": np.zeros((4, 1))})


def test_plain_configurator_and_unknown_names():
    bench = Benchmark("two_moons", standardize_data=False)
    out = bench.generative_model(batch_size=4, rng=0)
    np.testing.assert_allclose(bench.configurator(out)["direct_conditions"], out["sim_data"], rtol=1e-6)
    with pytest.raises(ArgumentError, match="Unknown benchmark task 'nope'"):
        Benchmark("nope")
    assert "two_moons" in repr(bench)


@pytest.mark.parametrize("standardize_data", [True, False])
def test_log_parameters_reach_the_network_and_map_back(standardize_data):
    bench = Benchmark("sir", parameter_space="log", standardize_data=standardize_data, n_pilot=200)
    out = bench.generative_model(batch_size=6, rng=2)
    params = bench.configurator(out)["parameters"]
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, np.log(out["prior_draws"]), rtol=1e-6)
    np.testing.assert_allclose(bench.to_task_parameters(params), out["prior_draws"], rtol=1e-5)
    assert bench.configured_observation(1)["parameters"] is None
    with pytest.raises(ArgumentError, match="positive parameters"):
        bench.configurator({**out, "prior_draws": -out["prior_draws"]})
    plain = Benchmark("sir", n_pilot=200)
    np.testing.assert_array_equal(plain.to_task_parameters(params), params)


@pytest.mark.parametrize("standardize_data", [True, False])
def test_logit_parameters_reach_the_network_and_map_back(standardize_data):
    # gaussian_linear_uniform: theta ~ U(-1, 1)^10, so u = (theta + 1) / 2 and z = log(u / (1 - u))
    bench = Benchmark("gaussian_linear_uniform", parameter_space="logit", standardize_data=standardize_data, n_pilot=200)
    out = bench.generative_model(batch_size=6, rng=3)
    params = bench.configurator(out)["parameters"]
    u = (out["prior_draws"] + 1.0) / 2.0
    np.testing.assert_allclose(params, np.log(u / (1.0 - u)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bench.to_task_parameters(params), out["prior_draws"], rtol=1e-5, atol=1e-6)
    # any network draw, however far out, maps back inside the box
    back = bench.to_task_parameters(np.array([[-1e3] * 5 + [1e3] * 5]))
    assert np.all(back >= -1.0) and np.all(back <= 1.0) and np.all(np.isfinite(back))
    with pytest.raises(ArgumentError, match="inside"):
        bench.configurator({**out, "prior_draws": out["prior_draws"] + 2.0})


def test_prior_edges_give_finite_logits():
    space = ParameterSpace("logit", low=np.array([0.0, -3.0]), high=np.array([1.0, 3.0]))
    z = space.forward(np.array([[0.0, 3.0]]))
    assert np.all(np.isfinite(z)) and z[0, 0] < -15 and z[0, 1] > 15


def test_parameter_spaces_need_a_fitting_prior():
    assert Benchmark("lotka_volterra").has_positive_prior()
    assert not Benchmark("two_moons").has_positive_prior()
    assert Benchmark("two_moons").has_box_prior() and not Benchmark("gaussian_linear").has_box_prior()
    with pytest.raises(ArgumentError, match="confined to positive values"):
        Benchmark("two_moons", parameter_space="log")
    with pytest.raises(ArgumentError, match="bounded box"):
        Benchmark("gaussian_linear", parameter_space="logit")
    with pytest.raises(ArgumentError, match="must be one of"):
        Benchmark("two_moons", parameter_space="probit")


def test_set_layout_passes_exchangeable_draws_as_a_set():
    bench = Benchmark("slcp", data_layout="set", n_pilot=2000)
    n, d = bench.task.exchangeable_draws
    out = bench.generative_model(batch_size=6, rng=2)
    conf = bench.configurator(out)
    assert conf["direct_conditions"] is None and conf["summary_conditions"].shape == (6, n, d)
    # one z-score per coordinate, pooled over the draws: every row of the set is the same map of its draw
    assert bench.configurator.mean.shape == bench.configurator.std.shape == (d,)
    expected = (out["sim_data"].reshape(6, n, d) - bench.configurator.mean) / bench.configurator.std
    np.testing.assert_allclose(conf["summary_conditions"], expected, rtol=1e-5, atol=1e-6)
    # so permuting the draws of a data set permutes the rows of its set and nothing else
    order = [2, 0, 3, 1]
    swapped = out["sim_data"].reshape(6, n, d)[:, order].reshape(6, n * d)
    np.testing.assert_array_equal(bench.configurator({**out, "sim_data": swapped})["summary_conditions"],
                                  conf["summary_conditions"][:, order])  # fmt: skip
    assert bench.configured_observation(1)["summary_conditions"].shape == (1, n, d)
    # the likelihood's flow keeps the flat vector, z-scored as in the vector layout
    vector = Benchmark("slcp", n_pilot=2000)
    np.testing.assert_array_equal(bench.likelihood_configurator(out)["observables"], vector.configurator(out)["direct_conditions"])
    plain = Benchmark("slcp", data_layout="set", standardize_data=False).configurator(out)["summary_conditions"]
    np.testing.assert_allclose(plain, out["sim_data"].reshape(6, n, d), rtol=1e-6)


def test_set_layout_needs_exchangeable_draws():
    with pytest.raises(ArgumentError, match="exchangeable draws"):
        Benchmark("slcp_distractors", data_layout="set")
    with pytest.raises(ArgumentError, match="data_layout"):
        Benchmark("slcp", data_layout="matrix")
    conf = SetDataConfigurator((4, 2))
    with pytest.raises(ArgumentError, match=r"\(B, 8\)"):
        conf({"sim_data": np.zeros((3, 6)), "prior_draws": np.zeros((3, 5))})
    with pytest.raises(ArgumentError, match=r"shape \(2,\)"):
        SetDataConfigurator((4, 2), mean=np.zeros(3), std=np.ones(3))
