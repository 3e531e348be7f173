"""The RMMT loss, eqs. (18)-(21) of Jin et al. (2024): ``L = L_CCC(X, Y) + alpha * L_1(X_E, X_F)``.

- :func:`ccc_loss`: ``1 - rho_c`` (eq. 19), rho_c Lin's concordance (eq. 18) with population
  moments, over every predicted step passed in (a batch of windows is one series).
- :func:`kd_loss`: the KD (L1) loss of eq. (20), ``mean |X_E - X_F|`` over batch, time and features.
- :func:`mean_output`: the loss attached to a model's ``kd`` output (already the per-sequence
  eq. 20 distance): its batch mean, weighted by alpha in ``compile`` (eq. 21).
"""
from __future__ import annotations

import keras
from keras import ops

from rmmt.layers import PACKAGE

#: Guard of the CCC denominator: only two identical constant series reach it.
_TINY = 1e-12


def _flat(x):
    x = ops.convert_to_tensor(x)
    if x.dtype not in ("float32", "float64"):
        x = ops.cast(x, "float32")
    return ops.reshape(x, (-1,))


@keras.saving.register_keras_serializable(package=PACKAGE)
def ccc_loss(y_true, y_pred):
    """``1 - CCC`` (eqs. 18-19) with population (1/N) moments over all elements.

    y_true, y_pred: arrays or tensors of equal size (any shape, e.g. (N,), (N, 1) or
    (batch, steps)); all elements form one series. Returns a scalar in [0, 2].
    Example: ``ccc_loss([0., 1., 2.], [0., 1., 2.])`` is 0.0; ``ccc_loss(y, -y)`` is 2.0.
    """
    y = _flat(y_true)
    x = ops.cast(_flat(y_pred), y.dtype)
    mu_x, mu_y = ops.mean(x), ops.mean(y)
    cov = ops.mean((x - mu_x) * (y - mu_y))                 # sigma_XY
    var_x = ops.mean(ops.square(x - mu_x))                  # sigma_X^2
    var_y = ops.mean(ops.square(y - mu_y))                  # sigma_Y^2
    denom = var_x + var_y + ops.square(mu_x - mu_y)
    rho_c = 2.0 * cov / ops.maximum(denom, _TINY)           # eq. (18)
    return 1.0 - rho_c                                      # eq. (19)


@keras.saving.register_keras_serializable(package=PACKAGE)
def kd_loss(x_e, x_f):
    """KD loss of eq. (20): ``mean |X_E - X_F|`` over all elements.

    x_e, x_f: EEG and face features of equal shape, (T, H) or (batch, T, H). Returns a scalar
    (for a batch: the mean of the per-sequence eq. 20 values, all sequences having T x H).
    Example: ``kd_loss(np.zeros((4, 8)), np.ones((4, 8)))`` is 1.0.
    """
    x_e, x_f = ops.convert_to_tensor(x_e), ops.convert_to_tensor(x_f)
    if tuple(x_e.shape) != tuple(x_f.shape):
        raise ValueError(f"kd_loss: x_e and x_f must have equal shapes, got {tuple(x_e.shape)} and {tuple(x_f.shape)}")
    return ops.mean(ops.abs(x_e - ops.cast(x_f, x_e.dtype)))


@keras.saving.register_keras_serializable(package=PACKAGE)
def mean_output(y_true, y_pred):
    """The batch mean of a model output that is already a loss value (``y_true`` is ignored)."""
    del y_true
    return ops.mean(y_pred)
