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
>>> from ser.training.networks import build_model
>>> model = build_model(window_frames=301, n_mels=64)
>>> sorted(model.output_names)
['emotion', 'gender', 'intensity']
"""

from __future__ import annotations

from ser import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
from keras import layers  # noqa: E402

from ser.serving.layers import BandMeanNormalization, LogLinearFusion, Standardize, StatisticsPooling  # noqa: E402

HEADS: dict[str, int] = {"emotion": 8, "gender": 2, "intensity": 2}


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


def build_functional_model(*, n_features: int, n_emotions: int = HEADS["emotion"]) -> keras.Model:
    """Multinomial logistic regression on standardised functionals, one softmax per head.

    The weights are fitted by :func:`ser.training.views.fit_functional_member` (L2-regularised
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
