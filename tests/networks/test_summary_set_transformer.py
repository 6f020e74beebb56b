"""SetTransformer and its attention blocks: equivariance, invariance, structure, errors, XLA."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ShapeError
from amortflow.networks import SetTransformer
from amortflow.networks.summary import (
    InducedSelfAttentionBlock,
    MultiHeadAttentionBlock,
    PoolingByMultiHeadAttention,
    SelfAttentionBlock,
)

ATTENTION = {"num_heads": 2, "key_dim": 4}
DENSE = {"units": 8}


@pytest.mark.parametrize("block_type", [SelfAttentionBlock, InducedSelfAttentionBlock])
def test_self_attention_blocks_are_permutation_equivariant(block_type, rng):
    block = block_type(3, attention_settings=ATTENTION, dense_settings=DENSE)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    perm = rng.permutation(9)
    out = block(x).numpy()
    assert out.shape == (2, 9, 3)
    np.testing.assert_allclose(block(x[:, perm]).numpy(), out[:, perm], atol=1e-5)


def test_pooling_by_attention_is_invariant_and_returns_one_vector_per_seed(rng):
    pma = PoolingByMultiHeadAttention(5, num_seeds=4, attention_settings=ATTENTION, dense_settings=DENSE)
    x = rng.normal(size=(2, 9, 3)).astype("float32")
    out = pma(x).numpy()
    assert out.shape == (2, 4, 5)
    np.testing.assert_allclose(pma(x[:, rng.permutation(9)]).numpy(), out, atol=1e-5)


def test_attention_block_matches_its_formula_without_layer_norm(rng):
    """MAB(X, Y) = H + rFF(H) with H = X + Multihead(X, Y, Y)."""
    block = MultiHeadAttentionBlock(3, ATTENTION, num_dense_fc=1, dense_settings=DENSE, use_layer_norm=False)
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    y = rng.normal(size=(2, 6, 5)).astype("float32")
    out = block(x, y).numpy()
    h = x + block.attention(x, y).numpy()
    np.testing.assert_allclose(out, h + block.fc(h).numpy(), rtol=1e-5, atol=1e-6)


def test_set_transformer_structure_follows_its_arguments():
    isab = SetTransformer(3, num_attention_blocks=3, num_inducing_points=5)
    assert [type(b) for b in isab.attention_blocks] == [InducedSelfAttentionBlock] * 3
    assert isab.attention_blocks[0].points.shape == (5, 3)
    sab = SetTransformer(3, summary_dim=7, num_inducing_points=None, num_seeds=2)
    assert [type(b) for b in sab.attention_blocks] == [SelfAttentionBlock] * 2
    sab.build((None, None, 3))
    assert sab.pooling.points.shape == (2, 7)
    assert sab.output_layer.kernel.shape == (2 * 7, 7)  # num_seeds x summary_dim flattened


def test_errors_name_the_argument_and_the_shape(rng):
    with pytest.raises(ShapeError, match=r"input_dim=3.*\(4, 9, 2\)"):
        SetTransformer(3)(rng.normal(size=(4, 9, 2)).astype("float32"))
    with pytest.raises(ArgumentError, match="num_seeds.*0"):
        SetTransformer(3, num_seeds=0)
    with pytest.raises(ArgumentError, match="num_inducing_points.*-1"):
        SetTransformer(3, num_inducing_points=-1)


def test_xla_compiled_call_matches_eager(rng):
    net = SetTransformer(4, num_inducing_points=8, attention_settings=ATTENTION, dense_settings=DENSE)
    x = tf.constant(rng.normal(size=(16, 30, 4)).astype("float32"))
    eager = net(x).numpy()
    # XLA reorders float32 reductions (softmax, layer norm): ~1e-6 relative differences.
    np.testing.assert_allclose(tf.function(net, jit_compile=True)(x).numpy(), eager, rtol=1e-4, atol=1e-5)
