"""Classifier two-sample test (C2ST) as used by the SBI benchmark.

Lopez-Paz & Oquab (2017), "Revisiting classifier two-sample tests", ICLR; configuration of
Lueckmann et al. (2021), "Benchmarking simulation-based inference", AISTATS.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from amortflow.diagnostics._inputs import check_samples_2d
from amortflow.exceptions import ShapeError


def c2st(
    samples_a: Any,
    samples_b: Any,
    seed: int = 1,
    n_folds: int = 5,
    scoring: str = "accuracy",
    z_score: bool = True,
    noise_scale: float | None = None,
    early_stopping: bool = False,
) -> float:
    """Cross-validated accuracy of a classifier telling ``samples_a`` from ``samples_b``.

    0.5 means the two samples are indistinguishable (e.g. a perfect posterior against reference
    draws), 1.0 means they are perfectly separable. Procedure (SBI benchmark):

    1. z-score both samples with the mean and standard deviation of ``samples_a`` (the reference);
    2. optionally add ``N(0, noise_scale^2)`` noise to both;
    3. label ``a`` as 0 and ``b`` as 1 and train scikit-learn's
       ``MLPClassifier(activation="relu", hidden_layer_sizes=(10 * dim, 10 * dim),
       max_iter=10000, solver="adam", random_state=seed)``;
    4. score it by stratified, shuffled ``n_folds``-fold cross-validation and return the mean score.

    With ``early_stopping=True`` each fold's classifier instead stops when its accuracy on 10 %
    of its training rows has not improved for 10 epochs (at most 1,000 epochs): on a few
    thousand separable points the benchmark's classifier keeps memorising them for minutes,
    while the held-out accuracy it reports hardly moves.

    Parameters
    ----------
    samples_a : array-like, shape (n_a, dim)
        Reference samples (e.g. draws from the true posterior).
    samples_b : array-like, shape (n_b, dim)
        Samples to compare (e.g. draws from the approximate posterior).
    seed : int, default 1
        Seeds the classifier, the fold split and the noise.
    n_folds : int, default 5
    scoring : str, default "accuracy"
        Any scikit-learn scoring name.
    z_score : bool, default True
    noise_scale : float, optional
    early_stopping : bool, default False
        Stop each classifier on a 10 % validation split (sklearn's ``early_stopping=True``,
        ``n_iter_no_change=10``) with ``max_iter=1000``.

    Returns
    -------
    float
        Mean cross-validated score.

    Notes
    -----
    Needs scikit-learn. The standard error of an accuracy near 0.5 estimated from
    ``n = n_a + n_b`` held-out points is about ``sqrt(0.25 / n)``.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neural_network import MLPClassifier

    a = check_samples_2d(samples_a, "samples_a")
    b = check_samples_2d(samples_b, "samples_b")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"`samples_a` {a.shape} and `samples_b` {b.shape} must have the same number of dimensions.")
    if z_score:
        mean, std = a.mean(axis=0), a.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant reference dimension is only centred
        a, b = (a - mean) / std, (b - mean) / std
    if noise_scale is not None:
        rng = np.random.default_rng(seed)
        a = a + noise_scale * rng.standard_normal(a.shape)
        b = b + noise_scale * rng.standard_normal(b.shape)
    dim = a.shape[1]
    classifier = MLPClassifier(
        activation="relu",
        hidden_layer_sizes=(10 * dim, 10 * dim),
        max_iter=1000 if early_stopping else 10000,
        solver="adam",
        random_state=seed,
        early_stopping=bool(early_stopping),  # validation_fraction=0.1, n_iter_no_change=10: sklearn's defaults
    )
    data = np.concatenate([a, b], axis=0)
    target = np.concatenate([np.zeros(a.shape[0]), np.ones(b.shape[0])])
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    scores = cross_val_score(classifier, data, target, cv=folds, scoring=scoring)
    return float(np.mean(scores))
