"""The space in which a flow learns a posterior: the parameters, their logs, or their logits.

A normalizing flow puts mass on all of ``R^D``. Where the prior confines ``theta`` (positive
rates, a box), the posterior has a hard edge that a flow can only approximate, and draws
outside the support have to be rejected. Learning the posterior of an unbounded transform
``z = g(theta)`` instead removes the edge; draws map back with ``g^{-1}`` and always lie
inside the support:

* ``"identity"``: ``z = theta``;
* ``"log"``: ``z = log theta``, for priors on ``theta > 0`` (log-normal, gamma);
* ``"logit"``: ``z = log(u) - log(1 - u)``, ``u = (theta - low) / (high - low)``, for priors on
  a box ``[low, high]`` (uniform).

The change of variables leaves C2ST against reference draws of ``theta`` unaffected: the
flow's draws are mapped back to ``theta`` before scoring.
"""

from __future__ import annotations

import numpy as np

from amortflow.exceptions import ArgumentError

PARAMETER_SPACES = ("identity", "log", "logit")

#: ``u`` is kept in ``[EDGE, 1 - EDGE]`` before the logit, so that a prior draw on the box's
#: edge (possible in floating point) gives a large finite ``z`` (about +-16) instead of inf.
EDGE = 1e-7


class ParameterSpace:
    """A bijection ``g`` between a task's parameters and the space the flow learns in.

    Parameters
    ----------
    kind : {"identity", "log", "logit"}
    low, high : array of shape (D,), optional
        The prior's box, needed for ``"logit"`` (finite on every side).

    Examples
    --------
    >>> space = ParameterSpace("logit", low=np.array([-1.0]), high=np.array([1.0]))
    >>> z = space.forward(np.array([[0.0], [0.5]]))
    >>> np.round(z.astype(float), 4).tolist(), np.round(space.inverse(z), 4).tolist()
    ([[0.0], [1.0986]], [[0.0], [0.5]])
    """

    def __init__(self, kind: str = "identity", low=None, high=None):
        if kind not in PARAMETER_SPACES:
            raise ArgumentError(f"parameter_space must be one of {PARAMETER_SPACES}, received {kind!r}.")
        self.kind = kind
        self.low = self.high = None
        if kind == "logit":
            if low is None or high is None:
                raise ArgumentError("parameter_space='logit' needs the prior's box (low and high).")
            self.low, self.high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
            if not (np.all(np.isfinite(self.low)) and np.all(np.isfinite(self.high)) and np.all(self.high > self.low)):
                raise ArgumentError(f"parameter_space='logit' needs a finite box with high > low; received {low!r}, {high!r}.")

    @property
    def is_identity(self) -> bool:
        return self.kind == "identity"

    def forward(self, theta, owner: str = "ParameterSpace") -> np.ndarray:
        """``z = g(theta)`` as float32, computed in float64; a ``theta`` outside the support raises ArgumentError."""
        theta = np.asarray(theta, dtype=np.float64)
        if self.kind == "log":
            if not np.all(theta > 0):
                raise ArgumentError(f"{owner}: parameter_space='log' needs positive parameters; received a minimum of {theta.min()!r}.")
            return np.log(theta).astype(np.float32)
        if self.kind == "logit":
            if not np.all((theta >= self.low) & (theta <= self.high)):
                raise ArgumentError(f"{owner}: parameter_space='logit' needs parameters inside [{self.low}, {self.high}].")
            u = np.clip((theta - self.low) / (self.high - self.low), EDGE, 1.0 - EDGE)
            return (np.log(u) - np.log1p(-u)).astype(np.float32)
        return theta.astype(np.float32)

    def inverse(self, z) -> np.ndarray:
        """``theta = g^{-1}(z)`` in float64 (``exp``, or ``low + (high - low) * sigmoid(z)``)."""
        z = np.asarray(z, dtype=np.float64)
        if self.kind == "log":
            return np.exp(z)
        if self.kind == "logit":
            # sigmoid via tanh: no overflow for large |z|
            return self.low + (self.high - self.low) * 0.5 * (1.0 + np.tanh(0.5 * z))
        return z

    def __repr__(self) -> str:
        return f"ParameterSpace({self.kind!r})"
