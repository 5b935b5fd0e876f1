"""Pure feature functions: waveform + frozen config -> model input.

Training, evaluation, the CLI, the benchmark and the app all call
:func:`log_mel_spectrogram` and :func:`window_features`, so what the model sees in
production is computed by the same code as what it was trained on.

Example
-------
>>> import numpy as np
>>> from ser.config import FeatureConfig
>>> from ser.serving.features import log_mel_spectrogram
>>> config = FeatureConfig()
>>> log_mel_spectrogram(np.zeros(16000, dtype=np.float32), config=config).shape
(101, 64)
"""

from __future__ import annotations

import functools

import numpy as np

from ser.config import FeatureConfig
from ser.errors import NoSpeechError
from ser.serving.speech import SILENT_MESSAGE, is_silent

# The short-time transforms below are librosa 0.11's (``stft``, ``filters.mel``,
# ``effects.trim``) written out in numpy: importing librosa pulls in scikit-learn, scipy.signal
# and numba (about 2.5 s of a cold start, bench/ issue 6), and the app and the CLI need only
# these three. tests/test_features.py checks them against librosa on real and synthetic clips
# (same frames trimmed, spectra equal to float32 rounding). librosa stays for training-only
# extras (MFCCs of the baselines, time stretch).

#: Floor of the power spectrum before the log (about -100 dB re full scale).
POWER_FLOOR = 1e-10

#: Frames per block of the STFT (bounds its temporary memory on long recordings).
_STFT_BLOCK_FRAMES = 2048

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above.
_MEL_LINEAR_HZ_PER_MEL = 200.0 / 3
_MEL_LOG_START_HZ = 1000.0
_MEL_LOG_START = _MEL_LOG_START_HZ / _MEL_LINEAR_HZ_PER_MEL
_MEL_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    frequencies = np.asarray(frequencies, dtype=np.float64)
    mels = frequencies / _MEL_LINEAR_HZ_PER_MEL
    above = frequencies >= _MEL_LOG_START_HZ
    with np.errstate(divide="ignore"):
        logarithmic = _MEL_LOG_START + np.log(frequencies / _MEL_LOG_START_HZ) / _MEL_LOG_STEP
    return np.where(above, logarithmic, mels)


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    frequencies = _MEL_LINEAR_HZ_PER_MEL * mels
    logarithmic = _MEL_LOG_START_HZ * np.exp(_MEL_LOG_STEP * (mels - _MEL_LOG_START))
    return np.where(mels >= _MEL_LOG_START, logarithmic, frequencies)


def mel_frequencies(*, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """``n_mels`` frequencies (Hz) evenly spaced on the Slaney mel scale from fmin to fmax.

    Returns
    -------
    np.ndarray, shape (n_mels,), float64
    """
    low, high = _hz_to_mel(np.array([fmin, fmax]))
    return _mel_to_hz(np.linspace(low, high, n_mels))


@functools.lru_cache(maxsize=8)
def _mel_filterbank(config: FeatureConfig) -> np.ndarray:
    """Triangular mel filters, shape (n_mels, 1 + n_fft // 2), float32.

    Slaney-normalised filters have unit area, so white noise gives a flat mel spectrum.
    """
    fft_frequencies = np.fft.rfftfreq(n=config.n_fft, d=1.0 / config.sample_rate)
    edges = mel_frequencies(n_mels=config.n_mels + 2, fmin=config.fmin, fmax=config.fmax)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_frequencies)
    weights = np.zeros((config.n_mels, fft_frequencies.size), dtype=np.float32)
    for band in range(config.n_mels):
        rising = -ramps[band] / widths[band]
        falling = ramps[band + 2] / widths[band + 1]
        weights[band] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : config.n_mels + 2] - edges[: config.n_mels]))[:, None]
    return weights


@functools.lru_cache(maxsize=8)
def _hann_window(n_fft: int, win_length: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` samples centred in ``n_fft`` (float64)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    padded = np.zeros(n_fft)
    start = (n_fft - win_length) // 2
    padded[start : start + win_length] = window
    return padded


def _frames(signal: np.ndarray, *, frame_length: int, hop_length: int) -> np.ndarray:
    """Overlapping frames of a 1-D signal as a view, shape (n_frames, frame_length)."""
    return np.lib.stride_tricks.sliding_window_view(signal, frame_length)[::hop_length]


def log_mel_spectrogram(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Log-mel power spectrogram of a mono waveform.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio at ``config.sample_rate``.
    config : FeatureConfig

    Returns
    -------
    np.ndarray, shape (1 + samples // hop_length, n_mels), float32
        Natural log of mel power, floored at ``log(POWER_FLOOR)``; time on the first axis.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono with shape (samples,), got {waveform.shape}")
    # Centred frames: n_fft // 2 zeros on each side, 1 + samples // hop_length frames.
    padded = np.pad(waveform, config.n_fft // 2, mode="constant")
    frames = _frames(padded, frame_length=config.n_fft, hop_length=config.hop_length)
    window = _hann_window(config.n_fft, config.win_length)
    # In blocks of frames, as librosa does: the float64 windowed frames and their complex128
    # transform of a whole 15-minute upload would take ~0.8 GB at once (same bits either way).
    stft = np.empty((config.n_fft // 2 + 1, len(frames)), dtype=np.complex64)
    for start in range(0, len(frames), _STFT_BLOCK_FRAMES):
        block = frames[start : start + _STFT_BLOCK_FRAMES]
        stft[:, start : start + len(block)] = np.fft.rfft(block * window, axis=-1).T
    power = np.abs(stft) ** 2
    del stft
    mel = _mel_filterbank(config) @ power
    return np.log(np.maximum(mel, POWER_FLOOR)).T.astype(np.float32)


def mfcc(waveform: np.ndarray, *, config: FeatureConfig, n_mfcc: int = 40) -> np.ndarray:
    """MFCCs from the same log-mel spectrogram (used by the baseline models).

    Returns
    -------
    np.ndarray, shape (frames, n_mfcc), float32
    """
    import librosa  # training-only (the baselines): kept out of the app's import time

    log_mel = log_mel_spectrogram(waveform, config=config)
    return librosa.feature.mfcc(S=log_mel.T, n_mfcc=n_mfcc).T.astype(np.float32)


def trim_silence(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Cut leading and trailing audio quieter than ``config.trim_top_db`` below the peak.

    Returns
    -------
    np.ndarray, shape (kept_samples,)
    """
    if waveform.size == 0:
        return waveform
    # librosa.effects.trim: frame RMS (centred frames of win_length), in dB below the
    # loudest frame; keep from the first to one hop past the last frame above -top_db.
    half = config.win_length // 2
    padded = np.pad(np.asarray(waveform, dtype=np.float32), half, mode="constant")
    frames = _frames(padded, frame_length=config.win_length, hop_length=config.hop_length).T
    rms = np.sqrt(np.mean(np.square(frames), axis=-2))
    # Same operations in the same float32 order as librosa, so the same frames come out.
    decibels = 10.0 * np.log10(np.maximum(1e-10, np.square(rms)))
    decibels -= 10.0 * np.log10(np.maximum(1e-10, np.max(rms) ** 2))
    loud = np.flatnonzero(decibels > -config.trim_top_db)
    if loud.size == 0:
        return waveform[:0]
    start = int(loud[0]) * config.hop_length
    end = min(waveform.shape[-1], (int(loud[-1]) + 1) * config.hop_length)
    return waveform[start:end]


def remove_dc(waveform: np.ndarray) -> np.ndarray:
    """The waveform minus its mean (float32), the first step of every clip's features.

    Returns
    -------
    np.ndarray, shape (samples,), float32
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    return waveform - np.float32(waveform.mean()) if waveform.size else waveform


def prepare_waveform(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Remove DC offset and trim silence: what every clip goes through before features.

    Raises
    ------
    NoSpeechError
        If less than ``config.min_speech_seconds`` of audio is left, or it is digital silence
        (:func:`ser.serving.speech.is_silent`).
    """
    return trim_utterance(remove_dc(waveform), config=config)


def trim_utterance(centred: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """:func:`prepare_waveform` of audio whose DC offset is already removed (:func:`remove_dc`).

    Raises
    ------
    NoSpeechError
        As :func:`prepare_waveform`.
    """
    if is_silent(centred):
        raise NoSpeechError(SILENT_MESSAGE)
    trimmed = trim_silence(centred, config=config)
    seconds = trimmed.size / config.sample_rate
    if seconds < config.min_speech_seconds:
        raise NoSpeechError(
            f"no speech detected: only {seconds:.2f} s of sound (at least "
            f"{config.min_speech_seconds:.1f} s needed); record a whole sentence"
        )
    return trimmed


def window_features(features: np.ndarray, *, config: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut a feature matrix into model windows.

    A clip shorter than one window is repeated (wrapped) to fill it, so no artificial
    silence is added; a longer one is cut into windows ``config.window_hop_frames`` apart,
    the last one aligned with the end so nothing is dropped.

    Parameters
    ----------
    features : np.ndarray, shape (frames, n_mels)

    Returns
    -------
    windows : np.ndarray, shape (n_windows, window_frames, n_mels)
    starts : np.ndarray, shape (n_windows,)
        Start of each window in frames.
    """
    frames = config.window_frames
    if features.shape[0] == 0:
        raise NoSpeechError("no speech detected: the audio has no frames")
    if features.shape[0] <= frames:
        repeats = -(-frames // features.shape[0])
        return np.tile(features, (repeats, 1))[None, :frames], np.zeros(1, dtype=np.int64)
    last = features.shape[0] - frames
    starts = list(range(0, last + 1, config.window_hop_frames))
    if starts[-1] != last:
        starts.append(last)
    starts_array = np.asarray(starts, dtype=np.int64)
    index = starts_array[:, None] + np.arange(frames)[None, :]
    return features[index], starts_array


def clip_features(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Waveform -> trimmed log-mel spectrogram: the model's input before windowing.

    Returns
    -------
    np.ndarray, shape (frames, n_mels), float32
    """
    return log_mel_spectrogram(prepare_waveform(waveform, config=config), config=config)
