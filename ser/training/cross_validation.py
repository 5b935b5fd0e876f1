"""Train the shipped model with speaker-grouped cross-validation.

Run ``python -m ser train --data ../shared/data/ravdess --out models/``. Five folds by
actor: in each, four actors are the test set, four others the validation set (early
stopping and calibration watch them) and the remaining twelve, with their song clips,
the training set. Augmentation (speed 0.9/1.1, random crops, noise, SpecAugment) is
applied to training batches only, after the split. The shipped model averages the five
fold models, so every actor you have contributed to it; the metrics are the fold models'
scores on their own unseen test actors.
"""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser.config import FeatureConfig
from ser.serving.features import window_features
from ser.serving.functionals import functional_names
from ser.training.cache import SPEED_FACTORS, load_features, load_functionals, load_room_functionals
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
from ser.training.splits import train_validation_test


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (saved in metrics.json)."""

    n_folds: int = 5
    seed: int = 0
    epochs: int = 100
    patience: int = 15
    batch_size: int = 32
    learning_rate: float = 2e-3
    width: int = 96
    frontend_2d: bool = False
    dropout: float = 0.3
    use_song: bool = True
    speed_probability: float = 0.5
    noise_probability: float = 0.5
    spec_augment: bool = True
    warp_probability: float = 0.5
    max_warp: float = 0.1
    #: L2 strengths tried for the functional view's logistic regression; each fold picks
    #: the one best on its validation actors, then refits on training + validation actors.
    functional_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03)
    #: A third view: logistic regression on the voice-source functionals only (pitch, jitter,
    #: shimmer, HNR, voicing; ser.serving.functionals.VOICING_MARKERS), which the full 6373-feature
    #: model under-weights. Same input vector, so no extra extraction at inference.
    voicing_view: bool = True
    voicing_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    #: After early stopping on the validation actors, train the CNN again on training +
    #: validation actors with the same learning-rate schedule up to the best epoch
    #: (:func:`refit_schedule`): four more speakers to learn from, as the linear views have.
    refit_cnn: bool = True
    #: One more training copy of every speech clip for the functional views: noise (5-30 dB
    #: SNR), half of them reverberated too (ser.training.augment.room_copy). Studio-only training cost
    #: them about half their accuracy on noisy audio (experiments/robustness.py).
    room_copies: bool = True


@dataclasses.dataclass
class ClipSet:
    """Features and labels of a set of clips.

    ``variants[speed][i]`` is clip i's log-mel matrix; ``functionals[speed][i]`` its
    openSMILE functionals (None for a log-mel-only config); ``room_functionals[i]`` those
    of its room copy (:func:`ser.training.cache.load_room_functionals`; NaN for song clips; None
    when not loaded).
    """

    variants: dict[float, list[np.ndarray]]
    emotion: np.ndarray
    gender: np.ndarray
    intensity: np.ndarray
    actor: np.ndarray
    functionals: dict[float, np.ndarray] | None = None
    functional_names: list[str] | None = None
    room_functionals: np.ndarray | None = None

    def subset(self, mask: np.ndarray) -> ClipSet:
        positions = np.flatnonzero(mask)
        return ClipSet(
            variants={speed: [items[i] for i in positions] for speed, items in self.variants.items()},
            emotion=self.emotion[positions],
            gender=self.gender[positions],
            intensity=self.intensity[positions],
            actor=self.actor[positions],
            functionals=None
            if self.functionals is None
            else {speed: values[positions] for speed, values in self.functionals.items()},
            functional_names=self.functional_names,
            room_functionals=None if self.room_functionals is None else self.room_functionals[positions],
        )

    def functional_copies(self) -> list[np.ndarray]:
        """Every training copy of the functionals: one per speed, then the room copy if loaded.

        Returns
        -------
        list of np.ndarray, each of shape (len(self), n_functionals)
        """
        if self.functionals is None:
            raise ValueError("these clips have no functionals; use a config with functionals set")
        copies = [self.functionals[speed] for speed in sorted(self.functionals)]
        if self.room_functionals is not None:
            copies.append(self.room_functionals)
        return copies

    def __len__(self) -> int:
        return len(self.emotion)


def build_clip_set(index: pd.DataFrame, *, config: FeatureConfig, cache_dir: Path) -> ClipSet:
    """Load (cached) features and integer labels for every row of ``index``, and for a config
    with functionals the room copies' functionals (used as ``TrainSettings.room_copies`` says)."""
    variants = load_features(index, config=config, cache_dir=cache_dir)
    functionals = load_functionals(index, config=config, cache_dir=cache_dir) if config.functionals else None
    room = load_room_functionals(index, config=config, cache_dir=cache_dir) if config.functionals else None
    return ClipSet(
        variants=variants,
        emotion=index["emotion"].map(EMOTIONS.index).to_numpy(np.int64),
        gender=index["gender"].map(GENDERS.index).to_numpy(np.int64),
        intensity=index["intensity"].map(INTENSITIES.index).to_numpy(np.int64),
        actor=index["actor"].to_numpy(np.int64),
        functionals=functionals,
        functional_names=functional_names(config) if config.functionals else None,
        room_functionals=room,
    )


def class_weights(labels: np.ndarray, *, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over samples), so neutral's half-size class counts fully."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


def _crop(features: np.ndarray, *, frames: int, rng: np.random.Generator) -> np.ndarray:
    if features.shape[0] >= frames:
        start = int(rng.integers(0, features.shape[0] - frames + 1))
        return features[start : start + frames]
    repeats = -(-frames // features.shape[0]) + 1
    offset = int(rng.integers(0, features.shape[0]))
    return np.tile(features, (repeats, 1))[offset : offset + frames]


def augment_window(window: np.ndarray, *, settings: TrainSettings, rng: np.random.Generator) -> np.ndarray:
    """Noise and SpecAugment on one log-mel window ``(frames, n_mels)`` (training only)."""
    window = window.copy()
    if rng.random() < settings.warp_probability:
        # Stretch or squeeze the mel axis around 0 Hz, like a longer or shorter vocal tract (VTLP).
        factor = rng.uniform(1 - settings.max_warp, 1 + settings.max_warp)
        bands = np.arange(window.shape[1], dtype=np.float64)
        source = np.clip(bands / factor, 0, window.shape[1] - 1)
        low = np.floor(source).astype(int)
        high = np.minimum(low + 1, window.shape[1] - 1)
        weight = (source - low).astype(np.float32)
        window = window[:, low] * (1 - weight) + window[:, high] * weight
    if rng.random() < settings.noise_probability:
        # White noise is flat across Slaney-normalised mel bands: add its power in the linear domain.
        signal_power = float(np.mean(np.exp(window)))
        snr_db = rng.uniform(5.0, 30.0)
        noise = signal_power / 10 ** (snr_db / 10) * rng.gamma(4.0, 0.25, size=window.shape)
        window = np.log(np.exp(window) + noise).astype(np.float32)
    if settings.spec_augment:
        fill = float(window.mean())
        for _ in range(2):
            width = int(rng.integers(0, 9))
            start = int(rng.integers(0, window.shape[1] - width + 1))
            window[:, start : start + width] = fill
        for _ in range(2):
            width = int(rng.integers(0, window.shape[0] // 10))
            start = int(rng.integers(0, window.shape[0] - width + 1))
            window[start : start + width, :] = fill
    return window


def _make_batches_class():
    import keras

    class TrainingBatches(keras.utils.PyDataset):
        """Random crops of augmented training clips, reshuffled every epoch."""

        def __init__(self, clips: ClipSet, *, config: FeatureConfig, settings: TrainSettings, seed: int):
            super().__init__(workers=1, use_multiprocessing=False)
            self.clips = clips
            self.config = config
            self.settings = settings
            self.rng = np.random.default_rng(seed)
            self.weights = class_weights(clips.emotion, n_classes=len(EMOTIONS))
            self.order = self.rng.permutation(len(clips))

        def __len__(self) -> int:
            return math.ceil(len(self.clips) / self.settings.batch_size)

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(self.clips))

        def __getitem__(self, batch_index: int):
            rows = self.order[batch_index * self.settings.batch_size : (batch_index + 1) * self.settings.batch_size]
            windows = []
            for row in rows:
                speed = 1.0
                if self.rng.random() < self.settings.speed_probability:
                    speed = float(self.rng.choice([s for s in SPEED_FACTORS if s != 1.0]))
                features = self.clips.variants[speed][row]
                window = _crop(features, frames=self.config.window_frames, rng=self.rng)
                windows.append(augment_window(window, settings=self.settings, rng=self.rng))
            emotion = self.clips.emotion[rows]
            targets = {
                "emotion": emotion,
                "gender": self.clips.gender[rows],
                "intensity": self.clips.intensity[rows],
            }
            ones = np.ones(len(rows), dtype=np.float32)
            weights = {"emotion": self.weights[emotion], "gender": ones, "intensity": ones}
            return np.stack(windows), targets, weights

    return TrainingBatches


def clip_windows(clips: ClipSet, *, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """All scoring windows of every clip (original speed) and the clip each belongs to."""
    windows, owners = [], []
    for position, features in enumerate(clips.variants[1.0]):
        clip_windows_, _ = window_features(features, config=config)
        windows.append(clip_windows_)
        owners.append(np.full(len(clip_windows_), position))
    return np.concatenate(windows), np.concatenate(owners)


def predict_windows(model, clips: ClipSet, *, config: FeatureConfig) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each head's probabilities for every scoring window, and the clip each window belongs to.

    Returns
    -------
    outputs : dict
        ``head -> (n_windows, n_classes)``.
    owners : np.ndarray, shape (n_windows,)
    """
    windows, owners = clip_windows(clips, config=config)
    outputs = model.predict(windows, batch_size=64, verbose=0)
    return {head: np.asarray(values) for head, values in outputs.items()}, owners


def average_windows(
    outputs: dict[str, np.ndarray],
    owners: np.ndarray,
    *,
    n_clips: int,
    functional_probabilities: dict[str, np.ndarray] | list[dict[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Average window outputs per clip; with ``functional_probabilities`` (``head -> (n_clips,
    n_classes)`` per clip-level view of the same clips, one dict or a list of them), each window
    is first fused with its clip's views by :func:`ser.serving.layers.fuse_views`, as the shipped fused
    model does. Heads missing from ``functional_probabilities`` are dropped."""
    if functional_probabilities is not None:
        from ser.serving.layers import fuse_views

        clip_views = (
            functional_probabilities if isinstance(functional_probabilities, list) else [functional_probabilities]
        )
        outputs = {
            head: fuse_views(values, *(view[head][owners] for view in clip_views))
            for head, values in outputs.items()
            if all(head in view for view in clip_views)
        }
    result = {}
    for head, probabilities in outputs.items():
        summed = np.zeros((n_clips, probabilities.shape[1]))
        np.add.at(summed, owners, probabilities)
        result[head] = summed / np.bincount(owners, minlength=n_clips)[:, None]
    return result


def predict_clips(
    model, clips: ClipSet, *, config: FeatureConfig, functional_probabilities: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    """Average each head's probabilities over every window of each clip (optionally fused
    window by window with the functional view: see :func:`average_windows`).

    Returns
    -------
    dict
        ``head -> (n_clips, n_classes)`` probabilities.
    """
    outputs, owners = predict_windows(model, clips, config=config)
    return average_windows(
        outputs, owners, n_clips=len(clips), functional_probabilities=functional_probabilities
    )


def refit_schedule(history: dict[str, list[float]]) -> list[float]:
    """The learning rate of each epoch up to the best one (lowest validation emotion loss).

    A model refitted on training + validation speakers replays this schedule, so it stops
    where the early-stopped model's restored weights came from, with the same decays.
    """
    # nanargmin: early stopping skips a NaN loss, so the schedule must not stop there either.
    best = int(np.nanargmin(history["val_emotion_loss"]))
    return [float(rate) for rate in history["learning_rate"][: best + 1]]


def fit_fold(
    train: ClipSet,
    validation: ClipSet | None,
    *,
    config: FeatureConfig,
    settings: TrainSettings,
    seed: int,
    verbose: int = 0,
    schedule: list[float] | None = None,
):
    """Train one model; early stopping restores the weights best on validation speakers.

    With ``schedule`` (one learning rate per epoch, see :func:`refit_schedule`) and no
    ``validation``, train for exactly that many epochs at those rates instead.

    Returns
    -------
    model : keras.Model
    history : dict of per-epoch lists
    """
    if (validation is None) == (schedule is None):
        raise ValueError("give either validation clips (early stopping) or a schedule (refit), not both")
    import keras

    from ser.training.networks import build_model

    model = build_model(
        window_frames=config.window_frames,
        n_mels=config.n_mels,
        width=settings.width,
        frontend_2d=settings.frontend_2d,
        dropout=settings.dropout,
        seed=seed,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=settings.learning_rate, weight_decay=1e-3),
        loss={
            "emotion": "sparse_categorical_crossentropy",
            "gender": "sparse_categorical_crossentropy",
            "intensity": "sparse_categorical_crossentropy",
        },
        loss_weights={"emotion": 1.0, "gender": 0.2, "intensity": 0.3},
        metrics={"emotion": ["accuracy"], "gender": ["accuracy"], "intensity": ["accuracy"]},
    )
    batches = _make_batches_class()(train, config=config, settings=settings, seed=seed)
    if schedule is not None:
        rates = list(schedule)
        history = model.fit(
            batches,
            epochs=len(rates),
            callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch, _rate: rates[epoch])],
            verbose=verbose,
        )
        return model, {key: [float(value) for value in values] for key, values in history.history.items()}
    # Validation scores the centre window of each clip, with no augmentation.
    val_windows = np.stack(
        [
            _crop(
                features[max(0, (len(features) - config.window_frames) // 2) :],
                frames=config.window_frames,
                rng=np.random.default_rng(0),
            )
            for features in validation.variants[1.0]
        ]
    )
    val_targets = {"emotion": validation.emotion, "gender": validation.gender, "intensity": validation.intensity}
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_emotion_loss", mode="min", patience=settings.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_emotion_loss", mode="min", factor=0.5, patience=5, min_lr=1e-5),
    ]
    history = model.fit(
        batches,
        validation_data=(val_windows, val_targets),
        epochs=settings.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    curves = {key: [float(value) for value in values] for key, values in history.history.items()}
    return model, curves


def training_mask(clips: ClipSet, *, actors: list[int], speech_mask: np.ndarray, settings: TrainSettings) -> np.ndarray:
    """The clips the CNN trains on from ``actors``: their speech, and their song with ``settings.use_song``.

    Returns
    -------
    np.ndarray of bool, shape (len(clips),)
    """
    mask = np.isin(clips.actor, actors)
    return mask if settings.use_song else mask & speech_mask


def fit_cnn(
    train: ClipSet,
    validation: ClipSet,
    *,
    refit_on: ClipSet,
    config: FeatureConfig,
    settings: TrainSettings,
    seed: int,
    verbose: int = 0,
):
    """Early-stop a CNN on ``validation``; with ``settings.refit_cnn``, train a fresh one on
    ``refit_on`` (the training + validation clips) replaying :func:`refit_schedule`.

    Returns
    -------
    early_stopped : keras.Model
        Never saw the validation clips: the one to score them with (calibration).
    shipped : keras.Model
        The refitted model, or the early-stopped one without refit.
    history : dict of per-epoch lists
        The early-stopped run's curves.
    refit_epochs : int or None
    """
    early_stopped, history = fit_fold(train, validation, config=config, settings=settings, seed=seed, verbose=verbose)
    if not settings.refit_cnn:
        return early_stopped, early_stopped, history, None
    shipped, refit_history = fit_fold(
        refit_on, None, config=config, settings=settings, seed=seed, schedule=refit_schedule(history), verbose=verbose
    )
    return early_stopped, shipped, history, len(refit_history["loss"])


def _standardize(
    copies: list[np.ndarray], columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack every training copy (:meth:`ClipSet.functional_copies`; only ``columns`` if
    given); return (standardised rows, mean, scale) as the model computes them."""
    from ser.serving.layers import STANDARDIZE_LIMIT

    stacked = np.concatenate(copies).astype(np.float64)
    if columns is not None:
        stacked = stacked[:, columns]
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return np.clip((stacked - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT), mean, scale


def _logistic(rows: np.ndarray, labels: np.ndarray, *, c: float, balanced: bool, n_classes: int):
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if balanced else None)
    classifier.fit(rows, labels)
    if list(classifier.classes_) != list(range(n_classes)):
        raise ValueError(
            f"the training clips hold classes {list(classifier.classes_)}, not all {n_classes}; "
            "train on more actors"
        )
    return classifier


def fit_functional_member(train: ClipSet, *, c: float, columns: np.ndarray | None = None):
    """Fit the functional view: L2 logistic regression per head on standardised functionals.

    With ``columns``, only those functionals are used (the voicing view); the Keras model still
    takes the whole vector, with zero weights (and identity standardisation) elsewhere.

    Every speed copy of each training clip (0.9/1.0/1.1) and its room copy (noise and
    reverberation, when loaded) is a training row: that is the view's augmentation, done
    after the split like the CNN's. Emotion classes are weighted
    inversely to their frequency (neutral has half the clips). The fitted coefficients are
    copied into :func:`ser.training.networks.build_functional_model`, so the result is a Keras model.

    Returns
    -------
    keras.Model
        Input ``(batch, n_functionals)``; softmax heads ``emotion``, ``gender``, ``intensity``.
    """
    from ser.training.networks import build_functional_model

    copies = train.functional_copies()
    rows, mean, scale = _standardize(copies, columns)
    n_features = train.functionals[1.0].shape[1]
    used = np.arange(n_features) if columns is None else np.asarray(columns)
    full_mean, full_scale = np.zeros(n_features), np.ones(n_features)
    full_mean[used], full_scale[used] = mean, scale
    model = build_functional_model(n_features=n_features, n_emotions=len(EMOTIONS))
    model.get_layer("standardize").set_weights([full_mean.astype(np.float32), full_scale.astype(np.float32)])
    for head, n_classes in (("emotion", len(EMOTIONS)), ("gender", len(GENDERS)), ("intensity", len(INTENSITIES))):
        labels = np.tile(getattr(train, head), len(copies))
        classifier = _logistic(rows, labels, c=c, balanced=head == "emotion", n_classes=n_classes)
        if n_classes == 2:  # sigmoid(w.x + b) is the softmax of the logits (0, w.x + b)
            weights = np.stack([np.zeros(rows.shape[1]), classifier.coef_[0]], axis=1)
            bias = np.array([0.0, classifier.intercept_[0]])
        else:
            weights, bias = classifier.coef_.T, classifier.intercept_
        kernel = np.zeros((n_features, n_classes))
        kernel[used] = weights
        model.get_layer(head).set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def choose_functional_c(
    train: ClipSet,
    validation: ClipSet,
    *,
    settings: TrainSettings,
    columns: np.ndarray | None = None,
    grid: tuple[float, ...] | None = None,
) -> tuple[float, dict[str, float], np.ndarray]:
    """Pick the L2 strength whose emotion model scores best on the validation actors.

    Returns
    -------
    c : float
    scores : dict
        Validation accuracy for every candidate (keys are the C values as strings).
    validation_probabilities : np.ndarray, shape (len(validation), n_emotions)
        The chosen model's emotion probabilities for the validation clips (for calibration).
    """
    grid = grid or settings.functional_c_grid
    copies = train.functional_copies()
    rows, mean, scale = _standardize(copies, columns)
    labels = np.tile(train.emotion, len(copies))
    from ser.serving.layers import STANDARDIZE_LIMIT

    validation_values = validation.functionals[1.0] if columns is None else validation.functionals[1.0][:, columns]
    validation_rows = np.clip((validation_values - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT)
    scores, probabilities = {}, {}
    for c in grid:
        classifier = _logistic(rows, labels, c=c, balanced=True, n_classes=len(EMOTIONS))
        probabilities[c] = classifier.predict_proba(validation_rows)
        scores[str(c)] = float(np.mean(probabilities[c].argmax(axis=1) == validation.emotion))
    best = max(grid, key=lambda c: (scores[str(c)], -c))  # ties: stronger L2
    return best, scores, probabilities[best]


def fit_functional_view(
    clips: ClipSet,
    *,
    train_mask: np.ndarray,
    validation_mask: np.ndarray,
    settings: TrainSettings,
    columns: np.ndarray | None = None,
    grid: tuple[float, ...] | None = None,
):
    """Choose the L2 strength on the validation clips with a fit on the training clips, then
    refit on both (the view has no early stopping to feed, and it is short of data).

    Returns
    -------
    model : keras.Model
        From :func:`fit_functional_member` on ``train_mask | validation_mask``.
    c : float
    scores : dict
        Validation accuracy per candidate C.
    validation_probabilities : np.ndarray, shape (validation_mask.sum(), n_emotions)
        From the training-only fit, which never saw the validation clips (for calibration).
    """
    if not settings.room_copies:
        clips = dataclasses.replace(clips, room_functionals=None)
    c, scores, validation_probabilities = choose_functional_c(
        clips.subset(train_mask), clips.subset(validation_mask), settings=settings, columns=columns, grid=grid
    )
    model = fit_functional_member(clips.subset(train_mask | validation_mask), c=c, columns=columns)
    return model, c, scores, validation_probabilities


def voicing_view_columns(clips: ClipSet, *, settings: TrainSettings) -> np.ndarray | None:
    """The voicing view's functionals, or None when the settings or the clips have none."""
    from ser.serving.functionals import voicing_columns

    if not settings.voicing_view or clips.functionals is None or not clips.functional_names:
        return None
    columns = voicing_columns(clips.functional_names)
    return columns if columns.size else None


def predict_functionals(model, clips: ClipSet) -> dict[str, np.ndarray]:
    """Each head's probabilities from the functionals of every clip (original speed)."""
    outputs = model.predict(clips.functionals[1.0], batch_size=256, verbose=0)
    return {head: np.asarray(values, dtype=np.float64) for head, values in outputs.items()}


def cross_validate(
    clips: ClipSet,
    *,
    speech_mask: np.ndarray,
    config: FeatureConfig,
    settings: TrainSettings,
    folds: list[int] | None = None,
    log=print,
) -> dict[str, Any]:
    """Speaker-grouped cross-validation of the shipped architecture.

    Returns
    -------
    dict with ``models`` (one per fold), ``histories``, ``splits`` (actor lists),
    ``test_positions`` and ``test_probabilities`` (per head; the two views fused window by window when the
    clips have functionals), ``val_positions`` and ``val_probabilities`` (for calibration),
    ``seconds`` per fold, and for the functional views ``functional_models``,
    ``functional_c`` (the L2 chosen per fold), ``voicing_models``, ``voicing_c`` and ``view_probabilities`` (each view's
    emotion probabilities on the test actors, for the ablation in metrics.json), and ``refit_epochs`` (per fold,
    with ``settings.refit_cnn``: the CNN that ships was retrained on training + validation actors for that many
    epochs; ``histories`` keep the early-stopped run's curves).
    """
    actors = sorted(set(clips.actor.tolist()))
    result: dict[str, Any] = {
        "models": [],
        "histories": [],
        "splits": [],
        "seconds": [],
        "test_positions": [],
        "test_probabilities": [],
        "val_positions": [],
        "val_probabilities": [],
        "functional_models": [],
        "functional_c": [],
        "voicing_models": [],
        "voicing_c": [],
        "view_probabilities": [],
        "refit_epochs": [],
    }
    voicing = voicing_view_columns(clips, settings=settings)
    for fold in folds if folds is not None else range(settings.n_folds):
        train_actors, val_actors, test_actors = train_validation_test(
            actors, n_folds=settings.n_folds, fold=fold, seed=settings.seed
        )
        overlap = (
            (set(train_actors) & set(val_actors))
            | (set(train_actors) & set(test_actors))
            | (set(val_actors) & set(test_actors))
        )
        if overlap:  # cannot happen by construction; refuse to report a leaky number if it ever does
            raise RuntimeError(f"actors {sorted(overlap)} are in two parts of fold {fold}")
        in_train = training_mask(clips, actors=train_actors, speech_mask=speech_mask, settings=settings)
        val_mask = np.isin(clips.actor, val_actors) & speech_mask
        test_mask = np.isin(clips.actor, test_actors) & speech_mask
        started = time.perf_counter()
        in_refit = training_mask(clips, actors=train_actors + val_actors, speech_mask=speech_mask, settings=settings)
        early_stopped, model, history, refit_epochs = fit_cnn(
            clips.subset(in_train),
            clips.subset(val_mask),
            refit_on=clips.subset(in_refit),
            config=config,
            settings=settings,
            seed=settings.seed + fold,
            verbose=int(os.environ.get("SER_VERBOSE", "0")),
        )
        if refit_epochs is not None:
            result["refit_epochs"].append(refit_epochs)
        # Validation (and calibration) probabilities come from the early-stopped model, which
        # never saw those actors; test probabilities from the model that ships.
        val_windows = predict_windows(early_stopped, clips.subset(val_mask), config=config)
        seconds = time.perf_counter() - started
        test_windows = predict_windows(model, clips.subset(test_mask), config=config)
        test_probabilities = average_windows(*test_windows, n_clips=int(test_mask.sum()))
        val_probabilities = average_windows(*val_windows, n_clips=int(val_mask.sum()))
        views = {"log_mel_cnn": test_probabilities["emotion"]}
        if clips.functionals is not None:
            # The functional view: L2 chosen on the validation actors by a model fitted on the
            # training actors (whose validation probabilities also feed calibration), then
            # refitted on training + validation actors, since it has no early stopping to feed.
            fit_started = time.perf_counter()
            functional, c, c_scores, functional_val = fit_functional_view(
                clips, train_mask=np.isin(clips.actor, train_actors) & speech_mask, validation_mask=val_mask,
                settings=settings,
            )
            functional_test = predict_functionals(functional, clips.subset(test_mask))
            views["functionals"] = functional_test["emotion"]
            clip_views, clip_views_val = [functional_test], [{"emotion": functional_val}]
            result["functional_models"].append(functional)
            result["functional_c"].append({"fold": fold, "chosen": c, "validation_accuracy": c_scores})
            if voicing is not None:  # the third view, fitted the same way on its functionals only
                voicing_model, c, c_scores, voicing_val = fit_functional_view(
                    clips, train_mask=np.isin(clips.actor, train_actors) & speech_mask, validation_mask=val_mask,
                    settings=settings, columns=voicing, grid=settings.voicing_c_grid,
                )
                voicing_test = predict_functionals(voicing_model, clips.subset(test_mask))
                views["voicing"] = voicing_test["emotion"]
                clip_views.append(voicing_test)
                clip_views_val.append({"emotion": voicing_val})
                result["voicing_models"].append(voicing_model)
                result["voicing_c"].append({"fold": fold, "chosen": c, "validation_accuracy": c_scores})
            test_probabilities = average_windows(
                *test_windows, n_clips=int(test_mask.sum()), functional_probabilities=clip_views
            )
            val_probabilities = average_windows(
                *val_windows, n_clips=int(val_mask.sum()), functional_probabilities=clip_views_val
            )
            seconds += time.perf_counter() - fit_started
        result["view_probabilities"].append(views)
        accuracy = float(np.mean(test_probabilities["emotion"].argmax(1) == clips.emotion[test_mask]))
        log(
            f"fold {fold}: test actors {test_actors} accuracy {accuracy:.3f} "
            + " ".join(f"{view} {np.mean(p.argmax(1) == clips.emotion[test_mask]):.3f}" for view, p in views.items())
            + f" ({len(history['loss'])} epochs, {seconds:.0f} s)"
        )
        result["models"].append(model)
        result["histories"].append(history)
        result["splits"].append({"fold": fold, "train": train_actors, "validation": val_actors, "test": test_actors})
        result["seconds"].append(seconds)
        result["test_positions"].append(np.flatnonzero(test_mask))
        result["test_probabilities"].append(test_probabilities)
        result["val_positions"].append(np.flatnonzero(val_mask))
        result["val_probabilities"].append(val_probabilities)
    return result


def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the numbers."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("tensorflow-cpu", "tensorflow", "keras", "numpy", "librosa", "scikit-learn", "soundfile"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def log_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
