"""Model checks shared by the three packages' model tests (STYLE.md rule 6).

One parameter-count table per package, ``<package>/param_counts.csv``, with one schema:

=========  =====================================================================================
row        the registry row's name (one row per distinct architecture)
model      the builder function that builds it (e.g. ``build_model``, ``build_cnn``)
config     the builder's keyword arguments, JSON with sorted keys; counts do not depend on the
           input length, so a test may build a row on a shorter input than the config names
trainable  trainable parameters (sum of the trainable weights' sizes)
total      all parameters (``model.count_params()``: trainable plus e.g. batch-norm statistics)
=========  =====================================================================================

::

    from tests.model_checks import check_param_table, check_param_counts, check_round_trip

    table = check_param_table(CSV, {"cnn_eeg": ("build_cnn", {"n_channels": 10, ...})})
    check_param_counts(model, table["cnn_eeg"], CSV)
    check_round_trip(model, x, tmp_path / "cnn_eeg.keras")

After an intended architecture change, rewrite a table in the same commit with
``write_param_counts`` (each model test module does it when run: ``python -m tests.test_rmmt_models``).
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

import keras

PARAM_FIELDS = ("row", "model", "config", "trainable", "total")


def counts_of(model) -> tuple[int, int]:
    """(trainable, total) parameter counts of ``model``."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights)), int(model.count_params())


def config_text(config: Mapping) -> str:
    """The ``config`` column: the builder's keyword arguments as JSON with sorted keys."""
    return json.dumps(dict(config), sort_keys=True)


def read_param_counts(path) -> dict[str, dict]:
    """``{row: {"row", "model", "config", "trainable", "total"}}`` of a table (counts as ints)."""
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == PARAM_FIELDS, \
            f"{path}: columns {reader.fieldnames}, expected {list(PARAM_FIELDS)}"
        rows = [{**r, "trainable": int(r["trainable"]), "total": int(r["total"])} for r in reader]
    table = {r["row"]: r for r in rows}
    assert len(table) == len(rows), f"{path}: a row name appears twice"
    return table


def check_param_table(path, expected: Mapping[str, tuple[str, Mapping]]) -> dict[str, dict]:
    """The table at ``path`` lists exactly the rows of ``expected`` (``{row: (model, config)}``), each
    with that builder and config; returns the table (see :func:`read_param_counts`)."""
    table = read_param_counts(path)
    assert sorted(table) == sorted(expected), (f"{Path(path).name}: rows {sorted(table)}, the registry has "
                                               f"{sorted(expected)}")
    for row, (model, config) in expected.items():
        assert table[row]["model"] == model, f"{Path(path).name}: row {row}: model {table[row]['model']!r} != {model!r}"
        assert table[row]["config"] == config_text(config), \
            f"{Path(path).name}: row {row}: config {table[row]['config']} != {config_text(config)}"
    return table


def check_param_counts(model, row: Mapping, path) -> None:
    """``model``'s (trainable, total) counts equal the table ``row``'s, exactly."""
    got, want = counts_of(model), (row["trainable"], row["total"])
    assert got == want, (f"{row['row']}: (trainable, total) = {got}, {Path(path).name} says {want}; after an "
                         f"intended architecture change rewrite it with write_param_counts (tests/model_checks.py)")


def write_param_counts(path, expected: Mapping[str, tuple[str, Mapping]], build: Callable[[str], object]) -> Path:
    """Write the table of ``expected`` (``{row: (model, config)}``), building each row with ``build(row)``."""
    rows = []
    for row in sorted(expected):
        keras.backend.clear_session()
        model, config = expected[row]
        trainable, total = counts_of(build(row))
        rows.append({"row": row, "model": model, "config": config_text(config), "trainable": trainable,
                     "total": total})
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=PARAM_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return Path(path)


def _outputs(model, x) -> dict:
    out = model(x, training=False)
    if isinstance(out, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return {i: keras.ops.convert_to_numpy(v) for i, v in enumerate(out)}
    return {0: keras.ops.convert_to_numpy(out)}


def check_round_trip(model, x, path, *, compile: bool = True, rtol: float = 1e-5, atol: float = 1e-6):
    """Save ``model`` to ``path`` (a ``.keras`` file), load it (``compile`` as ``keras.models.load_model``)
    and check that it gives the same outputs on ``x`` (inference mode: every output, same structure).
    Returns the loaded model."""
    want = _outputs(model, x)
    model.save(path)
    loaded = keras.models.load_model(path, compile=compile)
    got = _outputs(loaded, x)
    assert set(got) == set(want), f"{Path(path).name}: outputs {sorted(got)} after reload, {sorted(want)} before"
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=f"{Path(path).name}: output {k}")
    return loaded
