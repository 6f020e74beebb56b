"""``run_npe_benchmark``: a tiny end-to-end run, its JSON round trip, and the CLI's argument errors."""

import numpy as np
import pytest

import amortflow.diagnostics
from amortflow.benchmarks import Benchmark
from amortflow.benchmarks.result import NLENREBenchmarkResult, NPEBenchmarkResult
from amortflow.benchmarks.runner import default_settings, run_npe_benchmark
from amortflow.cli import main
from amortflow.exceptions import ArgumentError


@pytest.fixture
def recorded_c2st(monkeypatch):
    """Replace the C2ST by a fast, real two-sample score and record what the runner passes in.

    The benchmark's MLP classifier needs minutes on an undertrained 10-D posterior; the runner's
    plumbing (which samples reach the classifier) is what this module checks. The stand-in is a
    cross-validated logistic regression (a linear C2ST), so its value still depends on the draws.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    calls = []

    def linear_c2st(reference, draws, seed=1, **_):
        data = np.concatenate([reference, draws])
        labels = np.r_[np.zeros(len(reference)), np.ones(len(draws))]
        score = float(np.mean(cross_val_score(LogisticRegression(max_iter=500), data, labels, cv=3)))
        calls.append((np.array(reference), np.array(draws), score))
        return score

    monkeypatch.setattr(amortflow.diagnostics, "c2st", linear_c2st)
    return calls


def test_tiny_run_gives_a_well_formed_result_that_round_trips(tmp_path, recorded_c2st):
    result = run_npe_benchmark(
        "gaussian_linear", num_simulations=500, num_observations=2, epochs=2, seed=3, num_posterior_samples=500
    )
    assert result.task == "gaussian_linear" and result.num_simulations == 500
    assert result.observations == [1, 2] and len(result.c2st) == 2
    assert result.c2st == [call[2] for call in recorded_c2st]
    assert all(0.0 <= value <= 1.0 for value in result.c2st)
    assert result.c2st_mean == pytest.approx(np.mean(result.c2st))
    assert 1 <= result.best_epoch <= result.epochs <= result.max_epochs == 2
    assert result.train_seconds > 0 and result.sample_seconds > 0
    # each observation is scored against its own reference samples (seed 0), with as many draws
    bench = Benchmark("gaussian_linear")
    for i, (reference, draws, _) in zip(result.observations, recorded_c2st):
        np.testing.assert_allclose(reference, bench.reference_posterior_samples(i, 500, rng=0))
        assert draws.shape == (500, 10) and np.all(np.isfinite(draws))
    text = result.to_text()
    assert "gaussian_linear" in text and f"{result.c2st_mean:.3f}" in text
    loaded = NPEBenchmarkResult.load_json(result.save_json(tmp_path / "sub" / "result.json"))
    assert loaded == result
    assert loaded.to_dict()["c2st_sd"] == pytest.approx(np.std(result.c2st, ddof=1))


def test_every_task_and_budget_gets_the_same_readme_recipe():
    settings = {(task, n): default_settings(task, dim, n) for task, dim in (("two_moons", 2), ("slcp", 5))
                for n in (1_000, 100_000)}  # fmt: skip
    assert all(value == {"network": {}, "batch_size": 128, "max_epochs": 300} for value in settings.values())


def _without_names(config):
    """A Keras config without its layers' automatic names (``amortized_posterior_1`` vs ``_2``)."""
    if isinstance(config, dict):
        return {key: _without_names(value) for key, value in config.items() if key != "name"}
    if isinstance(config, list):
        return [_without_names(value) for value in config]
    return config


def test_the_runner_builds_the_objects_of_the_readme_code(monkeypatch, recorded_c2st):
    import amortflow as af
    from amortflow.benchmarks import runner

    built = []
    build = runner.build_estimator
    monkeypatch.setattr(runner, "build_estimator", lambda *args: built.append(build(*args)) or built[-1])
    monkeypatch.setattr(Benchmark, "reference_posterior_samples",
                        lambda self, i, n, rng=0, **_: self.task.sample_prior(n, np.random.default_rng(rng)))  # fmt: skip
    result = run_npe_benchmark("sir", num_simulations=300, num_observations=1, epochs=1, seed=2,
                               num_posterior_samples=200)  # fmt: skip
    amortizer, trainer = built[0]
    # what the README tells a user to write, for this task's model
    bench = Benchmark("sir")
    readme = af.amortizers.AmortizedPosterior(af.networks.InvertibleNetwork(num_params=bench.task.dim_parameters))
    readme_trainer = af.trainers.Trainer(amortizer=readme, generative_model=bench.generative_model)
    assert _without_names(amortizer.get_config()) == _without_names(readme.get_config())
    assert type(trainer.configurator) is type(readme_trainer.configurator)
    np.testing.assert_array_equal(amortizer.prior_bounds[0], readme.prior_bounds[0])
    # sir's log-normal prior bounds the support at 0: every scored draw is positive
    draws = recorded_c2st[0][1]
    assert draws.shape == (200, 2) and np.all(draws > 0) and np.all(np.isfinite(draws))
    assert result.settings["network"] == {} and result.settings["batch_size"] == 128


@pytest.mark.parametrize("kwargs", [{"num_simulations": 0}, {"num_observations": 11}, {"epochs": 0}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ArgumentError):
        run_npe_benchmark("two_moons", **{"num_simulations": 100, **kwargs})


def test_cli_unknown_task_is_exit_2_with_one_line(capsys):
    assert main(["benchmark", "no_such_task", "--simulations", "100"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_task" in err and "two_moons" in err


def test_cli_bad_simulations_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", "two_moons", "--simulations", "-5"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_method_routes_to_the_mcmc_benchmark(monkeypatch, capsys):
    import amortflow.benchmarks.nle_nre as nle_nre

    calls = []

    def fake_run(task, method, **kwargs):
        calls.append((task, method, kwargs))
        return NLENREBenchmarkResult(task, kwargs["num_simulations"], [1], [0.6], 1.0, 2, 2, 1, 0.1, 0.2, 0.3, 0.4, 100,
                                     kwargs["seed"], {}, method="amortflow NRE")  # fmt: skip

    monkeypatch.setattr(nle_nre, "run_mcmc_benchmark", fake_run)
    assert main(["benchmark", "two_moons", "--simulations", "200", "--observations", "1", "--method", "nre"]) == 0
    assert calls == [("two_moons", "nre", {"num_simulations": 200, "num_observations": 1, "epochs": None, "seed": 1})]
    assert "amortflow NRE on two_moons" in capsys.readouterr().out


def test_early_stopping_c2st_separates_and_does_not_separate():
    from amortflow.diagnostics import c2st

    def c2st_early_stopping(a, b, seed):
        return c2st(a, b, seed=seed, early_stopping=True)

    rng = np.random.default_rng(0)
    same = c2st_early_stopping(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)), seed=1)
    # held-out accuracy of 800 points near 0.5 has standard error sqrt(0.25 / 800) = 0.018; 4 SE = 0.07
    assert abs(same - 0.5) < 0.07
    apart = c2st_early_stopping(rng.normal(size=(400, 2)), rng.normal(size=(400, 2)) + 4.0, seed=1)
    # shifted by 4 sd in both coordinates the Bayes accuracy is Phi(4 * sqrt(2) / 2) = 0.9977
    assert apart > 0.97


def test_unknown_c2st_classifier_raises():
    with pytest.raises(ArgumentError, match="c2st_classifier"):
        run_npe_benchmark("two_moons", 100, c2st_classifier="svm")


@pytest.mark.parametrize("method", ["nle", "nre"])
def test_nle_and_nre_runs_score_mcmc_draws_in_the_prior_support(method, recorded_c2st):
    from amortflow.benchmarks.nle_nre import run_mcmc_benchmark

    mcmc = {"num_chains": 10, "num_burnin": 40, "thinning": 1, "jit_compile": False}
    result = run_mcmc_benchmark("two_moons", 300, method=method, num_observations=1, epochs=1, seed=2,
                                num_posterior_samples=100, mcmc=mcmc)  # fmt: skip
    assert result.method == f"amortflow {method.upper()}" and result.settings["mcmc"]["kernel"] == "rwm"
    assert result.settings["parameter_scaling"] == "prior z-score"
    if method == "nre":  # the contrastive default, recorded with the result
        assert result.settings["ratio"]["loss"] == "nre_b" and result.settings["ratio"]["num_contrastive"] == 10
    draws = recorded_c2st[0][1]
    # 10 chains x 10 kept states; two_moons' prior is the box [-1, 1]^2
    assert draws.shape == (100, 2) and np.all(np.abs(draws) <= 1.0)
    assert result.sample_seconds > 0 and len(result.c2st) == 1


def test_nle_on_integer_data_trains_on_dequantized_counts(monkeypatch, recorded_c2st):
    from amortflow.benchmarks.nle_nre import run_mcmc_benchmark

    # the plumbing only: prior draws stand in for sir's (SMC) reference posterior
    monkeypatch.setattr(Benchmark, "reference_posterior_samples",
                        lambda self, i, n, rng=0, **_: self.task.sample_prior(n, np.random.default_rng(rng)))  # fmt: skip
    mcmc = {"num_chains": 10, "num_burnin": 40, "thinning": 1, "jit_compile": False}
    result = run_mcmc_benchmark("sir", 300, method="nle", num_observations=1, epochs=1, seed=2,
                                num_posterior_samples=100, mcmc=mcmc)  # fmt: skip
    draws = recorded_c2st[0][1]
    assert draws.shape == (100, 2) and np.all(draws > 0) and np.all(np.isfinite(draws))
    assert np.isfinite(result.c2st[0])


def test_mcmc_benchmark_arguments_are_checked():
    from amortflow.benchmarks.nle_nre import run_mcmc_benchmark

    with pytest.raises(ArgumentError, match="method"):
        run_mcmc_benchmark("two_moons", 100, method="abc")
    with pytest.raises(ArgumentError, match="parameter_space"):
        run_mcmc_benchmark("sir", 100, settings={"parameter_space": "log"})


def test_nle_does_not_inherit_the_posterior_flows_task_choices(monkeypatch):
    from amortflow.benchmarks import nle_nre

    seen = {}

    def stop_after_config(bench, method, config, seed):
        seen.update(config["network"])
        raise RuntimeError("stop")

    monkeypatch.setattr(nle_nre, "_make_amortizer", stop_after_config)
    with pytest.raises(RuntimeError, match="stop"):
        nle_nre.run_mcmc_benchmark("slcp_distractors", 100, method="nle", num_observations=1)
    assert seen["dropout"] == 0.0
    # nor sir's spline couplings (its NLE was measured with affine ones), nor task layer counts
    with pytest.raises(RuntimeError, match="stop"):
        nle_nre.run_mcmc_benchmark("sir", 100, method="nle", num_observations=1)
    assert seen["coupling_design"] == "affine"
    with pytest.raises(RuntimeError, match="stop"):
        nle_nre.run_mcmc_benchmark("gaussian_linear_uniform", 100, method="nle", num_observations=1)
    assert (seen["coupling_design"], seen["num_coupling_layers"], seen["dropout"]) == ("affine", 5, 0.0)
    with pytest.raises(RuntimeError, match="stop"):
        nle_nre.run_mcmc_benchmark("slcp_distractors", 100, method="nle", num_observations=1,
                                        settings={"network": {"dropout": 0.2}})  # fmt: skip
    assert seen["dropout"] == 0.2


def test_slcp_data_are_read_as_a_flat_vector_by_every_method(monkeypatch):
    from amortflow.benchmarks import nle_nre

    seen = {}

    def stop_after_config(bench, method, config, seed):
        seen.update(config, layout=bench.data_layout)
        raise RuntimeError("stop")

    monkeypatch.setattr(nle_nre, "_make_amortizer", stop_after_config)
    with pytest.raises(RuntimeError, match="stop"):
        nle_nre.run_mcmc_benchmark("slcp", 100, method="nre", num_observations=1)
    assert seen["layout"] == "vector"


def test_other_inference_nets_train_on_the_same_simulations(monkeypatch, recorded_c2st):
    from amortflow.benchmarks import runner

    seen = {}
    train = runner.train_as_readme

    def recording_train(trainer, raw, config):
        seen[type(trainer.amortizer.inference_net).__name__] = raw
        return train(trainer, raw, config)

    monkeypatch.setattr(runner, "train_as_readme", recording_train)
    labels = {}
    for name in ("invertible", "flow_matching", "consistency"):
        result = run_npe_benchmark("two_moons", num_simulations=300, num_observations=1, epochs=1, seed=2,
                                   num_posterior_samples=200, inference_net=name)  # fmt: skip
        labels[name] = (result.method, result.settings["inference_net"])
        # two_moons' prior is the box [-1, 1]^2; out-of-support draws are rejected by every network
        draws = recorded_c2st[-1][1]
        assert draws.shape == (200, 2) and np.all(np.abs(draws) <= 1.0)
    assert labels == {"invertible": ("amortflow NPE", "InvertibleNetwork"),
                      "flow_matching": ("amortflow NPE/FM", "FlowMatching"),
                      "consistency": ("amortflow NPE/CM", "ConsistencyModel")}  # fmt: skip
    assert set(seen) == {"InvertibleNetwork", "FlowMatching", "ConsistencyModel"}
    for raw in seen.values():  # the pairing: identical simulations whatever the network
        np.testing.assert_array_equal(raw["prior_draws"], seen["InvertibleNetwork"]["prior_draws"])
        np.testing.assert_array_equal(raw["sim_data"], seen["InvertibleNetwork"]["sim_data"])


def test_unknown_inference_net_raises():
    with pytest.raises(ArgumentError, match="inference_net.*'maf'"):
        run_npe_benchmark("two_moons", 100, inference_net="maf")
