"""Exact batch-norm statistics after training ("precise BN").

Batch normalisation keeps exponential moving averages of its input's mean and variance
(momentum 0.99 in Keras) and uses them in inference. After a few hundred optimizer steps they
still hold a share of their initial values (0.99^390 = 2 % of the initial variance 1) and lag
weights that Adam still moves, so a model that fits its training windows can predict one class
in inference mode. Precise BN (Wu and Johnson 2021, *Rethinking "Batch" in BatchNorm*, sec. 3;
``PreciseBN`` in pycls and detectron2) replaces them by the exact statistics of each layer's
input over the training set, computed with the trained weights. It changes no trained weight.

:func:`precise_batchnorm` does it layer after layer, in inference mode: the functional graph is
evaluated node by node over all the given windows (in chunks of ``batch_size``); when a
``BatchNormalization`` node is reached, its input (every window) is known, so its moving mean
and variance are set to that input's mean and (population) variance over every axis but the
channel axis, and the node is then applied in inference mode with them. Every later layer
therefore sees exactly what it sees at inference time. Nested functional and Sequential models
are walked the same way. One pass over the data, on every backend and dtype policy (statistics
are computed in float64 from the layer's compute-dtype input and stored in the variables' dtype).

Only the fold's training windows may be passed: the test subject is still seen once, at the end.
"""
from __future__ import annotations

import numpy as np


def _is_functional(op) -> bool:
    return hasattr(op, "_nodes_by_depth") and hasattr(op, "inputs") and hasattr(op, "outputs")


def _graph_of(op):
    """The functional graph of a Functional model or a built Sequential model, else None."""
    import keras

    if isinstance(op, keras.Sequential):
        if getattr(op, "_functional", None) is None:
            raise ValueError(f"layer {op.name!r}: an unbuilt Sequential model (expected a built model)")
        return op._functional
    return op if _is_functional(op) else None


def batchnorm_layers(model) -> list:
    """Every ``BatchNormalization`` layer of ``model``, nested models included."""
    import keras

    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def _slice(args, start: int, stop: int):
    import keras

    return keras.tree.map_structure(lambda a: a[start:stop] if isinstance(a, np.ndarray) and a.ndim else a, args)


def _apply(op, args, kwargs, n: int, batch_size: int):
    """``op(*args, **kwargs)`` in inference mode over ``n`` windows, ``batch_size`` at a time, as NumPy."""
    import keras

    kwargs = dict(kwargs)
    if getattr(op, "_call_has_training_arg", False):
        kwargs["training"] = False
    chunks = []
    for start in range(0, n, batch_size):
        out = op(*_slice(args, start, start + batch_size), **_slice(kwargs, start, start + batch_size))
        chunks.append(keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), out))
    return keras.tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *chunks)


def set_exact_statistics(layer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Set ``layer``'s moving mean and variance to the mean and population variance of ``x`` over
    every axis but ``layer.axis``. Returns them (float64)."""
    axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    axis = [a % x.ndim for a in axis]
    reduce = tuple(a for a in range(x.ndim) if a not in axis)
    x64 = np.asarray(x, dtype=np.float64)
    mean, var = x64.mean(axis=reduce), x64.var(axis=reduce)
    layer.moving_mean.assign(mean.reshape(layer.moving_mean.shape).astype(layer.moving_mean.dtype))
    layer.moving_variance.assign(var.reshape(layer.moving_variance.shape).astype(layer.moving_variance.dtype))
    return mean, var


def _walk(graph, inputs: list[np.ndarray], batch_size: int, done: list) -> list[np.ndarray]:
    """Evaluate ``graph`` node by node over every window (see the module docstring)."""
    import keras

    n = len(inputs[0])
    values = {id(t): v for t, v in zip(graph.inputs, inputs)}
    wanted = {id(t) for t in graph.outputs}
    uses: dict[int, int] = {}
    order = [node for depth in sorted(graph._nodes_by_depth, reverse=True) for node in graph._nodes_by_depth[depth]
             if node.operation is not None and not node.is_input]
    for node in order:
        for t in node.input_tensors:
            uses[id(t)] = uses.get(id(t), 0) + 1
    for node in order:
        op = node.operation
        args, kwargs = node.arguments.fill_in(values)
        inner = _graph_of(op)
        if isinstance(op, keras.layers.BatchNormalization):
            (x,) = [a for a in keras.tree.flatten(args) if isinstance(a, np.ndarray)]
            set_exact_statistics(op, x)
            done.append(op)
            out = _apply(op, args, kwargs, n, batch_size)
        elif inner is not None:
            flat = [a for a in keras.tree.flatten((args, kwargs)) if isinstance(a, np.ndarray)]
            out = _walk(inner, flat, batch_size, done)
            out = out[0] if len(out) == 1 else out
        else:
            hidden = [layer.name for layer in batchnorm_layers(op)] if hasattr(op, "_flatten_layers") else []
            if hidden:
                raise ValueError(f"layer {op.name!r}: holds batch normalisation {hidden} inside a custom layer "
                                 "(expected BatchNormalization as a node of a functional model, where precise "
                                 "BN can reach its input)")
            out = _apply(op, args, kwargs, n, batch_size)
        for t, v in zip(node.outputs, keras.tree.flatten(out)):
            values[id(t)] = v
        for t in node.input_tensors:  # free what no later node needs
            uses[id(t)] -= 1
            if uses[id(t)] == 0 and id(t) not in wanted:
                values.pop(id(t), None)
    return [values[id(t)] for t in graph.outputs]


def precise_batchnorm(model, x, batch_size: int = 256) -> int:
    """Set every batch-norm layer of ``model`` to the exact statistics of its input over ``x``.

    model       a built functional (or Sequential) Keras model, nested models allowed
    x           its inputs for the windows to use (a dict by input name, a list, or one array),
                each (n, ...): the fold's **training** windows only
    batch_size  windows per forward chunk (the statistics are over all n windows regardless)
    Returns the number of batch-norm layers set. A model without batch normalisation is left
    as it is (returns 0).
    """
    import keras

    graph = _graph_of(model)
    if graph is None:
        raise ValueError(f"model {model.name!r}: not a functional or Sequential model "
                         "(expected a graph whose batch-norm inputs can be reached)")
    if not batchnorm_layers(model):
        return 0
    if isinstance(x, dict):
        names = [t.name for t in graph.inputs]
        missing = [k for k in names if k not in x]
        if missing:
            raise ValueError(f"x: no input {missing} (expected the model's inputs {names})")
        inputs = [np.asarray(x[k]) for k in names]
    else:
        inputs = [np.asarray(a) for a in keras.tree.flatten(x)]
    if len(inputs) != len(graph.inputs):
        raise ValueError(f"x: {len(inputs)} inputs for a model with {len(graph.inputs)}")
    sizes = {len(a) for a in inputs}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"x: inputs of {sorted(sizes)} windows (expected one non-zero count)")
    done: list = []
    _walk(graph, inputs, batch_size, done)
    return len(done)
