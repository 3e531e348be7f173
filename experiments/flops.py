"""FLOPs of one inference and one training step of a Keras model, counted from the shapes its layers see.

Convention (the usual one, e.g. Kaplan et al. 2020; DeepSpeed's flops profiler):

- a multiply-add is 2 FLOPs; a bias add is 1 FLOP per output element;
- counted: ``Conv1D`` (``2 T_out k C_in/groups C_out``), ``Dense`` and ``EinsumDense`` (2 x the product of
  every index size of the einsum), the attention products of ``MultiHeadAttention`` and of RMMT's
  cross-modal layer (``Q K^T`` and ``A V``: ``2 L_q L_k d`` each, per head), AttX's ``S W`` (eq. 1);
- not counted: normalisation, activations, softmax, pooling, dropout, residual adds, the optimizer.
  :func:`xla_flops` counts everything; the difference is these element-wise operations (a few %);
- one training step = forward + backward = 3 x the forward pass (backward = gradients of the inputs and
  of the weights, each as costly as the forward products).

Shapes are the real ones: :func:`count` runs the model once eagerly on a batch and records the input
and output shapes of every counted layer, including sublayers of custom layers (the transformer
blocks of transformer_ssl, RMMT's TCN and cross-modal layers).

    >>> from attx_keras.models import build_model
    >>> count(build_model(fusion="attx", direction="both", stages=(1, 2)))["forward"] / 1e6  # doctest: +SKIP
    119.9
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: one training step / one forward pass (module docstring)
TRAIN_FACTOR = 3.0


def _shape(t) -> tuple:
    return tuple(int(d) for d in t.shape)


def _conv1d(layer, ins, out) -> float:
    (x,) = ins[:1]
    b, t_out, c_out = out
    c_in = x[-1]
    k = layer.kernel_size[0]
    macs = b * t_out * k * (c_in // layer.groups) * c_out
    return 2.0 * macs + (b * t_out * c_out if layer.use_bias else 0)


def _dense(layer, ins, out) -> float:
    x = ins[0]
    rows = math.prod(x[:-1])
    return 2.0 * rows * x[-1] * layer.units + (math.prod(out) if layer.use_bias else 0)


def _einsum_dense(layer, ins, out) -> float:
    """2 x the product of the sizes of every index of the einsum (contracted ones included)."""
    spec_in, rest = layer.equation.split(",")
    spec_kernel = rest.split("->")[0]
    sizes = dict(zip(spec_in, ins[0]))
    sizes.update(zip(spec_kernel, _shape(layer.kernel)))
    bias = math.prod(out) if getattr(layer, "bias", None) is not None else 0
    return 2.0 * math.prod(sizes.values()) + bias


def _multi_head_attention(layer, ins, out) -> float:
    """Q K^T and A V over every head; the projections are EinsumDense sublayers, counted apart."""
    q = ins[0]
    v = ins[1] if len(ins) > 1 else q
    b, t_q, t_k = q[0], q[1], v[1]
    return 2.0 * b * layer.num_heads * t_q * t_k * (layer.key_dim + layer.value_dim)


def _cross_modal(layer, ins, out) -> float:
    """RMMT eqs. (12)-(13): Q K^T and (ReLU scores) V, d_model wide; projections are Dense sublayers."""
    q, s = ins[0], ins[1]
    return 2.0 * 2 * q[0] * q[1] * s[1] * layer.d_model


def _attx(layer, ins, out) -> float:
    """AttX eq. (1): S W with S (batch, time, m, 2) and W (2, 2)."""
    b, t, m = ins[0]
    return 2.0 * b * t * m * 2 * 2


#: layer class name -> FLOPs(layer, input shapes, output shape) of one call
RULES: dict[str, Callable] = {
    "Conv1D": _conv1d, "Dense": _dense, "EinsumDense": _einsum_dense,
    "MultiHeadAttention": _multi_head_attention, "CrossModalTransformerLayer": _cross_modal, "AttX": _attx,
}


def example_inputs(model, batch: int = 1, seed: int = 0):
    """Random float32 inputs of ``model``'s input shapes (``None`` dimensions other than the batch refused)."""
    rng = np.random.default_rng(seed)
    out = {}
    for t in model.inputs:
        dims = tuple(t.shape[1:])
        if any(d is None for d in dims):
            raise ValueError(f"example_inputs: input {t.name!r} has shape {t.shape}, expected every dimension "
                             f"but the batch known (build the model with a fixed input length)")
        out[t.name] = rng.standard_normal((batch, *dims)).astype("float32")
    return out if len(out) > 1 else next(iter(out.values()))


def count(model, batch: int = 1, inputs=None) -> dict:
    """FLOPs of one forward pass of ``model`` on ``batch`` samples, counted from the shapes its layers see.

    Returns ``{"forward", "train" (= TRAIN_FACTOR x forward), "batch", "by_layer": {class name: FLOPs}}``;
    FLOPs are for the whole batch (divide by ``batch`` for one sample).
    """
    import keras

    inputs = example_inputs(model, batch) if inputs is None else inputs
    calls: list[tuple[str, float]] = []
    patched = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        rule = RULES.get(type(layer).__name__)
        if rule is None:
            continue

        def wrapped(*args, __call=layer.call, __layer=layer, __rule=rule, **kwargs):
            result = __call(*args, **kwargs)
            first = args[0] if args else next(iter(kwargs.values()))
            ins = [_shape(t) for t in keras.tree.flatten(first)]
            if isinstance(__layer, keras.layers.MultiHeadAttention):
                value = args[1] if len(args) > 1 else kwargs.get("value", first)
                ins = [_shape(first), _shape(value)]
            outs = keras.tree.flatten(result)
            calls.append((type(__layer).__name__, float(__rule(__layer, ins, _shape(outs[0])))))
            return result

        layer.call = wrapped
        patched.append(layer)
    try:
        model(inputs, training=False)
    finally:
        for layer in patched:
            del layer.call  # the class's method again
    by_layer: dict[str, float] = {}
    for name, flops in calls:
        by_layer[name] = by_layer.get(name, 0.0) + flops
    forward = sum(by_layer.values())
    return {"forward": forward, "train": TRAIN_FACTOR * forward, "batch": batch, "by_layer": by_layer}


def xla_flops(model, batch: int = 1, inputs=None) -> dict:
    """XLA's own count (``jax.jit(...).lower(...).compile().cost_analysis()["flops"]``) of the forward pass
    and of forward + gradients of every trainable weight, ``training=False`` (no dropout draws) and the
    sum of the outputs as the loss. Needs the JAX backend; every operation is counted, element-wise too.
    """
    import jax
    import jax.numpy as jnp
    import keras

    if keras.backend.backend() != "jax":
        raise RuntimeError(f"xla_flops: Keras runs on {keras.backend.backend()} (expected KERAS_BACKEND=jax)")
    inputs = example_inputs(model, batch) if inputs is None else inputs
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(tv, ntv, x):
        y, _ = model.stateless_call(tv, ntv, x, training=False)
        return y

    def loss(tv, ntv, x):
        return sum(jnp.sum(leaf) for leaf in jax.tree_util.tree_leaves(forward(tv, ntv, x)))

    def flops(fn):
        cost = jax.jit(fn).lower(trainable, non_trainable, inputs).compile().cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])

    return {"forward": flops(forward), "train": flops(jax.value_and_grad(loss)), "batch": batch}
