"""The Keras layers inside the shipped model, and the numpy twin of its fusion.

Serving needs these classes registered before ``keras.saving.load_model(...,
safe_mode=True)`` can rebuild the model without executing code stored in the file; the
builders that assemble them into networks live in :mod:`ser.training.networks`.

Example
-------
>>> import numpy as np
>>> from ser.serving.layers import fuse_views
>>> fuse_views(np.array([[0.5, 0.5]]), np.array([[0.9, 0.1]])).round(2)
array([[0.75, 0.25]])
"""

from __future__ import annotations

from ser import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

#: Standardised functionals are clipped to +-this many training deviations.
STANDARDIZE_LIMIT = 8.0


@keras.saving.register_keras_serializable(package="ser")
class BandMeanNormalization(layers.Layer):
    """Subtract each band's mean over time and divide by the window's overall deviation.

    Input and output shape: ``(batch, frames, bands)``.
    """

    def call(self, inputs):  # type: ignore[override]
        centred = inputs - ops.mean(inputs, axis=1, keepdims=True)
        scale = ops.sqrt(ops.mean(ops.square(centred), axis=(1, 2), keepdims=True) + 1e-5)
        return centred / scale


@keras.saving.register_keras_serializable(package="ser")
class StatisticsPooling(layers.Layer):
    """Mean and standard deviation over time: ``(batch, frames, ch) -> (batch, 2 * ch)``."""

    def call(self, inputs):  # type: ignore[override]
        mean = ops.mean(inputs, axis=1)
        deviation = ops.sqrt(ops.maximum(ops.mean(ops.square(inputs), axis=1) - ops.square(mean), 1e-6))
        return ops.concatenate([mean, deviation], axis=-1)


@keras.saving.register_keras_serializable(package="ser")
class Standardize(layers.Layer):
    """``clip((x - mean) / scale, -limit, limit)`` with the training set's mean and scale.

    ``mean`` and ``scale`` are non-trainable weights (saved in ``model.keras``, set from
    the training features); clipping keeps a microphone or codec that pushes one functional
    far outside the training range from dominating the linear model.

    Input and output shape: ``(batch, n_features)``.
    """

    def __init__(self, *, limit: float = STANDARDIZE_LIMIT, **kwargs):
        super().__init__(**kwargs)
        self.limit = float(limit)

    def build(self, input_shape):  # type: ignore[override]
        size = int(input_shape[-1])
        self.mean = self.add_weight(shape=(size,), initializer="zeros", trainable=False, name="mean")
        self.scale = self.add_weight(shape=(size,), initializer="ones", trainable=False, name="scale")

    def call(self, inputs):  # type: ignore[override]
        return ops.clip((inputs - self.mean) / self.scale, -self.limit, self.limit)

    def get_config(self):
        return {**super().get_config(), "limit": self.limit}


#: Probabilities are floored here before the log of the views' fusion (no log(0)).
FUSION_FLOOR = 1e-7


def fuse_views(*views: np.ndarray) -> np.ndarray:
    """Log-linear (product-of-experts) fusion: the normalised geometric mean of the views.

    A view that is sure rules out classes the other only half-supports, where an average
    would leave both near the middle. Equal weight for every view, chosen a priori. This is
    the numpy twin of :class:`LogLinearFusion`, used when training code fuses predictions
    (they agree to ~3e-7; two views each saturated on a different class give a near-exact tie,
    which either may break differently, and which falls below the "not sure" threshold).

    Parameters
    ----------
    *views : np.ndarray, shape (n, n_classes)
        Probabilities from each view for the same rows.

    Returns
    -------
    np.ndarray, shape (n, n_classes), float64
    """
    logs = np.mean([np.log(np.clip(np.asarray(view, dtype=np.float64), FUSION_FLOOR, 1.0)) for view in views], axis=0)
    logs -= logs.max(axis=-1, keepdims=True)
    fused = np.exp(logs)
    return fused / fused.sum(axis=-1, keepdims=True)


@keras.saving.register_keras_serializable(package="ser")
class LogLinearFusion(layers.Layer):
    """``softmax(mean_i log p_i)`` over a list of probability tensors of the same shape.

    Input: list of ``(batch, n_classes)`` probabilities; output ``(batch, n_classes)``.
    """

    def call(self, inputs):  # type: ignore[override]
        logs = [ops.log(ops.clip(probabilities, FUSION_FLOOR, 1.0)) for probabilities in inputs]
        return ops.softmax(ops.mean(ops.stack(logs, axis=0), axis=0), axis=-1)
