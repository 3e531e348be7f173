"""transformer_ssl models: the CNN's receptive field, registry rows (build, one step, .keras round trip),
the parameter-count table, Fig. 1/2 structure, frozen recognizers under late fusion, bad arguments."""
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from tests.model_checks import check_param_counts, check_param_table, check_round_trip, write_param_counts  # noqa: E402
from transformer_ssl import models as M  # noqa: E402

CSV = Path(M.__file__).resolve().parent / "param_counts.csv"
SECONDS = 1.0  # 128 samples: the same layers and weights as the paper's 10 s, much faster


def expected_rows() -> dict:
    """``{row: (builder, config)}`` of the registry, the config at the paper's input (10 s)."""
    return {name: (builder, {**config, "input_seconds": 10.0}) for name, (builder, config) in M.MODEL_CONFIGS.items()}


def test_cnn_receptive_field_by_perturbation():
    keras.utils.set_random_seed(0)
    cnn = M.build_cnn(10)
    names = [layer.name for layer in cnn.layers if isinstance(layer, keras.layers.Conv1D)]
    assert [cnn.get_layer(n).kernel_size[0] for n in names] == [65, 33, 17]
    assert [cnn.get_layer(n).filters for n in names] == [64, 128, 256]
    assert all(cnn.get_layer(n).strides == (1,) for n in names)
    x = np.random.default_rng(0).normal(size=(1, 400, 10)).astype("float32")
    base = cnn.predict(x, verbose=0)
    assert base.shape == (1, 400, 256)  # time axis preserved
    t0 = 200
    xp = x.copy()
    xp[0, t0] += 5.0
    changed = np.flatnonzero(np.abs(cnn.predict(xp, verbose=0) - base).max(axis=(0, 2)) > 1e-6)
    # each output step sees 113 inputs: t - 56 .. t + 56
    assert changed.min() >= t0 - 56 and changed.max() <= t0 + 56
    assert changed.max() - changed.min() + 1 == M.RECEPTIVE_FIELD == 113


@pytest.mark.parametrize("name", sorted(M.MODEL_CONFIGS))
def test_registry_row_builds_trains_one_step_and_roundtrips(name, tmp_path):
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = M.MODELS[name](SECONDS)
    rng = np.random.default_rng(0)
    x = {t.name: rng.normal(size=(2, *t.shape[1:])).astype("float32") for t in model.inputs}
    if name in ("cnn_eeg", "encoder_eeg"):  # single-input models called with an array
        x = next(iter(x.values()))
    outputs = model.outputs
    y = [rng.normal(size=(2, *o.shape[1:])).astype("float32") for o in outputs]
    # eager: one step needs no traced graph (3-5 s per row); the smoke runs of test_tssl_task train
    # these models in graph mode
    model.compile(optimizer="adam", loss=["mse"] * len(y) if len(y) > 1 else "mse", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y if len(y) > 1 else y[0])
    assert np.all(np.isfinite(loss))
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    check_round_trip(model, x, tmp_path / f"{name}.keras", atol=1e-5)


def test_parameter_counts_table_is_true_and_complete():
    table = check_param_table(CSV, expected_rows())
    for name in M.MODEL_CONFIGS:
        keras.backend.clear_session()
        check_param_counts(M.MODELS[name](SECONDS), table[name], CSV)  # counts do not depend on the input length


def test_encoder_and_recognizer_structure_reads_like_fig1():
    enc = M.build_encoder(10, input_seconds=SECONDS)
    names = [layer.name for layer in enc.layers]
    assert names == ["eeg", "eeg_cnn_conv1", "eeg_cnn_conv2", "eeg_cnn_conv3", "eeg_cls_token", "eeg_positions",
                     "eeg_transformer1", "eeg_transformer2", "eeg_cls_split"]
    assert [tuple(o.shape) for o in enc.outputs] == [(None, 128, 256), (None, 256)]
    block = enc.get_layer("eeg_transformer1")
    assert (block.hidden, block.num_heads, block.dropout) == (256, 2, 0.1)
    rec = M.build_recognizer(1, input_seconds=SECONDS, modality="ecg")
    assert rec.get_layer("ecg_fcn_hidden").units == 64 and rec.get_layer("ecg_fcn_dropout").rate == 0.6
    assert rec.get_layer("ecg_fcn_output").units == 1
    pre = M.build_pretrain_model(10, input_seconds=SECONDS)
    assert pre.get_layer("eeg_mvp_fcn_hidden").units == 128 and tuple(pre.output.shape) == (None, 128, 10)


def test_fused_model_training_leaves_the_unimodal_weights_unchanged():
    keras.utils.set_random_seed(0)
    eeg = M.build_recognizer(10, input_seconds=SECONDS, modality="eeg")
    ecg = M.build_recognizer(1, input_seconds=SECONDS, modality="ecg")
    uni_before = [w.copy() for w in eeg.get_weights() + ecg.get_weights()]
    fused = M.build_fused(eeg, ecg)
    head = fused.get_layer("multimodal_classifier")
    assert [layer.name for layer in head.layers[1:]] == ["fusion_fc1", "fusion_dropout1", "fusion_fc2",
                                                         "fusion_dropout2", "fusion_output"]
    assert head.get_layer("fusion_fc1").units == 64 and head.get_layer("fusion_fc2").units == 32
    assert fused.get_layer("fusion_concat").output.shape[-1] == 128
    head_before = [w.copy() for w in head.get_weights()]
    rng = np.random.default_rng(0)
    x = {"eeg": rng.normal(size=(8, 128, 10)).astype("float32"), "ecg": rng.normal(size=(8, 128, 1)).astype("float32")}
    y = rng.integers(0, 2, size=(8, 1)).astype("float32")
    fused.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
    fused.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for a, b in zip(uni_before, eeg.get_weights() + ecg.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.allclose(a, b) for a, b in zip(head_before, head.get_weights()))
    assert sum(np.prod(v.shape) for v in fused.trainable_weights) == 128 * 64 + 64 + 64 * 32 + 32 + 32 + 1


def test_fused_model_equals_head_on_precomputed_features():
    """The task trains the head on features computed once: the same function as the whole model."""
    keras.utils.set_random_seed(1)
    eeg = M.build_recognizer(10, input_seconds=SECONDS, modality="eeg")
    ecg = M.build_recognizer(1, input_seconds=SECONDS, modality="ecg")
    fused = M.build_fused(eeg, ecg)
    rng = np.random.default_rng(1)
    x = {"eeg": rng.normal(size=(3, 128, 10)).astype("float32"), "ecg": rng.normal(size=(3, 128, 1)).astype("float32")}
    z = np.concatenate([M.recognizer_features(eeg).predict({"eeg": x["eeg"]}, verbose=0),
                        M.recognizer_features(ecg).predict({"ecg": x["ecg"]}, verbose=0)], axis=1)
    head = fused.get_layer("multimodal_classifier")
    np.testing.assert_allclose(fused.predict(x, verbose=0), head.predict({"fused_features": z}, verbose=0),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: M.build_cnn(0), "n_channels"),
    (lambda: M.build_cnn(10, fs=-1, input_seconds=1), "fs"),
    (lambda: M.build_encoder(10, input_seconds=0), "input_seconds"),
    (lambda: M.build_encoder(10, input_seconds=1.001), "whole number"),
    (lambda: M.build_encoder(10, modality="emg"), "modality"),
    (lambda: M.build_encoder(10, positions="learned"), "positions"),
    (lambda: M.build_encoder(10, hidden=128), "filters"),
    (lambda: M.build_recognizer(10, dropout_rate=0.5), "unexpected encoder argument"),
])
def test_bad_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_paper_cost_counts_from_shapes():
    from transformer_ssl.cost import forward_flops, paper_cost

    tiny = dict(kernels=(3,), filters=(4,), hidden=4, num_layers=1, ffn_dim=8)
    t, tp = 10, 11
    expected = 2 * t * 3 * 2 * 4 + (2 * tp * 4 * 16 + 4 * tp * tp * 4 + 4 * tp * 4 * 8)
    assert forward_flops(2, samples=t, **tiny) == expected
    cost = paper_cost()
    assert 10e18 < cost["total"] < 30e18 and 0.8 < cost["pretraining_share"] < 0.9
    assert paper_cost(shared_pretraining=True)["total"] < cost["total"] / 2


def test_diagnose_spread_is_zero_for_an_input_independent_feature():
    from transformer_ssl.diagnose import spread

    rng = np.random.default_rng(0)
    const = np.tile(rng.normal(size=(1, 8)), (5, 1))
    assert spread(const) == pytest.approx(0.0, abs=1e-9)
    varying = const + 0.1 * rng.normal(size=const.shape)
    assert 0.01 < spread(varying) < 1.0


def test_diagnose_cls_report_finds_a_signal_that_is_a_small_share_of_a_constant():
    """The --head-only measurement: a label carried by 1 % of a large shared constant is reported as a
    small std/mean share, found by the linear probe, and learned by the head on standardised features."""
    from transformer_ssl.diagnose import cls_report

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    f = np.ones((400, 256)) * rng.uniform(0.5, 1.0, 256) + 0.01 * (y[:, None] - 0.5) * rng.normal(size=256)
    f += 0.001 * rng.normal(size=f.shape)
    train, test = np.arange(300), np.arange(300, 400)
    out = cls_report(f.astype("float32"), y, train, test, lr=1e-3, epochs=5, batch=32, seed=0,
                     variants=("standardised",))
    assert out["cls_std_over_mean"] < 0.02
    assert out["probe_f1_macro"] > 0.9
    assert out["standardised"][-1]["f1_macro"] > 0.9 and out["standardised"][-1]["dead_share"] < 0.5


if __name__ == "__main__":
    print(f"wrote {write_param_counts(CSV, expected_rows(), lambda name: M.MODELS[name](SECONDS))}")
