"""Registry entries for the flow-matching network and the consistency model.

Tiny velocity / consistency MLPs and few ODE steps keep the contract suite fast; 8 RK4 steps
integrate the perturbed (smooth) velocity of these nets far inside the suite's 1 % quadrature
tolerance (16 steps gave a total mass of 1 - 2e-5 in 1-D and 1 - 7e-6 in 2-D).
"""

from __future__ import annotations

from amortflow.networks.inference.consistency_model import ConsistencyModel
from amortflow.networks.inference.flow_matching import FlowMatching
from tests.networks.registry import register_inference


@register_inference("flow_matching")
def flow_matching(num_params, condition_dim):
    return FlowMatching(num_params, dense_args={"units": 16}, num_dense=2, num_steps=8, seed=3)


@register_inference("flow_matching_plain_time")
def flow_matching_plain_time(num_params, condition_dim):
    return FlowMatching(
        num_params, dense_args={"units": 8, "activation": "tanh"}, num_dense=1, residual=False,
        time_frequencies=0, time_power=1.0, num_steps=6,
    )  # fmt: skip


@register_inference("consistency_model")
def consistency_model(num_params, condition_dim):
    return ConsistencyModel(num_params, total_steps=100, dense_args={"units": 16}, num_dense=2, seed=3)
