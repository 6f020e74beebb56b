"""The :class:`Task` base class of the SBI benchmark tasks.

A task is a prior, a batched simulator and, for ten fixed observations, a way to draw
*reference* posterior samples against which trained networks are scored (C2ST).
The tasks follow Lueckmann et al. (2021), "Benchmarking Simulation-Based Inference",
AISTATS; see each task's docstring for the model.

The original benchmark (``sbibm``) ships its observations and reference samples as files.
amortflow cannot download them, so each task generates its ten observations from fixed
seeds instead: same models, different observations - figures are comparable in
distribution to the paper's, not observation by observation.
"""

from __future__ import annotations

import abc
import functools
import logging
import time
import zlib
from typing import ClassVar

import numpy as np

from amortflow.benchmarks import cache
from amortflow.benchmarks.reference import SamplerResult
from amortflow.exceptions import ArgumentError, ShapeError, describe_shape
from amortflow.utils import as_generator

logger = logging.getLogger("amortflow")

#: Root seed of the observations: observation ``i`` of task ``name`` uses
#: ``numpy.random.default_rng([OBSERVATION_SEED, crc32(name), i])``.
OBSERVATION_SEED = 20210413


def tfd():
    """``tfp.distributions``, imported on first use (TFP takes seconds to import)."""
    import tensorflow_probability as tfp

    return tfp.distributions


class Task(abc.ABC):
    """One benchmark task: prior, batched simulator, observations and reference posterior.

    Subclasses set the class attributes and implement :meth:`_make_prior_distribution`,
    :meth:`sample_prior`, :meth:`log_prior`, :meth:`_simulate` and :meth:`_reference`.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"two_moons"``.
    dim_parameters, dim_data : int
        ``D`` and the length of one flat data vector.
    param_names : tuple of str
        Names of the ``D`` parameters.
    num_observations : int
        Observations are numbered ``1 .. num_observations`` (10, as in the paper).
    reference_version : int
        Bumped whenever the reference sampler changes; part of the cache key.
    cache_reference : bool
        Whether reference samples are cached on disk (tasks whose sampler is slow).
    integer_data : bool
        Whether every data entry is integer-valued (counts, binary bins); likelihood flows then
        train on dequantized data (see :mod:`amortflow.dequantization`).
    exchangeable_draws : (int, int) or None
        ``(n, d)`` when one data vector is ``n`` independent draws of a ``d``-vector stored draw
        after draw (``x.reshape(n, d)``), so that its order carries no information; a
        :class:`~amortflow.benchmarks.Benchmark` with ``data_layout="set"`` then passes it to a
        summary network as a set. None for every other layout.
    """

    name: ClassVar[str]
    dim_parameters: ClassVar[int]
    dim_data: ClassVar[int]
    param_names: ClassVar[tuple[str, ...]]
    num_observations: ClassVar[int] = 10
    reference_version: ClassVar[int] = 1
    cache_reference: ClassVar[bool] = False
    integer_data: ClassVar[bool] = False
    exchangeable_draws: ClassVar[tuple[int, int] | None] = None
    #: Tasks that share another task's true parameters (e.g. ``slcp_distractors`` and ``slcp``)
    #: name it here; their observations then use that task's seeds.
    observation_seed_name: ClassVar[str | None] = None

    def __init__(self) -> None:
        self._observations: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: Diagnostics of the last reference sampling run (acceptance rate, R-hat, seconds, ...).
        self.last_reference_diagnostics: dict | None = None

    # --- prior --------------------------------------------------------------------------
    @functools.cached_property
    def prior_distribution(self):
        """The prior as a TFP distribution (float32) with ``event_shape (D,)``."""
        return self._make_prior_distribution()

    @abc.abstractmethod
    def _make_prior_distribution(self):
        """Build the TFP prior (float32, ``event_shape (D,)``)."""

    @abc.abstractmethod
    def sample_prior(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """``(n, D)`` prior draws in numpy (float64); same law as :attr:`prior_distribution`."""

    @abc.abstractmethod
    def log_prior(self, theta: np.ndarray) -> np.ndarray:
        """``(B,)`` log prior density of ``theta (B, D)`` in numpy; ``-inf`` outside the support."""

    # --- simulator ------------------------------------------------------------------------
    def simulate(self, theta: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Simulate one data vector per parameter vector.

        Parameters
        ----------
        theta : np.ndarray
            Parameters of shape ``(B, D)``.
        rng : numpy.random.Generator or int, optional
            Randomness; the same seed gives the same data.

        Returns
        -------
        np.ndarray
            Data of shape ``(B, dim_data)``, float64.
        """
        theta = np.asarray(theta, dtype=float)
        if theta.ndim != 2 or theta.shape[1] != self.dim_parameters:
            raise ShapeError(
                f"{self.name}.simulate expected theta of shape (B, {self.dim_parameters}), "
                f"received {describe_shape(theta)}."
            )
        return self._simulate(theta, as_generator(rng))

    @abc.abstractmethod
    def _simulate(self, theta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Batched simulator on validated ``theta (B, D)``."""

    def log_likelihood(self, theta: np.ndarray, observation: np.ndarray) -> np.ndarray:
        """``(B,)`` log-likelihood ``log p(observation | theta)`` of ``theta (B, D)``, where the task has one.

        Exact, except where a task's docstring says "up to a term constant in theta" (which
        leaves the posterior unchanged).

        Raises
        ------
        NotImplementedError
            For tasks without a tractable likelihood density (e.g. deterministic simulators).
        """
        raise NotImplementedError(f"{self.name} has no tractable likelihood density.")

    # --- observations ---------------------------------------------------------------------
    def _check_index(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 1 <= i <= self.num_observations:
            raise ArgumentError(
                f"{self.name}: observation numbers run from 1 to {self.num_observations}, received {i!r}."
            )
        return int(i)

    def observation_rng(self, i: int) -> np.random.Generator:
        """The generator that draws observation ``i``'s true parameters and data."""
        seed_name = self.observation_seed_name or self.name
        return np.random.default_rng([OBSERVATION_SEED, zlib.crc32(seed_name.encode()), self._check_index(i)])

    def _make_observation(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(theta_true (D,), x_obs (dim_data,))`` of observation ``i``; overridden by derived tasks."""
        rng = self.observation_rng(i)
        theta = self.sample_prior(1, rng)
        return theta[0], self.simulate(theta, rng)[0]

    def _observation_pair(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        i = self._check_index(i)
        if i not in self._observations:
            self._observations[i] = self._make_observation(i)
        theta, x = self._observations[i]
        return theta.copy(), x.copy()

    def true_parameters(self, i: int) -> np.ndarray:
        """``(D,)`` parameters that generated observation ``i`` (1-based)."""
        return self._observation_pair(i)[0]

    def observation(self, i: int) -> np.ndarray:
        """``(dim_data,)`` observation ``i`` (1-based), identical on every call and machine."""
        return self._observation_pair(i)[1]

    def _as_observation(self, observation: int | np.ndarray) -> np.ndarray:
        if isinstance(observation, (int, np.integer)) and not isinstance(observation, bool):
            return self.observation(observation)
        x = np.asarray(observation, dtype=float)
        if x.shape not in ((self.dim_data,), (1, self.dim_data)):
            raise ShapeError(
                f"{self.name}: an observation must have shape ({self.dim_data},) or (1, {self.dim_data}), "
                f"received {describe_shape(x)}."
            )
        return x.reshape(self.dim_data)

    # --- reference posterior ----------------------------------------------------------------
    def reference_posterior_samples(
        self,
        observation: int | np.ndarray,
        n_samples: int = 10_000,
        rng: np.random.Generator | int | None = 0,
        *,
        cache_samples: bool | None = None,
        sampler_options: dict | None = None,
    ) -> np.ndarray:
        """Draw samples from the exact (reference) posterior ``p(theta | observation)``.

        Parameters
        ----------
        observation : int or np.ndarray
            An observation number ``1 .. num_observations`` or a data vector ``(dim_data,)``.
        n_samples : int, default 10_000
            Number of samples (10,000 in the paper).
        rng : numpy.random.Generator, int or None, default 0
            Randomness. With an int seed the result is reproducible and may be cached.
        cache_samples : bool, optional
            Read/write the on-disk cache (see :mod:`amortflow.benchmarks.cache`); default
            :attr:`cache_reference`. Only used with an int ``rng``.
        sampler_options : dict, optional
            Passed to the task's sampler (e.g. ``n_particles``, ``n_chains`` for MCMC tasks).

        Returns
        -------
        np.ndarray
            ``(n_samples, D)`` samples. Diagnostics land in :attr:`last_reference_diagnostics`.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ArgumentError(f"n_samples must be a positive integer, received {n_samples!r}.")
        x = self._as_observation(observation)
        options = dict(sampler_options or {})
        use_cache = self.cache_reference if cache_samples is None else cache_samples
        path = None
        if use_cache and isinstance(rng, (int, np.integer)):
            key = observation if isinstance(observation, (int, np.integer)) else x
            path = cache.cache_path(self.name, key, int(n_samples), int(rng), self.reference_version, options)
        if path is not None and (hit := cache.load(path)) is not None:
            self.last_reference_diagnostics = {**hit[1], "cached": str(path)}
            return hit[0]
        start = time.perf_counter()
        result: SamplerResult = self._reference(x, int(n_samples), as_generator(rng), **options)
        seconds = time.perf_counter() - start
        self.last_reference_diagnostics = {**result.diagnostics, "seconds": seconds}
        method = result.diagnostics.get("method")
        logger.info("%s: %d reference samples in %.1f s (%s)", self.name, n_samples, seconds, method)
        samples = np.asarray(result.samples, dtype=float)
        if path is not None:
            cache.save(path, samples, self.last_reference_diagnostics)
        return samples

    @abc.abstractmethod
    def _reference(self, observation: np.ndarray, n_samples: int, rng: np.random.Generator, **options) -> SamplerResult:
        """Reference samples for the validated observation ``(dim_data,)``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, D={self.dim_parameters}, dim_data={self.dim_data})"
