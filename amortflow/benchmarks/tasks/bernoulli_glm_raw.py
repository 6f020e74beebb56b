"""Bernoulli GLM with the raw spike train as data."""

from __future__ import annotations

import numpy as np

from amortflow.benchmarks.tasks.bernoulli_glm import N_BINS, BernoulliGLM, design_matrix


class BernoulliGLMRaw(BernoulliGLM):
    """:class:`BernoulliGLM` whose data are the 100 binary spike bins themselves.

    Observation ``i`` is the spike train behind ``bernoulli_glm``'s observation ``i`` (same
    seeds); both share the reference posterior, since ``X^T y`` is sufficient.
    """

    name = "bernoulli_glm_raw"
    dim_data = N_BINS
    integer_data = True

    def _simulate(self, theta, rng):
        return self._spikes(theta, rng)

    def sufficient_statistics(self, observation):
        return np.asarray(observation, dtype=float).reshape(N_BINS) @ design_matrix()
