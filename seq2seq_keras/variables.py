"""Keras variables read as NumPy values on one device or under any ``tf.distribute`` strategy.

Under ``MirroredStrategy`` and ``MultiWorkerMirroredStrategy`` a variable is a ``MirroredVariable``:
``int(...)`` and ``float(...)`` fail on it, ``keras.ops.convert_to_numpy`` reads it.
"""

from __future__ import annotations

import keras
import numpy as np


def variable_value(variable) -> np.ndarray:
    """The value of a Keras or TensorFlow variable as a NumPy array, under any distribution strategy.

    ``int(variable)``/``float(variable)`` fail on a ``MirroredVariable`` (``MirroredStrategy``,
    ``MultiWorkerMirroredStrategy``); ``keras.ops.convert_to_numpy`` reads the value as the
    strategy defines it (a mirrored variable's common value, a sync-on-read one's aggregate).
    """
    return np.asarray(keras.ops.convert_to_numpy(variable))


def optimizer_step(model: keras.Model) -> int:
    """``model.optimizer.iterations`` as a Python int: optimizer updates since the start, on one device or several."""
    return int(variable_value(model.optimizer.iterations))
