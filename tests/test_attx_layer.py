"""AttX against two NumPy formulations of eqs. (1)-(5), plus the shared layer checks (STYLE.md 4, 5).

``attx_numpy`` is the vectorised form (it mirrors the layer's broadcasting); ``attx_loops`` is an
independent formulation written element by element from the paper's equations, with explicit loops
over batch, time, channel and modality, so that a broadcasting mistake shared by the layer and the
vectorised reference cannot pass unnoticed.
"""
import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from attx_keras.layers import DIRECTIONS, SCORES, AttX  # noqa: E402
from tests.layer_checks import run_layer_test  # noqa: E402


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


def attx_loops(z_ecg, z_eda, W, w_u, direction, score):
    """Eqs. (1)-(5) of the AttX paper, one scalar at a time.

    Dimension-consistent reading (attx_keras/layers.py, DESIGN.md): S[t, c, k] is modality k
    (0 = ECG, 1 = EDA) at time t and channel c; W (d x d) mixes modalities; w_u (m,) weights
    channels; the softmax of eq. (2) runs over the modality index k. ``score="per_step"`` is the
    other reading: one score per (t, k), summed over channels, shared by every channel.
    Eq. (5) as printed concatenates Z_eda with Ẑ_eda; the text around it (and Fig. 1) exchanges
    information across modalities, so X_eda = [Z_eda, Ẑ_ecg], as in the layer.
    """
    b, n, m = z_ecg.shape
    d = 2
    wide_ecg = direction != "ecg_to_eda"
    wide_eda = direction != "eda_to_ecg"
    x_ecg = np.zeros((b, n, 2 * m if wide_ecg else m))
    x_eda = np.zeros((b, n, 2 * m if wide_eda else m))
    for i in range(b):
        for t in range(n):
            S = [[(float(z_ecg[i, t, c]), float(z_eda[i, t, c]))[k] for k in range(d)] for c in range(m)]
            # eq. (1): U[t, c, k] = ReLU(sum_j S[t, c, j] * W[j, k])
            U = [[max(0.0, sum(S[c][j] * float(W[j, k]) for j in range(d))) for k in range(d)] for c in range(m)]
            # eq. (2): scores weighted by w_u over channels, softmax over the modality axis
            if score == "elementwise":
                scores = [[U[c][k] * float(w_u[c]) for k in range(d)] for c in range(m)]
            else:
                shared = [sum(U[c][k] * float(w_u[c]) for c in range(m)) for k in range(d)]
                scores = [list(shared) for _ in range(m)]
            theta = []
            for c in range(m):
                top = max(scores[c])
                e = [math.exp(scores[c][k] - top) for k in range(d)]
                theta.append([e[k] / sum(e) for k in range(d)])
            for c in range(m):
                zhat_ecg = theta[c][0] * S[c][0]          # eq. (3): theta_ecg ⊙ Z_ecg
                zhat_eda = theta[c][1] * S[c][1]          #          theta_eda ⊙ Z_eda
                x_ecg[i, t, c] = S[c][0]                  # eq. (4): X_ecg = [Z_ecg ⊗ Ẑ_eda]
                x_eda[i, t, c] = S[c][1]                  # eq. (5): X_eda = [Z_eda ⊗ Ẑ_ecg]
                if wide_ecg:
                    x_ecg[i, t, m + c] = zhat_eda
                if wide_eda:
                    x_eda[i, t, m + c] = zhat_ecg
    return x_ecg, x_eda


def _weights(seed, m):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(2, 2)).astype("float32"), rng.normal(size=(m,)).astype("float32")


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("score", SCORES)
def test_attx_matches_the_loop_formulation(direction, score):
    rng = np.random.default_rng(4)
    z_ecg = rng.normal(size=(2, 6, 4)).astype("float32")
    z_eda = rng.normal(size=(2, 6, 4)).astype("float32")
    W, w_u = _weights(5, 4)
    layer = AttX(direction=direction, score=score)
    layer([z_ecg, z_eda])
    layer.W.assign(W)
    layer.w_u.assign(w_u)
    got = [keras.ops.convert_to_numpy(o) for o in layer([z_ecg, z_eda])]
    loops = attx_loops(z_ecg, z_eda, W, w_u, direction, score)
    for g, want in zip(got, loops, strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    # the two references agree with each other too (a check on the vectorised twin itself)
    for v, want in zip(attx_numpy(z_ecg, z_eda, W, w_u, direction, score), loops, strict=True):
        np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-6)


def test_loop_formulation_is_not_vacuous():
    """The loop reference must tell the options apart, or the comparison above proves little."""
    rng = np.random.default_rng(6)
    z = [rng.normal(size=(1, 3, 4)) for _ in range(2)]
    W, w_u = _weights(7, 4)
    elem = attx_loops(*z, W, w_u, "both", "elementwise")
    step = attx_loops(*z, W, w_u, "both", "per_step")
    assert not np.allclose(elem[0], step[0])
    one_way = attx_loops(*z, W, w_u, "ecg_to_eda", "elementwise")
    assert one_way[0].shape == (1, 3, 4) and one_way[1].shape == (1, 3, 8)
    np.testing.assert_allclose(one_way[1], elem[1])


@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("score", SCORES)
def test_attx_layer_checks(direction, score):
    """The shared rule-4 checks (config, build, symbolic/eager calls, compiled step, mixed precision,
    .keras reload) with constant initialisers, so the eager output is compared with eqs. (1)-(5)."""
    rng = np.random.default_rng(8)
    z_ecg = rng.normal(size=(3, 5, 4)).astype("float32")
    z_eda = rng.normal(size=(3, 5, 4)).astype("float32")
    W, w_u = _weights(9, 4)
    init = {"direction": direction, "score": score,
            "w_initializer": keras.initializers.Constant(W.tolist()),
            "wu_initializer": keras.initializers.Constant(w_u.tolist())}
    expected = attx_loops(z_ecg, z_eda, W, w_u, direction, score)
    run_layer_test(AttX, init, [z_ecg, z_eda],
                   expected_output_shape=[o.shape for o in expected],
                   expected_num_trainable_weights=2, expected_output=list(expected))
