"""Keras model builders (functional API).

The shipped model reads a window of log-mel frames ``(window_frames, n_mels)`` and has
three heads: ``emotion`` (8 classes), ``gender`` (2) and ``intensity`` (2). Its first
layer removes each mel band's mean over the window, so the model never sees the
recording's absolute level or the microphone's colouring, which vary between rooms,
devices and speakers far more than between emotions.

The custom layers are registered with Keras, so ``keras.saving.load_model(...,
safe_mode=True)`` rebuilds them without executing any code stored in the file.

Example
-------
>>> from ser.model import build_model
>>> model = build_model(window_frames=301, n_mels=64)
>>> sorted(model.output_names)
['emotion', 'gender', 'intensity']
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

HEADS: dict[str, int] = {"emotion": 8, "gender": 2, "intensity": 2}
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


def _conv_block(x, *, filters: int, kernel: int, name: str):
    x = layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_model(
    *,
    window_frames: int,
    n_mels: int,
    n_emotions: int = HEADS["emotion"],
    width: int = 128,
    frontend_2d: bool = True,
    dropout: float = 0.3,
    seed: int = 0,
) -> keras.Model:
    """Build the emotion/gender/intensity network.

    Parameters
    ----------
    window_frames, n_mels : int
        Input shape ``(window_frames, n_mels)``.
    width : int
        Channels of the first 1D block (later blocks use 1.5x and 2x).
    frontend_2d : bool
        Start with two small 2D convolutions over (time, frequency), which see a pitch or
        formant shift as the same pattern moved, before the 1D convolutions over time.
    dropout : float
        Dropout before the heads.

    Returns
    -------
    keras.Model
        Inputs ``(batch, window_frames, n_mels)``; outputs a dict of softmax probabilities
        ``{"emotion": (batch, n_emotions), "gender": (batch, 2), "intensity": (batch, 2)}``.
    """
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=(window_frames, n_mels), name="log_mel")
    x = BandMeanNormalization(name="band_mean_norm")(inputs)
    if frontend_2d:
        x = layers.Reshape((window_frames, n_mels, 1), name="to_image")(x)
        for index, filters in enumerate((16, 32)):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"c2d{index}_conv")(x)
            x = layers.BatchNormalization(name=f"c2d{index}_bn")(x)
            x = layers.Activation("relu", name=f"c2d{index}_relu")(x)
            x = layers.MaxPooling2D(pool_size=(1, 2) if index == 0 else (2, 2), name=f"c2d{index}_pool")(x)
        x = layers.Reshape((-1, x.shape[2] * x.shape[3]), name="to_sequence")(x)
    x = _conv_block(x, filters=width, kernel=5, name="b1")
    x = _conv_block(x, filters=width, kernel=5, name="b2")
    x = layers.MaxPooling1D(2, name="b2_pool")(x)
    x = _conv_block(x, filters=int(width * 1.5), kernel=3, name="b3")
    x = layers.MaxPooling1D(2, name="b3_pool")(x)
    x = _conv_block(x, filters=width * 2, kernel=3, name="b4")
    x = StatisticsPooling(name="stats_pool")(x)
    x = layers.Dropout(dropout, name="pool_dropout")(x)
    x = layers.Dense(128, activation="relu", name="embedding")(x)
    x = layers.Dropout(dropout, name="embedding_dropout")(x)
    outputs = {
        "emotion": layers.Dense(n_emotions, activation="softmax", name="emotion")(x),
        "gender": layers.Dense(HEADS["gender"], activation="softmax", name="gender")(x),
        "intensity": layers.Dense(HEADS["intensity"], activation="softmax", name="intensity")(x),
    }
    return keras.Model(inputs, outputs, name="ser_cnn")


def build_ensemble(members: list[keras.Model]) -> keras.Model:
    """Average the heads of several models with the same input into one model.

    Returns
    -------
    keras.Model
        Same inputs and output names as each member; each output is the members' mean.
    """
    if not members:
        raise ValueError("build_ensemble needs at least one member model")
    inputs = keras.Input(shape=tuple(members[0].inputs[0].shape[1:]), name="log_mel")
    member_outputs = _member_outputs(members, inputs, prefix="member")
    outputs = {
        head: layers.Average(name=head)([output[head] for output in member_outputs]) for head in member_outputs[0]
    }
    return keras.Model(inputs, outputs, name="ser_ensemble")


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


def build_functional_model(*, n_features: int, n_emotions: int = HEADS["emotion"]) -> keras.Model:
    """Multinomial logistic regression on standardised functionals, one softmax per head.

    The weights are fitted by :func:`ser.train.fit_functional_member` (L2-regularised
    logistic regression, exact and deterministic) and copied in; the model exists so the
    shipped file is one Keras model loaded with ``safe_mode=True``.

    Returns
    -------
    keras.Model
        Input ``(batch, n_features)`` named ``functionals``; outputs
        ``{"emotion": (batch, n_emotions), "gender": (batch, 2), "intensity": (batch, 2)}``.
    """
    inputs = keras.Input(shape=(n_features,), name="functionals")
    x = Standardize(name="standardize")(inputs)
    sizes = {**HEADS, "emotion": n_emotions}
    outputs = {head: layers.Dense(units, activation="softmax", name=head)(x) for head, units in sizes.items()}
    return keras.Model(inputs, outputs, name="ser_functionals")


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


def _member_outputs(members: list[keras.Model], inputs, *, prefix: str) -> list[dict]:
    """Call a fresh copy of each member (named ``{prefix}_{index}``) on ``inputs``."""
    outputs = []
    for index, member in enumerate(members):
        # A fresh, uncompiled copy: the saved file then holds weights only, no optimizer state.
        copy = keras.Model.from_config(member.get_config())
        copy.set_weights(member.get_weights())
        copy.name = f"{prefix}_{index}"
        outputs.append(copy(inputs))
    return outputs


def _average_members(members: list[keras.Model], inputs, *, prefix: str) -> dict:
    outputs = _member_outputs(members, inputs, prefix=prefix)
    if len(outputs) == 1:
        return outputs[0]
    return {head: layers.Average(name=f"{prefix}_{head}")([output[head] for output in outputs]) for head in outputs[0]}


def build_fused(
    cnn_members: list[keras.Model],
    functional_members: list[keras.Model],
    voicing_members: list[keras.Model] | tuple = (),
) -> keras.Model:
    """One model that fuses the log-mel CNNs and the functional models, head by head.

    Each view averages its fold members; the views (two, or three with the voicing view's
    linear models on the same functionals) are then fused log-linearly with equal weight
    (:class:`LogLinearFusion`, :func:`fuse_views`). Each row of the batch is one
    log-mel window together with the functionals of the audio it came from.

    Returns
    -------
    keras.Model
        Inputs ``{"log_mel": (batch, window_frames, n_mels), "functionals": (batch, n_features)}``;
        outputs the averaged heads under the members' names.
    """
    if not cnn_members or not functional_members:
        raise ValueError("build_fused needs at least one CNN and one functional model")
    log_mel = keras.Input(shape=tuple(cnn_members[0].inputs[0].shape[1:]), name="log_mel")
    functionals = keras.Input(shape=tuple(functional_members[0].inputs[0].shape[1:]), name="functionals")
    views = [
        _average_members(cnn_members, log_mel, prefix="member"),
        _average_members(functional_members, functionals, prefix="functional"),
    ]
    if voicing_members:  # a third view on the same functionals vector (zero weights elsewhere)
        views.append(_average_members(list(voicing_members), functionals, prefix="voicing"))
    outputs = {head: LogLinearFusion(name=head)([view[head] for view in views]) for head in views[0]}
    return keras.Model({"log_mel": log_mel, "functionals": functionals}, outputs, name="ser_fused")
