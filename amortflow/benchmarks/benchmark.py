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


#: How :attr:`Benchmark.configurator` passes the data to the networks.
DATA_LAYOUTS = ("vector", "set")


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
        return cls(*winsorized_mean_std(data), parameter_space)

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


def winsorized_mean_std(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation of ``data (n, k)`` clipped to its 1% and 99% quantiles.

    Where clipping leaves a column constant, that column's raw statistics are returned instead.
    """
    low, high = np.quantile(data, [0.01, 0.99], axis=0, method="inverted_cdf")  # clip at observed values
    clipped = np.clip(data, low, high)
    constant = clipped.std(axis=0) == 0
    mean = np.where(constant, data.mean(axis=0), clipped.mean(axis=0))
    std = np.where(constant, data.std(axis=0), clipped.std(axis=0))
    return mean, std


class SetDataConfigurator:
    """Data of ``n`` exchangeable draws (``Task.exchangeable_draws = (n, d)``) as a set for a summary network.

    The flat ``sim_data (B, n * d)`` leaves as ``summary_conditions (B, n, d)``, each coordinate
    z-scored with statistics pooled over the draws, so that permuting the draws permutes the rows
    of the set and nothing else (a permutation-invariant summary network, e.g.
    :class:`~amortflow.networks.DeepSet`, then gives the same summary); ``direct_conditions`` is
    None. Parameters as in :class:`StandardizingPosteriorConfigurator`.

    Parameters
    ----------
    set_shape : (int, int)
        ``(n, d)``.
    mean, std : np.ndarray, optional
        Shape ``(d,)``; default 0 and 1 (no standardization). A zero ``std`` is replaced by 1.
    parameter_space : ParameterSpace, optional

    Examples
    --------
    >>> conf = SetDataConfigurator((2, 1), mean=np.array([1.0]), std=np.array([2.0]))
    >>> conf({"prior_draws": np.zeros((1, 3)), "sim_data": np.array([[3.0, -1.0]])})["summary_conditions"].tolist()
    [[[1.0], [-1.0]]]
    """

    name = "SetDataConfigurator"

    def __init__(self, set_shape: tuple[int, int], mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 parameter_space: ParameterSpace | None = None):  # fmt: skip
        self.set_shape = tuple(int(v) for v in set_shape)
        dim = self.set_shape[1]
        self.mean = np.zeros(dim) if mean is None else np.asarray(mean, dtype=np.float64)
        std = np.ones(dim) if std is None else np.asarray(std, dtype=np.float64)
        if self.mean.shape != (dim,) or std.shape != (dim,):
            raise ArgumentError(f"{self.name}: mean and std must have shape ({dim},); received {self.mean.shape} and {std.shape}.")
        self.std = np.where(std > 0, std, 1.0)
        self.parameter_space = parameter_space or ParameterSpace()
        self._default = DefaultPosteriorConfigurator()

    @classmethod
    def from_simulations(cls, data: np.ndarray, set_shape: tuple[int, int],
                         parameter_space: ParameterSpace | None = None) -> SetDataConfigurator:  # fmt: skip
        """Statistics of ``data (N, n * d)`` pooled over its ``N * n`` draws, winsorized like
        :meth:`StandardizingPosteriorConfigurator.from_simulations`."""
        return cls(set_shape, *winsorized_mean_std(np.asarray(data).reshape(-1, int(set_shape[1]))), parameter_space)

    def __call__(self, raw: Mapping) -> dict:
        out = self._default(raw)
        direct, (n, d) = out["direct_conditions"], self.set_shape
        if direct is None or direct.ndim != 2 or direct.shape[-1] != n * d:
            raise ArgumentError(
                f"{self.name}: expected 'sim_data' of shape (B, {n * d}) ({n} draws of {d} values); "
                f"received {None if direct is None else direct.shape}."
            )
        out["summary_conditions"] = ((direct.reshape(-1, n, d) - self.mean) / self.std).astype(np.float32)
        out["direct_conditions"] = None
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
                 parameter_space: str = "identity", data_layout: str = "vector"):  # fmt: skip
        self.name = name
        self.task: Task = get_task(name)
        self.data_layout = self._fitting_data_layout(data_layout)
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
        """Raw dict -> ``parameters``, ``direct_conditions`` (float32); with ``data_layout="set"``
        ``summary_conditions`` instead of ``direct_conditions``.

        See :class:`StandardizingPosteriorConfigurator` and :class:`SetDataConfigurator`; the pilot
        simulations run on first access.
        """
        if self.data_layout == "set":
            return self._set_configurator()
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
            vector = self.configurator if self.data_layout == "vector" else self._posterior_configurator(False)
            return LikelihoodConfigurator(vector)
        from amortflow.dequantization import UniformDequantization

        return UniformDequantization(LikelihoodConfigurator(self._posterior_configurator(dequantized_pilot=True)), self.seed)

    def _posterior_configurator(self, dequantized_pilot: bool):
        if not self.standardize_data:
            if self.parameter_space.is_identity:
                return DefaultPosteriorConfigurator()
            return ParameterSpaceConfigurator(self.parameter_space)
        return StandardizingPosteriorConfigurator.from_simulations(self._pilot_data(dequantized_pilot), self.parameter_space)

    def _set_configurator(self) -> SetDataConfigurator:
        set_shape = self.task.exchangeable_draws
        if not self.standardize_data:
            return SetDataConfigurator(set_shape, parameter_space=self.parameter_space)
        return SetDataConfigurator.from_simulations(self._pilot_data(), set_shape, self.parameter_space)

    def _pilot_data(self, dequantized: bool = False) -> np.ndarray:
        """``n_pilot`` prior predictive data sets (seed ``seed``), for the z-score statistics;
        ``dequantized`` adds ``U(0, 1)`` noise (from the same generator, after the simulations)."""
        rng = np.random.default_rng(self.seed)
        data = self.task.simulate(self.task.sample_prior(self.n_pilot, rng), rng)
        return data + rng.uniform(size=data.shape) if dequantized else data

    def _fitting_data_layout(self, layout: str) -> str:
        if layout not in DATA_LAYOUTS:
            raise ArgumentError(f"data_layout must be one of {DATA_LAYOUTS}, received {layout!r}.")
        if layout == "set" and self.task.exchangeable_draws is None:
            raise ArgumentError(
                f"Benchmark({self.name!r}): data_layout='set' needs data made of exchangeable draws "
                f"(task.exchangeable_draws); this task's data vector is not."
            )
        return layout

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
