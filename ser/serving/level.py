"""The microphone level meter's maths, without Streamlit: dBFS, peak, clipping, too quiet.

Used by :class:`ser.serving.live.LiveBuffer` on the live stream: :func:`measure_level` reads
the newest audio (RMS and peak of the last 100 ms, the loudest 100 ms of the last 3 s) and
says whether it is too quiet or has no signal at all; :func:`longest_full_scale_run` finds
the flat tops of clipped input frames. Levels are dB re full scale (a full-scale square
wave is 0 dBFS RMS, a full-scale sine -3 dBFS).

Example
-------
>>> import numpy as np
>>> from ser.serving.level import measure_level
>>> t = np.arange(16000) / 16000
>>> level = measure_level(0.5 * np.sin(2 * np.pi * 440 * t), sample_rate=16000)
>>> round(level.rms_dbfs, 1), round(level.peak_dbfs, 1), level.too_quiet
(-9.0, -6.0, False)
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: The level meter shows the RMS and the peak of this much of the newest audio: short
#: enough to follow syllables, long enough (five 20 ms frames) not to flicker.
METER_SECONDS = 0.1
#: dBFS shown for digital silence (20*log10 of 1e-6); real microphones sit far above it.
SILENCE_DBFS = -120.0
#: A sample this close to full scale counts as "at full scale" (-0.009 dBFS; 16-bit
#: 32735 and up, and any float sample a driver has already limited to +-1).
FULL_SCALE = 0.999
#: Consecutive full-scale samples that mark clipping: a waveform may touch full scale for one
#: sample, but a flat top of 3 or more is the converter running out of range (the default
#: start threshold of Audacity's "Find Clipping").
CLIP_RUN_SAMPLES = 3
#: A clipping warning stays this long (seconds of audio) after the last clipped frame, so a
#: meter redrawn twice a second shows it long enough to be read.
CLIP_MEMORY_SECONDS = 2.0
#: "Too quiet" when the loudest 100 ms of the last QUIET_WINDOW_SECONDS is below this. The
#: loudest 100 ms of 99% of the RAVDESS training clips is louder (1st percentile -52.3 dBFS,
#: median -32 dBFS; ASED: 1st percentile -32 dBFS, measured on every 4th clip), so speech
#: under -50 dBFS is quieter than almost anything the model learned from, and within 15 dB
#: of the speech detector's floor (-65 dBFS, ``SpeechSettings.min_level_db``).
TOO_QUIET_DBFS = -50.0
#: "No signal" below this: a microphone's own noise at a usable gain sits far above it (a
#: quiet room through a laptop microphone is about -60 dBFS), a muted or unplugged input
#: sends (near) digital silence.
NO_SIGNAL_DBFS = -80.0
#: The span "too quiet" looks at: the model's window, what one reading scores.
QUIET_WINDOW_SECONDS = 3.0
#: "Too quiet" is only judged on at least this much audio (the first frames of a stream
#: carry the browser's start-up silence).
MIN_QUIET_SECONDS = 1.0
#: Meter range drawn as the bar: -60 dBFS (a quiet room) to full scale.
METER_FLOOR_DBFS = -60.0


def dbfs(amplitude: float) -> float:
    """Amplitude (RMS or peak, full scale = 1) in dB re full scale, floored at :data:`SILENCE_DBFS`."""
    return float(20.0 * np.log10(max(float(amplitude), 10.0 ** (SILENCE_DBFS / 20.0))))


def longest_full_scale_run(samples: np.ndarray) -> int:
    """Longest run of consecutive samples at full scale (``|x| >= FULL_SCALE``).

    Parameters
    ----------
    samples : np.ndarray, shape (n,), floats in [-1, 1]
    """
    at_full_scale = np.abs(np.asarray(samples, dtype=np.float32).reshape(-1)) >= FULL_SCALE
    if not at_full_scale.any():
        return 0
    # Run lengths from the positions where the flag switches on and off.
    edges = np.diff(np.concatenate([[0], at_full_scale.view(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


@dataclasses.dataclass(frozen=True)
class MicrophoneLevel:
    """What the level meter shows.

    Attributes
    ----------
    rms_dbfs, peak_dbfs : float
        RMS and peak of the newest :data:`METER_SECONDS`, dB re full scale (a full-scale
        square wave is 0 dBFS RMS, a full-scale sine -3 dBFS).
    loudest_dbfs : float
        RMS of the loudest 100 ms block of the newest :data:`QUIET_WINDOW_SECONDS`.
    clipping : bool
        Clipped input within the last :data:`CLIP_MEMORY_SECONDS` of audio.
    seconds : float
        Audio the judgement is based on (at most :data:`QUIET_WINDOW_SECONDS`).
    """

    rms_dbfs: float
    peak_dbfs: float
    loudest_dbfs: float
    clipping: bool
    seconds: float

    @property
    def too_quiet(self) -> bool:
        """The loudest moment of the last few seconds is quieter than almost all training speech."""
        return self.seconds >= MIN_QUIET_SECONDS and self.loudest_dbfs < TOO_QUIET_DBFS

    @property
    def no_signal(self) -> bool:
        """Too quiet to be a working microphone at all (muted, unplugged, another input)."""
        return self.too_quiet and self.loudest_dbfs < NO_SIGNAL_DBFS

    @property
    def fraction(self) -> float:
        """The RMS level as a bar length in [0, 1] (:data:`METER_FLOOR_DBFS` to 0 dBFS)."""
        return float(np.clip(1.0 - self.rms_dbfs / METER_FLOOR_DBFS, 0.0, 1.0))


def measure_level(samples: np.ndarray, *, sample_rate: int, clipping: bool = False) -> MicrophoneLevel:
    """The meter's reading of the newest audio.

    Parameters
    ----------
    samples : np.ndarray, shape (n,), float in [-1, 1], oldest first
        The newest audio; only the last :data:`QUIET_WINDOW_SECONDS` are used.
    sample_rate : int
    clipping : bool
        Whether clipping was seen (found on the input frames by ``ser.serving.live.LiveBuffer``,
        before resampling turns flat tops into ringing).
    """
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    audio = np.asarray(samples, dtype=np.float32).reshape(-1)[-int(round(QUIET_WINDOW_SECONDS * sample_rate)) :]
    if audio.size == 0:
        return MicrophoneLevel(SILENCE_DBFS, SILENCE_DBFS, SILENCE_DBFS, clipping, 0.0)
    newest = audio[-max(1, int(round(METER_SECONDS * sample_rate))) :].astype(np.float64)
    block = max(1, int(round(0.1 * sample_rate)))
    usable = audio[audio.size % block :].astype(np.float64)  # whole blocks, aligned to the newest sample
    loudest = np.sqrt((usable.reshape(-1, block) ** 2).mean(axis=1)).max() if usable.size else 0.0
    return MicrophoneLevel(
        rms_dbfs=dbfs(np.sqrt(np.mean(newest**2))),
        peak_dbfs=dbfs(np.max(np.abs(newest))),
        loudest_dbfs=dbfs(max(loudest, np.sqrt(np.mean(newest**2)))),
        clipping=clipping,
        seconds=audio.size / sample_rate,
    )
