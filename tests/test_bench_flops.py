"""experiments.flops: counts of tiny models against a hand calculation and against XLA's own count."""
import json

import keras
import pytest

from experiments.flops import TRAIN_FACTOR, count


def dense_model():
    x = keras.Input((4,), name="x")
    h = keras.layers.Dense(3, name="d1")(x)  # 2*4*3 + 3 (bias) = 27 per sample
    return keras.Model(x, keras.layers.Dense(2, use_bias=False, name="d2")(h))  # 2*3*2 = 12


def conv_model():
    x = keras.Input((16, 3), name="x")
    h = keras.layers.Conv1D(4, 5, name="c1")(x)  # valid: 12 steps; 2*12*5*3*4 + 12*4 = 1488
    return keras.Model(x, keras.layers.Conv1D(2, 3, strides=2, use_bias=False, name="c2")(h))  # 5 steps: 2*5*3*4*2 = 240


def attention_model():
    x = keras.Input((6, 8), name="x")
    return keras.Model(x, keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x))


# per sample, by hand (comments above); attention: q, k, v projections 3 * (2*6*8*2*4 + 6*2*4) = 2448,
# output projection 2*6*2*4*8 + 6*8 = 816, Q K^T and A V 2*2*6*6*(4 + 4) = 1152
HAND = {"dense": 27 + 12, "conv": 1488 + 240, "attention": 2448 + 816 + 1152}
BUILDERS = {"dense": dense_model, "conv": conv_model, "attention": attention_model}


@pytest.mark.parametrize("name", sorted(HAND))
def test_count_matches_the_hand_calculation(name):
    model = BUILDERS[name]()
    out = count(model, batch=5)
    assert out["forward"] == 5 * HAND[name]
    assert out["train"] == TRAIN_FACTOR * out["forward"]


def test_count_leaves_the_layers_as_they_were():
    model = attention_model()
    count(model)
    assert all("call" not in vars(layer) for layer in model._flatten_layers())


def test_count_of_a_custom_layer_with_sublayers():
    """RMMT's cross-modal layer: its Dense projections (W_Q, W_K, W_V without bias, eqs. 9-11; the FFN
    with) and its Q K^T, A V products (eqs. 12-13)."""
    from rmmt.layers import CrossModalTransformerLayer

    q, s = keras.Input((5, 6), name="q"), keras.Input((7, 3), name="s")
    layer = CrossModalTransformerLayer(d_model=4, ffn_dim=8, name="cross")
    model = keras.Model([q, s], layer([q, s]))
    by_hand = 2 * 5 * 6 * 4 + 2 * (2 * 7 * 3 * 4) \
        + 2 * 2 * 5 * 7 * 4 + (2 * 5 * 4 * 8 + 5 * 8) + (2 * 5 * 8 * 4 + 5 * 4)
    assert count(model)["forward"] == by_hand


XLA_SCRIPT = """
import json
from tests.test_bench_flops import BUILDERS
from experiments.flops import count, xla_flops
print(json.dumps({k: [count(b(), 5)["forward"], xla_flops(b(), 5)["forward"]] for k, b in BUILDERS.items()}))
"""


def test_count_agrees_with_xla_cost_analysis(on_backend):
    """Exact for matrix products and valid convolutions; with attention XLA adds the softmax and the
    1/sqrt(d) scaling (element-wise, not counted here): within 15 %."""
    got = json.loads(on_backend("jax", XLA_SCRIPT).strip().splitlines()[-1])
    assert got["dense"][0] == got["dense"][1] == 5 * HAND["dense"]
    assert got["conv"][0] == got["conv"][1] == 5 * HAND["conv"]
    ours, xla = got["attention"]
    assert ours == 5 * HAND["attention"] and ours <= xla <= 1.15 * ours
