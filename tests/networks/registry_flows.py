"""Registry entries for the coupling flows (:class:`InvertibleNetwork`).

A representative set of designs x permutations x ActNorm, each with tiny conditioners
(2 x 16 units) and one coupling layer (two for "interleaved") so the contract suite stays
fast; together they cover every coupling design, every permutation, ActNorm on/off and with
a data-dependent start, SoftFlow, dropout, residual conditioners and a regularizer object.
Factories take ``(num_params, condition_dim)`` and return an unbuilt network.
"""

from __future__ import annotations

import keras
import numpy as np

from amortflow.networks.inference import InvertibleNetwork
from tests.networks.registry import register_inference

TINY = {"dense_args": {"units": 16}, "num_dense": 2}


@register_inference("flow_affine_fixed_actnorm_init_l2_dropout")
def affine_fixed_actnorm_init(num_params, condition_dim):
    targets = np.random.default_rng(11).normal(loc=1.0, scale=2.0, size=(32, num_params))
    dense_args = {"units": 16, "kernel_regularizer": keras.regularizers.L2(1e-4)}
    settings = {"dense_args": dense_args, "num_dense": 2, "dropout": True, "dropout_prob": 0.1}
    return InvertibleNetwork(num_params, num_coupling_layers=1, coupling_settings=settings, act_norm_init=targets)


@register_inference("flow_affine_learnable_residual")
def affine_learnable_residual(num_params, condition_dim):
    settings = {**TINY, "residual": True, "soft_clamping": 1.5}
    return InvertibleNetwork(
        num_params, num_coupling_layers=1, coupling_settings=settings, permutation="learnable", use_act_norm=False
    )


@register_inference("flow_spline_none_actnorm")
def spline_none_actnorm(num_params, condition_dim):
    settings = {**TINY, "bins": 8}
    return InvertibleNetwork(
        num_params, num_coupling_layers=1, coupling_design="spline", coupling_settings=settings, permutation=None
    )


@register_inference("flow_spline_learnable_softflow")
def spline_learnable_softflow(num_params, condition_dim):
    return InvertibleNetwork(
        num_params,
        num_coupling_layers=1,
        coupling_design="spline",
        coupling_settings=TINY,
        permutation="learnable",
        use_act_norm=False,
        use_soft_flow=True,
    )


@register_inference("flow_interleaved_fixed_actnorm")
def interleaved_fixed_actnorm(num_params, condition_dim):
    settings = {"affine": TINY, "spline": {**TINY, "bins": 6}}
    return InvertibleNetwork(
        num_params, num_coupling_layers=2, coupling_design="interleaved", coupling_settings=settings
    )
