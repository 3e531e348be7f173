"""transformer_ssl layers, loss, schedules and optimizer: NumPy twins plus the shared layer checks."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.layer_checks import run_layer_test, run_loss_test, run_schedule_test  # noqa: E402
from transformer_ssl.layers import (ClsSplit, ClsToken, SinusoidalPosition, TransformerEncoderBlock,  # noqa: E402
                                    receptive_field, sinusoidal_table)
from transformer_ssl.optimizers import CoupledL2Adam, adam_coupled_l2_numpy  # noqa: E402
from transformer_ssl.pretrain import (MaskConfig, MaskedMSE, apply_masks, make_masks, masked_mse,  # noqa: E402
                                      masked_mse_numpy, pack_targets)
from transformer_ssl.schedules import (StepDecay, WarmupLinearDecay, step_decay_numpy,  # noqa: E402
                                       warmup_linear_decay_numpy)

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------ layers
def test_cls_token_layer_checks_and_numpy():
    x = RNG.normal(size=(2, 5, 8)).astype("float32")
    run_layer_test(ClsToken, {}, x, expected_output_shape=(2, 6, 8), expected_num_trainable_weights=1)
    layer = ClsToken()
    out = keras.ops.convert_to_numpy(layer(x))
    token = keras.ops.convert_to_numpy(layer.token)
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(token, (2, 8)))
    np.testing.assert_allclose(out[:, 1:], x)


def test_sinusoidal_position_layer_checks_and_numpy_twin():
    x = RNG.normal(size=(2, 7, 6)).astype("float32")
    expected = x + sinusoidal_table(7, 6)[None]
    run_layer_test(SinusoidalPosition, {}, x, expected_output_shape=(2, 7, 6), expected_num_trainable_weights=0,
                   expected_output=expected, run_training_step=False)
    # Vaswani et al. section 3.5, written out for one entry: PE[pos, 2i] = sin(pos / 10000^(2i/d))
    assert sinusoidal_table(9, 4)[5, 2] == pytest.approx(np.sin(5 / 10000 ** (2 / 4)), rel=1e-6)
    assert sinusoidal_table(9, 4)[5, 3] == pytest.approx(np.cos(5 / 10000 ** (2 / 4)), rel=1e-6)
    odd = keras.ops.convert_to_numpy(SinusoidalPosition()(np.zeros((1, 4, 5), "float32")))
    np.testing.assert_allclose(odd[0], sinusoidal_table(4, 5), atol=1e-6)


def test_cls_split_layer_checks():
    x = RNG.normal(size=(2, 5, 4)).astype("float32")
    run_layer_test(ClsSplit, {}, x, expected_output_shape=[(2, 4, 4), (2, 4)], expected_num_trainable_weights=0,
                   expected_output=[x[:, 1:], x[:, 0]], run_training_step=False)


def _layer_norm(x, gamma, beta, eps):
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def transformer_block_numpy(x, layer):
    """Post-LN encoder layer of Vaswani et al. (2017) in NumPy, from the layer's own weights (no dropout)."""
    w = {v.path.split("/", 1)[1]: keras.ops.convert_to_numpy(v) for v in layer.weights}
    heads, d = layer.num_heads, layer.hidden
    q = np.einsum("btd,dhk->bthk", x, w["attention/query/kernel"]) + w["attention/query/bias"]
    k = np.einsum("btd,dhk->bthk", x, w["attention/key/kernel"]) + w["attention/key/bias"]
    v = np.einsum("btd,dhk->bthk", x, w["attention/value/kernel"]) + w["attention/value/bias"]
    scores = np.einsum("bqhk,bshk->bhqs", q, k) / np.sqrt(d // heads)      # QK^T / sqrt(d_k)
    scores = np.exp(scores - scores.max(-1, keepdims=True))
    att = scores / scores.sum(-1, keepdims=True)                           # softmax over keys
    ctx = np.einsum("bhqs,bshk->bqhk", att, v)
    a = np.einsum("bqhk,hkd->bqd", ctx, w["attention/attention_output/kernel"]) + w["attention/attention_output/bias"]
    y = _layer_norm(x + a, w["attention_norm/gamma"], w["attention_norm/beta"], layer.layer_norm_epsilon)
    f = np.maximum(y @ w["ffn_inner/kernel"] + w["ffn_inner/bias"], 0) @ w["ffn_outer/kernel"] + w["ffn_outer/bias"]
    return _layer_norm(y + f, w["ffn_norm/gamma"], w["ffn_norm/beta"], layer.layer_norm_epsilon)


def test_transformer_block_layer_checks_and_numpy_twin():
    x = RNG.normal(size=(2, 6, 8)).astype("float32")
    kwargs = dict(hidden=8, num_heads=2, ffn_dim=16, dropout=0.1)
    # MHA: q, k, v, output (kernel + bias each) = 8; two layer norms = 4; two dense = 4
    run_layer_test(TransformerEncoderBlock, kwargs, x, expected_output_shape=(2, 6, 8),
                   expected_num_trainable_weights=16, rtol=1e-4, atol=1e-5)
    layer = TransformerEncoderBlock(**kwargs)
    got = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(got, transformer_block_numpy(x.astype("float64"), layer), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs,match", [
    (dict(hidden=8, num_heads=3), "num_heads"), (dict(hidden=0), "hidden"), (dict(dropout=1.0), "dropout"),
    (dict(activation="tanh"), "activation"), (dict(ffn_dim=-1), "ffn_dim"),
])
def test_transformer_block_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerEncoderBlock(**kwargs)


def test_receptive_field_formula():
    assert receptive_field((65, 33, 17)) == 113


# ------------------------------------------------------------------ masking and the MVP loss
def test_masks_are_identical_across_channels_contiguous_and_cover_the_fraction():
    cfg = MaskConfig(fraction=0.15, min_span=16, max_span=64)
    masks = make_masks(5, 1280, cfg, np.random.default_rng(1))
    assert masks.shape == (5, 1280)
    assert (masks.sum(1) >= np.ceil(0.15 * 1280)).all()
    for m in masks:  # every run of masked steps is at least min_span long
        edges = np.flatnonzero(np.diff(np.r_[0, m.astype(int), 0]))
        assert (np.diff(edges)[::2] >= 16).all()
    x = RNG.normal(size=(5, 1280, 10)).astype("float32")
    xm = apply_masks(x, masks, fill=0.0)
    assert (xm[masks] == 0).all()                      # all channels of a masked step
    np.testing.assert_array_equal(xm[~masks], x[~masks])
    with pytest.raises(ValueError, match="masks"):
        apply_masks(x, masks[:, :100])


def test_mask_config_validation():
    for kwargs, match in [(dict(fraction=0), "fraction"), (dict(min_span=0), "min_span"),
                          (dict(min_span=10, max_span=5), "max_span")]:
        with pytest.raises(ValueError, match=match):
            MaskConfig(**kwargs)


def test_masked_mse_matches_numpy_and_ignores_unmasked_points():
    y_true = RNG.normal(size=(3, 20, 4)).astype("float32")
    y_pred = RNG.normal(size=(3, 20, 4)).astype("float32")
    mask = make_masks(3, 20, MaskConfig(0.3, 2, 5), np.random.default_rng(2))
    value = float(keras.ops.convert_to_numpy(masked_mse(y_true, y_pred, mask)))
    assert value == pytest.approx(masked_mse_numpy(y_true, y_pred, mask), rel=1e-5)
    perturbed = y_pred.copy()
    perturbed[~mask] += 100.0                          # unmasked predictions: no influence
    assert float(keras.ops.convert_to_numpy(masked_mse(y_true, perturbed, mask))) == pytest.approx(value, rel=1e-6)
    # and no gradient through unmasked points
    import tensorflow as tf

    if keras.backend.backend() == "tensorflow":
        p = tf.Variable(y_pred)
        with tf.GradientTape() as tape:
            loss = masked_mse(y_true, p, mask)
        g = tape.gradient(loss, p).numpy()
        assert (g[~mask] == 0).all() and (g[mask] != 0).any()


def test_masked_mse_loss_class_layer_checks():
    y = RNG.normal(size=(4, 12, 3)).astype("float32")
    pred = RNG.normal(size=(4, 12, 3)).astype("float32")
    mask = make_masks(4, 12, MaskConfig(0.25, 2, 4), np.random.default_rng(3))
    packed = pack_targets(y, mask)
    per = ((y - pred) ** 2 * mask[..., None]).sum((1, 2)) / (mask.sum(1).mean() * 3)
    assert per.mean() == pytest.approx(masked_mse_numpy(y, pred, mask), rel=1e-5)  # batch mean = pooled MSE
    np.testing.assert_allclose(keras.ops.convert_to_numpy(MaskedMSE().call(packed, pred)), per, rtol=1e-5)
    run_loss_test(MaskedMSE(), packed, pred, expected=per.mean(), rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ schedules
def test_warmup_linear_decay_values():
    steps = [0, 1, 15, 29, 30, 31, 265, 499, 500, 600]
    expected = warmup_linear_decay_numpy(steps, 5e-4, 30, 500)
    np.testing.assert_allclose(expected[[0, 2, 4, 6, 8]], [0, 2.5e-4, 5e-4, 2.5e-4, 0], atol=1e-12)
    run_schedule_test(WarmupLinearDecay, dict(peak_lr=5e-4, warmup_steps=30, total_steps=500), steps, expected,
                      rtol=1e-5, atol=1e-10)


def test_step_decay_values():
    steps = [0, 44, 45, 89, 90, 135]
    expected = step_decay_numpy(steps, 1e-4, 0.65, 45)
    np.testing.assert_allclose(expected, [1e-4, 1e-4, 6.5e-5, 6.5e-5, 4.225e-5, 2.74625e-5], rtol=1e-9)
    run_schedule_test(StepDecay, dict(initial_lr=1e-4, factor=0.65, step_size=45), steps, expected, rtol=1e-5)


@pytest.mark.parametrize("cls,kwargs,match", [
    (WarmupLinearDecay, dict(peak_lr=1e-3, warmup_steps=10, total_steps=10), "total_steps"),
    (WarmupLinearDecay, dict(peak_lr=-1, warmup_steps=1, total_steps=10), "peak_lr"),
    (StepDecay, dict(initial_lr=1e-3, factor=1.5, step_size=10), "factor"),
    (StepDecay, dict(initial_lr=1e-3, factor=0.5, step_size=0), "step_size"),
])
def test_schedule_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


# ------------------------------------------------------------------ coupled-L2 Adam
def test_coupled_l2_adam_matches_numpy_and_differs_from_adamw():
    w0 = np.array([[0.5, -1.0], [2.0, 0.1]], dtype="float32")
    grads = [RNG.normal(size=w0.shape).astype("float32") for _ in range(6)]
    schedule = StepDecay(0.05, 0.5, 3)
    var = keras.Variable(w0)
    opt = CoupledL2Adam(schedule, l2=0.1)
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    ref = adam_coupled_l2_numpy(w0, grads, lambda t: step_decay_numpy(t, 0.05, 0.5, 3), 0.1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(var), ref[-1], rtol=1e-5, atol=1e-6)
    adamw = keras.Variable(w0)
    other = keras.optimizers.AdamW(schedule, weight_decay=0.1, epsilon=1e-8)
    for g in grads:
        other.apply_gradients([(keras.ops.convert_to_tensor(g), adamw)])
    assert not np.allclose(keras.ops.convert_to_numpy(adamw), ref[-1], atol=1e-4)
    revived = CoupledL2Adam.from_config(opt.get_config())
    assert revived.l2 == 0.1 and isinstance(revived._learning_rate, StepDecay)
    with pytest.raises(ValueError, match="weight_decay"):
        CoupledL2Adam(weight_decay=0.1)
    with pytest.raises(ValueError, match="l2"):
        CoupledL2Adam(l2=-1.0)


def _torch_adam_documented(w, grads, lr, weight_decay, beta_1=0.9, beta_2=0.999, eps=1e-8):
    """torch.optim.Adam(weight_decay=...) as its documentation writes the algorithm (maximize=False,
    amsgrad=False), written out here without the package's twin:
    g <- g + wd * theta; m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    m_hat = m / (1 - b1^t); v_hat = v / (1 - b2^t); theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)."""
    theta, m, v = np.array(w, dtype="float64"), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        g = np.asarray(g, "float64") + weight_decay * theta
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        theta = theta - lr(t - 1) * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + eps)
    return theta


def test_coupled_l2_adam_matches_torch_adam_as_documented():
    """The Keras optimizer against an independent reference (not the package's NumPy twin): PyTorch's
    documented Adam with weight_decay. The two put epsilon at a different place (Keras adds it to
    sqrt(v), PyTorch to sqrt(v_hat)); with |g| >> eps that changes nothing at this tolerance."""
    w0 = np.array([[0.5, -1.0], [2.0, 0.1]], dtype="float32")
    grads = [RNG.normal(size=w0.shape).astype("float32") for _ in range(8)]
    lr = lambda t: step_decay_numpy(t, 0.05, 0.5, 3)  # noqa: E731
    var = keras.Variable(w0)
    opt = CoupledL2Adam(StepDecay(0.05, 0.5, 3), l2=0.1)
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    torch_like = _torch_adam_documented(w0, grads, lr, 0.1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(var), torch_like, rtol=1e-5, atol=1e-6)
    assert not np.allclose(torch_like, _torch_adam_documented(w0, grads, lr, 0.0), atol=1e-4)  # l2 matters here
