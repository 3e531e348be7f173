"""Precise BN (experiments.batchnorm): exact statistics layer after layer, in inference mode.

The statistics are checked against an independent NumPy forward pass of a small dense model
(eq.: BN(h) = gamma (h - mu) / sqrt(var + eps) + beta, mu/var over every window), and, for
convolutional and nested models, against Keras's own inference path up to each layer. Each check
is shown to fail on a model whose statistics were left alone.
"""
import importlib.util
import textwrap

import keras
import numpy as np
import pytest

from experiments import batchnorm
from experiments.batchnorm import batchnorm_layers, precise_batchnorm

RNG = np.random.default_rng(0)


def dense_model():
    """x -> Dense 6 -> BN -> ReLU -> Dense 3 -> BN: small enough for a NumPy twin."""
    inp = keras.Input((5,), name="x")
    h = keras.layers.Dense(6, name="d1")(inp)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = keras.layers.Dense(3, name="d2")(h)
    out = keras.layers.BatchNormalization(name="bn2")(h)
    return keras.Model(inp, out)


def numpy_statistics(model, x) -> list[tuple[np.ndarray, np.ndarray]]:
    """Exact input statistics of bn1 and bn2 with bn1 normalising by its own exact statistics."""
    w1, b1 = (np.asarray(v, dtype=np.float64) for v in model.get_layer("d1").get_weights())
    g1, be1 = (np.asarray(v, dtype=np.float64) for v in model.get_layer("bn1").get_weights()[:2])
    w2, b2 = (np.asarray(v, dtype=np.float64) for v in model.get_layer("d2").get_weights())
    eps = model.get_layer("bn1").epsilon
    h1 = x.astype(np.float64) @ w1 + b1
    m1, v1 = h1.mean(0), h1.var(0)
    r = np.maximum(g1 * (h1 - m1) / np.sqrt(v1 + eps) + be1, 0)
    h2 = r @ w2 + b2
    return [(m1, v1), (h2.mean(0), h2.var(0))]


def moving(layer):
    return (keras.ops.convert_to_numpy(layer.moving_mean), keras.ops.convert_to_numpy(layer.moving_variance))


def trained(model, x, steps=30):
    """A few training steps so that weights, gamma and beta are not at their initial values."""
    model.compile("adam", "mse")
    y = RNG.normal(size=(len(x), *model.outputs[0].shape[1:])).astype("float32")
    model.fit(x, y, epochs=steps, batch_size=16, verbose=0)
    return model


def matches(model, x, want, rtol=1e-5, atol=1e-6) -> bool:
    for layer, (mean, var) in zip(batchnorm_layers(model), want):
        got_mean, got_var = moving(layer)
        if not (np.allclose(got_mean, mean, rtol=rtol, atol=atol) and np.allclose(got_var, var, rtol=rtol, atol=atol)):
            return False
    return True


def test_dense_statistics_equal_a_numpy_forward_pass():
    x = RNG.normal(2.0, 3.0, size=(101, 5)).astype("float32")
    model = trained(dense_model(), x)
    want = numpy_statistics(model, x)
    assert not matches(model, x, want)  # the moving averages after 30 epochs are not exact
    kernels = [v.copy() for v in model.get_weights()]
    assert precise_batchnorm(model, x, batch_size=16) == 2  # chunks of 16: statistics still over all 101
    assert matches(model, x, want)
    # no trained weight changed (only the moving mean and variance)
    trainable_after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    trainable_before = [k for k, v in zip(kernels, model.weights) if v.trainable]
    for a, b in zip(trainable_after, trainable_before):
        np.testing.assert_array_equal(a, b)


def test_a_version_that_leaves_the_statistics_alone_fails(monkeypatch):
    x = RNG.normal(size=(64, 5)).astype("float32")
    model = trained(dense_model(), x, steps=5)
    want = numpy_statistics(model, x)
    monkeypatch.setattr(batchnorm, "set_exact_statistics", lambda layer, x: (None, None))
    precise_batchnorm(model, x)
    assert not matches(model, x, want)


def conv_model_with_nested_block():
    """Conv -> BN -> ReLU -> [nested functional: Conv -> BN] -> pooling -> Dense (two inputs)."""
    a = keras.Input((64, 1), name="a")
    b = keras.Input((64, 1), name="b")
    inner_in = keras.Input((64, 4))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(
        keras.layers.Conv1D(4, 3, padding="same", name="inner_conv")(inner_in)), name="block")
    h = keras.layers.Concatenate(name="cat")([a, b])
    h = keras.layers.Conv1D(4, 5, padding="same", name="conv")(h)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.ReLU(name="relu")(h)
    h = inner(h)
    h = keras.layers.Dropout(0.5, name="drop")(h)  # inference mode: dropout must be off
    out = keras.layers.Dense(2, activation="softmax", name="out")(keras.layers.GlobalAveragePooling1D()(h))
    return keras.Model([a, b], out)


def keras_inference_statistics(model, x) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each BN layer's input over ``x`` through Keras's own inference path (predict of a sub-model)."""
    stats = []
    outer_bn = model.get_layer("bn")
    a = keras.Model(model.inputs, outer_bn.input).predict(x, verbose=0).astype(np.float64)
    stats.append((a.mean((0, 1)), a.var((0, 1))))
    block = model.get_layer("block")
    h = keras.Model(model.inputs, model.get_layer("relu").output).predict(x, verbose=0)  # the block's input
    inner_in = keras.Model(block.inputs, block.get_layer("inner_bn").input).predict(h, verbose=0).astype(np.float64)
    stats.append((inner_in.mean((0, 1)), inner_in.var((0, 1))))
    return stats


def test_conv_and_nested_model_match_keras_inference_layer_after_layer():
    x = {"a": RNG.normal(size=(40, 64, 1)).astype("float32"), "b": RNG.normal(1, 2, size=(40, 64, 1)).astype("float32")}
    model = conv_model_with_nested_block()
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, keras.utils.to_categorical(RNG.integers(0, 2, 40), 2), epochs=3, batch_size=8, verbose=0)
    assert [layer.name for layer in batchnorm_layers(model)] == ["bn", "inner_bn"]
    assert not matches(model, x, keras_inference_statistics(model, x), rtol=1e-4, atol=1e-5)
    assert precise_batchnorm(model, x, batch_size=7) == 2
    # bn's statistics are now exact, so the inner block's input as Keras infers it is what we used
    assert matches(model, x, keras_inference_statistics(model, x), rtol=1e-4, atol=1e-5)
    # the predictions are deterministic (dropout off) and the model still saves and reloads
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(p, model.predict(x, verbose=0))


def test_mixed_precision_statistics_in_float32_variables():
    x = RNG.normal(size=(48, 5)).astype("float32")
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = dense_model()
        model.compile("adam", "mse")
        precise_batchnorm(model, x)
        want = numpy_statistics(model, x)
        for layer in batchnorm_layers(model):
            assert layer.compute_dtype == "float16" and layer.moving_mean.dtype == "float32"
        assert matches(model, x, want, rtol=2e-2, atol=2e-2)  # float16 activations
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_bad_inputs_are_named():
    model = conv_model_with_nested_block()
    with pytest.raises(ValueError, match=r"x: no input \['b'\]"):
        precise_batchnorm(model, {"a": np.zeros((4, 64, 1), "float32")})
    with pytest.raises(ValueError, match="inputs of"):
        precise_batchnorm(model, {"a": np.zeros((4, 64, 1), "float32"), "b": np.zeros((3, 64, 1), "float32")})
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert precise_batchnorm(plain, np.zeros((4, 3), "float32")) == 0  # nothing to do


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(backend, on_backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    script = textwrap.dedent("""
        import numpy as np, keras
        from tests.test_batchnorm import dense_model, numpy_statistics, trained, matches
        from experiments.batchnorm import precise_batchnorm
        assert keras.backend.backend() == "%s"
        x = np.random.default_rng(1).normal(size=(50, 5)).astype("float32")
        model = trained(dense_model(), x, steps=5)
        want = numpy_statistics(model, x)
        assert not matches(model, x, want)
        assert precise_batchnorm(model, x, batch_size=16) == 2
        assert matches(model, x, want)
        print("ok")
    """) % backend
    assert on_backend(backend, script).strip().endswith("ok")
