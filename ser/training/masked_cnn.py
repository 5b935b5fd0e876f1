"""The log-mel CNN trained on several corpora with a masked emotion loss.

The CNN's emotion head is a softmax over all eight emotions, as shipped. For a clip of a
corpus that has only some of them (ASED: five), the loss is the cross-entropy of that softmax
renormalised over the corpus's emotions::

    loss = -log p_label + log sum_{c in corpus emotions} p_c

so ASED never teaches "this is not calm" (it has no calm clips at all). A clip with a partial
label (speechocean's ordinary voices: "neutral or calm") has a *target set* ``T`` instead of one
label, and the loss rewards the set's summed probability, still normalised over its corpus's
emotions ``A`` (all eight: an ordinary voice is not angry)::

    loss = -log sum_{c in T} p_c + log sum_{c in A} p_c

a single label being the set of one (the same loss, bit for bit). The target passed to Keras
encodes the mask and the target set in one row (:func:`encode_targets`: 0 outside the corpus, 1 in
it, 2 in the target set). The gender head learns where the gender is known; the intensity head only
from RAVDESS (ASED and speechocean have no intensity labels): the other rows get weight 0 for that head.

Example
-------
>>> import numpy as np
>>> from ser.training.masked_cnn import encode_targets, masked_emotion_loss
>>> targets = encode_targets(np.array([4]), np.array([[1, 0, 1, 1, 1, 1, 0, 0]], dtype=bool))
>>> targets.tolist()
[[1.0, 0.0, 1.0, 1.0, 2.0, 1.0, 0.0, 0.0]]
>>> probabilities = np.full((1, 8), 0.125, dtype=np.float32)
>>> round(float(masked_emotion_loss(targets, probabilities)[0]), 4)  # log 5: uniform over five
1.6094
"""

from __future__ import annotations

import math

import numpy as np

from ser import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
from keras import ops  # noqa: E402

from ser.config import FeatureConfig  # noqa: E402
from ser.training.clips import ClipSet  # noqa: E402
from ser.training.cnn import augmented_windows  # noqa: E402
from ser.training.masked_linear import group_balanced_weights  # noqa: E402
from ser.training.settings import TrainSettings  # noqa: E402
from ser.training.target_sets import narrow_partial_labels, taught_classes  # noqa: E402

#: Probabilities are floored here before the log (the softmax can underflow to 0 in float32).
PROBABILITY_FLOOR = 1e-7


def encode_targets(labels: np.ndarray | None, class_mask: np.ndarray, *,
                   target_mask: np.ndarray | None = None) -> np.ndarray:
    """One row per clip: 1 for the classes its corpus has, 2 for its target set, 0 elsewhere.

    Parameters
    ----------
    labels : np.ndarray of int, shape (n,), or None
        Single labels; None when ``target_mask`` gives every clip's target set instead.
    class_mask : np.ndarray of bool, shape (n, n_classes)
    target_mask : np.ndarray of bool, shape (n, n_classes), optional
        Each clip's target set (one True for a single label), inside its ``class_mask`` row; only
        with ``labels=None``.

    Returns
    -------
    np.ndarray, shape (n, n_classes), float32

    Raises
    ------
    ValueError
        For both or neither of ``labels`` and ``target_mask``, an empty target set, or a target
        outside the clip's corpus's emotions.
    """
    if (labels is None) == (target_mask is None):
        raise ValueError("pass single labels or a target_mask (labels=None), exactly one of them")
    class_mask = np.asarray(class_mask, dtype=bool)
    targets = class_mask.astype(np.float32)
    if labels is not None:
        labels = np.asarray(labels)
        if not class_mask[np.arange(len(labels)), labels].all():
            raise ValueError("a clip's label is not among its corpus's emotions (class_mask)")
        targets[np.arange(len(labels)), labels] = 2.0
        return targets
    target_mask = np.asarray(target_mask, dtype=bool)
    if target_mask.shape != class_mask.shape:
        raise ValueError(f"target_mask must be shaped like class_mask {class_mask.shape}, got {target_mask.shape}")
    if not target_mask.any(axis=1).all():
        raise ValueError("a clip has an empty target set; give every clip at least one target emotion")
    if (target_mask & ~class_mask).any():
        raise ValueError("a clip's target set is not among its corpus's emotions (class_mask)")
    targets[target_mask] = 2.0
    return targets


def clip_targets(clips: ClipSet, *, taught: np.ndarray | None = None) -> np.ndarray:
    """:func:`encode_targets` of a multi-corpus :class:`ClipSet`: its labels, or with partial labels
    every clip's target set, where a class no single label teaches has left the partial labels
    (:func:`ser.training.target_sets.narrow_partial_labels`, as the linear views do).

    Parameters
    ----------
    taught : np.ndarray of bool, shape (len(EMOTIONS),), optional
        The classes the *training* clips' single labels teach (validation clips are narrowed by
        them); by default those of ``clips`` themselves.

    Returns
    -------
    np.ndarray, shape (len(clips), len(EMOTIONS)), float32
    """
    if clips.target_mask is None or (clips.emotion >= 0).all():
        return encode_targets(clips.emotion, clips.class_mask)  # single labels: as before target sets
    taught = taught_classes(clips.emotion, clips.class_mask) if taught is None else taught
    targets, class_mask = narrow_partial_labels(clips.emotion, clips.target_mask, clips.class_mask, taught=taught)
    return encode_targets(None, class_mask, target_mask=targets)


def masked_emotion_loss(y_true, y_pred):
    """Cross-entropy of the softmax renormalised over each row's allowed classes, of its target set's
    summed probability (``-log sum_T p + log sum_A p``; its label's for a single label).

    Parameters
    ----------
    y_true : tensor, shape (batch, n_classes)
        From :func:`encode_targets`.
    y_pred : tensor, shape (batch, n_classes)
        Softmax probabilities over all classes.

    Returns
    -------
    tensor, shape (batch,)
    """
    y_pred = ops.clip(y_pred, PROBABILITY_FLOOR, 1.0)
    # The target set (a single label: its one class), summed: a partial label is right on any of it.
    label = ops.cast(ops.equal(y_true, 2.0), y_pred.dtype)
    allowed = ops.cast(ops.greater(y_true, 0.0), y_pred.dtype)
    return -ops.log(ops.sum(label * y_pred, axis=-1)) + ops.log(ops.sum(allowed * y_pred, axis=-1))


class MaskedBatches(keras.utils.PyDataset):
    """Random crops of augmented training clips of several corpora, reshuffled every epoch.

    Parameters
    ----------
    variants : dict
        ``speed -> list`` of log-mel matrices (frames, n_mels), one per clip.
    targets : np.ndarray, shape (n, n_emotions)
        :func:`encode_targets` rows.
    gender, intensity : np.ndarray of int, shape (n,)
        Labels; ``-1`` where unknown (that head then gets weight 0 for the clip).
    emotion_weights : np.ndarray, shape (n,)
        Per-clip weight of the emotion loss (e.g. classes balanced within each corpus).
    """

    def __init__(
        self,
        *,
        variants: dict[float, list[np.ndarray]],
        targets: np.ndarray,
        gender: np.ndarray,
        intensity: np.ndarray,
        emotion_weights: np.ndarray,
        config: FeatureConfig,
        settings: TrainSettings,
        seed: int,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.variants, self.targets = variants, targets
        self.gender, self.intensity = gender, intensity
        self.emotion_weights = emotion_weights.astype(np.float32)
        self.config, self.settings = config, settings
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(targets))

    def __len__(self) -> int:
        return math.ceil(len(self.targets) / self.settings.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.targets))

    def __getitem__(self, batch_index: int):
        size = self.settings.batch_size
        rows = self.order[batch_index * size : (batch_index + 1) * size]
        windows = augmented_windows(self.variants, rows, config=self.config, settings=self.settings, rng=self.rng)
        gender, intensity = self.gender[rows], self.intensity[rows]
        targets = {
            "emotion": self.targets[rows], "gender": np.maximum(gender, 0), "intensity": np.maximum(intensity, 0),
        }
        weights = {
            "emotion": self.emotion_weights[rows],
            "gender": (gender >= 0).astype(np.float32),
            "intensity": (intensity >= 0).astype(np.float32),
        }
        return windows, targets, weights


def masked_accuracy(y_true, y_pred):
    """1 where the most probable of the row's allowed classes is in its target set (its label), else 0;
    shape (batch,)."""
    allowed = ops.greater(y_true, 0.0)
    answers = ops.argmax(ops.where(allowed, y_pred, -1.0), axis=-1)
    encoded = ops.take_along_axis(y_true, ops.expand_dims(answers, -1), axis=-1)[:, 0]
    return ops.cast(ops.equal(encoded, 2.0), "float32")


def compile_masked(model: keras.Model, *, settings: TrainSettings) -> keras.Model:
    """Compile the shipped architecture with the masked emotion loss (the other heads as shipped).

    The metrics are named as the shipped recipe's (``emotion_accuracy``, ...), the emotion one
    answering within each clip's corpus's emotions, so learning curves read the same.
    """
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=settings.learning_rate, weight_decay=1e-3),
        loss={
            "emotion": masked_emotion_loss,
            "gender": "sparse_categorical_crossentropy",
            "intensity": "sparse_categorical_crossentropy",
        },
        loss_weights={"emotion": 1.0, "gender": 0.2, "intensity": 0.3},
        metrics={
            "emotion": [keras.metrics.MeanMetricWrapper(masked_accuracy, name="accuracy")],
            "gender": ["accuracy"],
            "intensity": ["accuracy"],
        },
    )
    return model


def emotion_weights(clips: ClipSet, *, corpus_weights: dict[str, float] | None = None) -> np.ndarray:
    """Per-clip weight of the emotion loss: classes balanced within each corpus (a partial label
    counts as one class of its corpus), corpora equal or in proportion to ``corpus_weights``
    (:func:`ser.training.masked_linear.group_balanced_weights`), mean 1; shape (len(clips),)."""
    return group_balanced_weights(clips.emotion, groups=clips.corpus, group_weights=corpus_weights).astype(np.float32)


def masked_batches(clips: ClipSet, *, config: FeatureConfig, settings: TrainSettings, seed: int) -> MaskedBatches:
    """:class:`MaskedBatches` of a multi-corpus :class:`ClipSet` (``clips.masked``)."""
    return MaskedBatches(
        variants=clips.variants, targets=clip_targets(clips), gender=clips.gender,
        intensity=clips.intensity,
        emotion_weights=emotion_weights(clips, corpus_weights=settings.corpus_weight_map()), config=config,
        settings=settings, seed=seed,
    )


def masked_targets(
    clips: ClipSet, *, corpus_weights: dict[str, float] | None = None, taught: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Targets and per-head weights of whole clips (validation), as :class:`MaskedBatches` gives them;
    partial labels narrowed to ``taught``, the training clips' single-label classes (:func:`clip_targets`).

    Returns
    -------
    targets, weights : dict
        ``head -> (len(clips), ...)``; a head's weight is 0 where its label is unknown (-1), and the
        emotion weights count corpora equally or by ``corpus_weights`` (:func:`emotion_weights`), as
        in training, so early stopping does not listen to the largest corpus only.
    """
    targets = {
        "emotion": clip_targets(clips, taught=taught),
        "gender": np.maximum(clips.gender, 0), "intensity": np.maximum(clips.intensity, 0),
    }
    weights = {
        "emotion": emotion_weights(clips, corpus_weights=corpus_weights),
        "gender": (clips.gender >= 0).astype(np.float32), "intensity": (clips.intensity >= 0).astype(np.float32),
    }
    return targets, weights
