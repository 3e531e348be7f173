"""The oldest library versions whose behaviour the package relies on, checked where it is used.

Keras 3.7 (keras/src/trainers/epoch_iterator.py ``_enumerate_iterator``, and the TensorFlow
trainer's ``multi_step_on_iterator``, a ``tf.while_loop`` over ``get_next_as_optional``): with a
dataset of known cardinality and no ``steps_per_epoch``, ``fit`` opens a new iterator each epoch
and an execution of ``steps_per_execution`` steps stops where that iterator ends.
:func:`experiments.training._tf_epoch_stream` relies on it for the exact step count
(epochs x ceil(n / batch_size)). Keras 3.0-3.6 run each execution to ``steps_per_execution``
steps: one that reaches the end of the epoch raises ``OutOfRangeError`` inside the step loop, the
epoch ends with a "ran out of data" warning and no ``loss`` in its logs (checked on 3.6.0 with
``tests/test_training.py``: ``KeyError: 'loss'``; 3.7.0 passes). ``setup.cfg`` requires
``keras>=3.7``; :func:`check_keras` refuses an older one with a one-line error.
"""
from __future__ import annotations

from experiments.errors import UserError

#: the oldest Keras whose training loop gives the exact step count (see the module docstring);
#: equal to the lower bound of ``keras`` in setup.cfg (a test keeps them equal)
MIN_KERAS = "3.7"


class LibraryVersionError(UserError):
    """An installed library is older than the package needs."""


def _release(version: str) -> tuple[int, ...]:
    """``"3.15.1"`` -> ``(3, 15, 1)``; pre-release and local parts (``3.7.0rc1``, ``+cpu``) ignored."""
    from packaging.version import Version

    return Version(version).release


def check_keras(version: str | None = None) -> str:
    """Raise :class:`LibraryVersionError` when Keras ``version`` (default: the imported one) is older
    than :data:`MIN_KERAS`; returns the version."""
    if version is None:
        import keras

        version = keras.__version__
    if _release(version) < _release(MIN_KERAS):
        raise LibraryVersionError(
            f"keras {version}: too old for this package (expected keras>={MIN_KERAS}, as setup.cfg requires: "
            f"older Keras lets a multi-step execution run past the end of an epoch, so the training step count "
            f"is wrong; pip install -U 'keras>={MIN_KERAS}')")
    return version
