"""Turn what users pass to diagnostics (numpy, TF tensors, pandas, lists) into checked numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from amortflow.exceptions import ShapeError, describe_shape


def to_numpy(value: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """Return ``value`` as a numpy array of ``dtype``.

    Accepts numpy arrays, TensorFlow/Keras tensors (anything with ``.numpy()``),
    pandas objects (anything with ``.to_numpy()``) and nested lists.
    """
    if value is None:
        raise ShapeError(f"`{name}` is None; expected an array.")
    if hasattr(value, "numpy") and callable(value.numpy):
        value = value.numpy()
    elif hasattr(value, "to_numpy") and callable(value.to_numpy):
        value = value.to_numpy()
    try:
        return np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise ShapeError(
            f"`{name}` could not be converted to a numeric array: received {describe_shape(value)}."
        ) from err


def check_draws_and_truth(post_samples: Any, prior_samples: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check and return posterior draws ``(N, S, D)`` and true parameters ``(N, D)``.

    A single parameter may be given without its last axis: draws ``(N, S)`` with truths ``(N,)``.

    Raises
    ------
    ShapeError
        If the ranks or the ``N`` / ``D`` axes do not match.
    """
    post = to_numpy(post_samples, "post_samples")
    prior = to_numpy(prior_samples, "prior_samples")
    given = f"received {post.shape} and {prior.shape}"
    if post.ndim == 2 and prior.ndim == 1:
        post, prior = post[..., None], prior[:, None]
    if post.ndim != 3 or prior.ndim != 2:
        raise ShapeError(
            "`post_samples` must have shape (n_datasets, n_samples, n_params) and `prior_samples` shape "
            f"(n_datasets, n_params); {given}."
        )
    if post.shape[0] != prior.shape[0] or post.shape[2] != prior.shape[1]:
        raise ShapeError(
            "`post_samples` and `prior_samples` must have shapes (N, S, D) and (N, D) with the same N and D; "
            f"{given}."
        )
    return post, prior


def check_samples_2d(samples: Any, name: str) -> np.ndarray:
    """Return ``samples`` as ``(n, D)``; a 1-D input is one parameter, leading batch axes are flattened."""
    arr = to_numpy(samples, name)
    if arr.ndim == 1:
        return arr[:, None]
    if arr.ndim < 1:
        raise ShapeError(f"`{name}` must have shape (n_samples, n_dims); received a scalar.")
    return arr.reshape(-1, arr.shape[-1])


def check_model_arrays(true_models: Any, pred_models: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return integer true model indices ``(n,)`` and predicted probabilities ``(n, M)``.

    ``true_models`` may be indices ``(n,)`` or one-hot ``(n, M)``; ``pred_models`` must be
    probabilities ``(n, M)`` (rows summing to one).
    """
    probs = to_numpy(pred_models, "pred_models")
    if probs.ndim != 2:
        raise ShapeError(f"`pred_models` must have shape (n_datasets, n_models); received {probs.shape}.")
    true = to_numpy(true_models, "true_models")
    if true.ndim == 2:
        if true.shape != probs.shape:
            raise ShapeError(
                f"one-hot `true_models` {true.shape} must match `pred_models` {probs.shape}."
            )
        true = true.argmax(axis=1)
    if true.ndim != 1 or true.shape[0] != probs.shape[0]:
        raise ShapeError(
            f"`true_models` must have shape ({probs.shape[0]},) (indices) or {probs.shape} (one-hot); "
            f"received {true.shape}."
        )
    indices = true.astype(np.int64)
    if np.any(indices != true) or indices.min() < 0 or indices.max() >= probs.shape[1]:
        raise ShapeError(f"`true_models` indices must be integers in [0, {probs.shape[1]}).")
    return indices, probs


def model_indices(models: Any, name: str) -> np.ndarray:
    """Return model indices ``(n,)`` from indices ``(n,)``, one-hot or probabilities ``(n, M)`` (argmax)."""
    arr = to_numpy(models, name)
    if arr.ndim == 2:
        return arr.argmax(axis=1)
    if arr.ndim != 1:
        raise ShapeError(f"`{name}` must have shape (n,) or (n, n_models); received {arr.shape}.")
    return arr.astype(np.int64)
