"""``Benchmark(name)``: a task wired into amortflow's simulation and configuration layers.

>>> import amortflow as af
>>> bench = af.benchmarks.Benchmark("two_moons")
>>> out = bench.generative_model(batch_size=4, rng=0)
>>> conf = bench.configurator(out)
>>> conf["parameters"].shape, conf["direct_conditions"].shape
((4, 2), (4, 2))
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from amortflow.benchmarks.base import Task
from amortflow.benchmarks.parameter_space import ParameterSpace
from amortflow.benchmarks.tasks import get_task
from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.exceptions import ArgumentError


class StandardizingPosteriorConfigurator:
    """:class:`~amortflow.configuration.DefaultPosteriorConfigurator`, then ``(x - mean) / std`` on the data.

    The benchmark's data vectors differ in scale by orders of magnitude (Lotka-Volterra up to
    10^4, SIR counts up to 1000, binary spikes); like the reference implementations of the SBI
    benchmark, networks see z-scored data. The statistics are fixed (estimated once from prior
    predictive simulations, see :meth:`from_simulations`), so training and observed data get
    the same transform. Parameters are left as they are (posterior draws stay in the task's
    units) unless a ``parameter_space`` maps them (see :class:`Benchmark`).

    Parameters
    ----------
    mean, std : np.ndarray
        Shape ``(dim_data,)``; a zero ``std`` (a constant entry) is replaced by 1.
    parameter_space : ParameterSpace, optional
        Applied to ``prior_draws`` to give ``parameters``; default: the identity.
    """

    name = "StandardizingPosteriorConfigurator"

    def __init__(self, mean: np.ndarray, std: np.ndarray, parameter_space: ParameterSpace | None = None):
        self.mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        self.std = np.where(std > 0, std, 1.0)
        self.parameter_space = parameter_space or ParameterSpace()
        self._default = DefaultPosteriorConfigurator()

    @classmethod
    def from_simulations(cls, data: np.ndarray, parameter_space: ParameterSpace | None = None) -> StandardizingPosteriorConfigurator:
        """Mean and standard deviation of ``data (n, dim_data)`` winsorized at its 1% and 99% quantiles.

        Winsorizing keeps heavy tails (``slcp_distractors`` draws Student-t noise with 2 degrees of
        freedom, whose variance is infinite) from inflating the scale. Where winsorizing leaves a
        constant (an entry that is almost always 0, like SIR's day-0 count), the raw statistics are used.
        """
        low, high = np.quantile(data, [0.01, 0.99], axis=0, method="inverted_cdf")  # clip at observed values
        clipped = np.clip(data, low, high)
        constant = clipped.std(axis=0) == 0
        mean = np.where(constant, data.mean(axis=0), clipped.mean(axis=0))
        std = np.where(constant, data.std(axis=0), clipped.std(axis=0))
        return cls(mean, std, parameter_space)

    def __call__(self, raw: Mapping) -> dict:
        out = self._default(raw)
        direct = out["direct_conditions"]
        if direct is None or direct.shape[-1] != self.mean.shape[0]:
            raise ArgumentError(
                f"{self.name}: expected 'sim_data' of shape (B, {self.mean.shape[0]}), "
                f"which gives direct_conditions of that shape; received {None if direct is None else direct.shape}."
            )
        out["direct_conditions"] = ((direct - self.mean) / self.std).astype(np.float32)
        return _map_parameters(out, raw, self.parameter_space, self.name)


def _map_parameters(out: dict, raw: Mapping, space: ParameterSpace, owner: str) -> dict:
    """``out["parameters"] = space(prior_draws)`` where there are parameters and the space is not the identity."""
    if not space.is_identity and out.get("parameters") is not None:
        out["parameters"] = space.forward(raw["prior_draws"], owner)
    return out


class ParameterSpaceConfigurator(DefaultPosteriorConfigurator):
    """:class:`~amortflow.configuration.DefaultPosteriorConfigurator` with ``g(theta)`` as parameters.

    ``g`` is a :class:`~amortflow.benchmarks.parameter_space.ParameterSpace` (``log``, ``logit``).
    """

    name = "ParameterSpaceConfigurator"

    def __init__(self, parameter_space: ParameterSpace):
        super().__init__()
        self.parameter_space = parameter_space

    def __call__(self, raw: Mapping) -> dict:
        return _map_parameters(super().__call__(raw), raw, self.parameter_space, self.name)


class LikelihoodConfigurator:
    """A posterior configurator's output renamed for likelihood estimation.

    ``direct_conditions`` (the transformed data) become ``observables`` and ``parameters``
    become ``conditions``, so both methods see the data through the same transform.
    """

    name = "LikelihoodConfigurator"

    def __init__(self, posterior_configurator):
        self.posterior_configurator = posterior_configurator

    def __call__(self, raw: Mapping) -> dict:
        out = self.posterior_configurator(raw)
        return {"observables": out["direct_conditions"], "conditions": out["parameters"]}


class Benchmark:
    """One benchmark task, ready for amortized inference.

    Parameters
    ----------
    name : str
        A task name from :data:`amortflow.benchmarks.TASK_NAMES`.
    standardize_data : bool, default True
        Z-score the data in :attr:`configurator` with statistics of ``n_pilot`` prior predictive
        simulations (seed ``seed``); ``False`` gives the plain ``DefaultPosteriorConfigurator``.
    n_pilot : int, default 10_000
    seed : int, default 0
    parameter_space : {"identity", "log", "logit"}, default "identity"
        The configurator passes ``g(theta)`` to the network, which then learns the posterior in
        that space (see :mod:`amortflow.benchmarks.parameter_space`): ``"log"`` for priors on
        positive values (Lotka-Volterra, SIR: log-normal priors, whose posteriors of rates are
        closer to Gaussian in log space), ``"logit"`` for priors on a box (uniform priors, whose
        posteriors are cut off at the box's edges). Map the network's draws back with
        :meth:`to_task_parameters`.

    Attributes
    ----------
    task : Task
        The task: prior, simulator, observations, reference posterior.
    """

    def __init__(self, name: str, *, standardize_data: bool = True, n_pilot: int = 10_000, seed: int = 0,
                 parameter_space: str = "identity"):  # fmt: skip
        self.name = name
        self.task: Task = get_task(name)
        self.standardize_data = standardize_data
        self.parameter_space = self._fitting_parameter_space(parameter_space)
        self.n_pilot = int(n_pilot)
        self.seed = int(seed)

    @functools.cached_property
    def prior(self):
        """``amortflow.simulation.Prior`` built from the task's TFP prior."""
        from amortflow.simulation import Prior

        return Prior(distribution=self.task.prior_distribution, param_names=list(self.task.param_names))

    @functools.cached_property
    def simulator(self):
        """``amortflow.simulation.Simulator`` around the task's batched numpy simulator."""
        from amortflow.simulation import Simulator

        return Simulator(batch_simulator_fun=self.task.simulate)

    @functools.cached_property
    def generative_model(self):
        """``amortflow.simulation.GenerativeModel(prior, simulator)``: raw dicts with ``sim_data (B, dim_data)``."""
        from amortflow.simulation import GenerativeModel

        return GenerativeModel(self.prior, self.simulator, name=self.name)

    @functools.cached_property
    def configurator(self):
        """Raw dict -> ``parameters``, ``direct_conditions`` (float32).

        See :class:`StandardizingPosteriorConfigurator`; the pilot simulations run on first access.
        """
        return self._posterior_configurator(dequantized_pilot=False)

    @functools.cached_property
    def likelihood_configurator(self):
        """Raw dict -> ``observables`` (the data as :attr:`configurator` transforms them) and ``conditions``
        (the parameters), float32: the inputs of an :class:`~amortflow.amortizers.AmortizedLikelihood` (NLE).

        For tasks with integer data (``task.integer_data``) the data are dequantized first (see
        :mod:`amortflow.dequantization`), and the z-score statistics are those of the
        dequantized pilot data.
        """
        if not self.task.integer_data:
            return LikelihoodConfigurator(self.configurator)
        from amortflow.dequantization import UniformDequantization

        return UniformDequantization(LikelihoodConfigurator(self._posterior_configurator(dequantized_pilot=True)), self.seed)

    def _posterior_configurator(self, dequantized_pilot: bool):
        if not self.standardize_data:
            if self.parameter_space.is_identity:
                return DefaultPosteriorConfigurator()
            return ParameterSpaceConfigurator(self.parameter_space)
        rng = np.random.default_rng(self.seed)
        data = self.task.simulate(self.task.sample_prior(self.n_pilot, rng), rng)
        if dequantized_pilot:
            data = data + rng.uniform(size=data.shape)
        return StandardizingPosteriorConfigurator.from_simulations(data, self.parameter_space)

    def _fitting_parameter_space(self, kind: str) -> ParameterSpace:
        """``ParameterSpace(kind)`` for this task's prior; ArgumentError where the prior does not fit ``kind``."""
        owner = f"Benchmark({self.name!r})"
        if kind == "log" and not self.has_positive_prior():
            raise ArgumentError(f"{owner}: parameter_space='log' needs a prior confined to positive values.")
        if kind == "logit":
            if not self.has_box_prior():
                raise ArgumentError(f"{owner}: parameter_space='logit' needs a prior on a bounded box.")
            return ParameterSpace(kind, *self.prior.support_bounds())
        return ParameterSpace(kind)

    def has_positive_prior(self) -> bool:
        """True if the prior's support lies in ``theta > 0`` (every lower bound is >= 0)."""
        bounds = self.prior.support_bounds()
        return bounds is not None and bool(np.all(bounds[0] >= 0))

    def has_box_prior(self) -> bool:
        """True if the prior's support is a finite box (every bound is finite)."""
        bounds = self.prior.support_bounds()
        return bounds is not None and bool(np.all(np.isfinite(bounds[0])) and np.all(np.isfinite(bounds[1])))

    def to_task_parameters(self, draws: np.ndarray) -> np.ndarray:
        """Network-space draws to the task's parameters: ``g^{-1}`` of :attr:`parameter_space` (the identity by default)."""
        return self.parameter_space.inverse(draws)

    def observation(self, i: int) -> np.ndarray:
        """Observation ``i`` (1-based) as one data set, ``(1, dim_data)``."""
        return self.task.observation(i)[None]

    def configured_observation(self, i: int) -> dict:
        """Observation ``i`` through :attr:`configurator` (``parameters`` is ``None``), for ``amortizer.sample``."""
        return self.configurator({"sim_data": self.observation(i)})

    def true_parameters(self, i: int) -> np.ndarray:
        """``(D,)`` parameters that generated observation ``i``."""
        return self.task.true_parameters(i)

    def reference_posterior_samples(self, i: int, n_samples: int = 10_000, rng=0, **kwargs) -> np.ndarray:
        """Reference posterior samples for observation ``i``; see :meth:`Task.reference_posterior_samples`."""
        return self.task.reference_posterior_samples(i, n_samples, rng, **kwargs)

    def __repr__(self) -> str:
        return f"Benchmark({self.name!r}, D={self.task.dim_parameters}, dim_data={self.task.dim_data})"
