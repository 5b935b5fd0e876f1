"""Calibration to one speaker: a few seconds of their ordinary voice make every later answer
relative to it.

People differ in how they sound when they are calm (pitch, loudness dynamics, voice quality),
and so do their microphones and rooms. A model trained on other voices reads those differences
as emotion: on ASED, whose speakers it never heard, the RAVDESS-trained model called neutral
speech neutral 14% of the time. With a reference of the same speaker's ordinary speech, the
offset between their neutral voice and the training speakers' is removed before the linear
views score a clip.

How: the bundle holds the training speakers' *neutral centroid* (the mean openSMILE
functionals of each training speaker's neutral reference clips, averaged over speakers; see
:func:`ser.training.linear_views.neutral_centroid`). The reference recordings are cut into
pieces of the model's window length, each prepared and measured like a training clip, and
averaged. Every clip of that speaker then gets ``strength * (centroid - reference mean)``
added to its functionals. For the linear views this is a per-speaker bias on their logits, so
a session needs only this one vector (nothing is written to disk).

Example
-------
>>> import numpy as np
>>> from ser.config import FeatureConfig
>>> from ser.serving.functionals import n_functionals
>>> from ser.serving.speaker import SpeakerCalibration, adapt_to_speaker
>>> from ser.testing import synthetic_voice
>>> config = FeatureConfig()
>>> calibration = SpeakerCalibration(centroid=np.zeros(n_functionals(config)))
>>> adaptation = adapt_to_speaker([synthetic_voice(seconds=3.0)], config=config, calibration=calibration)
>>> adaptation.offset.shape, adaptation.segments
((6373,), 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ser.config import FeatureConfig, read_json, write_json
from ser.errors import BundleError, NoSpeechError
from ser.serving.features import prepare_waveform
from ser.serving.functionals import acoustic_functionals, n_functionals
from ser.serving.speech import SpeechSettings, require_speech

#: File in a bundle folder that holds the :class:`SpeakerCalibration` (JSON).
CALIBRATION_FILE = "speaker_calibration.json"


@dataclasses.dataclass(frozen=True)
class SpeakerCalibration:
    """What a bundle needs to adapt to a speaker.

    Attributes
    ----------
    centroid : np.ndarray, shape (n_functionals,)
        Training speakers' neutral centroid (raw functionals, before standardisation).
    strength : float
        Fraction of the offset applied (1 moves the reference exactly onto the centroid).
    min_reference_seconds : float
        Least trimmed reference audio accepted.
    """

    centroid: np.ndarray
    strength: float = 1.0
    min_reference_seconds: float = 1.5

    def __post_init__(self) -> None:
        centroid = np.asarray(self.centroid, dtype=np.float64)
        if centroid.ndim != 1 or not np.isfinite(centroid).all():
            raise BundleError("the speaker calibration's centroid must be a finite 1-D vector; retrain the bundle")
        if not 0.0 < self.strength <= 1.0:
            raise BundleError(f"the speaker calibration's strength must be in (0, 1], got {self.strength}")
        object.__setattr__(self, "centroid", centroid)

    def to_dict(self) -> dict:
        return {
            "centroid": [float(value) for value in self.centroid],
            "strength": self.strength,
            "min_reference_seconds": self.min_reference_seconds,
        }

    @classmethod
    def from_dict(cls, values: dict, *, config: FeatureConfig) -> SpeakerCalibration:
        """Rebuild from :meth:`to_dict` output, checking the centroid fits ``config``'s functionals."""
        try:
            calibration = cls(
                centroid=np.asarray(values["centroid"], dtype=np.float64),
                strength=float(values.get("strength", 1.0)),
                min_reference_seconds=float(values.get("min_reference_seconds", 1.5)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise BundleError(f"the speaker calibration is malformed ({error}); retrain the bundle") from error
        if calibration.centroid.size != n_functionals(config):
            raise BundleError(
                f"the speaker calibration has {calibration.centroid.size} functionals, the model "
                f"{n_functionals(config)}; the bundle files come from different trainings"
            )
        return calibration

    def save(self, folder: Path) -> None:
        write_json(Path(folder) / CALIBRATION_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: Path, *, config: FeatureConfig) -> SpeakerCalibration | None:
        """The bundle's calibration, or None for a bundle trained without one."""
        path = Path(folder) / CALIBRATION_FILE
        return cls.from_dict(read_json(path), config=config) if path.is_file() else None


@dataclasses.dataclass(frozen=True)
class SpeakerAdaptation:
    """A speaker's offset, applied to the functionals of every clip of theirs.

    Attributes
    ----------
    offset : np.ndarray, shape (n_functionals,), float32
    reference_seconds : float
        Trimmed reference audio it was measured on.
    segments : int
        Pieces of reference (each at most the model's window long) averaged.
    """

    offset: np.ndarray
    reference_seconds: float
    segments: int

    def apply(self, functionals: np.ndarray) -> np.ndarray:
        """``functionals + offset``; shape (n_functionals,) or (n, n_functionals), preserved."""
        functionals = np.asarray(functionals, dtype=np.float32)
        if functionals.shape[-1] != self.offset.size:
            raise ValueError(f"functionals have {functionals.shape[-1]} values, the adaptation {self.offset.size}")
        return functionals + self.offset


def reference_segments(waveform: np.ndarray, *, config: FeatureConfig) -> list[np.ndarray]:
    """Cut a reference recording into pieces like the clips the model learnt from.

    The recording is prepared (DC removed, silence trimmed); one of at most 1.5 model windows
    stays whole, a longer one is cut into consecutive windows (a last piece shorter than half a
    window is dropped), each prepared again.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio at ``config.sample_rate``.

    Raises
    ------
    NoSpeechError
        If no piece holds enough sound.
    """
    audio = prepare_waveform(waveform, config=config)
    window = config.window_samples
    if audio.size <= 1.5 * window:
        return [audio]
    pieces = []
    for start in range(0, audio.size, window):
        piece = audio[start : start + window]
        if piece.size < window // 2:
            continue
        try:
            pieces.append(prepare_waveform(piece, config=config))
        except NoSpeechError:
            continue  # a pause between sentences
    if not pieces:
        raise NoSpeechError("no speech detected in the reference recording")
    return pieces


def adapt_to_speaker(
    waveforms: Sequence[np.ndarray],
    *,
    config: FeatureConfig,
    calibration: SpeakerCalibration,
    speech_settings: SpeechSettings | None = None,
) -> SpeakerAdaptation:
    """Measure a speaker's reference recordings and return their adaptation.

    Parameters
    ----------
    waveforms : sequence of np.ndarray, each of shape (samples,)
        Recordings of the speaker's ordinary (neutral) voice, mono at ``config.sample_rate``.

    Raises
    ------
    NoSpeechError
        If a recording holds no speech (naming which), or all of them together hold less
        than ``calibration.min_reference_seconds`` of it.
    BundleError
        If the calibration does not fit ``config``.
    """
    if not config.functionals:
        raise BundleError("this model reads no functionals, so it cannot be calibrated to a speaker")
    if calibration.centroid.size != n_functionals(config):
        raise BundleError("the speaker calibration does not fit this model's functionals; retrain the bundle")
    if not waveforms:
        raise NoSpeechError("no reference recording given; record a few seconds of your ordinary voice")
    pieces = []
    for number, waveform in enumerate(waveforms, start=1):
        try:
            require_speech(np.asarray(waveform, dtype=np.float32), sample_rate=config.sample_rate,
                           settings=speech_settings)
            pieces += reference_segments(waveform, config=config)
        except NoSpeechError as error:
            raise NoSpeechError(f"reference recording {number}: {error}") from error
    seconds = sum(piece.size for piece in pieces) / config.sample_rate
    if seconds < calibration.min_reference_seconds:
        raise NoSpeechError(
            f"the reference holds only {seconds:.1f} s of speech; record at least "
            f"{calibration.min_reference_seconds:.1f} s of your ordinary voice"
        )
    values = np.stack([acoustic_functionals(piece, config=config) for piece in pieces]).astype(np.float64)
    offset = calibration.strength * (calibration.centroid - values.mean(axis=0))
    return SpeakerAdaptation(offset=offset.astype(np.float32), reference_seconds=seconds, segments=len(pieces))
