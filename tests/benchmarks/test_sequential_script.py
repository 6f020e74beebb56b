"""benchmarks/sequential.py: sbi's round 1 is amortflow's round 1, and the paired differences are right."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import amortflow as af
from amortflow.benchmarks import Benchmark
from amortflow.benchmarks.result import BenchmarkResult
from tests.amortizers.helpers import tiny_flow

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sequential.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("sequential_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_first_round_is_the_inference_round_one(script):
    # exact equality: both draw the same seeds from default_rng(seed) and simulate the same model
    bench = Benchmark("gaussian_linear")
    inference = af.inference.SequentialInference(bench.generative_model, af.amortizers.AmortizedPosterior(tiny_flow(10)),
                                                 bench.task.observation(1), seed=103, trainer_kwargs={"progress": False})
    inference.run(rounds=1, simulations_per_round=30, epochs=1, batch_size=16, progress=False)
    expected = script.first_round(bench, 30, 103)
    np.testing.assert_array_equal(inference._rounds[0]["prior_draws"], expected["prior_draws"])
    np.testing.assert_array_equal(inference._rounds[0]["sim_data"], expected["sim_data"])
    other = script.first_round(bench, 30, 104)
    assert not np.array_equal(other["prior_draws"], expected["prior_draws"])


def _result(c2st, observations):
    return BenchmarkResult(task="t", num_simulations=10, observations=observations, c2st=c2st, train_seconds=0.0,
                           epochs=0, max_epochs=0, best_epoch=0, simulate_seconds=0.0, sample_seconds=0.0,
                           reference_seconds=0.0, c2st_seconds=0.0, num_posterior_samples=1, seed=1, settings={})


def test_paired_difference_on_common_observations(script):
    # a - b on observations 1-3: (-0.1, -0.2, -0.3): mean -0.2, sd 0.1, se 0.1 / sqrt(3) = 0.0577; -0.2 < -2 se
    a = _result([0.6, 0.6, 0.6, 0.9], [1, 2, 3, 4])
    b = _result([0.7, 0.8, 0.9], [1, 2, 3])
    assert script.paired(a, b) == "-0.200 ± 0.058 (ahead, K=3)"
    assert script.paired(b, a) == "+0.200 ± 0.058 (behind, K=3)"
    assert script.paired(a, _result([0.5], [1])) == "-"
