"""One test helper for every custom layer, loss and learning-rate schedule (STYLE.md rule 4).

Modelled on keras-hub's ``TestCase.run_layer_test`` (``src/tests/test_case.py``), as plain
functions so that pytest tests call them directly::

    from tests.layer_checks import run_layer_test, run_loss_test, run_schedule_test

    run_layer_test(AttX, {"direction": "both"}, [z_ecg, z_eda],
                   expected_output_shape=[(2, 7, 10), (2, 7, 10)],
                   expected_num_trainable_weights=2)

``run_layer_test`` checks, in this order:

1. config round trip: ``get_config()`` is JSON-serialisable (compared as sorted JSON), names every
   init argument, and survives ``cls.from_config`` and ``keras.saving.serialize_keras_object`` /
   ``deserialize_keras_object`` (the class must be registered);
2. weight counts after an explicit ``build`` (``layer.built`` must then be true);
3. a symbolic call on ``keras.Input`` tensors (output shapes with a free batch axis, dtype);
4. an eager call (exact output shapes, dtype = the layer's compute dtype, ``expected_output``);
5. one *compiled* training step (``model.fit`` with ``run_eagerly=False``, ``jit_compile="auto"``)
   after which every trainable weight has changed (names in ``unchanged_weights`` excepted);
6. ``mixed_float16`` and ``mixed_bfloat16``: float32 variables, outputs in the compute dtype and
   finite, and every sublayer carrying the parent's dtype policy;
7. a ``.keras`` save/load of a functional model around the layer, with equal outputs.

``input_data`` is an array, a list/tuple of arrays (passed as one list argument, like
``AttX([z_ecg, z_eda])``) or a dict of arrays (passed as keyword arguments, the Keras / keras-hub
convention; ``build`` then receives ``<name>_shape`` keywords).

``run_loss_test`` and ``run_schedule_test`` are the sibling checks for losses and schedules.
All helpers raise ``AssertionError`` with a message naming the check that failed.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

import keras
from keras import ops

MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


# --------------------------------------------------------------------------- small utilities
def _flatten(x):
    if isinstance(x, dict):
        return [v for _, v in sorted(x.items())]
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _flatten(item)]
    return [x]


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _call(layer, data, **call_kwargs):
    if isinstance(data, dict):
        return layer(**data, **call_kwargs)
    return layer(data, **call_kwargs)


def _as_arrays(input_data):
    if isinstance(input_data, dict):
        return {k: np.asarray(v) for k, v in input_data.items()}
    if isinstance(input_data, (list, tuple)):
        return [np.asarray(v) for v in input_data]
    return np.asarray(input_data)


def _shape_matches(expected, got, free_batch):
    expected, got = tuple(expected), tuple(got)
    if len(expected) != len(got):
        return False
    for i, (e, g) in enumerate(zip(expected, got)):
        if free_batch and i == 0:
            continue
        if e is not None and e != g:
            return False
    return True


def _check_shapes(what, expected_output_shape, outputs, free_batch):
    outs = _flatten(outputs)
    if isinstance(expected_output_shape, dict):
        expected = [v for _, v in sorted(expected_output_shape.items())]
    elif isinstance(expected_output_shape, list):
        expected = expected_output_shape
    else:
        expected = [expected_output_shape]
    got = [tuple(o.shape) for o in outs]
    assert len(expected) == len(got) and all(
        _shape_matches(e, g, free_batch) for e, g in zip(expected, got)
    ), f"{what}: expected output shapes {expected}, got {got}"


def _config_json(config):
    try:
        return json.dumps(config, sort_keys=True)
    except TypeError as err:
        raise AssertionError(f"config round trip: get_config() is not JSON-serialisable: {err}") from err


def _check_config_round_trip(obj, cls, init_kwargs):
    config = obj.get_config()
    text = _config_json(config)
    missing = sorted(set(init_kwargs) - set(config))
    assert not missing, f"config round trip: get_config() lacks init arguments {missing}"
    clone = cls.from_config(config)
    assert _config_json(clone.get_config()) == text, (
        f"config round trip: {cls.__name__}.from_config(get_config()) gives a different config:\n"
        f"{clone.get_config()}\n!=\n{config}")
    serialized = keras.saving.serialize_keras_object(obj)
    json.dumps(serialized, sort_keys=True)
    revived = keras.saving.deserialize_keras_object(serialized)
    assert type(revived) is cls, (
        f"config round trip: keras deserialisation gave {type(revived).__name__}, expected {cls.__name__} "
        "(is the class registered with keras.saving.register_keras_serializable?)")
    assert _config_json(revived.get_config()) == text, "config round trip: serialize/deserialize changed the config"
    return config


def _symbolic_inputs(arrays, dtype=None):
    def make(a, name=None):
        return keras.Input(shape=a.shape[1:], batch_size=None, dtype=dtype or a.dtype.name, name=name)

    if isinstance(arrays, dict):
        return {k: make(v, name=k) for k, v in arrays.items()}
    if isinstance(arrays, list):
        return [make(v) for v in arrays]
    return make(arrays)


def _build_shapes(arrays):
    if isinstance(arrays, dict):
        return {f"{k}_shape": tuple(v.shape) for k, v in arrays.items()}
    if isinstance(arrays, list):
        return [tuple(v.shape) for v in arrays]
    return tuple(arrays.shape)


def _check_weight_counts(what, layer, n_trainable, n_non_trainable):
    assert layer.built, f"{what}: layer.built is False after build"
    got = (len(layer.trainable_weights), len(layer.non_trainable_weights))
    assert got == (n_trainable, n_non_trainable), (
        f"{what}: expected {n_trainable} trainable and {n_non_trainable} non-trainable weights, got {got[0]} "
        f"and {got[1]} ({[w.path for w in layer.weights]})")


def _functional(layer, arrays, call_kwargs):
    inputs = _symbolic_inputs(arrays)
    outputs = _call(layer, inputs, **call_kwargs)
    return keras.Model(inputs, outputs)


class ScalarPerSample(keras.Model):
    """Wraps a layer into a model with one output per sample: mean of squares of every output."""

    def __init__(self, layer, call_kwargs, **kwargs):
        super().__init__(**kwargs)
        self.inner = layer
        self.call_kwargs = call_kwargs

    def call(self, x, training=False):
        outs = _flatten(_call(self.inner, x, training=training, **self.call_kwargs)
                        if _accepts_training(self.inner) else _call(self.inner, x, **self.call_kwargs))
        total = 0.0
        for o in outs:
            o = ops.cast(o, "float32")
            total = total + ops.mean(ops.square(o), axis=tuple(range(1, len(o.shape))))
        return total


def _accepts_training(layer):
    import inspect

    return "training" in inspect.signature(layer.call).parameters


def _mean_prediction(y_true, y_pred):
    return ops.mean(y_pred)


def _run_compiled_training_step(layer, arrays, call_kwargs, unchanged_weights):
    n = len(_flatten(arrays)[0])
    model = ScalarPerSample(layer, call_kwargs, name="layer_check_model")
    model(arrays)  # build the weights before the snapshot
    before = {w.path: _numpy(w).copy() for w in layer.trainable_weights}
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=_mean_prediction, jit_compile="auto",
                  run_eagerly=False)
    assert not model.run_eagerly, "training step: the model runs eagerly, expected a compiled step"
    history = model.fit(arrays, np.zeros((n,), "float32"), batch_size=n, epochs=1, shuffle=False, verbose=0)
    loss = history.history["loss"][-1]
    assert np.isfinite(loss), f"training step: loss is {loss}"
    stale = [path for path, value in before.items()
             if np.array_equal(value, _numpy(_weight_by_path(layer, path)))
             and path.split("/")[-1] not in unchanged_weights]
    assert not stale, f"training step: the compiled step left these trainable weights unchanged: {stale}"


def _weight_by_path(layer, path):
    for w in layer.trainable_weights:
        if w.path == path:
            return w
    raise AssertionError(f"training step: weight {path} disappeared")


def _check_mixed_precision(cls, init_kwargs, arrays, call_kwargs, policy, expected_output_shape):
    layer = cls(**{**init_kwargs, "dtype": policy})
    outputs = _call(layer, arrays, **call_kwargs)
    _check_shapes(f"{policy} call", expected_output_shape, outputs, free_batch=False)
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        assert sub.dtype_policy.name == policy, (
            f"{policy}: sublayer {sub.name!r} has dtype policy {sub.dtype_policy.name!r}, expected {policy!r} "
            "(create sublayers with dtype=self.dtype_policy)")
    compute = keras.mixed_precision.Policy(policy).compute_dtype
    for o in _flatten(outputs):
        got = keras.backend.standardize_dtype(o.dtype)
        assert got == compute, f"{policy}: output dtype {got}, expected {compute}"
        assert np.isfinite(_numpy(ops.cast(o, "float32"))).all(), f"{policy}: non-finite outputs"
    for w in layer.weights:
        dtype = keras.backend.standardize_dtype(w.dtype)
        if "float" in dtype:
            assert dtype == "float32", f"{policy}: variable {w.path} is {dtype}, expected float32"



# --------------------------------------------------------------------------- public helpers
def run_layer_test(cls, init_kwargs, input_data, expected_output_shape, expected_num_trainable_weights,
                   expected_num_non_trainable_weights=0, expected_output=None, run_training_step=True,
                   run_mixed_precision=True, run_keras_reload=True, rtol=1e-5, atol=1e-6, *,
                   call_kwargs=None, unchanged_weights=()):
    """Run the STYLE.md rule-4 checks on a custom layer class.

    Args:
        cls: the layer class (registered with ``keras.saving.register_keras_serializable``).
        init_kwargs: dict of constructor arguments.
        input_data: array, list of arrays (one list argument) or dict of arrays (keyword arguments);
            the first axis is the batch.
        expected_output_shape: shape tuple, or list/dict of shape tuples matching the outputs
            (``None`` entries match any size; the symbolic check frees the batch axis).
        expected_num_trainable_weights / expected_num_non_trainable_weights: counts after build.
        expected_output: optional array / list of arrays compared with the eager float32 output.
        run_training_step: run one compiled ``fit`` step and require every trainable weight to change.
        run_mixed_precision: check ``mixed_float16`` and ``mixed_bfloat16``.
        run_keras_reload: save/load a functional model around the layer and compare outputs.
        rtol, atol: tolerances for ``expected_output`` and the reload comparison.
        call_kwargs: extra non-tensor keyword arguments for every call.
        unchanged_weights: variable names (last path component) allowed to keep their value
            after the training step (e.g. a bias whose gradient is zero by construction).
    """
    call_kwargs = dict(call_kwargs or {})
    arrays = _as_arrays(input_data)

    # 1. config round trip
    _check_config_round_trip(cls(**init_kwargs), cls, init_kwargs)

    # 2. weight counts after an explicit build
    layer = cls(**init_kwargs)
    shapes = _build_shapes(arrays)
    if isinstance(shapes, dict):
        layer.build(**shapes)
    else:
        layer.build(shapes)
    _check_weight_counts("build", layer, expected_num_trainable_weights, expected_num_non_trainable_weights)

    # 3. symbolic call
    layer = cls(**init_kwargs)
    symbolic = _call(layer, _symbolic_inputs(arrays), **call_kwargs)
    _check_weight_counts("symbolic call", layer, expected_num_trainable_weights,
                         expected_num_non_trainable_weights)
    _check_shapes("symbolic call", expected_output_shape, symbolic, free_batch=True)
    for o in _flatten(symbolic):
        assert keras.backend.standardize_dtype(o.dtype) == layer.compute_dtype, (
            f"symbolic call: output dtype {o.dtype}, expected {layer.compute_dtype}")

    # 4. eager call
    layer = cls(**init_kwargs)
    outputs = _call(layer, arrays, **call_kwargs)
    _check_shapes("eager call", expected_output_shape, outputs, free_batch=False)
    for o in _flatten(outputs):
        assert keras.backend.standardize_dtype(o.dtype) == layer.compute_dtype, (
            f"eager call: output dtype {o.dtype}, expected {layer.compute_dtype}")
    if expected_output is not None:
        for i, (got, want) in enumerate(zip(_flatten(outputs), _flatten(expected_output), strict=True)):
            np.testing.assert_allclose(_numpy(got), np.asarray(want), rtol=rtol, atol=atol,
                                       err_msg=f"eager call: output {i} differs from expected_output")

    # 5. one compiled training step
    if run_training_step:
        _run_compiled_training_step(cls(**init_kwargs), arrays, call_kwargs, tuple(unchanged_weights))

    # 6. mixed precision
    if run_mixed_precision and not (keras.backend.backend() == "torch" and not _torch_cuda()):
        for policy in MIXED_POLICIES:
            _check_mixed_precision(cls, init_kwargs, arrays, call_kwargs, policy, expected_output_shape)

    # 7. .keras reload
    if run_keras_reload:
        model = _functional(cls(**init_kwargs), arrays, call_kwargs)
        want = model.predict(arrays, verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{cls.__name__}.keras"
            model.save(path)
            loaded = keras.models.load_model(path)
        got = loaded.predict(arrays, verbose=0)
        for i, (g, w) in enumerate(zip(_flatten(got), _flatten(want), strict=True)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol,
                                       err_msg=f".keras reload: output {i} differs after load_model")


def _torch_cuda():
    import torch

    return torch.cuda.is_available()


@keras.saving.register_keras_serializable(package="layer_checks")
class Offset(keras.layers.Layer):
    """Identity plus a zero-initialised trainable offset, so that a loss can be trained through."""

    def build(self, input_shape):
        self.offset = self.add_weight(name="offset", shape=tuple(input_shape[1:]), initializer="zeros")

    def call(self, x):
        return x + self.offset


def run_loss_test(fn, y_true, y_pred, expected, rtol=1e-5, atol=1e-6):
    """Check a loss (function or ``keras.losses.Loss`` instance) against expected values.

    Checks: the eager value ``fn(y_true, y_pred)`` equals ``expected`` (per sample or scalar); the
    loss inside a compiled ``model.evaluate`` gives ``mean(expected)`` (Keras' default
    sum-over-batch-size reduction); one compiled training step through it is finite and changes
    the model; serialisation: a ``Loss`` instance survives get_config/from_config and
    serialize/deserialize with equal values, and a model compiled with the loss reloads from
    ``.keras`` with the loss intact (the function or class must be registered).
    """
    y_true = np.asarray(y_true, "float32")
    y_pred = np.asarray(y_pred, "float32")
    expected = np.asarray(expected, "float32")
    value = _numpy(fn(y_true, y_pred))
    np.testing.assert_allclose(value, expected, rtol=rtol, atol=atol, err_msg="loss: eager value")

    if isinstance(fn, keras.losses.Loss):
        config = fn.get_config()
        _config_json(config)
        clone = type(fn).from_config(config)
        np.testing.assert_allclose(_numpy(clone(y_true, y_pred)), expected, rtol=rtol, atol=atol,
                                   err_msg="loss: from_config(get_config()) changes the value")
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(fn))
    np.testing.assert_allclose(_numpy(revived(y_true, y_pred)), expected, rtol=rtol, atol=atol,
                               err_msg="loss: serialize/deserialize changes the value (is it registered?)")

    inputs = keras.Input(shape=y_pred.shape[1:])
    model = keras.Model(inputs, Offset(name="offset")(inputs))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=fn, jit_compile="auto", run_eagerly=False)
    n = len(y_pred)
    evaluated = model.evaluate(y_pred, y_true, batch_size=n, verbose=0)
    np.testing.assert_allclose(evaluated, float(np.mean(expected)), rtol=max(rtol, 1e-5), atol=max(atol, 1e-5),
                               err_msg="loss: compiled evaluate differs from mean(expected)")
    history = model.fit(y_pred, y_true, batch_size=n, epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][-1]), "loss: non-finite training loss"
    after = model.evaluate(y_pred, y_true, batch_size=n, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "loss.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        reloaded = loaded.evaluate(y_pred, y_true, batch_size=n, verbose=0)
    np.testing.assert_allclose(reloaded, after, rtol=1e-6, atol=1e-6,
                               err_msg="loss: the .keras reload lost or changed the compiled loss")
    assert np.any(_numpy(model.get_layer("offset").offset) != 0), "loss: the compiled step had zero gradient"


def run_schedule_test(cls, kwargs, steps, expected, rtol=1e-6, atol=1e-9):
    """Check a ``keras.optimizers.schedules.LearningRateSchedule`` class.

    Checks: ``schedule(step)`` equals ``expected`` at every step; the config round trip (sorted JSON,
    ``from_config``, serialize/deserialize; all ``kwargs`` in the config) gives equal values; an
    optimizer built with the schedule survives ``get_config``/``from_config`` with the same values.
    """
    schedule = cls(**kwargs)
    steps = list(steps)

    def values(s):
        return np.array([float(_numpy(s(ops.convert_to_tensor(step, "int64")))) for step in steps])

    np.testing.assert_allclose(values(schedule), np.asarray(expected, "float64"), rtol=rtol, atol=atol,
                               err_msg="schedule: values at steps")
    _check_config_round_trip(schedule, cls, kwargs)
    clone = cls.from_config(schedule.get_config())
    np.testing.assert_allclose(values(clone), values(schedule), rtol=0, atol=0,
                               err_msg="schedule: from_config(get_config()) changes the values")
    optimizer = keras.optimizers.Adam(learning_rate=schedule)
    revived = keras.optimizers.Adam.from_config(optimizer.get_config())
    restored = revived._learning_rate
    assert isinstance(restored, cls), (
        f"schedule: Adam.from_config restored {type(restored).__name__}, expected {cls.__name__}")
    np.testing.assert_allclose(values(revived._learning_rate), values(schedule), rtol=0, atol=0,
                               err_msg="schedule: the optimizer round trip changes the values")
