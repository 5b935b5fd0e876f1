"""Is there speech in this audio? A small, offline, signal-based voice-activity detector.

The model always answers with one of eight emotions, so it must never be shown silence,
hum or noise: :meth:`SpeechActivity.require` refuses such audio with
:class:`ser.errors.NoSpeechError` ("no speech detected") before the model is asked. It needs
no model file and no network: speech is recognised by what makes it speech acoustically.

0. **Silence.** Audio whose peak, DC offset removed, stays below :data:`SILENCE_PEAK` is
   digital silence (:func:`is_silent`), the one definition every stage uses.
1. **Voicing.** Vowels are periodic with a pitch between 70 and 600 Hz. Every 20 ms frame
   (of audio low-passed and resampled to 8 kHz) gets YIN's aperiodicity, the minimum of the
   cumulative-mean-normalised difference function over those pitch periods (de Cheveigne &
   Kawahara 2002): near 0 for a periodic frame, near 1 for noise (white, pink or brown alike,
   since the normalisation removes the noise colour). A frame is *voiced* when it is periodic
   enough and loud enough (within ``level_range_db`` of the loudest frame and above
   ``min_level_db`` dBFS). DC offset cancels out of the difference function.
2. **Enough of it.** At least ``min_voiced_seconds`` of voiced frames.
3. **It moves.** Speech changes pitch and loudness from syllable to syllable; mains hum, a
   test tone or a fan's whine does not. The voiced frames' pitch must spread over at least
   ``min_pitch_spread_semitones`` (interquartile range) or their level over
   ``min_level_spread_db``.

Limitations: a sung or whistled melody, or a musical instrument with vibrato, passes as
"speech"; speech buried in noise louder than itself (SNR below about 0 dB) may be refused.

Example
-------
>>> import numpy as np
>>> from ser.serving.speech import detect_speech
>>> rng = np.random.default_rng(0)
>>> detect_speech(0.1 * rng.standard_normal(16000).astype(np.float32), sample_rate=16000).is_speech
False
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ser.errors import NoSpeechError

#: Peak amplitude (full scale 1.0, DC offset removed) below which audio is digital silence,
#: about -80 dBFS: quieter than any microphone's own noise, so there is nothing to score.
SILENCE_PEAK = 1e-4
#: What the user is told about silent audio (the CLI and the app prefix the file name).
SILENT_MESSAGE = "no speech detected: the audio is silent; record closer to the microphone"
#: Rate the detector works at (Hz): enough for pitch, half the work of 16 kHz.
DETECTOR_RATE = 8000
#: Frames processed at once: bounds the detector's working memory (about 10 MB) whatever
#: the length of the recording (1024 frames are about 20 s of audio).
CHUNK_FRAMES = 1024


def is_silent(centred: np.ndarray) -> bool:
    """True when audio with its DC offset removed is empty or never reaches :data:`SILENCE_PEAK`.

    Parameters
    ----------
    centred : np.ndarray, shape (samples,)
        Mono audio minus its mean (:func:`ser.serving.features.remove_dc`).
    """
    return centred.size == 0 or float(np.max(np.abs(centred))) < SILENCE_PEAK


@dataclasses.dataclass(frozen=True)
class SpeechSettings:
    """Thresholds of the detector (see the module docstring).

    Attributes
    ----------
    frame_seconds : float
        Hop between analysis frames.
    window_seconds : float
        Integration window of the difference function.
    min_pitch_hz, max_pitch_hz : float
        Pitch range searched for periodicity.
    max_aperiodicity : float
        Frames with YIN aperiodicity below this are periodic (white noise gives about 0.7).
    level_range_db : float
        Frames more than this many dB below the loudest frame never count as voiced.
    min_level_db : float
        Frames quieter than this (dB re full scale, RMS) never count as voiced.
    min_clip_seconds : float
        Shorter audio is refused as too short to judge (a word lasts about half a second).
    min_voiced_seconds : float
        Voiced audio needed for a clip (or a timeline window) to hold speech. 0.15 s: one
        stressed vowel (0.1-0.2 s), so a clearly spoken single word is scored; 0.25 s refused
        1 in 8 word-length cuts of the examples (``tests/test_segments.py``), while white,
        pink or brown noise has almost no frames periodic enough to count.
    min_pitch_spread_semitones : float
        Interquartile range of the voiced frames' pitch that rules out a steady tone.
    min_level_spread_db : float
        Interquartile range of the voiced frames' level that rules out a steady tone.
    """

    frame_seconds: float = 0.02
    window_seconds: float = 0.025
    min_pitch_hz: float = 70.0
    max_pitch_hz: float = 600.0
    max_aperiodicity: float = 0.3
    level_range_db: float = 40.0
    min_level_db: float = -65.0
    min_clip_seconds: float = 0.5
    min_voiced_seconds: float = 0.15
    min_pitch_spread_semitones: float = 0.25
    min_level_spread_db: float = 3.0


@dataclasses.dataclass(frozen=True)
class SpeechActivity:
    """Frame-by-frame result of :func:`detect_speech`.

    Attributes
    ----------
    voiced : np.ndarray of bool, shape (n_frames,)
        Frame ``i`` covers ``[i * frame_seconds, (i + 1) * frame_seconds)``.
    pitch_hz : np.ndarray, shape (n_frames,)
        Pitch estimate of each frame (NaN where not voiced).
    level_db : np.ndarray, shape (n_frames,)
        RMS level of each frame in dB re full scale.
    frame_seconds : float
    is_speech : bool
        The whole audio holds speech (enough voiced frames, and not a steady tone).
    reason : str
        Why it is not speech ("" when it is), phrased for the user.
    """

    voiced: np.ndarray
    pitch_hz: np.ndarray
    level_db: np.ndarray
    frame_seconds: float
    is_speech: bool
    reason: str

    @property
    def voiced_seconds(self) -> float:
        """Total duration of the voiced frames."""
        return float(self.voiced.sum() * self.frame_seconds)

    def voiced_seconds_between(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Voiced seconds inside each ``[start, end)`` interval (seconds).

        Returns
        -------
        np.ndarray, shape (len(starts),), float64
        """
        cumulative = np.concatenate([[0], np.cumsum(self.voiced, dtype=np.int64)])
        first = np.clip(np.round(np.asarray(starts) / self.frame_seconds).astype(np.int64), 0, self.voiced.size)
        last = np.clip(np.round(np.asarray(ends) / self.frame_seconds).astype(np.int64), 0, self.voiced.size)
        return (cumulative[last] - cumulative[first]) * self.frame_seconds

    def piece(self, *, first_frame: int, last_frame: int, settings: SpeechSettings) -> SpeechActivity:
        """The activity of frames ``[first_frame, last_frame)`` as its own recording, judged again.

        A frame stays voiced as it was in the whole recording (its loudness compared with the
        recording's loudest frame), so the detector runs once however many pieces are scored.

        Parameters
        ----------
        first_frame, last_frame : int
            Frame bounds (multiples of ``frame_seconds``); the piece lasts ``(last - first) * frame_seconds``.
        settings : SpeechSettings
            The settings the whole recording was analysed with.
        """
        part = slice(first_frame, last_frame)
        voiced, pitch, level = self.voiced[part], self.pitch_hz[part], self.level_db[part]
        reason = _verdict(voiced=voiced, pitch_hz=pitch, level_db=level,
                          loud_enough=level > loudness_floor(self.level_db, settings=settings),
                          duration=(last_frame - first_frame) * self.frame_seconds, settings=settings)
        return SpeechActivity(voiced=voiced, pitch_hz=pitch, level_db=level, frame_seconds=self.frame_seconds,
                              is_speech=not reason, reason=reason)

    def require(self) -> SpeechActivity:
        """This activity if the audio holds speech.

        Raises
        ------
        NoSpeechError
            With :attr:`reason` ("no speech detected: ..." for silence, noise, hum or a steady tone).
        """
        if not self.is_speech:
            raise NoSpeechError(self.reason)
        return self


def _aperiodicity(frames: np.ndarray, *, window: int, min_lag: int, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN aperiodicity and best lag of each row of ``frames`` (shape (n, window + max_lag))."""
    size = 1 << int(np.ceil(np.log2(frames.shape[1] + window)))
    head = np.fft.rfft(frames[:, :window], size)
    whole = np.fft.rfft(frames, size)
    cross = np.fft.irfft(np.conj(head) * whole, size)[:, : max_lag + 1]
    squares = np.concatenate(
        [np.zeros((frames.shape[0], 1), frames.dtype), np.cumsum(frames**2, axis=1, dtype=np.float64)], axis=1
    )
    lags = np.arange(max_lag + 1)
    energy = squares[:, lags + window] - squares[:, lags]
    difference = np.maximum(energy[:, :1] + energy - 2 * cross, 0.0)
    running = np.cumsum(difference[:, 1:], axis=1) / lags[1:]
    normalised = np.ones_like(difference)
    np.divide(difference[:, 1:], running, out=normalised[:, 1:], where=running > 1e-12)
    search = normalised[:, min_lag : max_lag + 1]
    best = np.argmin(search, axis=1)
    return search[np.arange(search.shape[0]), best], best + min_lag


def _iqr(values: np.ndarray) -> float:
    if values.size < 4:
        return 0.0
    high, low = np.percentile(values, [75, 25])
    return float(high - low)


def loudness_floor(level_db: np.ndarray, *, settings: SpeechSettings) -> float:
    """Level (dB re full scale) a frame must exceed to count as voiced: ``level_range_db`` below
    the loudest frame of the recording, and never below ``min_level_db``."""
    return max(float(level_db.max(initial=-200.0)) - settings.level_range_db, settings.min_level_db)


def _verdict(*, voiced: np.ndarray, pitch_hz: np.ndarray, level_db: np.ndarray, loud_enough: np.ndarray,
             duration: float, settings: SpeechSettings) -> str:
    """Why these frames are not speech, phrased for the user ("" when they are)."""
    voiced_seconds = float(voiced.sum() * settings.frame_seconds)
    if duration < settings.min_clip_seconds:
        return (
            f"the recording is too short: {duration:.2f} s, at least {settings.min_clip_seconds:.1f} s "
            "is needed; record a whole word or sentence"
        )
    if not loud_enough.any():  # every frame below min_level_db: too quiet to hear a voice in
        return SILENT_MESSAGE
    if voiced_seconds < settings.min_voiced_seconds:
        return (
            f"no speech detected: only {voiced_seconds:.2f} s sounds like a voice (at least "
            f"{settings.min_voiced_seconds:.2f} s needed); noise, clicks or music alone cannot be "
            "scored: record someone speaking"
        )
    if (
        _iqr(12 * np.log2(pitch_hz[voiced])) < settings.min_pitch_spread_semitones
        and _iqr(level_db[voiced]) < settings.min_level_spread_db
    ):
        return (
            "no speech detected: the sound is a steady tone or hum (its pitch and loudness do "
            "not change like a voice's); record someone speaking"
        )
    return ""


def detect_speech(
    waveform: np.ndarray, *, sample_rate: int, settings: SpeechSettings | None = None
) -> SpeechActivity:
    """Find the voiced frames of a mono waveform and decide whether it holds speech.

    Memory stays bounded for long recordings: frames are analysed in chunks of
    :data:`CHUNK_FRAMES`.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio; any finite values (clipping and DC offset are fine).
    sample_rate : int
        Rate of ``waveform`` in Hz.
    settings : SpeechSettings, optional

    Returns
    -------
    SpeechActivity

    Raises
    ------
    AudioDecodeError
        If the waveform holds NaN, infinite or absurdly large samples
        (:func:`ser.serving.audio.check_samples`).
    ValueError
        If ``waveform`` is not one-dimensional or ``sample_rate`` is not positive.
    """
    from ser.serving.audio import check_samples, resample

    settings = settings or SpeechSettings()
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"waveform must be mono with shape (samples,), got {waveform.shape}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    check_samples(waveform, name="the audio")
    audio = resample(waveform, orig_sample_rate=sample_rate, target_sample_rate=DETECTOR_RATE)
    hop = int(round(settings.frame_seconds * DETECTOR_RATE))
    window = int(round(settings.window_seconds * DETECTOR_RATE))
    min_lag = int(np.floor(DETECTOR_RATE / settings.max_pitch_hz))
    max_lag = int(np.ceil(DETECTOR_RATE / settings.min_pitch_hz))
    n_frames = int(np.ceil(audio.size / hop)) if audio.size else 0
    padded = np.zeros(n_frames * hop + window + max_lag, dtype=np.float32)
    padded[: audio.size] = audio
    aperiodicity = np.ones(n_frames)
    lag = np.zeros(n_frames, dtype=np.int64)
    level = np.full(n_frames, -200.0)
    length = window + max_lag
    for first in range(0, n_frames, CHUNK_FRAMES):
        count = min(CHUNK_FRAMES, n_frames - first)
        index = (first + np.arange(count))[:, None] * hop + np.arange(length)[None, :]
        frames = padded[index]
        frames -= frames[:, :window].mean(axis=1, keepdims=True)  # per-frame DC offset
        rms = np.sqrt(np.mean(frames[:, :window] ** 2, axis=1))
        level[first : first + count] = 20 * np.log10(np.maximum(rms, 1e-10))
        aperiodicity[first : first + count], lag[first : first + count] = _aperiodicity(
            frames, window=window, min_lag=min_lag, max_lag=max_lag
        )
    loud_enough = level > loudness_floor(level, settings=settings)
    voiced = loud_enough & (aperiodicity < settings.max_aperiodicity)
    pitch = np.where(voiced, DETECTOR_RATE / np.maximum(lag, 1), np.nan)
    reason = _verdict(voiced=voiced, pitch_hz=pitch, level_db=level, loud_enough=loud_enough,
                      duration=waveform.size / sample_rate, settings=settings)
    return SpeechActivity(
        voiced=voiced,
        pitch_hz=pitch,
        level_db=level,
        frame_seconds=settings.frame_seconds,
        is_speech=not reason,
        reason=reason,
    )
