"""Rank-normalized split R-hat and ESS (Vehtari et al. 2021) against known answers."""

import numpy as np
import pytest

from amortflow.diagnostics.metrics import effective_sample_size, split_rhat
from amortflow.exceptions import ShapeError


def ar1_chains(phi, n=2000, m=4, dim=2, seed=0):
    """Stationary AR(1) chains with unit variance: x_t = phi x_{t-1} + sqrt(1 - phi^2) e_t."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, m, dim))
    x[0] = rng.standard_normal((m, dim))
    noise = rng.standard_normal((n, m, dim)) * np.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + noise[t]
    return x


def test_ess_of_ar1_chains_matches_the_integrated_autocorrelation_time():
    # tau = (1 + phi) / (1 - phi) = 9 for phi = 0.8, so ESS = 8000 / 9 = 889. The estimate's relative
    # sd is about sqrt(2 (2K + 1) / S) (Bartlett) with ~20 lags summed: sqrt(82 / 8000) = 0.10; 3 sd.
    ess = effective_sample_size(ar1_chains(0.8))
    np.testing.assert_allclose(ess, 8000 * 0.2 / 1.8, rtol=0.3)


def test_ess_of_independent_draws_is_their_number_and_stuck_chains_have_little():
    rng = np.random.default_rng(1)
    # iid: tau = 1 up to lag noise (~3 lags summed: relative sd sqrt(7 / 4000) = 0.04); 4 sd.
    np.testing.assert_allclose(effective_sample_size(rng.standard_normal((1000, 4, 3))), 4000, rtol=0.16)
    assert np.all(effective_sample_size(ar1_chains(0.995, n=400)) < 100)


def test_split_rhat_is_one_for_agreeing_chains_and_large_otherwise():
    rng = np.random.default_rng(2)
    iid = rng.standard_normal((1000, 4, 2))
    assert np.all(np.abs(split_rhat(iid) - 1) < 0.01)  # R-hat - 1 is O(1 / sqrt(S)) noise at most
    shifted = iid + np.array([0.0, 0.0, 0.0, 2.0])[None, :, None]  # one chain elsewhere
    assert np.all(split_rhat(shifted) > 1.1)
    drifting = iid + np.linspace(0, 3, 1000)[:, None, None]  # each chain's halves differ
    assert np.all(split_rhat(drifting) > 1.1)
    assert split_rhat(iid[:, :1]).shape == (2,)  # one chain: its two halves are compared


def test_tail_rhat_sees_chains_that_differ_only_in_scale():
    # Same location, scales 1 and 3: the bulk R-hat of the ranks is ~1, the folded (tail) one is not.
    rng = np.random.default_rng(3)
    chains = rng.standard_normal((1000, 4, 1)) * np.array([1.0, 1.0, 3.0, 3.0])[None, :, None]
    assert split_rhat(chains)[0] > 1.05


@pytest.mark.parametrize("fn, minimum", [(split_rhat, 4), (effective_sample_size, 2)])
def test_shapes_are_checked(fn, minimum):
    with pytest.raises(ShapeError, match=rf"n_iterations >= {minimum}, n_chains, D\), received \(1, 2, 1\)"):
        fn(np.zeros((1, 2, 1)))
    with pytest.raises(ShapeError, match=r"received \(5, 2\)"):
        fn(np.zeros((5, 2)))
