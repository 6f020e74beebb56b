"""Inverse kinematics: the configurations of a robot arm that reach a given point."""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from amortflow.benchmarks.reference import ReferenceSamplingError, rejection_sample, truncated_standard_normal
from amortflow.benchmarks.tasks._priors import GaussianPriorTask

LENGTHS = (0.5, 0.5, 1.0)
PRIOR_SCALES = np.array([0.25, 0.5, 0.5, 0.5])
DEFAULT_TOLERANCE = 1e-3


def end_effector(theta: np.ndarray) -> np.ndarray:
    """``(B, 2)`` end point: (height, horizontal reach) of the arm for ``theta (B, 4)``."""
    a1 = theta[:, 1]
    a2 = a1 + theta[:, 2]
    a3 = a2 + theta[:, 3]
    l1, l2, l3 = LENGTHS
    height = theta[:, 0] + l1 * np.sin(a1) + l2 * np.sin(a2) + l3 * np.sin(a3)
    reach = l1 * np.cos(a1) + l2 * np.cos(a2) + l3 * np.cos(a3)
    return np.stack([height, reach], axis=1)


def _last_angle_intervals(a2: np.ndarray, cos_low: np.ndarray, cos_high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intervals of ``theta_4`` (in prior standard deviations) with ``cos(a2 + theta_4)`` in ``[cos_low, cos_high]``.

    That is ``|a3| in [arccos cos_high, arccos cos_low]`` (mod 2 pi) for ``a3 = a2 + theta_4``:
    two branches, each taken at three periods (``k = -1, 0, 1``; further copies lie more than
    10 prior standard deviations away). Returns ``(lower, upper)`` of shape ``(n, 6)``; an
    infeasible band gives empty intervals (``lower == upper``).
    """
    inner = np.arccos(np.clip(cos_high, -1.0, 1.0))  # 0 <= inner <= outer <= pi
    outer = np.arccos(np.clip(cos_low, -1.0, 1.0))
    lowers, uppers = [], []
    for k in (-1, 0, 1):
        shift = 2 * math.pi * k - a2
        lowers += [inner + shift, -outer + shift]
        uppers += [outer + shift, -inner + shift]
    return np.stack(lowers, axis=1) / PRIOR_SCALES[3], np.stack(uppers, axis=1) / PRIOR_SCALES[3]


class InverseKinematics(GaussianPriorTask):
    """Inverse kinematics (Kruse et al., 2021, "Benchmarking invertible architectures on inverse problems").

    Not part of sbibm. An arm slides along a vertical rail to height ``theta_1`` and has three
    segments of lengths 0.5, 0.5, 1.0 with joint angles ``theta_2, theta_3, theta_4``;
    ``theta ~ N(0, diag(1/16, 1/4, 1/4, 1/4))``. The data are the end point
    ``x = (theta_1 + sum_j l_j sin(phi_j), sum_j l_j cos(phi_j))``, ``phi_j = theta_2 + .. + theta_{j+1}``,
    without noise, so the posterior lives on the 2-D surface ``{theta : f(theta) = x}``.

    Reference: the limit of conditioning on ``f(theta)`` near ``x`` (Kruse et al. use rejection
    within an eps-ball), drawn by exact rejection sampling:

    1. ``theta_2, theta_3`` from the prior; the ``theta_4`` whose reach lies within ``tolerance``
       (default 1e-3) of ``x_2`` form a few intervals with prior mass ``m``; accept with
       probability ``m / M``, ``M`` an upper bound of ``m`` (the widest possible intervals at the
       prior mode), then draw ``theta_4`` from the prior restricted to the intervals.
    2. ``theta_1 = x_1 - sum_j l_j sin(phi_j)`` matches the height exactly (unit Jacobian);
       accept with probability ``N(theta_1; 0, 1/16) / N(0; 0, 1/16)``.

    Pass ``sampler_options={"tolerance": ...}`` to change the tolerance. No likelihood density.
    """

    name = "inverse_kinematics"
    dim_parameters = 4
    dim_data = 2
    param_names = ("height", "angle_1", "angle_2", "angle_3")
    prior_mean = np.zeros(4)
    prior_covariance = np.diag(PRIOR_SCALES**2)
    cache_reference = True

    def _simulate(self, theta, rng):
        return end_effector(theta)

    def _reference(self, observation, n_samples, rng, tolerance: float = DEFAULT_TOLERANCE, **options):
        l1, l2, l3 = LENGTHS
        # The reach band has width 2 tol / l3 in cos(a3); arccos is steepest at +-1, so one branch
        # spans at most arccos(1 - 2 tol / l3) radians, both together twice that.
        max_mass = 2 * math.acos(1 - 2 * tolerance / l3) / (PRIOR_SCALES[3] * math.sqrt(2 * math.pi)) * (1 + 1e-6)

        def propose(n, rng):
            angles = rng.standard_normal((n, 2)) * PRIOR_SCALES[1:3]
            a2 = angles[:, 0] + angles[:, 1]
            rest = observation[1] - l1 * np.cos(angles[:, 0]) - l2 * np.cos(a2)
            lower, upper = _last_angle_intervals(a2, (rest - tolerance) / l3, (rest + tolerance) / l3)
            masses = np.maximum(special.ndtr(upper) - special.ndtr(lower), 0.0)  # (n, 6)
            mass = masses.sum(axis=1)
            if np.any(mass > max_mass):  # cannot happen by the bound above; guards the sampler's exactness
                raise ReferenceSamplingError(f"interval mass {mass.max():.3g} exceeds its bound {max_mass:.3g}")
            keep = rng.uniform(size=n) * max_mass < mass  # step 1, before the costlier step 2
            angles, a2, lower, upper, masses = angles[keep], a2[keep], lower[keep], upper[keep], masses[keep]
            # an interval with probability proportional to its mass, then theta_4 inside it
            cumulative = np.cumsum(masses, axis=1)
            pick = np.minimum((rng.uniform(size=(len(angles), 1)) * cumulative[:, -1:] > cumulative).sum(axis=1), 5)
            rows = np.arange(len(angles))
            theta4 = PRIOR_SCALES[3] * truncated_standard_normal(lower[rows, pick], upper[rows, pick], rng)
            theta = np.concatenate([np.zeros((len(angles), 1)), angles, theta4[:, None]], axis=1)
            theta[:, 0] = observation[0] - end_effector(theta)[:, 0]  # exact height: step 2
            return theta, -0.5 * (theta[:, 0] / PRIOR_SCALES[0]) ** 2

        result = rejection_sample(propose, n_samples, rng, **{"batch_size": 100_000, **options})
        result.diagnostics["tolerance"] = tolerance
        return result
