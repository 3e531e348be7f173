"""Every configuration of Tables I-III builds, trains one step and round-trips through .keras;
attx_keras/param_counts.csv holds every configuration's parameter counts (STYLE.md rule 6).

After an intended architecture change, rewrite the table in the same commit with
``python -m tests.test_attx_models`` (the test then compares exactly again).
"""
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from attx_keras.models import DEFAULT_WIDTHS, build_model  # noqa: E402
from experiments import registry  # noqa: E402
from tests.model_checks import (check_param_counts, check_param_table, check_round_trip,  # noqa: E402
                                write_param_counts)

PARAM_COUNTS = Path(__file__).resolve().parents[1] / "attx_keras" / "param_counts.csv"


def all_configs():
    seen = {}
    for name in ("table1", "table2", "table3"):
        for row in registry.get(name).model_rows:
            seen.setdefault(row.name, row.config)
    return seen


def expected_rows() -> dict:
    """``{row: ("build_model", config)}``: the registry's configurations, built at the paper's input
    (10 s at 256 Hz, the builder's default)."""
    return {name: ("build_model", config) for name, config in all_configs().items()}


def test_param_count_table_is_complete():
    """One CSV row per registry configuration, with the registry's config (the counts are compared,
    exactly, by the build test of each row below)."""
    by_row = check_param_table(PARAM_COUNTS, expected_rows())
    # AttX differs from plain cross-connections by its attention weights only: W (2 x 2) and
    # w_u (m,) per stage, m = the stage's width (eqs. 1-2)
    extra = by_row["attx-both-s12"]["trainable"] - by_row["cross-both-s12"]["trainable"]
    assert extra == (4 + DEFAULT_WIDTHS[0]) + (4 + DEFAULT_WIDTHS[1])


def test_there_are_22_table1_configurations_and_three_ablation_baselines():
    assert len(registry.get("table1").model_rows) == 22
    assert [r.name for r in registry.get("table1").runnable_rows[:2]] == ["floor", "classical"]
    assert len(all_configs()) == 25


@pytest.mark.parametrize("row,config", sorted(all_configs().items()))
def test_configuration_builds_trains_and_roundtrips(row, config, tmp_path):
    keras.backend.clear_session()
    model = build_model(**config, input_seconds=2)  # 512 samples keep the test fast; same layers
    # STYLE.md rule 6: the counts do not depend on the input length (global pooling before the FC layers)
    check_param_counts(model, check_param_table(PARAM_COUNTS, expected_rows())[row], PARAM_COUNTS)
    rng = np.random.default_rng(0)
    names = [t.name for t in model.inputs]
    x = {k: rng.normal(size=(4, 512, 1)).astype("float32") for k in names}
    y = keras.utils.to_categorical([0, 1, 0, 1], 2)
    model.compile("adam", "categorical_crossentropy", run_eagerly=True)
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.allclose(a, b) for a, b in zip(before, model.get_weights()))
    check_round_trip(model, x, tmp_path / f"{row}.keras")


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


if __name__ == "__main__":
    print(f"wrote {write_param_counts(PARAM_COUNTS, expected_rows(), lambda row: build_model(**all_configs()[row]))}")


def test_build_model_keeps_its_positional_signature():
    """Issue 4's public form build_model(fusion, direction, stages, input_seconds, fs, n_classes, score)
    builds the same model as the keyword form."""
    a = build_model("attx", "ecg_to_eda", (1, 3), 2, 256, 3, "per_step")
    b = build_model(fusion="attx", direction="ecg_to_eda", stages=(1, 3), input_seconds=2, fs=256, n_classes=3,
                    score="per_step")
    assert a.name == b.name and a.count_params() == b.count_params()
    assert [layer.name for layer in a.layers] == [layer.name for layer in b.layers]
    assert a.output.shape == (None, 3)
