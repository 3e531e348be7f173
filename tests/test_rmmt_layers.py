"""RMMT layers and losses: NumPy twins of eqs. (9)-(20), (26) and the STYLE.md rule-4 layer checks."""
from __future__ import annotations

import numpy as np
import pytest

import keras

from rmmt.layers import (ChannelMean, CrossModalTransformerLayer, DecisionFusion, FeatureDistance,
                         FeatureStandardization, FramePooling, ResNetPreprocess, TargetScale, TCNBlock, relu_attention)
from rmmt.losses import ccc_loss, kd_loss, mean_output
from tests.layer_checks import run_layer_test, run_loss_test

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------ NumPy twins (STYLE.md rule 5)
def np_relu_attention(q, k, v):
    """Eqs. (12)-(13): ReLU(Q K^T / sqrt(d_k)) V."""
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    return np.maximum(scores, 0) @ v


def np_layer_norm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def np_cross_modal_layer(x_query, x_source, w):
    """Eqs. (9)-(16) with the weights of a built CrossModalTransformerLayer."""
    q = x_query @ w["W_Q"]                                   # eq. (9)
    k = x_source @ w["W_K"]                                  # eq. (10)
    v = x_source @ w["W_V"]                                  # eq. (11)
    x_tilde = np_layer_norm(q + np_relu_attention(q, k, v), w["gamma"], w["beta"], w["eps"])  # eqs. (12)-(14)
    ffn = np.maximum(x_tilde @ w["W_1"] + w["b_1"], 0) @ w["W_2"] + w["b_2"]                  # eq. (15)
    return x_tilde + ffn                                     # eq. (16)


def np_ccc(x, y):
    """Eq. (18) with population moments."""
    x, y = np.ravel(x).astype(np.float64), np.ravel(y).astype(np.float64)
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return 2 * cov / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def weights_of(layer: CrossModalTransformerLayer) -> dict:
    get = keras.ops.convert_to_numpy
    return {"W_Q": get(layer.query.kernel), "W_K": get(layer.key.kernel), "W_V": get(layer.value.kernel),
            "gamma": get(layer.norm.gamma), "beta": get(layer.norm.beta), "eps": layer.epsilon,
            "W_1": get(layer.ffn1.kernel), "b_1": get(layer.ffn1.bias),
            "W_2": get(layer.ffn2.kernel), "b_2": get(layer.ffn2.bias)}


# ------------------------------------------------------------------ relu_attention
@pytest.mark.parametrize("lq,lk,d,dv", [(5, 5, 8, 8), (3, 7, 4, 6)])
def test_relu_attention_matches_numpy(lq, lk, d, dv):
    q, k, v = (RNG.normal(size=s).astype("float32") for s in ((2, lq, d), (2, lk, d), (2, lk, dv)))
    got = keras.ops.convert_to_numpy(relu_attention(q, k, v))
    np.testing.assert_allclose(got, np_relu_attention(q, k, v), rtol=1e-5, atol=1e-5)


def test_relu_attention_hand_computed():
    # one query, two keys: scores (1*1 + 0*0)/sqrt(2) = 0.7071 and -0.7071 -> ReLU -> [0.7071, 0]
    q = np.array([[[1.0, 0.0]]], "float32")
    k = np.array([[[1.0, 0.0], [-1.0, 0.0]]], "float32")
    v = np.array([[[2.0], [5.0]]], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(relu_attention(q, k, v)), [[[2.0 / np.sqrt(2)]]], rtol=1e-6)


def test_relu_attention_is_not_softmax():
    # all-negative scores give zeros (a softmax would give a convex mix of the values)
    q = np.ones((1, 1, 2), "float32")
    k = -np.ones((1, 3, 2), "float32")
    v = RNG.normal(size=(1, 3, 4)).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(relu_attention(q, k, v)), np.zeros((1, 1, 4)))


def test_relu_attention_refuses_mismatched_dims():
    with pytest.raises(ValueError, match="q and k"):
        relu_attention(np.zeros((1, 2, 3)), np.zeros((1, 2, 4)), np.zeros((1, 2, 4)))


# ------------------------------------------------------------------ the Transformer layer (eqs. 9-16)
@pytest.mark.parametrize("self_attention", [False, True])
def test_cross_modal_layer_matches_numpy(self_attention):
    x_f = RNG.normal(size=(2, 6, 8)).astype("float32")
    x_e = x_f if self_attention else RNG.normal(size=(2, 6, 5)).astype("float32")
    layer = CrossModalTransformerLayer(d_model=4, ffn_dim=7)
    got = keras.ops.convert_to_numpy(layer([x_f, x_e]))
    np.testing.assert_allclose(got, np_cross_modal_layer(x_f, x_e, weights_of(layer)), rtol=1e-4, atol=1e-5)


def test_cross_modal_layer_checks():
    x_f = RNG.normal(size=(2, 6, 8)).astype("float32")
    x_e = RNG.normal(size=(2, 6, 5)).astype("float32")
    run_layer_test(CrossModalTransformerLayer, {"d_model": 4, "ffn_dim": 7, "dropout": 0.1}, [x_f, x_e],
                   expected_output_shape=(2, 6, 4), expected_num_trainable_weights=9)


def test_cross_modal_layer_refuses_bad_input():
    with pytest.raises(ValueError, match="d_model"):
        CrossModalTransformerLayer(d_model=0, ffn_dim=4)
    with pytest.raises(ValueError, match="expects"):
        CrossModalTransformerLayer(4, 4)(np.zeros((2, 3, 4), "float32"))


# ------------------------------------------------------------------ TCN block
def test_tcn_block_checks():
    x = RNG.normal(size=(2, 10, 6)).astype("float32")
    # width change: conv1, conv2, 1x1 downsample -> 3 kernels + 3 biases
    run_layer_test(TCNBlock, {"filters": 4, "kernel_size": 3, "dilation_rate": 2, "dropout": 0.1}, x,
                   expected_output_shape=(2, 10, 4), expected_num_trainable_weights=6)
    run_layer_test(TCNBlock, {"filters": 6, "kernel_size": 2}, x, expected_output_shape=(2, 10, 6),
                   expected_num_trainable_weights=4, run_mixed_precision=False, run_keras_reload=False)


def test_tcn_block_matches_numpy_and_is_causal():
    x = RNG.normal(size=(1, 12, 3)).astype("float32")
    layer = TCNBlock(4, kernel_size=3, dilation_rate=2)
    y = keras.ops.convert_to_numpy(layer(x))

    def causal_conv(inp, conv, d):
        k = keras.ops.convert_to_numpy(conv.kernel)
        b = keras.ops.convert_to_numpy(conv.bias)
        taps = k.shape[0]
        pad = np.pad(inp, [(0, 0), ((taps - 1) * d, 0), (0, 0)])
        out = np.zeros(inp.shape[:2] + (k.shape[2],))
        for t in range(inp.shape[1]):
            for j in range(taps):
                out[:, t] += pad[:, t + j * d] @ k[j]
        return out + b

    h = np.maximum(causal_conv(x, layer.conv1, 2), 0)
    h = np.maximum(causal_conv(h, layer.conv2, 2), 0)
    want = np.maximum(h + causal_conv(x, layer.downsample, 1), 0)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    x2 = x.copy()
    x2[:, 8:] += 10.0  # changing the future leaves the past unchanged
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x2))[:, :8], y[:, :8], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ small layers
def test_frame_pooling():
    x = RNG.normal(size=(2, 8, 3)).astype("float32")
    want = x.reshape(2, 2, 4, 3).mean(2)
    run_layer_test(FramePooling, {"frames_per_step": 4}, x, expected_output_shape=(2, 2, 3),
                   expected_num_trainable_weights=0, expected_output=want, run_training_step=False)
    with pytest.raises(ValueError, match="multiple of frames_per_step"):
        FramePooling(3)(x)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_feature_distance_eq20(stop_gradient):
    x_e = RNG.normal(size=(3, 5, 4)).astype("float32")
    x_f = RNG.normal(size=(3, 5, 4)).astype("float32")
    want = np.abs(x_e - x_f).sum(axis=(1, 2)) / (5 * 4)  # eq. (20): 1/(T H) sum_t |u_t - v_t|_1
    run_layer_test(FeatureDistance, {"stop_gradient": stop_gradient}, [x_e, x_f], expected_output_shape=(3,),
                   expected_num_trainable_weights=0, expected_output=want, run_training_step=False)


def test_feature_distance_stops_teacher_gradient():
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        pytest.skip("gradient check written with tf.GradientTape")
    x_e = tf.Variable(RNG.normal(size=(2, 3, 4)).astype("float32"))
    x_f = tf.Variable(RNG.normal(size=(2, 3, 4)).astype("float32"))
    for stop, teacher_has_grad in ((True, False), (False, True)):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(FeatureDistance(stop)([x_e, x_f]))
        g_e, g_f = tape.gradient(loss, [x_e, x_f])
        assert g_e is not None
        assert (g_f is not None and float(tf.reduce_sum(tf.abs(g_f))) > 0) == teacher_has_grad


def test_decision_fusion_eq26():
    f = RNG.normal(size=(2, 5)).astype("float32")
    e = RNG.normal(size=(2, 5)).astype("float32")
    run_layer_test(DecisionFusion, {"mu": 0.6, "eta": 0.4}, [f, e], expected_output_shape=(2, 5),
                   expected_num_trainable_weights=0, expected_output=0.6 * f + 0.4 * e, run_training_step=False)
    with pytest.raises(ValueError, match="mu, eta"):
        DecisionFusion(-1.0, 0.5)


def test_resnet_preprocess_matches_keras_applications():
    x = RNG.uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    want = keras.applications.resnet50.preprocess_input(x.copy())
    run_layer_test(ResNetPreprocess, {}, x, expected_output_shape=(2, 4, 4, 3), expected_num_trainable_weights=0,
                   expected_output=want, run_training_step=False, rtol=1e-5, atol=1e-3)


def test_feature_standardization():
    x = RNG.normal(size=(2, 5, 3)).astype("float32")
    run_layer_test(FeatureStandardization, {"variance_floor": 0.01}, x, expected_output_shape=(2, 5, 3),
                   expected_num_trainable_weights=0, expected_num_non_trainable_weights=2, expected_output=x,
                   run_training_step=False)  # identity until set_statistics
    layer = FeatureStandardization(variance_floor=0.1)
    layer.build((None, 5, 3))
    train = np.stack([RNG.normal(3.0, 2.0, 50), RNG.normal(-1.0, 1.0, 50), np.full(50, 7.0)], axis=1)
    layer.set_statistics(train)
    var = train.var(0)
    floor = 0.1 * var.mean()  # the constant third feature gets the floor, not a zero variance
    want = (x - train.mean(0)) / np.sqrt(np.maximum(var, floor))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="training steps"):
        layer.set_statistics(np.zeros((10, 4)))


def test_target_scale():
    x = RNG.normal(size=(2, 5, 1)).astype("float32")
    run_layer_test(TargetScale, {}, x, expected_output_shape=(2, 5, 1), expected_num_trainable_weights=0,
                   expected_num_non_trainable_weights=2, expected_output=x, run_training_step=False)  # identity first
    layer = TargetScale()
    layer.build((None, 5, 1))
    labels = RNG.normal(0.03, 0.07, 200)
    layer.set_statistics(labels)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), x * labels.std() + labels.mean(), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="training labels"):
        layer.set_statistics([0.1])


def test_channel_mean():
    x = RNG.uniform(0, 255, size=(2, 4, 4, 3)).astype("float32")
    run_layer_test(ChannelMean, {}, x, expected_output_shape=(2, 4, 4, 1), expected_num_trainable_weights=0,
                   expected_output=x.mean(-1, keepdims=True), run_training_step=False, rtol=1e-5, atol=1e-4)


# ------------------------------------------------------------------ losses (eqs. 18-21)
def test_ccc_loss_hand_computed():
    # x = [1, 2, 3], y = [1, 2, 4]: mean 2, 7/3; var 2/3, 14/9; cov 1; CCC = 2 / (2/3 + 14/9 + 1/9) = 6/7
    x = np.array([1.0, 2.0, 3.0], "float32")
    y = np.array([1.0, 2.0, 4.0], "float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ccc_loss(y, x)), 1 - 6 / 7, rtol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ccc_loss(y, y)), 0.0, atol=1e-7)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ccc_loss(y, -y + 2 * y.mean())), 2.0, rtol=1e-6)


def test_ccc_loss_matches_numpy_and_metrics():
    from experiments.metrics import ccc

    y = RNG.normal(size=(4, 9)).astype("float32")
    x = (0.7 * y + 0.3 * RNG.normal(size=(4, 9)) + 0.1).astype("float32")
    got = float(keras.ops.convert_to_numpy(ccc_loss(y, x)))
    assert got == pytest.approx(1 - np_ccc(x, y), rel=1e-5)
    assert got == pytest.approx(1 - ccc(y.ravel(), x.ravel()), rel=1e-5)
    # the layer-check helper: compiled evaluate on the whole batch gives the same value
    run_loss_test(ccc_loss, y, x, 1 - np_ccc(x, y))


def test_kd_loss_hand_computed():
    x_e = np.zeros((2, 4, 3), "float32")
    x_f = np.ones((2, 4, 3), "float32")
    x_f[0, 0, 0] = 4.0  # |0 - 4| = 4 once, 1 elsewhere: (23 + 4) / 24
    np.testing.assert_allclose(keras.ops.convert_to_numpy(kd_loss(x_e, x_f)), 27 / 24, rtol=1e-6)
    a = RNG.normal(size=(3, 5, 2)).astype("float32")
    b = RNG.normal(size=(3, 5, 2)).astype("float32")
    run_loss_test(kd_loss, b, a, np.abs(a - b).mean())
    with pytest.raises(ValueError, match="equal shapes"):
        kd_loss(np.zeros((2, 3)), np.zeros((3, 2)))


def test_mean_output_loss():
    run_loss_test(mean_output, np.zeros((4, 1), "float32"), np.array([[1.0], [2.0], [3.0], [6.0]], "float32"), 3.0)
