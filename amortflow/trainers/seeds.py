"""Reproducible random streams keyed by position, so that a resumed run draws what it would have drawn.

Every random draw of a training run (the simulations of step ``i`` of epoch ``e``, the
permutation of an offline epoch, a replay sample, the validation set) uses its own
``numpy.random.Generator`` seeded by ``SeedSequence([entropy, stream, run, ...position])``.
No generator state has to be carried along: resuming at epoch ``e``, iteration ``i`` only
needs ``entropy`` and the counters, which the checkpoint stores. Sequences with different
keys are statistically independent (NumPy's ``SeedSequence`` hashing).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """The independent random streams of a trainer."""

    CHECK = 0
    ONLINE = 1
    VALIDATION = 2
    OFFLINE = 3
    DISK = 4
    ROUND = 5
    REPLAY = 6
    DIAGNOSTICS = 7
    STREAM = 8


class SeedTree:
    """Generators for ``(stream, *position)`` keys derived from one ``entropy``.

    Parameters
    ----------
    seed : int or None
        ``None`` draws fresh entropy (stored in checkpoints, so a resumed run still matches).

    Examples
    --------
    >>> tree = SeedTree(7)
    >>> a = tree.rng(Stream.ONLINE, 0, 3, 5).normal()
    >>> b = SeedTree(7).rng(Stream.ONLINE, 0, 3, 5).normal()
    >>> a == b
    True
    """

    def __init__(self, seed: int | None = None):
        self.entropy = int(np.random.SeedSequence(seed).entropy)

    def rng(self, stream: Stream, *position: int) -> np.random.Generator:
        """A generator for the given stream and position (non-negative ints)."""
        return np.random.default_rng(np.random.SeedSequence([self.entropy, int(stream), *map(int, position)]))

    def legacy_seed(self, stream: Stream, *position: int) -> int:
        """A 32-bit seed for ``np.random.seed`` (simulators that use NumPy's global state)."""
        sequence = np.random.SeedSequence([self.entropy, int(stream), *map(int, position), 1])
        return int(sequence.generate_state(1)[0])


def network_seed_states(model) -> list:
    """The state variables of ``model``'s ``keras.random.SeedGenerator`` objects (dropout, noise, ...).

    Each state is ``[seed, counter]``; Keras lists them in ``model.variables`` but not in
    ``model.weights``, so checkpoints and replica handling have to ask for them.
    """
    return [v for v in model.variables if v.name == "seed_generator_state"]  # Keras' name for them
