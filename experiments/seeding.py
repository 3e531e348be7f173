"""One seed for Python, NumPy and Keras (and through Keras, the backend)."""
from __future__ import annotations

import os
import random

import numpy as np


def set_global_seed(seed: int) -> None:
    """Seed ``random``, NumPy and, if Keras is importable, ``keras.utils.set_random_seed``."""
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    import keras

    keras.utils.set_random_seed(seed)
