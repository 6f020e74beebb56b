"""The prior of a two-level (hierarchical) model: hyperparameters, then one local parameter vector per group.

``eta ~ p(eta)`` (hyperparameters, ``(B, H)``), ``theta_g ~ p(theta | eta)`` for ``g = 1..G``
(local parameters, ``(B, G, L)``) and optionally ``phi ~ p(phi)`` (shared parameters, ``(B, S)``,
used by every group's simulator but not drawn from ``eta``). The number of groups ``G`` is the
prior's non-batchable context: one value per batch (a batch must be rectangular), drawn anew
for every batch when ``num_groups`` is a function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from amortflow._checks import positive_int, shaped_array
from amortflow.exceptions import ArgumentError, SimulationError
from amortflow.simulation import tfp_prior
from amortflow.simulation.context import ContextGenerator
from amortflow.simulation.prior import Prior, check_batch_size
from amortflow.simulation.validation import SeedLike, UserFunction, resolve_rng


class _FixedCount:
    """A non-batchable context function returning one fixed number of groups (takes ``rng``: no global state)."""

    def __init__(self, value: int):
        self.value = value

    def __call__(self, rng=None) -> int:
        return self.value


def _as_prior(prior: Any, role: str) -> Prior:
    if isinstance(prior, Prior):
        return prior
    if tfp_prior.is_distribution(prior):
        return Prior(distribution=prior)
    if callable(prior):
        return Prior(batch_prior_fun=prior)
    raise ArgumentError(
        f"TwoLevelPrior({role}=...) must be a Prior, a TFP distribution or a batched callable "
        f"f(batch_size, rng=) -> (B, D); received {type(prior).__name__}."
    )


def check_num_groups(value: Any) -> int:
    """``value`` as an int >= 1, or an :class:`ArgumentError`."""
    return positive_int("num_groups", value)


class TwoLevelPrior:
    """Draws hyperparameters ``(B, H)``, ``G`` local parameter vectors per data set ``(B, G, L)`` and shared ones ``(B, S)``.

    Parameters
    ----------
    hyper_prior : Prior, TFP distribution or callable
        The hyperprior ``p(eta)``; a callable is ``f(batch_size, rng=) -> (B, H)``.
    local_prior : callable
        ``local_prior(eta (B, H), num_groups, rng=) -> (B, G, L)`` (or ``(B, G)`` for one local
        parameter): the group-level parameters given the hyperparameters.
    shared_prior : Prior, TFP distribution or callable, optional
        Parameters ``(B, S)`` shared by all groups and independent of ``eta``.
    num_groups : int or callable, default 10
        ``G``, or a function ``f(rng=) -> int`` called once per batch (so ``G`` varies between batches).
    local_param_names : sequence of str, optional
        Names of the ``L`` local parameters (default ``theta_1..theta_L``).

    Examples
    --------
    >>> prior = TwoLevelPrior(lambda b, rng: rng.normal(size=(b, 1)),
    ...                       lambda eta, g, rng: eta[:, None, :] + 0.5 * rng.normal(size=(len(eta), g, 1)),
    ...                       num_groups=lambda rng: int(rng.integers(3, 8)))
    >>> out = prior(4, rng=0)
    >>> out["hyper_prior_draws"].shape, out["local_prior_draws"].shape[::2]
    ((4, 1), (4, 1))
    """

    def __init__(
        self,
        hyper_prior: Prior | Callable | Any,
        local_prior: Callable,
        shared_prior: Prior | Callable | Any | None = None,
        *,
        num_groups: int | Callable = 10,
        local_param_names: list[str] | None = None,
    ):
        self.hyper_prior = _as_prior(hyper_prior, "hyper_prior")
        self.shared_prior = None if shared_prior is None else _as_prior(shared_prior, "shared_prior")
        if not callable(local_prior):
            raise ArgumentError(
                "TwoLevelPrior(local_prior=...) must be a callable local_prior(eta, num_groups, rng=) -> (B, G, L), "
                f"received {type(local_prior).__name__}."
            )
        self._local = UserFunction(local_prior, "local_prior")
        count = num_groups if callable(num_groups) else _FixedCount(check_num_groups(num_groups))
        self.context_generator = ContextGenerator(non_batchable_context_fun=count)
        self.local_param_names = None if local_param_names is None else [str(n) for n in local_param_names]

    @property
    def uses_global_rng(self) -> bool:
        """True if some function draws from NumPy's global state instead of an ``rng`` keyword."""
        priors = [p for p in (self.hyper_prior, self.shared_prior) if p is not None]
        return (any(p.uses_global_rng for p in priors) or not self._local.takes_rng
                or self.context_generator.uses_global_rng)  # fmt: skip

    def draw_num_groups(self, rng: SeedLike = None) -> int:
        """One number of groups ``G`` for a batch."""
        return check_num_groups(self.context_generator.non_batchable_context(rng))

    def __call__(self, batch_size: int, rng: SeedLike = None, *, num_groups: int | None = None) -> dict:
        """Draw a batch.

        Parameters
        ----------
        batch_size : int
            Number of data sets ``B``.
        rng : numpy.random.Generator or int, optional
        num_groups : int, optional
            Use this ``G`` instead of drawing one.

        Returns
        -------
        dict
            ``hyper_prior_draws (B, H)``, ``local_prior_draws (B, G, L)``, ``shared_prior_draws (B, S)``
            or None, and ``num_groups`` (int).
        """
        batch_size = check_batch_size(batch_size)
        rng = resolve_rng(rng)
        groups = self.draw_num_groups(rng) if num_groups is None else check_num_groups(num_groups)
        eta = self.hyper_prior(batch_size, rng)["prior_draws"]
        local = self._draw_local(eta, groups, rng)
        shared = None if self.shared_prior is None else self.shared_prior(batch_size, rng)["prior_draws"]
        return {"hyper_prior_draws": eta, "local_prior_draws": local, "shared_prior_draws": shared,
                "num_groups": groups}  # fmt: skip

    def _draw_local(self, eta: np.ndarray, groups: int, rng: np.random.Generator) -> np.ndarray:
        value = self._local(eta, groups, rng=rng, during=f"while drawing {groups} local parameter vectors per data set")
        return shaped_array(value, f"{self._local.label} returned 'local_prior_draws', which", rank=3,
                            leading=(len(eta), groups), error=SimulationError,
                            expected=f"({len(eta)}, {groups}, L) (or ({len(eta)}, {groups}) for one parameter)")  # fmt: skip

    def __repr__(self) -> str:
        return f"TwoLevelPrior(hyper={self.hyper_prior!r}, local={self._local.label}, shared={self.shared_prior!r})"
