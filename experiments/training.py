"""The project's training path: the same mini-batch SGD as ``model.fit``, faster, and K folds at once.

Semantics (identical on every path and backend, and whether a fold is trained alone or with
others): every fold starts from the same initial weights and optimizer state; epoch ``e`` of a
fold visits its training windows in the order of :func:`epoch_order` (a permutation drawn from
``seed`` and ``e`` only), in batches of ``batch_size`` with the last, smaller batch kept, as
``model.fit(shuffle=True)`` does; each batch is one optimizer step on the mean loss of the batch.

Paths:

* ``jax`` backend: :func:`fit_folds` runs one jitted step per batch, ``vmap``-ed over the folds (each fold holds its own weights, batch-norm statistics and Adam
  state; a fold that has run out of full batches is masked, its state left untouched). The last,
  smaller batch of each fold is one more un-vectorised step at its true size, so batch-norm
  statistics never see padding. K folds trained together get exactly the steps each gets alone.
* TensorFlow: one fold after the other, one ``model.fit`` call per fold over a ``tf.data``
  stream of one epoch's batches whose order changes with the epoch (:func:`_tf_epoch_stream`),
  up to 32 steps per execution, never across an epoch boundary; compiled with XLA for long folds
  (see :data:`XLA_MIN_SAMPLES`).
* PyTorch: one fold after the other, one ``model.fit`` call per epoch on the permuted windows.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from experiments.phases import timed

#: Steps per TensorFlow execution (one traced loop). An execution ends early at the end of an
#: epoch's stream, so a fold with fewer batches than this still runs exactly its own steps.
STEPS_PER_EXECUTION = 32
#: With jit=None, TensorFlow compiles with XLA when a fold trains on at least this many samples
#: (epochs x windows). XLA steps are about 1.6x faster on CPU, but compiling costs 10-20 s, and
#: again for each new size of an epoch's last batch: a loss for the quick profile (10 epochs x
#: about 335 windows), a large gain for the paper's folds (100 epochs x about 6000 windows).
XLA_MIN_SAMPLES = 50_000


@dataclass(frozen=True)
class FoldState:
    """The trained variables of one fold, as NumPy arrays in ``model.weights``-compatible order."""

    trainable: list
    non_trainable: list
    final_loss: float
    steps: int = 0  #: optimizer steps the fold ran: epochs x ceil(n_train / batch_size)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The visiting order of ``n`` training windows in ``epoch`` (0-based): a permutation of 0..n-1."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def batch_count(n: int, batch_size: int) -> tuple[int, int]:
    """(full batches, size of the last smaller batch or 0) of an epoch over ``n`` windows."""
    return n // batch_size, n % batch_size


def _check(x: dict, y: np.ndarray, train_idx: Sequence[np.ndarray], batch_size: int, epochs: int) -> None:
    n = len(y)
    for name, arr in x.items():
        if len(arr) != n:
            raise ValueError(f"input {name!r}: {len(arr)} windows, but y has {n}")
    if batch_size < 1 or epochs < 1:
        raise ValueError(f"batch_size and epochs must be >= 1, got {batch_size}, {epochs}")
    for k, idx in enumerate(train_idx):
        idx = np.asarray(idx)
        if idx.size == 0:
            raise ValueError(f"fold {k}: no training windows")
        if idx.min() < 0 or idx.max() >= n:
            raise ValueError(f"fold {k}: training index out of range 0..{n - 1}")


class FoldTrainer:
    """Trains copies of one built model on folds; compiled state is kept between calls.

    model           a built Keras model; its current weights are every fold's initial weights
                    (they are snapshotted now, and the model is returned to them after each call)
    make_optimizer  a factory of a fresh optimizer (every fold starts from a fresh optimizer state)
    loss            a Keras loss name or function, reduced by the mean over the batch
    jit             XLA compilation of the TensorFlow/PyTorch fit path (None: on TensorFlow for
                    folds of at least XLA_MIN_SAMPLES samples); JAX steps are always jitted
    """

    def __init__(self, model, make_optimizer: Callable[[], object], loss="categorical_crossentropy",
                 jit: bool | None = None):
        import keras

        self.model, self.loss, self.jit = model, loss, jit
        self.backend = keras.backend.backend()
        self.optimizer = make_optimizer()
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            if not isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
                self.optimizer = keras.optimizers.LossScaleOptimizer(self.optimizer)
        self.optimizer.build(model.trainable_variables)
        self.initial = FoldState(_snapshot(model.trainable_variables), _snapshot(model.non_trainable_variables),
                                 float("nan"))
        self.optimizer_initial = _snapshot(self.optimizer.variables)
        self._steps = None  # JAX: the jitted step functions, traced on first use

    @timed("training")
    def fit(self, x: dict[str, np.ndarray], y: np.ndarray, train_idx: Sequence[np.ndarray], *,
            batch_size: int, epochs: int, seed: int, log=None) -> list[FoldState]:
        """Train one copy per entry of ``train_idx`` (see the module docstring for the semantics).

        x            input name -> (N, ...) windows shared by all folds (float32)
        y            (N, n_classes) one-hot targets
        train_idx    per fold, the indices of its training windows in x / y
        log          optional ``log(fold, epoch, mean_loss)`` called after each epoch of each fold
        Returns per fold its trained variables.
        """
        _check(x, y, train_idx, batch_size, epochs)
        x = {k: np.ascontiguousarray(v, dtype="float32") for k, v in x.items()}
        y = np.asarray(y, dtype="float32")
        train_idx = [np.asarray(i) for i in train_idx]
        try:
            if self.backend == "jax":
                return self._fit_jax(x, y, train_idx, batch_size, epochs, seed, log)
            return self._fit_keras(x, y, train_idx, batch_size, epochs, seed, log)
        finally:
            load_fold_state(self.model, self.initial)

    def with_precise_bn(self, state: FoldState, x: dict[str, np.ndarray], batch_size: int = 256) -> FoldState:
        """``state`` with every batch-norm layer's moving statistics set to the exact statistics of its
        input over ``x`` (:func:`experiments.batchnorm.precise_batchnorm`); trained weights unchanged.

        x  input name -> (n, ...) windows: the fold's **training** windows only
        """
        from experiments.batchnorm import precise_batchnorm

        load_fold_state(self.model, state)
        try:
            precise_batchnorm(self.model, x, batch_size)
            return replace(state, non_trainable=_snapshot(self.model.non_trainable_variables))
        finally:
            load_fold_state(self.model, self.initial)

    def predict(self, state: FoldState, x: dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
        """The model's outputs with a fold's trained variables (the model keeps its initial weights)."""
        load_fold_state(self.model, state)
        try:
            return self.model.predict(x, batch_size=batch_size, verbose=0)
        finally:
            load_fold_state(self.model, self.initial)

    def _fit_keras(self, x, y, train_idx, batch_size, epochs, seed, log):
        """TensorFlow and PyTorch: ``model.fit`` on the batches of :func:`epoch_order`, one fold after
        the other (one call per fold over a tf.data stream on TensorFlow, one call per epoch on PyTorch)."""
        import keras

        model, optimizer = self.model, self.optimizer
        if getattr(model, "optimizer", None) is not optimizer:  # compile (and trace) once per trainer
            samples = epochs * max(idx.size for idx in train_idx)
            jit_compile = self.jit if self.jit is not None else (
                self.backend == "tensorflow" and samples >= XLA_MIN_SAMPLES)
            model.compile(optimizer=optimizer, loss=self.loss, jit_compile=jit_compile,
                          steps_per_execution=1 if self.backend == "torch" else STEPS_PER_EXECUTION)
        states = []
        for k, idx in enumerate(train_idx):
            load_fold_state(model, self.initial)
            for var, value in zip(optimizer.variables, self.optimizer_initial):
                var.assign(value)
            history = _epoch_losses(k, log)
            if self.backend == "tensorflow":  # one fit call over a tf.data stream of one epoch's batches
                data, select_epoch = _tf_epoch_stream(x, y, idx, batch_size, epochs, seed)
                model.fit(data, epochs=epochs, shuffle=False, verbose=0, callbacks=[select_epoch, history])
            else:  # one fit call per epoch on the windows in that epoch's order
                for epoch in range(epochs):
                    order = idx[epoch_order(idx.size, seed, epoch)]
                    model.fit({n: a[order] for n, a in x.items()}, y[order], batch_size=batch_size,
                              initial_epoch=epoch, epochs=epoch + 1, shuffle=False, verbose=0, callbacks=[history])
            states.append(FoldState(_snapshot(model.trainable_variables), _snapshot(model.non_trainable_variables),
                                    history.losses[-1], int(keras.ops.convert_to_numpy(optimizer.iterations))))
        return states

    def _jax_steps(self):
        """(full_batch_alone, full_batch_vectorised, last_batch): jitted once per trainer."""
        if self._steps is not None:
            return self._steps
        import jax
        import jax.numpy as jnp
        import keras

        model, optimizer = self.model, self.optimizer
        loss_fn = keras.losses.get(self.loss) if isinstance(self.loss, str) else self.loss

        def step(state, data, idx):
            """One optimizer step of one fold on the windows ``idx`` (its batch)."""
            trainable, non_trainable, opt_vars = state
            xb = {k: v[idx] for k, v in data[0].items()}
            yb = data[1][idx]

            def objective(trainable, non_trainable):
                pred, non_trainable = model.stateless_call(trainable, non_trainable, xb, training=True)
                value = keras.ops.mean(loss_fn(yb, pred))  # mean over the batch, as fit's default reduction
                with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, opt_vars))):
                    scaled = optimizer.scale_loss(value)  # loss scaling under mixed precision, else identity
                return scaled, (value, non_trainable)

            (_, (value, non_trainable)), grads = jax.value_and_grad(objective, has_aux=True)(trainable, non_trainable)
            trainable, opt_vars = optimizer.stateless_apply(opt_vars, grads, trainable)
            return (trainable, non_trainable, opt_vars), value

        def masked_step(state, data, idx, active):
            new, value = step(state, data, idx)
            return jax.tree.map(lambda a, b: jnp.where(active, a, b), new, state), value

        def one_fold(state, data, idx, active):  # no masking, and un-vectorised is faster on CPU
            new, value = step(jax.tree.map(lambda a: a[0], state), data, idx[0])
            return jax.tree.map(lambda a: a[None], new), value[None]

        # idx (folds, batch), active (folds,): every fold's step at once, idle folds left unchanged.
        # (A jax.lax.scan over the steps was 10x slower on XLA:CPU than this loop of jitted steps.)
        self._steps = (jax.jit(one_fold), jax.jit(jax.vmap(masked_step, in_axes=(0, None, 0, 0))),
                       jax.jit(step))  # the last is traced once per distinct size of a last batch
        return self._steps

    def _fit_jax(self, x, y, train_idx, batch_size, epochs, seed, log):
        """JAX: one jitted step per batch, vectorised over the folds."""
        import jax
        import jax.numpy as jnp

        alone, vectorised, last_batch = self._jax_steps()
        n_folds = len(train_idx)
        full_batch = alone if n_folds == 1 else vectorised
        init = (self.initial.trainable, self.initial.non_trainable, self.optimizer_initial)
        state = jax.tree.map(lambda a: jnp.broadcast_to(jnp.asarray(a), (n_folds, *np.shape(a))), init)
        data = ({k: jnp.asarray(v) for k, v in x.items()}, jnp.asarray(y))
        sizes = [idx.size for idx in train_idx]
        n_steps = max(batch_count(s, batch_size)[0] for s in sizes)
        final = [float("nan")] * n_folds
        for epoch in range(epochs):
            orders = [idx[epoch_order(idx.size, seed, epoch)] for idx in train_idx]
            idx = np.zeros((n_steps, n_folds, batch_size), dtype=np.int32)
            active = np.zeros((n_steps, n_folds), dtype=bool)
            for k, order in enumerate(orders):
                full, _ = batch_count(order.size, batch_size)
                idx[:full, k] = order[: full * batch_size].reshape(full, batch_size)
                active[:full, k] = True
            losses = []
            for s in range(n_steps):
                state, value = full_batch(state, data, jnp.asarray(idx[s]), jnp.asarray(active[s]))
                losses.append(value)
            losses = np.asarray(jnp.stack(losses)) if losses else np.zeros((0, n_folds))
            for k, order in enumerate(orders):
                full, rest = batch_count(order.size, batch_size)
                fold_losses = list(losses[:full, k])
                if rest:  # the last, smaller batch at its true size (batch-norm never sees padding)
                    one = jax.tree.map(lambda a: a[k], state)
                    one, value = last_batch(one, data, jnp.asarray(order[full * batch_size:], dtype=np.int32))
                    state = jax.tree.map(lambda a, b: a.at[k].set(b), state, one)
                    fold_losses.append(float(value))
                # as fit reports it: the epoch's mean of batch losses, weighted by batch size
                final[k] = float(np.average(fold_losses, weights=[batch_size] * full + ([rest] if rest else [])))
                if log:
                    log(k, epoch, final[k])
        trainable, non_trainable, opt_vars = state
        it = next(i for i, v in enumerate(self.optimizer.variables) if v is self.optimizer.iterations)
        return [FoldState([np.asarray(a[k]) for a in trainable], [np.asarray(a[k]) for a in non_trainable], final[k],
                          int(opt_vars[it][k])) for k in range(n_folds)]


def fit_folds(model, make_optimizer: Callable[[], object], x: dict[str, np.ndarray], y: np.ndarray,
              train_idx: Sequence[np.ndarray], *, batch_size: int, epochs: int, seed: int,
              loss="categorical_crossentropy", jit: bool | None = None, log=None) -> list[FoldState]:
    """One-call form of :meth:`FoldTrainer.fit` (compiles anew; keep a FoldTrainer to reuse it)."""
    return FoldTrainer(model, make_optimizer, loss, jit).fit(x, y, train_idx, batch_size=batch_size,
                                                             epochs=epochs, seed=seed, log=log)


def _tf_epoch_stream(x: dict, y: np.ndarray, idx: np.ndarray, batch_size: int, epochs: int, seed: int):
    """A tf.data stream of ONE epoch's batches in :func:`epoch_order`, and the callback that picks the epoch.

    The stream has a known cardinality, ceil(n / batch_size), and no ``steps_per_epoch`` is passed to
    ``fit``: Keras then opens a new iterator at the start of every epoch, and an execution of up to
    ``steps_per_execution`` steps stops where that iterator ends. So no execution crosses an epoch
    boundary, whatever the ratio of batches to steps per execution, and every epoch runs exactly its
    own batches (the last, smaller one included). The epoch whose order the stream yields is a
    variable, set by the returned callback's ``on_epoch_begin`` (Keras calls it before it opens the
    epoch's iterator); the windows are gathered from arrays held once in memory.
    Returns ``(dataset, callback)``.
    """
    import keras
    import tensorflow as tf

    full, rest = batch_count(idx.size, batch_size)
    steps = full + (1 if rest else 0)
    orders = tf.constant(np.stack([idx[epoch_order(idx.size, seed, e)] for e in range(epochs)]).astype(np.int64))
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    xs = {k: tf.constant(v) for k, v in x.items()}
    ys = tf.constant(y)
    n = tf.constant(idx.size, dtype=tf.int64)

    def batch(step):
        order = tf.gather(orders, epoch.read_value())
        b = order[step * batch_size: tf.minimum((step + 1) * batch_size, n)]
        return {k: tf.gather(v, b) for k, v in xs.items()}, tf.gather(ys, b)

    data = (tf.data.Dataset.range(steps)
            .map(batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE))

    class SelectEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, e, logs=None):
            epoch.assign(e)

    return data, SelectEpoch()


def _epoch_losses(fold: int, log):
    """A Keras callback keeping each epoch's loss in ``.losses`` (and passing it to ``log(fold, epoch, loss)``)."""
    import keras

    class EpochLosses(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.losses = []

        def on_epoch_end(self, epoch, logs=None):
            self.losses.append(float(logs["loss"]))
            if log:
                log(fold, epoch, self.losses[-1])

    return EpochLosses()


def load_fold_state(model, state: FoldState) -> None:
    """Put a fold's trained variables into ``model`` (for predict, evaluate or save)."""
    for var, value in zip(model.trainable_variables, state.trainable):
        var.assign(value)
    for var, value in zip(model.non_trainable_variables, state.non_trainable):
        var.assign(value)


def _snapshot(variables) -> list:
    return [np.array(v.numpy()) for v in variables]
