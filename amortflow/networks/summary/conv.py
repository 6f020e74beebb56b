"""ConvSummary: a residual convolutional network for fields on a 1-, 2- or 3-D grid.

Maps a field ``(B, *grid, C)`` (channels last) to ``(B, summary_dim)``:

``h_0 = x``;  ``h_s = pool_2(act(W_s h_{s-1} + conv(act(conv(h_{s-1})))))`` for stages ``s = 1..S``
(the skip connection is a 1x1 convolution, so stages can change the channel count), then global
average pooling and ``Dense(summary_dim)``. Each stage halves every grid axis, so grid sizes
must be multiples of ``2**S``; global pooling makes the summary independent of the grid size
otherwise (He et al. 2016, "Deep residual learning for image recognition"; for cosmological
maps and physical fields see e.g. Ribli et al. 2019, Nature Astronomy).

A field that evolves in time, ``(B, T, *grid, C)``, is summarized frame by frame and the
``(B, T, summary_dim)`` frame summaries go through ``time_network`` (any sequence summary
network, e.g. :class:`~amortflow.networks.SequenceNetwork`), whose output is the summary.
"""

from __future__ import annotations

import keras

from amortflow._checks import check_choice, positive_int
from amortflow.exceptions import ShapeError
from amortflow.networks.summary.base import SummaryNetwork
from amortflow.networks.summary.hierarchical import _config_without_build

_CONV = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_POOL = {1: keras.layers.AveragePooling1D, 2: keras.layers.AveragePooling2D, 3: keras.layers.AveragePooling3D}
_GLOBAL_POOL = {1: keras.layers.GlobalAveragePooling1D, 2: keras.layers.GlobalAveragePooling2D,
                3: keras.layers.GlobalAveragePooling3D}  # fmt: skip


@keras.saving.register_keras_serializable(package="amortflow")
class ResidualConvBlock(keras.layers.Layer):
    """``act(W x + conv(act(conv(x))))`` on a grid of rank ``spatial_dims``, ``W`` a 1x1 convolution.

    The projection shortcut ``W`` lets every stage change the channel count (He et al. 2016, option B).
    """

    def __init__(self, filters: int, spatial_dims: int = 2, kernel_size: int = 3, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_int("filters", filters)
        self.spatial_dims = check_choice("spatial_dims", spatial_dims, (1, 2, 3))
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.activation = activation
        conv = _CONV[spatial_dims]
        self.conv_in = conv(filters, kernel_size, padding="same", activation=activation, name="conv_in")
        self.conv_out = conv(filters, kernel_size, padding="same", name="conv_out")
        self.act = keras.layers.Activation(activation, name="act")
        self.skip = conv(filters, 1, name="skip")

    def build(self, input_shape):
        shape = tuple(input_shape)
        self.conv_in.build(shape)
        self.conv_out.build((*shape[:-1], self.filters))
        self.skip.build(shape)
        self.built = True

    def call(self, x, training=False):
        return self.act(self.skip(x) + self.conv_out(self.conv_in(x)))

    def compute_output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, spatial_dims=self.spatial_dims, kernel_size=self.kernel_size,
                      activation=self.activation)  # fmt: skip
        return config


@keras.saving.register_keras_serializable(package="amortflow")
class ConvSummary(SummaryNetwork):
    """Summary network for fields ``(B, *grid, C) -> (B, summary_dim)``, or ``(B, T, *grid, C)`` with ``time_network``.

    Parameters
    ----------
    summary_dim : int, default 10
        Learned summary statistics per field (per frame when ``time_network`` is given).
    spatial_dims : {1, 2, 3}, default 2
        Rank of the grid: series or profiles (1), maps and images (2), volumes (3).
    num_stages : int, default 3
        Residual stages, each followed by average pooling by 2 along every grid axis, so every
        grid size must be a multiple of ``2**num_stages``.
    filters : int, default 16
        Channels of the first stage; each further stage doubles them.
    kernel_size : int, default 3
    activation : str, default "relu"
    time_network : keras.layers.Layer, optional
        A sequence summary network for ``(B, T, summary_dim)`` frame summaries; its output is
        the summary of a field evolving in time.

    Examples
    --------
    >>> net = ConvSummary(summary_dim=8, num_stages=2)
    >>> net(np.zeros((4, 32, 32, 1), dtype="float32")).shape
    TensorShape([4, 8])
    """

    def __init__(self, summary_dim: int = 10, spatial_dims: int = 2, num_stages: int = 3, filters: int = 16,
                 kernel_size: int = 3, activation: str = "relu", time_network=None, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        self.summary_dim = positive_int("summary_dim", summary_dim)
        self.spatial_dims = check_choice("spatial_dims", spatial_dims, (1, 2, 3))
        self.num_stages = positive_int("num_stages", num_stages, minimum=0)
        self.filters = positive_int("filters", filters)
        self.kernel_size = positive_int("kernel_size", kernel_size)
        self.activation = activation
        if isinstance(time_network, dict):
            time_network = keras.saving.deserialize_keras_object(time_network)
        self.time_network = time_network
        self.blocks = [
            ResidualConvBlock(filters * 2**stage, spatial_dims, kernel_size, activation, name=f"stage_{stage}")
            for stage in range(self.num_stages)
        ]
        self.pools = [_POOL[spatial_dims](pool_size=2, name=f"pool_{stage}") for stage in range(self.num_stages)]
        self.global_pool = _GLOBAL_POOL[spatial_dims](name="global_pool")
        self.output_layer = keras.layers.Dense(self.summary_dim, name="output")

    @property
    def field_rank(self) -> int:
        """Axes of one input: batch, (time,) grid axes, channels."""
        return 2 + self.spatial_dims + (self.time_network is not None)

    def _check_shape(self, input_shape) -> tuple:
        shape = tuple(input_shape)
        if len(shape) != self.field_rank:
            grid = ", ".join(["n"] * self.spatial_dims)
            expected = f"(B, T, {grid}, C)" if self.time_network is not None else f"(B, {grid}, C)"
            raise ShapeError(f"ConvSummary(spatial_dims={self.spatial_dims}) expects fields of shape {expected}; "
                             f"received shape {shape}.")  # fmt: skip
        factor = 2**self.num_stages
        grid_axes = shape[-1 - self.spatial_dims : -1]
        if any(size is not None and size % factor for size in grid_axes):
            raise ShapeError(f"ConvSummary with {self.num_stages} stages halves each grid axis {self.num_stages} "
                             f"times, so grid sizes must be multiples of {factor}; received grid {grid_axes} "
                             f"(input shape {shape}).")  # fmt: skip
        return shape

    def _check_input(self, input_shape) -> tuple:
        return self._check_shape(input_shape)

    def _build_layers(self, shape):
        frame = shape[-1 - self.spatial_dims :]
        current = (None, *frame)
        for block, pool in zip(self.blocks, self.pools):
            block.build(current)
            current = pool.compute_output_shape(block.compute_output_shape(current))
        self.output_layer.build((None, current[-1]))
        if self.time_network is not None:
            self.time_network.build((None, shape[1], self.summary_dim))

    def _summarize_frames(self, x, training):
        for block, pool in zip(self.blocks, self.pools):
            x = pool(block(x, training=training))
        return self.output_layer(self.global_pool(x))

    def call(self, x, training=False):
        """Summaries ``(B, summary_dim)`` (or the time network's output for fields in time)."""
        self._check_shape(x.shape)
        if self.time_network is None:
            return self._summarize_frames(x, training)
        shape = keras.ops.shape(x)
        frames = keras.ops.reshape(x, (-1, *shape[2:]))  # (B * T, *grid, C): one field per frame
        summaries = self._summarize_frames(frames, training)
        return self.time_network(keras.ops.reshape(summaries, (shape[0], shape[1], self.summary_dim)), training=training)

    def compute_output_shape(self, input_shape):
        if self.time_network is None:
            return (input_shape[0], self.summary_dim)
        return self.time_network.compute_output_shape((input_shape[0], input_shape[1], self.summary_dim))

    def _constructor_config(self) -> dict:
        return dict(summary_dim=self.summary_dim, spatial_dims=self.spatial_dims, num_stages=self.num_stages,
                    filters=self.filters, kernel_size=self.kernel_size, activation=self.activation,
                    time_network=None if self.time_network is None else _config_without_build(self.time_network))  # fmt: skip
