"""Cached log-mel features of a dataset, with speed-perturbed copies for augmentation, and
the openSMILE functionals of those copies and of one "recorded in a room" copy of each
speech clip (:func:`ser.training.augment.room_copy`).

Features are computed by :func:`ser.serving.features.clip_features` (the same function the app
uses) and stored as one flat float32 array plus offsets in ``.npz`` files without
pickled objects, in a git-ignored folder keyed by the feature config.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ser.config import FeatureConfig
from ser.errors import NoSpeechError
from ser.serving.audio import decode_audio, resample
from ser.serving.features import clip_features

#: Speed factors precomputed for training (1.0 is the original clip).
SPEED_FACTORS: tuple[float, ...] = (1.0, 0.9, 1.1)


def _cache_key(settings: dict, paths: list[str], speed: float) -> str:
    text = json.dumps({"config": settings, "paths": paths, "speed": speed}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _log_mel_settings(config: FeatureConfig) -> dict:
    settings = config.to_dict()
    for name in ("functionals", "functionals_rms"):  # not part of the log-mel computation
        settings.pop(name)
    return settings


def speed_perturb(waveform: np.ndarray, *, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``factor`` times faster (tempo and pitch together), as in Kaldi speed perturbation."""
    if factor == 1.0:
        return waveform
    return resample(waveform, orig_sample_rate=int(round(sample_rate * factor)), target_sample_rate=sample_rate)


def load_features(
    index: pd.DataFrame,
    *,
    config: FeatureConfig,
    cache_dir: Path,
    speeds: tuple[float, ...] = SPEED_FACTORS,
) -> dict[float, list[np.ndarray]]:
    """Features of every row of ``index`` for each speed factor, computed once and cached.

    Returns
    -------
    dict
        ``speed -> list`` aligned with ``index`` rows; each item has shape (frames, n_mels).
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = index["path"].tolist()
    result: dict[float, list[np.ndarray]] = {}
    waveforms: list[np.ndarray] | None = None
    for speed in speeds:
        file = cache_dir / f"logmel-{_cache_key(_log_mel_settings(config), paths, speed)}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as stored:
                flat, offsets = stored["flat"], stored["offsets"]
            result[speed] = [flat[offsets[i] : offsets[i + 1]] for i in range(len(paths))]
            continue
        started = time.perf_counter()
        if waveforms is None:
            waveforms = [decode_audio(path, sample_rate=config.sample_rate) for path in paths]
        features = []
        for path, waveform in zip(paths, waveforms, strict=True):
            try:
                perturbed = speed_perturb(waveform, factor=speed, sample_rate=config.sample_rate)
                features.append(clip_features(perturbed, config=config))
            except NoSpeechError as error:
                raise NoSpeechError(f"{path}: {error}") from error
        offsets = np.concatenate([[0], np.cumsum([len(item) for item in features])]).astype(np.int64)
        np.savez(file, flat=np.concatenate(features).astype(np.float32), offsets=offsets)
        print(
            f"features: {len(paths)} clips at speed {speed} in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        result[speed] = features
    return result


def load_functionals(
    index: pd.DataFrame,
    *,
    config: FeatureConfig,
    cache_dir: Path,
    speeds: tuple[float, ...] = SPEED_FACTORS,
) -> dict[float, np.ndarray]:
    """openSMILE functionals of every row of ``index`` for each speed factor, cached.

    Each clip goes through the same :func:`ser.serving.features.prepare_waveform` as in the app,
    then :func:`ser.serving.functionals.acoustic_functionals` (about 50 ms per clip).

    Returns
    -------
    dict
        ``speed -> np.ndarray`` of shape (n_clips, n_functionals), rows aligned with ``index``.
    """
    from ser.serving.features import prepare_waveform
    from ser.serving.functionals import acoustic_functionals

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = index["path"].tolist()
    result: dict[float, np.ndarray] = {}
    waveforms: list[np.ndarray] | None = None
    for speed in speeds:
        file = cache_dir / f"functionals-{_cache_key(config.to_dict(), paths, speed)}.npz"
        if file.exists():
            with np.load(file, allow_pickle=False) as stored:
                result[speed] = stored["values"]
            continue
        started = time.perf_counter()
        if waveforms is None:  # decoded once for every speed, as in load_features
            waveforms = [decode_audio(path, sample_rate=config.sample_rate) for path in paths]
        rows = []
        for path, waveform in zip(paths, waveforms, strict=True):
            try:
                perturbed = speed_perturb(waveform, factor=speed, sample_rate=config.sample_rate)
                rows.append(acoustic_functionals(prepare_waveform(perturbed, config=config), config=config))
            except NoSpeechError as error:
                raise NoSpeechError(f"{path}: {error}") from error
        result[speed] = np.stack(rows).astype(np.float32)
        np.savez(file, values=result[speed])
        print(
            f"functionals: {len(paths)} clips at speed {speed} in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return result


#: Seed of the room copies (with each file's name, so a clip gets the same copy in any index).
ROOM_COPY_SEED = 7


def load_room_functionals(
    index: pd.DataFrame,
    *,
    config: FeatureConfig,
    cache_dir: Path,
    seed: int = ROOM_COPY_SEED,
) -> np.ndarray:
    """Functionals of one noisy, sometimes reverberant copy of every speech clip, cached.

    The copy (:func:`ser.training.augment.room_copy`) is seeded by ``seed`` and the file's name, then
    goes through :func:`ser.serving.features.prepare_waveform` and the functionals exactly as a clip
    the app receives. The functional views train on speech only, so song rows are NaN (a fit
    that used one would fail loudly rather than learn from a hole).

    Returns
    -------
    np.ndarray, shape (n_clips, n_functionals), float32, rows aligned with ``index``
    """
    import zlib

    from ser.training.augment import room_copy

    def copy(waveform: np.ndarray, name: str) -> np.ndarray:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        return room_copy(waveform, sample_rate=config.sample_rate, rng=rng)

    return _copy_functionals(index, config=config, cache_dir=cache_dir, kind="room", what="room copies",
                             key={"room_copy_seed": seed}, copy=copy, refusable=False)


def load_word_functionals(index: pd.DataFrame, *, config: FeatureConfig, cache_dir: Path) -> np.ndarray:
    """Functionals of one word-length cut of every speech clip (:func:`ser.training.loco.word_cut`,
    seeded by the file's name), cached: the linear views' word copy (``--word-crops``).

    A cut the app would refuse (too little voice) is a NaN row, as are song rows.

    Returns
    -------
    np.ndarray, shape (n_clips, n_functionals), float32, rows aligned with ``index``
    """
    from ser.training.loco import CUT_SECONDS, CUT_SEED, word_cut

    def copy(waveform: np.ndarray, name: str) -> np.ndarray:
        return word_cut(waveform, name=name, config=config)

    return _copy_functionals(index, config=config, cache_dir=cache_dir, kind="word", what="word cuts",
                             key={"word_cut": [*CUT_SECONDS, CUT_SEED]}, copy=copy, refusable=True)


def _copy_functionals(index: pd.DataFrame, *, config: FeatureConfig, cache_dir: Path, kind: str, what: str,
                      key: dict, copy: Callable[[np.ndarray, str], np.ndarray], refusable: bool) -> np.ndarray:
    """Functionals of ``copy(waveform, file name)`` of every speech clip, through the app's preparation, cached in
    ``functionals-{kind}-*.npz`` under ``key`` (what makes the copies) and the config. Song rows are NaN; so is a
    copy the app would refuse when ``refusable``, which otherwise raises.

    Returns
    -------
    np.ndarray, shape (n_clips, n_functionals), float32, rows aligned with ``index``
    """
    from ser.serving.features import prepare_waveform
    from ser.serving.functionals import acoustic_functionals, n_functionals

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = index["path"].tolist()
    speech = (index["vocal_channel"] == "speech").to_numpy()
    file = cache_dir / f"functionals-{kind}-{_cache_key({**config.to_dict(), **key}, paths, 1.0)}.npz"
    if file.exists():
        with np.load(file, allow_pickle=False) as stored:
            return stored["values"]
    started = time.perf_counter()
    values = np.full((len(paths), n_functionals(config)), np.nan, dtype=np.float32)
    for row, (path, is_speech) in enumerate(zip(paths, speech, strict=True)):
        if not is_speech:
            continue
        copied = copy(decode_audio(path, sample_rate=config.sample_rate), Path(path).name)
        try:
            values[row] = acoustic_functionals(prepare_waveform(copied, config=config), config=config)
        except NoSpeechError as error:
            if not refusable:
                raise NoSpeechError(f"{path} ({kind} copy): {error}") from error
            # refused as the app would refuse it: left NaN (a word copy falls back to the clip itself)
    np.savez(file, values=values)
    refused = int((speech & np.isnan(values).any(axis=1)).sum())
    print(f"functionals: {int(speech.sum())} {what} in {time.perf_counter() - started:.1f} s"
          + (f" ({refused} held too little voice: their clips stand in for them)" if refusable else ""),
          file=sys.stderr)
    return values
