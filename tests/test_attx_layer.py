"""AttX against a NumPy implementation of eqs. (1)-(5), plus keras-hub style layer checks."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from attx_keras.layers import DIRECTIONS, SCORES, AttX  # noqa: E402


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def attx_numpy(z_ecg, z_eda, W, w_u, direction, score):
    s = np.stack([z_ecg, z_eda], axis=-1)                     # (b, t, m, 2)
    u = np.maximum(s @ W, 0)                                  # eq. (1)
    scores = u * w_u[:, None]
    if score == "per_step":
        scores = scores.sum(axis=-2, keepdims=True)
    theta = softmax(scores, axis=-1)                          # eq. (2)
    zh_ecg, zh_eda = theta[..., 0] * z_ecg, theta[..., 1] * z_eda  # eq. (3)
    x_ecg = z_ecg if direction == "ecg_to_eda" else np.concatenate([z_ecg, zh_eda], -1)  # eq. (4)
    x_eda = z_eda if direction == "eda_to_ecg" else np.concatenate([z_eda, zh_ecg], -1)  # eq. (5)
    return x_ecg, x_eda


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("score", SCORES)
def test_attx_matches_numpy(direction, score):
    rng = np.random.default_rng(0)
    z_ecg = rng.normal(size=(2, 7, 5)).astype("float32")
    z_eda = rng.normal(size=(2, 7, 5)).astype("float32")
    layer = AttX(direction=direction, score=score)
    out = layer([z_ecg, z_eda])
    W = rng.normal(size=(2, 2)).astype("float32")
    w_u = rng.normal(size=(5,)).astype("float32")
    layer.W.assign(W)
    layer.w_u.assign(w_u)
    out = [keras.ops.convert_to_numpy(o) for o in layer([z_ecg, z_eda])]
    ref = attx_numpy(z_ecg, z_eda, W, w_u, direction, score)
    for got, want in zip(out, ref):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert [tuple(s) for s in layer.compute_output_shape([(2, 7, 5), (2, 7, 5)])] == [o.shape for o in ref]
    assert sorted(v.path.split("/")[-1] for v in layer.trainable_weights) == ["W", "w_u"]
    assert layer.W.shape == (2, 2) and layer.w_u.shape == (5,)


def test_attention_weights_sum_to_one_over_modalities():
    rng = np.random.default_rng(1)
    z = [rng.normal(size=(3, 4, 6)).astype("float32") for _ in range(2)]
    layer = AttX()
    layer(z)
    theta = keras.ops.convert_to_numpy(layer.attention(*z))
    assert theta.shape == (3, 4, 6, 2)
    np.testing.assert_allclose(theta.sum(-1), 1.0, rtol=1e-6)


def test_shape_mismatch_and_bad_arguments():
    with pytest.raises(ValueError, match="equal shapes"):
        AttX()([np.zeros((1, 5, 4), "float32"), np.zeros((1, 5, 3), "float32")])
    with pytest.raises(ValueError, match="direction"):
        AttX(direction="ecg->eda")
    with pytest.raises(ValueError, match="score"):
        AttX(score="dot")


def test_symbolic_call_config_roundtrip_and_serialization(tmp_path):
    a, b = keras.Input((20, 8)), keras.Input((20, 8))
    x_ecg, x_eda = AttX(direction="eda_to_ecg", score="per_step", name="attx")([a, b])
    assert tuple(x_ecg.shape) == (None, 20, 16) and tuple(x_eda.shape) == (None, 20, 8)
    model = keras.Model([a, b], [x_ecg, x_eda])
    layer = model.get_layer("attx")
    clone = AttX.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    data = [np.random.default_rng(2).normal(size=(3, 20, 8)).astype("float32") for _ in range(2)]
    path = tmp_path / "attx.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for got, want in zip(loaded.predict(data, verbose=0), model.predict(data, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_one_training_step_changes_the_attention_weights():
    a, b = keras.Input((10, 4), name="a"), keras.Input((10, 4), name="b")
    x_ecg, x_eda = AttX(name="attx")([a, b])
    y = keras.layers.Dense(1)(keras.layers.Flatten()(keras.layers.Concatenate()([x_ecg, x_eda])))
    model = keras.Model([a, b], y)
    model.compile("adam", "mse", run_eagerly=True)
    before = [v.numpy().copy() for v in model.get_layer("attx").trainable_weights]
    rng = np.random.default_rng(3)
    model.train_on_batch([rng.normal(size=(8, 10, 4)), rng.normal(size=(8, 10, 4))], rng.normal(size=(8, 1)))
    after = [v.numpy() for v in model.get_layer("attx").trainable_weights]
    assert all(not np.allclose(x, y) for x, y in zip(before, after))


def test_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = AttX()
        out = layer([np.ones((2, 5, 3), "float16"), np.zeros((2, 5, 3), "float16")])
        assert all(o.dtype == "float16" for o in out)
        assert layer.W.dtype == "float32"
        assert np.isfinite(keras.ops.convert_to_numpy(out[0])).all()
    finally:
        keras.mixed_precision.set_global_policy("float32")
