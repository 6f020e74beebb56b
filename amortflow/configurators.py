"""Configurators beyond the defaults of :mod:`amortflow.configuration`: standardized data, data sets, parameter spaces, likelihoods.

* :class:`StandardizingPosteriorConfigurator` - the default posterior configurator, then the
  data z-scored with fixed (e.g. pilot-simulation) statistics;
* :class:`SetDataConfigurator` - i.i.d. draws of a flat data vector as a set for a summary network;
* :class:`ParameterSpaceConfigurator` - parameters mapped to an unconstrained space
  (:class:`~amortflow.parameter_space.ParameterSpace`: ``log``, ``logit``);
* :class:`LikelihoodConfigurator` - a posterior configurator's output renamed for likelihood estimation.

The SBI benchmark (:class:`~amortflow.benchmarks.Benchmark`) builds its configurators from these.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from amortflow.configuration import DefaultPosteriorConfigurator
from amortflow.exceptions import ArgumentError
from amortflow.parameter_space import ParameterSpace

__all__ = [
    "LikelihoodConfigurator",
    "ParameterSpaceConfigurator",
    "SetDataConfigurator",
    "StandardizingPosteriorConfigurator",
    "winsorized_mean_std",
]


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

    ``g`` is a :class:`~amortflow.parameter_space.ParameterSpace` (``log``, ``logit``).
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
