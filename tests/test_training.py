"""The project's training path (experiments.training): same semantics as model.fit, alone or K folds at once."""
import importlib.util
import textwrap

import numpy as np
import pytest

from experiments.training import batch_count, epoch_order

# A tiny model with what matters for exactness: convolution, batch norm (batch statistics and
# moving averages), a dense head; 37 windows and batch 8 leave a last batch of 5.
COMMON = textwrap.dedent("""
    import numpy as np, keras
    from keras import layers
    from experiments.training import fit_folds, load_fold_state

    def tiny():
        keras.utils.set_random_seed(0)
        a = keras.Input((32, 1), name="a")
        b = keras.Input((32, 1), name="b")
        x = layers.Concatenate()([a, b])
        x = layers.Conv1D(4, 5, strides=2, name="conv")(x)
        x = layers.BatchNormalization(name="bn")(x)
        x = layers.GlobalAveragePooling1D()(layers.ReLU()(x))
        return keras.Model({"a": a, "b": b}, layers.Dense(2, activation="softmax", name="out")(x))

    rng = np.random.default_rng(1)
    n = 37
    x = {"a": rng.standard_normal((n, 32, 1)).astype("float32"), "b": rng.standard_normal((n, 32, 1)).astype("float32")}
    y = keras.utils.to_categorical(rng.integers(0, 2, n), 2)
    folds = [np.arange(n)[np.arange(n) % 3 != k] for k in range(3)]   # 24, 25, 25 windows: ragged
    folds[2] = folds[2][:-7]                                         # 18 windows: fewer full batches
    sgd = lambda: keras.optimizers.SGD(0.1)
""")


def _run(on_backend, backend: str, body: str) -> str:
    """``COMMON`` then ``body`` on ``backend``, in the session's worker for it; returns what it printed."""
    return on_backend(backend, COMMON + textwrap.dedent(body))


def test_epoch_order_is_a_permutation_fixed_by_seed_and_epoch():
    a = epoch_order(50, seed=3, epoch=2)
    assert sorted(a) == list(range(50))
    assert np.array_equal(a, epoch_order(50, seed=3, epoch=2))
    assert not np.array_equal(a, epoch_order(50, seed=3, epoch=1))
    assert not np.array_equal(a, epoch_order(50, seed=4, epoch=2))
    assert batch_count(37, 8) == (4, 5) and batch_count(32, 8) == (4, 0)


@pytest.mark.parametrize("backend", ["jax", "tensorflow", pytest.param("torch", marks=pytest.mark.skipif(
    importlib.util.find_spec("torch") is None, reason="torch is not installed (make bench installs it)"))])
def test_folds_together_train_exactly_as_alone(backend, on_backend):
    """Each of 3 ragged folds trained together ends where it ends trained alone."""
    _run(on_backend, backend, """
        model = tiny()
        together = fit_folds(model, sgd, x, y, folds, batch_size=8, epochs=3, seed=5)
        for k, fold in enumerate(folds):
            alone = fit_folds(model, sgd, x, y, [fold], batch_size=8, epochs=3, seed=5)[0]
            for a, b in zip(alone.trainable + alone.non_trainable, together[k].trainable + together[k].non_trainable):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            assert abs(alone.final_loss - together[k].final_loss) < 1e-4
        # the model is left at its initial weights, and distinct folds really trained differently
        assert not np.allclose(together[0].trainable[0], together[2].trainable[0])
        assert np.allclose(model.get_layer("conv").kernel.numpy(), tiny().get_layer("conv").kernel.numpy())
    """)


TORCH = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                           reason="torch is not installed (make bench installs it)")


@pytest.mark.parametrize("backend,together", [("tensorflow", False), ("jax", False), ("jax", True),
                                              pytest.param("torch", False, marks=TORCH)])
def test_every_path_runs_the_protocol_steps_and_is_model_fit_on_the_same_batches(backend, together, on_backend):
    """Issue 12: on folds with fewer batches than one execution (32 steps) and a ragged last batch,
    each path runs exactly epochs x ceil(n / batch) optimizer steps, and with SGD its weights are those
    of a plain per-epoch model.fit (steps_per_execution=1) on the same batches."""
    out = _run(on_backend, backend, """
        import warnings
        from experiments.training import epoch_order
        together = %r
        epochs = 4
        model = tiny()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            states = (fit_folds(model, sgd, x, y, folds, batch_size=8, epochs=epochs, seed=7) if together else
                      [fit_folds(model, sgd, x, y, [fold], batch_size=8, epochs=epochs, seed=7)[0] for fold in folds])
        assert not [w for w in caught if "ran out of data" in str(w.message)], [str(w.message) for w in caught]
        for fold, state in zip(folds, states):
            assert state.steps == epochs * -(-fold.size // 8), (fold.size, state.steps)
            ref = tiny()
            ref.compile(optimizer=sgd(), loss="categorical_crossentropy", steps_per_execution=1)
            for epoch in range(epochs):
                order = fold[epoch_order(fold.size, 7, epoch)]
                hist = ref.fit({k: v[order] for k, v in x.items()}, y[order], batch_size=8, shuffle=False, verbose=0)
            assert int(keras.ops.convert_to_numpy(ref.optimizer.iterations)) == state.steps
            want = [keras.ops.convert_to_numpy(v) for v in ref.trainable_variables + ref.non_trainable_variables]
            for a, b in zip(state.trainable + state.non_trainable, want):
                np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
            assert abs(state.final_loss - hist.history["loss"][-1]) < 1e-4
        print("steps", [s.steps for s in states])
    """ % together)
    assert "steps [12, 16, 12]" in out, out


def test_bad_inputs_are_named():
    import keras

    from experiments.training import fit_folds

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    x = {"a": np.zeros((10, 4), "float32")}
    with pytest.raises(ValueError, match="input 'a': 10 windows, but y has 9"):
        fit_folds(model, keras.optimizers.SGD, x, np.zeros((9, 2)), [np.arange(5)], batch_size=2, epochs=1, seed=0)
    with pytest.raises(ValueError, match="fold 1: training index out of range"):
        fit_folds(model, keras.optimizers.SGD, x, np.zeros((10, 2)), [np.arange(5), np.arange(8, 12)],
                  batch_size=2, epochs=1, seed=0)
    with pytest.raises(ValueError, match="fold 0: no training windows"):
        fit_folds(model, keras.optimizers.SGD, x, np.zeros((10, 2)), [np.arange(0)], batch_size=2, epochs=1, seed=0)


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_mixed_precision_trains_with_float32_variables(backend, on_backend):
    """mixed_float16: float16 compute, float32 variables, dynamic loss scaling; finite losses."""
    _run(on_backend, backend, """
        keras.mixed_precision.set_dtype_policy("mixed_float16")
        model = tiny()
        states = fit_folds(model, sgd, x, y, folds[:2], batch_size=8, epochs=2, seed=0)
        assert all(np.isfinite(s.final_loss) for s in states)
        assert all(a.dtype == np.float32 for s in states for a in s.trainable)
        assert not np.allclose(states[0].trainable[0], model.get_layer("conv").kernel.numpy())
    """)


def test_the_backend_worker_reports_a_failing_script_and_resets_between_scripts(on_backend):
    """The warm per-backend worker (tests/backends.py) fails the test of a script that raises, keeps
    serving, and gives each script the float32 policy a fresh process has."""
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        on_backend("jax", "print('before'); 1 / 0")
    assert on_backend("jax", "import keras\nkeras.mixed_precision.set_dtype_policy('mixed_float16')\nprint('set')") == "set\n"
    out = on_backend("jax", "import keras\nprint(keras.backend.backend(), keras.mixed_precision.global_policy().name)")
    assert out.split() == ["jax", "float32"]
