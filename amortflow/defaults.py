"""Default settings, as frozen dicts merged with the user's overrides.

Keeping every default here makes them discoverable and keeps constructors short:
``settings = merge_settings(DEFAULT_AFFINE_COUPLING, user_settings)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from amortflow.exceptions import ArgumentError


def freeze(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return a read-only view of ``mapping`` (nested mappings frozen too)."""
    return MappingProxyType({k: freeze(v) if isinstance(v, Mapping) else v for k, v in mapping.items()})


def thaw(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Return a plain, mutable deep copy of a (possibly frozen) mapping."""
    return {k: thaw(v) if isinstance(v, Mapping) else v for k, v in mapping.items()}


def merge_settings(
    defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None, *, closed_for: str | None = None
) -> dict[str, Any]:
    """Merge ``overrides`` over ``defaults`` recursively and return a plain dict.

    The one merge rule of the package. Keys of ``overrides`` absent from ``defaults`` are
    kept, so a user can pass extra options through (e.g. Keras ``Dense`` arguments inside
    ``dense_args``), unless ``closed_for`` names who takes a closed set of settings (e.g.
    ``"Trainer"``): then an unknown key is a typo, and an
    :class:`~amortflow.exceptions.ArgumentError` names it and the accepted keys.
    """
    if closed_for is not None:
        unknown = sorted(set(overrides or {}) - set(defaults))
        if unknown:
            raise ArgumentError(
                f"{closed_for} got unknown keyword argument(s) {unknown}; accepted: {sorted(defaults)}."
            )
    merged = thaw(defaults)
    for key, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = thaw(value) if isinstance(value, Mapping) else value
    return merged


# --- conditioner MLPs of coupling layers ------------------------------------------------
DEFAULT_DENSE_ARGS = freeze({"units": 128, "activation": "swish", "kernel_regularizer": None})

DEFAULT_AFFINE_COUPLING = freeze(
    {
        "dense_args": DEFAULT_DENSE_ARGS,
        "num_dense": 2,
        "dropout": False,
        "dropout_prob": 0.05,
        "residual": False,
        "soft_clamping": 1.9,
    }
)

DEFAULT_SPLINE_COUPLING = freeze(
    {
        "dense_args": DEFAULT_DENSE_ARGS,
        "num_dense": 2,
        "dropout": False,
        "dropout_prob": 0.05,
        "residual": False,
        "bins": 16,
        "default_domain": (-5.0, 5.0, -5.0, 5.0),
    }
)

# --- training -------------------------------------------------------------------------
DEFAULT_LEARNING_RATE = 5e-4
# EarlyStopper: sbi's NPE rule (see amortflow.trainers.early_stopping for the measurement).
DEFAULT_EARLY_STOPPING = freeze({"patience": 20, "tolerance": 0.0, "restore_best_weights": True})
DEFAULT_CLIP_NORM = 1.0
DEFAULT_MAX_NONFINITE_IN_A_ROW = 10

# --- summary networks -----------------------------------------------------------------
# Per-element MLPs of DeepSet (s1, s2, s3): 64 ReLU units, as in BayesFlow 1.1.6;
# pass dense_s*_args={"units": 128} for a wider network.
DEFAULT_DEEP_SET_DENSE = freeze({"units": 64, "activation": "relu", "kernel_initializer": "glorot_uniform"})
# Equivariant modules before DeepSet's invariant one (BayesFlow 1.1.6 and 2.x use 2). One
# halves the summary network's cost and, on the quickstart problem with fixed seeds, gave a
# lower validation loss than two on every seed, after 1,000 steps (mean -0.89 vs 0.58 nats)
# and after 5 x 1,000 (-2.172 vs -2.151): see BENCHMARKS.md and
# benchmarks/speed_deepset_validation.py. Pass num_equiv=2 for BayesFlow's depth.
DEFAULT_DEEP_SET_NUM_EQUIV = 1

# keras.layers.MultiHeadAttention arguments of SetTransformer / TimeSeriesTransformer blocks.
DEFAULT_ATTENTION_SETTINGS = freeze({"num_heads": 4, "key_dim": 32, "dropout": 0.0})

# Hidden layers of the row-wise feed-forward part of each attention block.
DEFAULT_ATTENTION_DENSE = freeze({"units": 64, "activation": "relu"})

# Multi-scale 1-D convolutions of SequenceNetwork: one Conv1D per kernel size in
# [min_kernel_size, max_kernel_size], concatenated; causal padding keeps the length T.
DEFAULT_MULTI_CONV = freeze(
    {
        "layer_args": {"filters": 32, "activation": "relu", "padding": "causal"},
        "min_kernel_size": 1,
        "max_kernel_size": 3,
    }
)

# --- sampling from amortizers -----------------------------------------------------------
# At most this many (data set, draw) rows go through the inference network in one call:
# activations of a 128-unit flow then stay around 100 MB, whatever n_datasets x n_samples is.
DEFAULT_SAMPLING_MAX_ROWS = 200_000
# Bounded priors: rejection sampling gives up when a data set's acceptance rate would be
# below this (i.e. after n_samples / rate proposals) and warns below the second value.
DEFAULT_REJECTION_MIN_ACCEPTANCE = 1e-3
DEFAULT_REJECTION_WARN_ACCEPTANCE = 0.05

# --- maximum mean discrepancy ------------------------------------------------------------
# Named sets of kernel length scales ``sigma`` mixed by an MMD (see amortflow.diagnostics.metrics.mmd).
# "summary_loss": the posterior's MMD term that pulls summary outputs towards N(0, I) (scales
# around 1, where standard-normal summaries live; also keeps the loss's gradients moderate).
# "two_sample_test": the misspecification test and diagnostics, spanning four orders of
# magnitude so that the test has power whether samples differ on small or large scales.
MMD_BANDWIDTH_SETS = freeze(
    {
        "summary_loss": (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0),
        "two_sample_test": (1e-2, 1e-1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 1e2),
    }
)

# --- trainer: speed, streaming, resilience ----------------------------------------------
# Training steps per compiled call: the host reads the losses back (and the progress bar
# updates) once per call, so per-step Python and dispatch overhead is paid 1/K times.
DEFAULT_STEPS_PER_CALL = 16
# Chunks of batches the background producer may simulate ahead of the training step.
DEFAULT_PREFETCH_CHUNKS = 2
# XLA for the training loop: True, False or "auto" (XLA, falling back to the plain graph
# when XLA cannot compile the step or after DEFAULT_MAX_XLA_SHAPES distinct input shapes).
DEFAULT_JIT_COMPILE = "auto"
DEFAULT_MAX_XLA_SHAPES = 8
# "auto" skips XLA for runs shorter than this: compiling costs seconds once, XLA saves a
# few milliseconds per step (quickstart networks on a 2-core CPU: ~6 s vs ~5 ms/step).
DEFAULT_MIN_XLA_STEPS = 1000
# Simulations held by the shuffle buffer of train_from_presimulation.
DEFAULT_SHUFFLE_BUFFER = 10_000
# Validation simulations per evaluation call.
DEFAULT_VALIDATION_BATCH_SIZE = 1024
# Simulations of the first batches whose features give an amortizer's standardization
# statistics: 1,000 for modes that simulate while training (the standard error of a mean is
# then 3 % of a standard deviation), up to 10,000 for data held in memory or on disk.
DEFAULT_STANDARDIZATION_PILOT = 1000
DEFAULT_STANDARDIZATION_PILOT_STORED = 10_000

# --- Trainer settings (keyword arguments of Trainer(...); unknown keys are rejected) ------
TRAINER_SETTINGS = freeze(
    {
        "steps_per_call": DEFAULT_STEPS_PER_CALL,
        "jit_compile": DEFAULT_JIT_COMPILE,
        "max_xla_shapes": DEFAULT_MAX_XLA_SHAPES,
        "min_xla_steps": DEFAULT_MIN_XLA_STEPS,
        "prefetch": DEFAULT_PREFETCH_CHUNKS,
        "progress": True,
        "checkpoint_every": None,
        "max_nonfinite_in_a_row": DEFAULT_MAX_NONFINITE_IN_A_ROW,
    }
)
#: The Trainer settings that a ``train_*`` call may also override for one run.
PER_CALL_SETTINGS = ("steps_per_call", "prefetch", "progress", "checkpoint_every", "max_nonfinite_in_a_row")
