"""The training step shared by every mode, compiled once and run several steps per call.

One call of the compiled function trains on a chunk of ``K`` stacked batches in a
``tf.range`` loop: for each batch it computes the loss and gradients, and applies the update
only when the loss and the gradient norm are finite (``tf.cond``, decided on the device, no
host synchronisation). The host reads the losses and finite-flags back once per call. The
loop stops early once ``max_in_a_row`` steps in a row were not finite (counting those before
the call), so that no step runs after the one that ends training.

The input signature leaves the number of steps, the batch size and the middle axes (set
size, time steps) free, so one trace serves every mode. With XLA (``jit_compile``) the loop
is fused into one program, compiled once per distinct input shape; ``"auto"`` uses XLA and
falls back to the plain graph when XLA cannot compile the step or when too many different
shapes arrive (varying set sizes would otherwise recompile again and again).

With a ``tf.distribute`` strategy each step runs on every replica through ``strategy.run``
(see :mod:`amortflow.trainers.distributed` for how the batch is split and the loss scaled);
the skip decision for non-finite steps is taken once, outside the replicas, so that all of
them apply or skip the same update.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from amortflow.exceptions import ArgumentError, ConfigurationError
from amortflow.trainers import distributed
from amortflow.trainers.arrays import Nested, flatten, shape_signature, unflatten

logger = logging.getLogger("amortflow")

JIT_CHOICES = (True, False, "auto")


def _spec(trailing: tuple, stacked: bool) -> tf.TensorSpec:
    """Free leading axes and middle axes; the feature (last) axis stays fixed."""
    middle = [None] * max(len(trailing) - 1, 0)
    last = [trailing[-1]] if trailing else []
    return tf.TensorSpec([None] * (1 + stacked) + middle + last, tf.float32)


class CompiledStep:
    """Compiled training and evaluation steps of an amortizer.

    Parameters
    ----------
    amortizer : keras.Model
        Anything with ``compute_loss(input_dict, training)`` returning a scalar tensor or a
        dict of scalar tensors (their sum is optimized; each becomes a history column).
    jit_compile : True, False or "auto"
        Use XLA for the training loop (see the module docstring).
    max_xla_shapes : int
        With ``"auto"``: fall back to the plain graph after this many distinct input shapes.
    min_xla_steps : int
        With ``"auto"``: use XLA only for runs of at least this many steps.
    strategy : tf.distribute.Strategy, optional
        Run each step on the strategy's replicas (None: on the default device, no ``strategy.run``).
        With a strategy, ``"auto"`` does not use XLA and ``True`` is refused (see the comment in ``__init__``).
    """

    def __init__(self, amortizer, jit_compile: bool | str = "auto", max_xla_shapes: int = 8, min_xla_steps: int = 0,
                 strategy: tf.distribute.Strategy | None = None):  # fmt: skip
        if jit_compile not in JIT_CHOICES:
            raise ArgumentError(f"jit_compile must be True, False or 'auto', received {jit_compile!r}.")
        self.amortizer = amortizer
        self.strategy = distributed.resolve_strategy(strategy)
        if self.strategy is not None:
            # XLA compiles the loop into one program for one device, but the replicas' weights
            # live on several devices: TF 2.21 fails with "Trying to access resource
            # .../replica_1/... located in device ...:1 from device ...:0" (XLA known issue
            # "tf.Variable on a different device"). So no XLA with a strategy.
            if jit_compile is True:
                raise ArgumentError(
                    "jit_compile=True cannot be used with a tf.distribute strategy: XLA compiles the training "
                    "loop for one device while the replicas' weights live on several. Use jit_compile='auto' "
                    "or False (the plain TensorFlow graph)."
                )
            jit_compile = False
        self.jit_compile = jit_compile
        self.max_xla_shapes = int(max_xla_shapes)
        self.min_xla_steps = int(min_xla_steps)
        self._xla_ruled_out = False  # "auto" after a compile failure or too many shapes
        self.loss_names: list[str] | None = None
        self.optimizer = None
        self._use_xla = jit_compile is not False
        self._xla_shapes: set = set()
        self._padded_steps = 0  # length of the stacked axis XLA compiled for (see _pad_steps)
        self._functions: dict = {}
        self._eval_functions: dict = {}
        self._variables = None
        #: Traces of the training loop so far (each costs seconds for a flow; one per optimizer and input layout).
        self.traces = 0
        self._trained: list = []  # with a strategy: the weights that get gradients (set while tracing)

    # --- set-up -------------------------------------------------------------------------
    def set_optimizer(self, optimizer, planned_steps: int | None = None) -> None:
        """Use ``optimizer`` from now on (builds its slots; a new optimizer means a new trace).

        ``planned_steps`` (the run's length) decides XLA under ``jit_compile="auto"``.
        """
        if self.jit_compile == "auto" and planned_steps is not None:
            self._use_xla = not self._xla_ruled_out and planned_steps >= self.min_xla_steps
        variables = list(self.amortizer.trainable_variables)
        # a trace captures the optimizer and the weights it trains: another of either needs a new one
        if optimizer is not self.optimizer or not _same_objects(variables, self._variables):
            self._functions = {}
        self._variables = variables
        if not self._variables:
            raise ConfigurationError(f"{type(self.amortizer).__name__} has no trainable weights to train.")
        if self.strategy is not None:
            distributed.check_variables(self.strategy, self._variables, type(self.amortizer).__name__)
            distributed.check_optimizer(self.strategy, optimizer)
        if not optimizer.built:
            with distributed.scope(self.strategy):  # slots are mirrored like the weights
                optimizer.build(self._variables)
        self.optimizer = optimizer

    @property
    def uses_xla(self) -> bool:
        """Whether the next training call runs under XLA."""
        return self._use_xla

    # --- the step -----------------------------------------------------------------------
    def _losses(self, batch: Nested, training: bool):
        """``(objective, [objective, *components])`` of one batch, as graph tensors."""
        out = self.amortizer.compute_loss(batch, training=training)
        names = ["Loss"]
        if isinstance(out, Mapping):
            names += [str(key) for key in out]
            parts = [tf.cast(value, tf.float32) for value in out.values()]
            total = tf.add_n(parts)
        else:
            total, parts = tf.cast(out, tf.float32), []
        # weight penalties count in validation too, so that both report the same objective
        regularization = self.amortizer.losses
        if regularization:
            reg = tf.add_n([tf.cast(r, tf.float32) for r in regularization])
            total = total + reg
            names.append("Regularization")
            parts.append(reg)
        if training and self.loss_names is None:
            self.loss_names = names
        return total, tf.stack([total, *parts])

    def _gradient_pairs(self, grads: list) -> list:
        """``(gradient, weight)`` pairs of the weights that get a gradient (warns about the others)."""
        pairs = [(g, v) for g, v in zip(grads, self._variables) if g is not None]
        if len(pairs) < len(self._variables):
            missing = [v.path for g, v in zip(grads, self._variables) if g is None]
            logger.warning("These weights get no gradient from the loss and are not trained: %s", missing)
        return pairs

    def _train_one(self, batch: Nested):
        with tf.GradientTape() as tape:
            total, values = self._losses(batch, training=True)
        pairs = self._gradient_pairs(tape.gradient(total, self._variables))
        finite = tf.logical_and(tf.math.is_finite(total), tf.math.is_finite(tf.linalg.global_norm([g for g, _ in pairs])))

        def apply():
            self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return values, finite

    # --- the step on the replicas of a strategy --------------------------------------------
    def _replica_gradients(self, template: tuple, paths: list, *flat):
        """One replica: loss of its share of the batch, scaled by the share; gradients summed over replicas."""
        context = tf.distribute.get_replica_context()
        local, weight = distributed.replica_share(list(flat), context)
        batch = unflatten(template, dict(zip(paths, local)))
        with tf.GradientTape() as tape:
            total, values = self._losses(batch, training=True)
            scaled = total * weight
        pairs = self._gradient_pairs(tape.gradient(scaled, self._variables))
        self._trained = [v for _, v in pairs]
        grads = context.all_reduce(tf.distribute.ReduceOp.SUM, [g for g, _ in pairs])
        return values * weight, tf.math.is_finite(tf.linalg.global_norm(grads)), grads

    def _train_one_distributed(self, flat: list, template: tuple, paths: list):
        """One step over the replicas (called in the cross-replica context of the compiled loop)."""
        strategy = self.strategy
        values, grads_finite, grads = strategy.run(
            lambda *tensors: self._replica_gradients(template, paths, *tensors), args=tuple(flat)
        )
        values = strategy.reduce(tf.distribute.ReduceOp.SUM, values, axis=None)
        # every replica holds the same summed gradients, so the first replica's flag speaks for all;
        # the one decision gates the update of all replicas (a cond inside the replicas could not
        # contain the optimizer's cross-replica synchronisation)
        finite = tf.logical_and(tf.math.is_finite(values[0]), strategy.experimental_local_results(grads_finite)[0])

        def apply():
            strategy.run(lambda *g: self.optimizer.apply(list(g), self._trained), args=tuple(grads))
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return values, finite

    def _make_train_function(self, template: tuple, use_xla: bool):
        specs = [_spec(shape, stacked=True) for _, shape in template if shape is not None]
        paths = [path for path, shape in template if shape is not None]

        def train_chunk(n_steps, in_a_row, max_in_a_row, *flat):
            self.traces += 1  # Python runs only while tracing
            # the stacked axis may be padded beyond n_steps (see ``train``); only n_steps are run
            padded = tf.shape(flat[0])[0]

            def body(i, bad, losses, flags):
                if self.strategy is None:
                    batch = unflatten(template, {path: tensor[i] for path, tensor in zip(paths, flat)})
                    values, finite = self._train_one(batch)
                else:
                    values, finite = self._train_one_distributed([tensor[i] for tensor in flat], template, paths)
                bad = tf.where(finite, 0, bad + 1)
                return i + 1, bad, losses.write(i, values), flags.write(i, finite)

            start = (tf.constant(0), in_a_row, tf.TensorArray(tf.float32, size=padded),
                     tf.TensorArray(tf.bool, size=padded))  # fmt: skip
            ran, _, losses, flags = tf.while_loop(
                lambda i, bad, *_: tf.logical_and(i < n_steps, bad < max_in_a_row), body, start
            )
            return losses.stack(), flags.stack(), ran

        # autograph=False: the amortizer's Python is traced as written (autograph's rewriting of
        # third-party code is fragile); the loop is an explicit tf.while_loop.
        return tf.function(
            train_chunk, input_signature=[tf.TensorSpec([], tf.int32)] * 3 + specs, jit_compile=use_xla,
            reduce_retracing=True, autograph=False,
        )  # fmt: skip

    def train(self, chunk: Nested, in_a_row: int = 0, max_in_a_row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Train on a stacked chunk ``(K, B, ...)``; return losses ``(k, n_losses)`` and finite flags ``(k,)``.

        ``k = K`` unless the ``max_in_a_row``-th non-finite step in a row (``in_a_row`` of them
        ended the previous chunk) came first: the steps after it are not run, so ``k`` ends there.
        """
        if self.optimizer is None:
            raise ConfigurationError("CompiledStep.train needs an optimizer; call set_optimizer first.")
        template, flat = flatten(chunk)
        template = tuple((path, None if shape is None else shape[1:]) for path, shape in template)
        arrays = list(flat.values())
        n_steps = int(arrays[0].shape[0])
        limit = np.iinfo(np.int32).max if max_in_a_row is None else max_in_a_row
        counts = (np.int32(n_steps), np.int32(in_a_row), np.int32(limit))
        if self._use_xla:
            arrays = self._pad_steps(arrays)
            if self.jit_compile == "auto":
                self._note_shape(tuple(tuple(a.shape) for a in arrays))
        try:
            with self._replica_guard():
                losses, flags, ran = self._function(template, self._use_xla)(*counts, *arrays)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError, tf.errors.InternalError) as exc:
            if not (self._use_xla and self.jit_compile == "auto" and _is_xla_failure(exc)):
                raise
            logger.info("XLA cannot compile the training step (%s); using the plain TensorFlow graph.", _first_line(exc))
            self._use_xla, self._xla_ruled_out = False, True
            losses, flags, ran = self._function(template, False)(*counts, *arrays)
        ran = min(int(ran), n_steps)
        return losses.numpy()[:ran], flags.numpy()[:ran]

    def _pad_steps(self, arrays: list) -> list:
        """Pad the stacked axis to the longest chunk seen, so XLA compiles one program, not one per length.

        The last chunk of an epoch is usually shorter (1,000 steps at 16 per call end with 8);
        without padding XLA would compile the whole loop again for it (seconds on a CPU). The
        padded batches are never trained on: the loop stops after the real ones.
        """
        n_steps = arrays[0].shape[0]
        self._padded_steps = max(self._padded_steps, n_steps)
        missing = self._padded_steps - n_steps
        if not missing:
            return arrays
        # arrays may be numpy arrays or tensors (prefetched onto the device); tf.concat takes both
        return [tf.concat([a, tf.zeros((missing, *a.shape[1:]), dtype=a.dtype)], axis=0) for a in arrays]

    def _replica_guard(self):
        """With a strategy: the optimizer takes the step's summed gradients as they are (any trace happens here)."""
        if self.strategy is None:
            return contextlib.nullcontext()
        return distributed.gradients_already_reduced(self.optimizer)

    def _function(self, template: tuple, use_xla: bool):
        key = (_spec_key(template), use_xla)
        if key not in self._functions:
            self._functions[key] = self._make_train_function(template, use_xla)
        return self._functions[key]

    def _note_shape(self, shapes: tuple) -> None:
        self._xla_shapes.add(shapes)
        if len(self._xla_shapes) > self.max_xla_shapes:
            logger.info(
                "The training batches came in %d different shapes; XLA would compile each one, so the "
                "plain TensorFlow graph is used from now on.", len(self._xla_shapes),
            )  # fmt: skip
            self._use_xla, self._xla_ruled_out = False, True

    # --- evaluation ---------------------------------------------------------------------
    def evaluate(self, batch: Nested) -> np.ndarray:
        """Loss values ``[objective, *components]`` of one configured batch (``training=False``)."""
        template = shape_signature(batch)
        key = _spec_key(template)
        if key not in self._eval_functions:
            specs = [_spec(shape, stacked=False) for _, shape in template if shape is not None]
            paths = [path for path, shape in template if shape is not None]

            def evaluate(*flat):
                inputs = unflatten(template, dict(zip(paths, flat)))
                return self._losses(inputs, training=False)[1]

            self._eval_functions[key] = tf.function(
                evaluate, input_signature=specs, reduce_retracing=True, autograph=False
            )
        _, flat = flatten(batch)
        return self._eval_functions[key](*flat.values()).numpy()


def _same_objects(a: list, b: list | None) -> bool:
    return b is not None and len(a) == len(b) and all(x is y for x, y in zip(a, b))


def _spec_key(template: tuple) -> tuple:
    """What decides the input signature: the leaves present, their ranks and feature sizes."""
    return tuple((path, None if shape is None else (len(shape), shape[-1:])) for path, shape in template)


def _is_xla_failure(exc: Exception) -> bool:
    text = str(exc)
    return any(marker in text for marker in ("XLA", "xla", "jit_compile", "Detected unsupported operations"))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
