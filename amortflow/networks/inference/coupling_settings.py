"""Turn a coupling design and the user's ``coupling_settings`` into concrete coupling layers.

``coupling_settings`` is merged over :data:`amortflow.defaults.DEFAULT_AFFINE_COUPLING` or
:data:`amortflow.defaults.DEFAULT_SPLINE_COUPLING`. For ``coupling_design="interleaved"`` it may be
``{"affine": {...}, "spline": {...}}`` (one dict per design) or one flat dict whose keys go to
every design that knows them (``bins`` only to splines, ``soft_clamping`` only to affine layers).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amortflow.defaults import DEFAULT_AFFINE_COUPLING, DEFAULT_SPLINE_COUPLING, merge_settings
from amortflow._checks import check_choice
from amortflow.exceptions import ArgumentError
from amortflow.networks.inference.coupling import Coupling
from amortflow.networks.inference.mlp import ConditionerMLP
from amortflow.networks.inference.transforms import AffineTransform, RationalQuadraticSpline

COUPLING_DESIGNS = ("auto", "affine", "spline", "interleaved")
_DEFAULTS = {"affine": DEFAULT_AFFINE_COUPLING, "spline": DEFAULT_SPLINE_COUPLING}
_CONDITIONER_KEYS = ("dense_args", "num_dense", "dropout", "dropout_prob", "residual")


def resolve_coupling_settings(design: str, settings: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return ``{"affine": merged, "spline": merged}`` restricted to the designs that ``design`` uses.

    Raises
    ------
    ArgumentError
        For an unknown design or a key that no used design understands.
    """
    check_choice("coupling_design", design, COUPLING_DESIGNS)
    # "auto" becomes "affine" or "spline" once the prior's support is known, so its settings are
    # checked and merged for both, as for "interleaved".
    designs = ("affine", "spline") if design in ("interleaved", "auto") else (design,)
    settings = dict(settings or {})
    if design in ("interleaved", "auto") and settings and set(settings) <= set(designs):
        per_design = {name: settings.get(name) for name in designs}
    else:
        known = set().union(*(_DEFAULTS[name] for name in designs))
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ArgumentError(
                f"coupling_settings for coupling_design={design!r} received unknown key(s) {unknown}; "
                f"expected keys among {sorted(known)}."
            )
        per_design = {name: {k: v for k, v in settings.items() if k in _DEFAULTS[name]} for name in designs}
    resolved = {}
    for name in designs:
        unknown = sorted(set(per_design[name] or {}) - set(_DEFAULTS[name]))
        if unknown:
            raise ArgumentError(
                f"coupling_settings[{name!r}] received unknown key(s) {unknown}; "
                f"expected keys among {sorted(_DEFAULTS[name])}."
            )
        resolved[name] = merge_settings(_DEFAULTS[name], per_design[name])
    return resolved


def make_transform(design: str, settings: Mapping[str, Any]):
    """The pure transform of one design with its merged settings."""
    if design == "affine":
        return AffineTransform(soft_clamping=settings["soft_clamping"])
    return RationalQuadraticSpline(bins=settings["bins"], default_domain=settings["default_domain"])


def make_coupling_pair(
    design: str, settings: Mapping[str, Any], num_params: int, name: str, dtype=None
) -> list[Coupling]:
    """Two couplings that together transform every dimension once.

    The first transforms ``x[:, d1:]`` given ``x[:, :d1]`` with ``d1 = D // 2``; the second
    transforms ``x[:, :d1]`` given the (updated) rest. For ``D = 1`` both transform the single
    dimension, conditioned on the condition only.
    """
    split = num_params // 2
    parts = ("second", "first") if num_params > 1 else ("second", "second")
    couplings = []
    for index, part in enumerate(parts):
        transform = make_transform(design, settings)
        transformed_dims = num_params - split if part == "second" else split
        conditioner = ConditionerMLP(
            output_dim=transformed_dims * transform.params_per_dim,
            **{key: settings[key] for key in _CONDITIONER_KEYS},
            name=f"{name}_conditioner_{index}",
            dtype=dtype,
        )
        couplings.append(
            Coupling(transform, conditioner, split=split, transformed_part=part, name=f"{name}_{index}", dtype=dtype)
        )
    return couplings
