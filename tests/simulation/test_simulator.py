import numpy as np
import pytest

from amortflow.exceptions import ArgumentError, ShapeError, SimulationError
from amortflow.simulation import ContextGenerator, Simulator

PARAMS = np.arange(6.0).reshape(3, 2)


def test_exactly_one_function():
    with pytest.raises(ArgumentError, match="exactly one of simulator_fun or batch_simulator_fun; received neither"):
        Simulator()
    with pytest.raises(ArgumentError, match="received both"):
        Simulator(simulator_fun=lambda t: t, batch_simulator_fun=lambda p: p)


def test_per_sample_and_batched_agree_in_shape_and_values():
    looped = Simulator(simulator_fun=lambda theta: np.tile(theta, (4, 1)))
    batched = Simulator(batch_simulator_fun=lambda params: np.repeat(params[:, None, :], 4, axis=1))
    out_l, out_b = looped(PARAMS), batched(PARAMS)
    assert out_l["sim_data"].shape == (3, 4, 2)
    np.testing.assert_array_equal(out_l["sim_data"], out_b["sim_data"])
    assert out_l["batchable_context"] is None and out_l["non_batchable_context"] is None


def test_scalar_per_simulation_becomes_column():
    assert Simulator(simulator_fun=lambda theta: theta.sum())(PARAMS)["sim_data"].shape == (3, 1)


def test_contexts_reach_both_paths():
    context = ContextGenerator(batchable_context_fun=lambda rng: rng.uniform(), non_batchable_context_fun=lambda: 5)

    def per_sample(theta, scale, n_obs, rng):
        return scale * np.ones((n_obs, 1))

    def batched(params, scales, n_obs, rng):
        return np.asarray(scales)[:, None, None] * np.ones((len(params), n_obs, 1))

    for sim in (Simulator(simulator_fun=per_sample, context_generator=context),
                Simulator(batch_simulator_fun=batched, context_generator=context)):  # fmt: skip
        out = sim(PARAMS, rng=2)
        assert out["sim_data"].shape == (3, 5, 1) and out["non_batchable_context"] == 5
        np.testing.assert_array_equal(out["sim_data"][:, 0, 0], out["batchable_context"])


def test_params_must_be_a_matrix():
    with pytest.raises(ShapeError, match=r"params of shape \(B, D\), received shape \(3,\)"):
        Simulator(simulator_fun=lambda t: t)(np.zeros(3))


def test_batched_wrong_leading_dim():
    def drop_one(params):
        return params[1:]

    with pytest.raises(ShapeError, match=r"batch_simulator_fun 'drop_one'.*'sim_data'.*shape \(2, 2\).*batch_size=3.*\(3, \.\.\.\)"):
        Simulator(batch_simulator_fun=drop_one)(PARAMS)


def test_batched_scalar_is_wrong_rank():
    def total(params):
        return params.sum()

    with pytest.raises(ShapeError, match=r"'total' returned 'sim_data' with shape \(\) .*expected shape \(3, \.\.\.\)"):
        Simulator(batch_simulator_fun=total)(PARAMS)


def test_inconsistent_shapes_name_simulation():
    def ragged(theta):
        return np.zeros((int(theta[0]) + 1, 2))

    with pytest.raises(ShapeError, match=r"simulator_fun 'ragged'.*'sim_data'.*inconsistent.*\(3, 2\) for simulation 1.*\(1, 2\) for simulation 0"):
        Simulator(simulator_fun=ragged)(PARAMS)


def test_non_numeric_output():
    def words(theta):
        return ["a", "b"]

    with pytest.raises(SimulationError, match=r"simulator_fun 'words'.*'sim_data' \(simulation 0\).*must be numeric.*<U1"):
        Simulator(simulator_fun=words)(PARAMS)


def test_raising_simulator_names_parameters():
    def fragile(theta):
        if theta[0] > 1:
            raise ValueError("overflow")
        return theta

    with pytest.raises(SimulationError, match=r"simulator_fun 'fragile' raised ValueError while simulating data set 1 from parameters \[2, 3\]: overflow"):
        Simulator(simulator_fun=fragile)(PARAMS)


def test_rng_reproducible():
    sim = Simulator(simulator_fun=lambda theta, rng: rng.normal(theta, size=(3, 2)))
    np.testing.assert_array_equal(sim(PARAMS, rng=1)["sim_data"], sim(PARAMS, rng=1)["sim_data"])
    assert not sim.uses_global_rng
    assert Simulator(simulator_fun=lambda theta: theta).uses_global_rng
