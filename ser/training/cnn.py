"""The log-mel CNN view: training batches with augmentation, early-stopped and refitted fits,
and scoring every window of a clip.

Augmentation (speed 0.9/1.1, random crops, mel-axis warping, noise, SpecAugment) is applied
to training batches only, after the split. Example (tiny, synthetic)::

    from ser.training.cnn import fit_fold, predict_clips
    model, history = fit_fold(train_clips, validation_clips, config=config, settings=settings, seed=0)
    probabilities = predict_clips(model, test_clips, config=config)["emotion"]  # (n_clips, 8)
"""

from __future__ import annotations

import math

import numpy as np

from ser import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402

from ser.config import FeatureConfig  # noqa: E402
from ser.serving.features import window_features  # noqa: E402
from ser.serving.layers import fuse_views  # noqa: E402
from ser.training.cache import SPEED_FACTORS  # noqa: E402
from ser.training.clips import ClipSet  # noqa: E402
from ser.training.data import EMOTIONS  # noqa: E402
from ser.training.networks import build_model  # noqa: E402
from ser.training.settings import TrainSettings  # noqa: E402

#: Range of the noise added to training windows, in dB below the window's power.
WINDOW_SNR_DB: tuple[float, float] = (5.0, 30.0)
#: Loss weight of each head: emotion is the task, gender and intensity help it.
LOSS_WEIGHTS = {"emotion": 1.0, "gender": 0.2, "intensity": 0.3}


def class_weights(labels: np.ndarray, *, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over samples), so neutral's half-size class counts fully.

    Returns
    -------
    np.ndarray, shape (n_classes,)
    """
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


def _word_window(features: np.ndarray, *, config: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """A window made of one word-length span of a clip (:data:`ser.training.loco.CUT_SECONDS`),
    wrapped to fill the window by :func:`window_features`, as a single word is served.

    The span is cut from the clip's log-mel frames, not recomputed from a cut waveform, so it differs
    from a served word only in its first and last frame (a served cut's spectrogram is zero-padded
    at its edges) and may start or end in a pause the app would have trimmed.

    Returns
    -------
    np.ndarray, shape (window_frames, n_mels)
    """
    from ser.training.loco import CUT_SECONDS

    frames = max(1, int(rng.uniform(*CUT_SECONDS) * config.frames_per_second))
    if features.shape[0] > frames:
        start = int(rng.integers(0, features.shape[0] - frames + 1))
        features = features[start : start + frames]
    return window_features(features, config=config)[0][0]


def augment_window(window: np.ndarray, *, settings: TrainSettings, rng: np.random.Generator) -> np.ndarray:
    """Mel warping, noise and SpecAugment on one log-mel window ``(frames, n_mels)`` (training only)."""
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
        snr_db = rng.uniform(*WINDOW_SNR_DB)
        noise = signal_power / 10 ** (snr_db / 10) * rng.gamma(4.0, 0.25, size=window.shape)
        window = np.log(np.exp(window) + noise).astype(np.float32)
    # SpecAugment: two frequency and two time masks filled with the window's mean.
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


def augmented_windows(variants: dict[float, list[np.ndarray]], rows: np.ndarray, *, config: FeatureConfig,
                      settings: TrainSettings, rng: np.random.Generator) -> np.ndarray:
    """One training window per row: a speed copy drawn with ``settings.speed_probability``, a random
    crop of ``config.window_frames`` frames (or, with ``settings.word_crop_probability``, one
    word-length span wrapped to fill them), then :func:`augment_window`.

    Parameters
    ----------
    variants : dict speed -> list of np.ndarray, each of shape (frames, n_mels)
        The clips' log-mel features at each speed (:attr:`ClipSet.variants`).
    rows : np.ndarray of int, shape (batch,)

    Returns
    -------
    np.ndarray, shape (batch, window_frames, n_mels)
    """
    windows = []
    for row in rows:
        speed = 1.0
        if rng.random() < settings.speed_probability:
            speed = float(rng.choice([s for s in SPEED_FACTORS if s != 1.0]))
        features = variants[speed][row]
        # Guarded so a recipe without word crops draws the same random numbers as before.
        if settings.word_crop_probability and rng.random() < settings.word_crop_probability:
            window = _word_window(features, config=config, rng=rng)
        else:
            window = _crop(features, frames=config.window_frames, rng=rng)
        windows.append(augment_window(window, settings=settings, rng=rng))
    return np.stack(windows)


class TrainingBatches(keras.utils.PyDataset):
    """Random crops of augmented training clips, reshuffled every epoch.

    Each item is ``(windows, targets, sample_weights)``: windows ``(batch, window_frames, n_mels)``,
    and per head ``(batch,)`` integer targets and weights (emotion weighted by :func:`class_weights`).
    """

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
        size = self.settings.batch_size
        rows = self.order[batch_index * size : (batch_index + 1) * size]
        windows = augmented_windows(self.clips.variants, rows, config=self.config, settings=self.settings,
                                    rng=self.rng)
        emotion = self.clips.emotion[rows]
        targets = {"emotion": emotion, "gender": self.clips.gender[rows], "intensity": self.clips.intensity[rows]}
        ones = np.ones(len(rows), dtype=np.float32)
        weights = {"emotion": self.weights[emotion], "gender": ones, "intensity": ones}
        return windows, targets, weights


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
    """Train one CNN; early stopping restores the weights best on validation speakers.

    With ``schedule`` (one learning rate per epoch, see :func:`refit_schedule`) and no
    ``validation``, train for exactly that many epochs at those rates instead. Clips of several
    corpora (``train.masked``) train with the masked emotion loss, classes balanced within each
    corpus and corpora equal (:mod:`ser.training.masked_cnn`); early stopping watches the same
    masked loss on the validation speakers of every corpus.

    Returns
    -------
    model : keras.Model
    history : dict of per-epoch lists
    """
    if (validation is None) == (schedule is None):
        raise ValueError("give either validation clips (early stopping) or a schedule (refit), not both")
    model = build_model(
        window_frames=config.window_frames, n_mels=config.n_mels, width=settings.width, dropout=settings.dropout,
        seed=seed,
    )
    if train.masked:  # several corpora: each teaches only its emotions (ser.training.masked_cnn)
        from ser.training.masked_cnn import compile_masked, masked_batches

        compile_masked(model, settings=settings)
        batches = masked_batches(train, config=config, settings=settings, seed=seed)
    else:
        model.compile(
            optimizer=keras.optimizers.AdamW(learning_rate=settings.learning_rate, weight_decay=1e-3),
            loss=dict.fromkeys(LOSS_WEIGHTS, "sparse_categorical_crossentropy"),
            loss_weights=LOSS_WEIGHTS,
            metrics={head: ["accuracy"] for head in LOSS_WEIGHTS},
        )
        batches = TrainingBatches(train, config=config, settings=settings, seed=seed)
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
    if validation.masked:
        from ser.training.masked_cnn import masked_targets
        from ser.training.target_sets import taught_classes

        # Partial labels of validation clips are narrowed to what the training clips teach, as in training.
        validation_data = (val_windows, *masked_targets(validation, corpus_weights=settings.corpus_weight_map(),
                                                        taught=taught_classes(train.emotion, train.class_mask)))
    else:
        validation_data = (
            val_windows,
            {"emotion": validation.emotion, "gender": validation.gender, "intensity": validation.intensity},
        )
    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_emotion_loss", mode="min", patience=settings.patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_emotion_loss", mode="min", factor=0.5, patience=5, min_lr=1e-5),
    ]
    history = model.fit(
        batches, validation_data=validation_data, epochs=settings.epochs, callbacks=callbacks,
        verbose=verbose,
    )
    return model, {key: [float(value) for value in values] for key, values in history.history.items()}


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
    """Early-stop a CNN on ``validation``, then train a fresh one on ``refit_on`` (the training +
    validation clips) replaying :func:`refit_schedule`: four more speakers to learn from.

    Returns
    -------
    early_stopped : keras.Model
        Never saw the validation clips: the one to score them with (calibration).
    shipped : keras.Model
        The refitted model.
    history : dict of per-epoch lists
        The early-stopped run's curves.
    refit_epochs : int
    """
    early_stopped, history = fit_fold(train, validation, config=config, settings=settings, seed=seed, verbose=verbose)
    shipped, refit_history = fit_fold(
        refit_on, None, config=config, settings=settings, seed=seed, schedule=refit_schedule(history), verbose=verbose
    )
    return early_stopped, shipped, history, len(refit_history["loss"])


def clip_windows(clips: ClipSet, *, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """All scoring windows of every clip (original speed) and the clip each belongs to.

    Returns
    -------
    windows : np.ndarray, shape (n_windows, window_frames, n_mels)
    owners : np.ndarray, shape (n_windows,)
    """
    windows, owners = [], []
    for position, features in enumerate(clips.variants[1.0]):
        own, _ = window_features(features, config=config)
        windows.append(own)
        owners.append(np.full(len(own), position))
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
    functional_probabilities: list[dict[str, np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """Average window outputs per clip.

    With ``functional_probabilities`` (one ``head -> (n_clips, n_classes)`` dict per clip-level
    view of the same clips), each window is first fused with its clip's views by
    :func:`ser.serving.layers.fuse_views`, as the shipped fused model does. Heads missing from a
    view are dropped.

    Returns
    -------
    dict
        ``head -> (n_clips, n_classes)``.
    """
    if functional_probabilities:
        outputs = {
            head: fuse_views(values, *(view[head][owners] for view in functional_probabilities))
            for head, values in outputs.items()
            if all(head in view for view in functional_probabilities)
        }
    result = {}
    for head, probabilities in outputs.items():
        summed = np.zeros((n_clips, probabilities.shape[1]))
        np.add.at(summed, owners, probabilities)
        result[head] = summed / np.bincount(owners, minlength=n_clips)[:, None]
    return result


def predict_clips(
    model, clips: ClipSet, *, config: FeatureConfig, functional_probabilities: list[dict[str, np.ndarray]] | None = None
) -> dict[str, np.ndarray]:
    """Average each head's probabilities over every window of each clip (optionally fused
    window by window with the clip-level views: see :func:`average_windows`).

    Returns
    -------
    dict
        ``head -> (n_clips, n_classes)`` probabilities.
    """
    outputs, owners = predict_windows(model, clips, config=config)
    return average_windows(outputs, owners, n_clips=len(clips), functional_probabilities=functional_probabilities)
