"""Waveform corruptions for training: the noise and rooms a clip recorded outside a studio has.

RAVDESS was recorded in a studio; a laptop or phone in a room adds noise and reverberation.
Trained on studio clips only, the openSMILE views lost about half their accuracy with white
noise 20 dB below the speech, and the fused model fell from 66% to 37% there
(``python -m ser robustness``), so the functional views also learn from one corrupted copy
of every training clip, made here.

Everything is seeded by the caller's generator, so a copy is the same on every run (it is
cached by :mod:`ser.training.cache`).

Example
-------
>>> import numpy as np
>>> from ser.training.augment import add_noise
>>> rng = np.random.default_rng(0)
>>> clip = np.sin(np.linspace(0, 2000, 16000)).astype(np.float32)
>>> noisy = add_noise(clip, snr_db=10.0, colour="pink", rng=rng)
>>> noisy.shape, noisy.dtype
((16000,), dtype('float32'))
"""

from __future__ import annotations

import numpy as np

#: Noise colours: exponent of the power spectrum's 1/f^k slope.
NOISE_COLOURS: dict[str, float] = {"white": 0.0, "pink": 1.0, "brown": 2.0}
#: Range of the room copies' reverberation time (seconds) and noise level (dB below the speech).
ROOM_RT60_SECONDS: tuple[float, float] = (0.2, 0.8)
ROOM_SNR_DB: tuple[float, float] = (5.0, 30.0)


def active_power(waveform: np.ndarray, *, frame: int = 400, range_db: float = 30.0) -> float:
    """Mean power of the ``frame``-sample frames within ``range_db`` of the loudest one: the
    level of the speech itself, not of the pauses around it (so an SNR means the same for a
    clip with long silences), in the spirit of ITU-T P.56's active speech level.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    """
    samples = np.asarray(waveform, dtype=np.float64)
    count = samples.size // frame
    if count < 1:
        return float(np.mean(samples**2)) if samples.size else 0.0
    powers = np.mean(samples[: count * frame].reshape(count, frame) ** 2, axis=1)
    active = powers[powers >= powers.max() * 10 ** (-range_db / 10)]
    return float(active.mean())


def coloured_noise(size: int, *, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise with a 1/f^k power spectrum (:data:`NOISE_COLOURS`).

    Returns
    -------
    np.ndarray, shape (size,), float64
    """
    if colour not in NOISE_COLOURS:
        raise ValueError(f"colour must be one of {sorted(NOISE_COLOURS)}, got {colour!r}")
    noise = rng.standard_normal(size)
    exponent = NOISE_COLOURS[colour]
    if exponent:
        spectrum = np.fft.rfft(noise)
        frequencies = np.arange(spectrum.size, dtype=np.float64)
        frequencies[0] = 1.0
        noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n=size)
    return noise / max(float(np.sqrt(np.mean(noise**2))), 1e-12)


def add_noise(waveform: np.ndarray, *, snr_db: float, colour: str, rng: np.random.Generator) -> np.ndarray:
    """Add coloured noise ``snr_db`` below the speech's :func:`active_power`.

    Returns
    -------
    np.ndarray, shape (samples,), float32, clipped to [-1, 1]
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    noise = coloured_noise(waveform.size, colour=colour, rng=rng)
    noise *= np.sqrt(active_power(waveform) / 10 ** (snr_db / 10))
    return np.clip(waveform + noise, -1.0, 1.0).astype(np.float32)


def reverberate(waveform: np.ndarray, *, rt60: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response: a direct path and exponentially decaying
    noise that falls 60 dB in ``rt60`` seconds; the output keeps the input's power.

    Returns
    -------
    np.ndarray, shape (samples,), float32
    """
    from scipy.signal import fftconvolve

    if rt60 <= 0:
        raise ValueError(f"rt60 must be a positive number of seconds, got {rt60}")
    waveform = np.asarray(waveform, dtype=np.float32)
    times = np.arange(int(rt60 * sample_rate)) / sample_rate
    response = rng.standard_normal(times.size) * np.exp(-6.9 * times / rt60)  # ln(1000) = 6.9: -60 dB
    response[0] = 1.0
    response /= np.sqrt(np.sum(response**2))
    wet = fftconvolve(waveform.astype(np.float64), response)[: waveform.size]
    gain = np.sqrt(np.mean(waveform.astype(np.float64) ** 2) / max(float(np.mean(wet**2)), 1e-20))
    return np.clip(wet * gain, -1.0, 1.0).astype(np.float32)


def room_copy(waveform: np.ndarray, *, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One random "recorded in a room" copy of a studio clip, for training.

    Half the copies are reverberated first (RT60 0.2-0.8 s); every copy then gets white, pink
    or brown noise at an SNR drawn from 5-30 dB.

    Returns
    -------
    np.ndarray, shape (samples,), float32
    """
    if rng.random() < 0.5:
        waveform = reverberate(waveform, rt60=float(rng.uniform(*ROOM_RT60_SECONDS)), sample_rate=sample_rate, rng=rng)
    colour = str(rng.choice(sorted(NOISE_COLOURS)))
    return add_noise(waveform, snr_db=float(rng.uniform(*ROOM_SNR_DB)), colour=colour, rng=rng)
