"""Adam with *coupled* L2 weight decay: the paper's "Adam ... and L2 weight decay" (sections 4.3-4.4).

The authors trained with PyTorch, whose ``torch.optim.Adam(weight_decay=wd)`` adds ``wd * w`` to
the gradient *before* Adam's moment estimates (L2 regularisation of the loss, scaled by Adam's
per-parameter step). That is not AdamW (Loshchilov & Hutter), which decays the weights outside
the moments and is what Keras' ``weight_decay=`` argument does. Per step t, for every variable w:

    g_t = grad_t + l2 * w_{t-1}                    (coupled L2: the decay enters the moments)
    m_t = b1 m_{t-1} + (1 - b1) g_t;   v_t = b2 v_{t-1} + (1 - b2) g_t^2
    w_t = w_{t-1} - lr_t * m_hat_t / (sqrt(v_hat_t) + eps)

As in PyTorch, the decay applies to every trainable variable (biases, layer-norm scales, the CLS
token included). ``eps`` defaults to PyTorch's 1e-8 (Keras' Adam uses 1e-7).
"""
from __future__ import annotations

import keras
from keras import ops

PACKAGE = "transformer_ssl"


@keras.saving.register_keras_serializable(package=PACKAGE)
class CoupledL2Adam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose gradient gets ``l2 * variable`` added before the update.

    Arguments:
        learning_rate: float or a ``LearningRateSchedule`` (e.g. :class:`~transformer_ssl.schedules.StepDecay`).
        l2: coupled L2 coefficient (paper: 5e-3 pre-training, 1e-5 fine-tuning and fusion), >= 0.
        beta_1, beta_2: Adam's decay rates (paper: 0.9, 0.999).
        epsilon: Adam's epsilon (default 1e-8, PyTorch's).
        Other keyword arguments go to ``keras.optimizers.Adam`` except ``weight_decay`` (decoupled:
        refused, to keep the two kinds of decay from being mixed up).
    """

    def __init__(self, learning_rate=1e-3, l2: float = 0.0, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-8, name: str = "coupled_l2_adam", **kwargs):
        if kwargs.get("weight_decay"):
            raise ValueError("weight_decay: CoupledL2Adam implements coupled L2 through l2=; "
                             "decoupled (AdamW) weight_decay is not accepted")
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, name=name,
                         **kwargs)
        if isinstance(l2, bool) or not isinstance(l2, (int, float)) or l2 < 0:
            raise ValueError(f"l2: expected a number >= 0, got {l2!r}")
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(ops.cast(self.l2, gradient.dtype),
                                                      ops.cast(variable, gradient.dtype)))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config["l2"] = self.l2
        return config


def adam_coupled_l2_numpy(w, grads, lr, l2, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
    """NumPy twin: apply the gradients ``grads`` (a list, one per step) to ``w``; returns the trajectory.

    ``lr`` is a float or a function of the 0-based step. Uses Keras' form of the bias correction
    (``alpha = lr * sqrt(1 - b2^t) / (1 - b1^t)``, epsilon added to ``sqrt(v)``), as Keras' Adam does.
    """
    import numpy as np

    w = np.array(w, dtype="float64")
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    out = []
    for t, g in enumerate(grads):
        rate = lr(t) if callable(lr) else lr
        g = np.asarray(g, dtype="float64") + l2 * w
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        alpha = rate * np.sqrt(1 - beta_2 ** (t + 1)) / (1 - beta_1 ** (t + 1))
        w = w - alpha * m / (np.sqrt(v) + epsilon)
        out.append(w.copy())
    return out
