"""Pure feature functions: waveform + frozen config -> model input.

Training, evaluation, the CLI, the benchmark and the app all call
:func:`log_mel_spectrogram` and :func:`window_features`, so what the model sees in
production is computed by the same code as what it was trained on.

Example
-------
>>> import numpy as np
>>> from ser.config import FeatureConfig
>>> from ser.features import log_mel_spectrogram
>>> config = FeatureConfig()
>>> log_mel_spectrogram(np.zeros(16000, dtype=np.float32), config=config).shape
(101, 64)
"""

from __future__ import annotations

import functools

import librosa
import numpy as np

from ser.config import FeatureConfig
from ser.errors import NoSpeechError

# librosa loads its submodules on first use, and its lazy loader calls inspect.stack(),
# which walks every loaded module: once TensorFlow is imported that made the first
# prediction take 2-7 s (bench/, issue 6). Resolve what this module uses now, at import,
# while few modules are loaded (the code that runs is the same, so are the numbers).
librosa.stft, librosa.filters.mel, librosa.effects.trim, librosa.feature.mfcc  # noqa: B018

#: Floor of the power spectrum before the log (about -100 dB re full scale).
POWER_FLOOR = 1e-10


@functools.lru_cache(maxsize=8)
def _mel_filterbank(config: FeatureConfig) -> np.ndarray:
    # Slaney-normalised filters have unit area, so white noise gives a flat mel spectrum.
    return librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.n_fft,
        n_mels=config.n_mels,
        fmin=config.fmin,
        fmax=config.fmax,
    ).astype(np.float32)


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
    stft = librosa.stft(
        y=waveform,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        win_length=config.win_length,
        window="hann",
        center=True,
        pad_mode="constant",
    )
    power = np.abs(stft) ** 2
    mel = _mel_filterbank(config) @ power
    return np.log(np.maximum(mel, POWER_FLOOR)).T.astype(np.float32)


def mfcc(waveform: np.ndarray, *, config: FeatureConfig, n_mfcc: int = 40) -> np.ndarray:
    """MFCCs from the same log-mel spectrogram (used by the baseline models).

    Returns
    -------
    np.ndarray, shape (frames, n_mfcc), float32
    """
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
    trimmed, _ = librosa.effects.trim(
        y=waveform, top_db=config.trim_top_db, frame_length=config.win_length, hop_length=config.hop_length
    )
    return trimmed


def prepare_waveform(waveform: np.ndarray, *, config: FeatureConfig) -> np.ndarray:
    """Remove DC offset and trim silence: what every clip goes through before features.

    Raises
    ------
    NoSpeechError
        If less than ``config.min_speech_seconds`` of audio is left, or it is digital silence.
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.size and np.max(np.abs(waveform)) > 0:
        waveform = waveform - np.float32(waveform.mean())
    if waveform.size == 0 or np.max(np.abs(waveform)) < 1e-4:
        raise NoSpeechError("no speech detected: the audio is silent; record closer to the microphone")
    trimmed = trim_silence(waveform, config=config)
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
