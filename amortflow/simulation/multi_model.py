"""Several generative models with prior model probabilities, for amortized model comparison."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from amortflow.exceptions import ArgumentError
from amortflow.simulation.generative_model import GenerativeModel
from amortflow.simulation.prior import check_batch_size
from amortflow.simulation.validation import SeedLike, resolve_rng


class MultiGenerativeModel:
    """Draws a model index ``m ~ p(m)``, then a simulation from model ``m``, for each of ``B`` simulations.

    Parameters
    ----------
    generative_models : sequence of GenerativeModel
        The ``M >= 2`` candidate models. Their data must have the same shape per simulation
        to be compared by one network.
    model_probs : "equal" or array of shape (M,), default "equal"
        Prior model probabilities ``p(m)`` (non-negative, summing to 1).

    Examples
    --------
    >>> from amortflow.simulation import GenerativeModel
    >>> def model(shift):
    ...     return GenerativeModel(lambda b, rng: rng.normal(size=(b, 1)),
    ...                            lambda p, rng: shift + rng.normal(size=(len(p), 5, 1)),
    ...                            prior_is_batched=True, simulator_is_batched=True, skip_test=True)
    >>> multi = MultiGenerativeModel([model(0.0), model(3.0)])
    >>> out = multi(batch_size=8, rng=0)
    >>> out["model_indices"].shape, len(out["model_outputs"])
    ((8,), 2)
    """

    def __init__(self, generative_models: Sequence[GenerativeModel], model_probs: str | Sequence[float] = "equal"):
        models = list(generative_models)
        if len(models) < 2:
            raise ArgumentError(f"MultiGenerativeModel needs at least 2 generative models, received {len(models)}.")
        for i, model in enumerate(models):
            if not isinstance(model, GenerativeModel):
                raise ArgumentError(
                    f"MultiGenerativeModel: generative_models[{i}] must be a GenerativeModel, "
                    f"received {type(model).__name__}."
                )
        self.generative_models = models
        self.num_models = len(models)
        self.model_probs = _check_probs(model_probs, self.num_models)

    def __call__(self, batch_size: int, rng: SeedLike = None) -> dict:
        """Simulate a batch from randomly chosen models.

        Returns
        -------
        dict
            ``model_indices``: ``(B,)`` int array, the model of each simulation;
            ``model_outputs``: one raw dict per model holding that model's simulations in the
            order in which its index occurs in ``model_indices`` (``None`` for a model drawn
            zero times).
        """
        batch_size = check_batch_size(batch_size)
        rng = resolve_rng(rng)
        indices = rng.choice(self.num_models, size=batch_size, p=self.model_probs)
        counts = np.bincount(indices, minlength=self.num_models)
        outputs = [model(int(n), rng=rng) if n > 0 else None for model, n in zip(self.generative_models, counts)]
        return {"model_outputs": outputs, "model_indices": indices.astype(np.int64)}

    @property
    def uses_global_rng(self) -> bool:
        """True if some user function of some model draws from NumPy's global state."""
        return any(model.uses_global_rng for model in self.generative_models)

    def __repr__(self) -> str:
        return f"MultiGenerativeModel({[m.name for m in self.generative_models]}, model_probs={self.model_probs.tolist()})"


def _check_probs(model_probs, num_models: int) -> np.ndarray:
    if isinstance(model_probs, str):
        if model_probs != "equal":
            raise ArgumentError(f"model_probs must be 'equal' or an array of {num_models} probabilities, received {model_probs!r}.")
        return np.full(num_models, 1.0 / num_models)
    probs = np.asarray(model_probs, dtype=np.float64)
    if probs.shape != (num_models,) or (probs < 0).any() or not np.isclose(probs.sum(), 1.0, atol=1e-6):
        raise ArgumentError(
            f"model_probs must be {num_models} non-negative probabilities summing to 1, received "
            f"{probs.tolist()} (shape {probs.shape})."
        )
    return probs / probs.sum()
