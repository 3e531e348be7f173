"""Every configuration of Tables I-III builds, trains one step and round-trips through .keras."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from attx_keras.models import build_model  # noqa: E402
from experiments import registry  # noqa: E402


def all_configs():
    seen = {}
    for name in ("table1", "table2", "table3"):
        for row in registry.get(name).runnable_rows:
            seen.setdefault(row.name, row.config)
    return seen


def test_there_are_22_table1_configurations_and_three_ablation_baselines():
    assert len(registry.get("table1").runnable_rows) == 22
    assert len(all_configs()) == 25


@pytest.mark.parametrize("row,config", sorted(all_configs().items()))
def test_configuration_builds_trains_and_roundtrips(row, config, tmp_path):
    keras.backend.clear_session()
    model = build_model(**config, input_seconds=2)  # 512 samples keep the test fast; same layers
    rng = np.random.default_rng(0)
    names = [t.name for t in model.inputs]
    x = {k: rng.normal(size=(4, 512, 1)).astype("float32") for k in names}
    y = keras.utils.to_categorical([0, 1, 0, 1], 2)
    model.compile("adam", "categorical_crossentropy", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    path = tmp_path / f"{row}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_paper_model_structure_reads_like_fig2():
    model = build_model("attx", direction="both", stages=(1, 2))
    names = {layer.name for layer in model.layers}
    assert {"ecg", "eda", "attx_stage1", "attx_stage2", "ecg_stage2_se_conv_add", "ecg_stage2_se_id1_add",
            "ecg_stage2_se_id2_add", "ecg_stage3_se_conv_add", "ecg_stage3_se_id1_add", "eda_stage4_se_scale",
            "ecg_fc2", "eda_fc2", "classifier_fc1", "classifier_fc2", "classifier_output"} <= names
    assert "attx_stage3" not in names and "ecg_stage3_se_id2_add" not in names
    assert tuple(model.get_layer("ecg").output.shape) == (None, 2560, 1)
    assert tuple(model.output.shape) == (None, 2)
    # stage outputs of the two branches agree so that AttX can join them
    assert model.get_layer("ecg_stage1_pool").output.shape == model.get_layer("eda_stage1_pool").output.shape
    assert model.get_layer("ecg_stage2_se_id2_out").output.shape == model.get_layer("eda_stage2_conv2_relu").output.shape
    assert model.get_layer("ecg_fc2").units == 64 and model.get_layer("classifier_fc1").units == 128


def test_unimodal_models_take_one_input():
    assert [t.name for t in build_model("ecg").inputs] == ["ecg"]
    assert [t.name for t in build_model("eda").inputs] == ["eda"]


@pytest.mark.parametrize("kwargs,match", [
    (dict(fusion="late"), "fusion"),
    (dict(direction="up"), "direction"),
    (dict(stages=(4,)), "stages"),
    (dict(stages=()), "stages"),
    (dict(fusion="feature", stages=(1,)), "no cross-modal connections"),
    (dict(n_classes=1), "n_classes"),
    (dict(input_seconds=0.1), "too short"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_model(**kwargs)
