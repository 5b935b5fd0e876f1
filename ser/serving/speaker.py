"""Calibration to one speaker: a few seconds of their ordinary voice make every later answer
relative to it.

People differ in how they sound when they are calm, and so do their microphones and rooms. A
model trained on other voices reads those differences as emotion: on ASED (Amharic, speakers
it never heard) the RAVDESS-trained model called neutral speech neutral 14% of the time and
answered "fearful" for 27% of all clips.

The *neutral floor*: the model scores the speaker's reference (their ordinary, neutral voice,
cut into pieces like the clips it learnt from). If its answer for the reference gives neutral
less than :data:`NEUTRAL_FLOOR`, every later answer for that speaker gets the log-odds of
neutral raised by the amount that would lift the reference exactly to the floor. One number per
speaker, computed from the model's own output, so it works for the whole fused model (CNN and
linear views alike); it only moves answers between neutral and the rest, and never makes a
voice less neutral. Nothing is written to disk: a session keeps one :class:`SpeakerAdaptation`.

Measured on the linear views (docs/cross-corpus.md): trained on RAVDESS and tested on ASED,
neutral recall 16% -> 70%, the largest answer share 34% -> 28%, accuracy 39% -> 44%; on unseen
speakers of the training corpora, RAVDESS -2.1 points (calm and sad clips of some actors turn
neutral), ASED +0.3. A shift of the speaker's openSMILE functionals onto
the training speakers' neutral centroid (:func:`ser.training.linear_views.speaker_offsets`) was
tried too and rejected: two reference clips estimate 6373 functionals too noisily, and it cost
6-10 points on unseen speakers of the training corpora.

Example
-------
>>> import numpy as np
>>> from ser.config import FeatureConfig
>>> from ser.serving.speaker import adapt_to_reference
>>> from ser.testing import synthetic_voice
>>> def score(piece):  # a model that hears every voice as mostly fearful
...     return np.array([0.1, 0.05, 0.05, 0.05, 0.05, 0.6, 0.05, 0.05])
>>> adaptation = adapt_to_reference([synthetic_voice(seconds=3.0)], config=FeatureConfig(), score=score,
...                                 neutral=0)
>>> adaptation.apply(score(None)).round(2)[[0, 5]]
array([0.5 , 0.33])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ser.config import FeatureConfig
from ser.errors import NoSpeechError
from ser.serving.audio import AudioSource, decode_audio
from ser.serving.bundle import Bundle, ClipPrediction
from ser.serving.features import prepare_waveform
from ser.serving.reference import ReferenceVerdict, check_reference, reference_answer
from ser.serving.speech import SpeechSettings, detect_speech

if TYPE_CHECKING:
    from ser.serving.profile import VoiceProfile

#: Least probability of "neutral" the speaker's own reference gets after calibration: their
#: ordinary voice then reads as neutral more than as anything else.
NEUTRAL_FLOOR = 0.5
#: Least trimmed reference speech accepted (seconds).
MIN_REFERENCE_SECONDS = 1.5


@dataclasses.dataclass(frozen=True)
class SpeakerAdaptation:
    """One speaker's calibration, applied to every answer for them.

    Attributes
    ----------
    neutral : int
        Index of the neutral class in the model's answers.
    bias : float
        Non-negative log-odds added to neutral (:func:`neutral_floor_bias`).
    reference_neutral : float
        Probability of neutral the model gave the reference before calibration.
    reference_seconds : float
        Trimmed reference speech it was measured on.
    segments : int
        Reference pieces scored.
    verdict : ReferenceVerdict or None
        Whether the reference is short or unlike an ordinary voice (:mod:`ser.serving.reference`);
        None when the model's labels were not given. Not part of :meth:`to_dict`: the downloads'
        ``reference`` block keeps its schema.
    """

    neutral: int
    bias: float
    reference_neutral: float
    reference_seconds: float
    segments: int
    verdict: ReferenceVerdict | None = None

    def apply(self, probabilities: np.ndarray, *, features: np.ndarray | None = None) -> np.ndarray:
        """Calibrated probabilities, shape (..., n_emotions) kept (:func:`apply_neutral_bias`).

        ``features`` is accepted so a calibration and a voice profile (:mod:`ser.serving.profile`) are
        applied alike; the neutral floor reads only the answer.
        """
        return apply_neutral_bias(probabilities, neutral=self.neutral, bias=self.bias)

    def to_dict(self) -> dict:
        """The figures of the downloads' ``reference`` block (the verdict left out)."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "verdict"}


def neutral_floor_bias(reference_probabilities: np.ndarray, *, neutral: int, floor: float = NEUTRAL_FLOOR) -> float:
    """The bias on the neutral class's log-odds that lifts the reference's answer to ``floor``.

    The reference's answer is the normalised geometric mean of its pieces' probabilities. If
    it already gives neutral at least ``floor``, the bias is 0.

    Parameters
    ----------
    reference_probabilities : np.ndarray, shape (n_pieces, n_emotions)
    neutral : int
        Index of the neutral class.
    floor : float
        Target probability of neutral for the reference, strictly between 0 and 1.

    Returns
    -------
    float
        Non-negative log-odds bias.
    """
    if not 0.0 < floor < 1.0:
        raise ValueError(f"floor must be a probability strictly between 0 and 1, got {floor}")
    logs = np.log(np.clip(np.asarray(reference_probabilities, dtype=np.float64), 1e-12, 1.0))
    if logs.ndim != 2 or not len(logs) or not 0 <= neutral < logs.shape[1]:
        raise ValueError(f"reference_probabilities must be (n_pieces, n_emotions) with class {neutral}")
    mean = logs.mean(axis=0)
    others = np.logaddexp.reduce(np.delete(mean, neutral))
    return float(max(0.0, np.log(floor / (1.0 - floor)) - (mean[neutral] - others)))


def apply_neutral_bias(probabilities: np.ndarray, *, neutral: int, bias: float) -> np.ndarray:
    """Raise the neutral class's log-odds by ``bias`` and renormalise; shape (..., n_emotions) kept."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    scaled = probabilities.copy()
    scaled[..., neutral] *= np.exp(bias)
    return scaled / scaled.sum(axis=-1, keepdims=True)


def reference_segments(waveform: np.ndarray, *, config: FeatureConfig) -> list[np.ndarray]:
    """Cut a reference recording into pieces like the clips the model learnt from.

    The recording is prepared (DC removed, silence trimmed); one of at most 1.5 model windows
    stays whole, a longer one is cut into consecutive windows (a last piece shorter than half a
    window is dropped, and so are pieces without enough sound).

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


def adapt_to_reference(
    waveforms: Sequence[np.ndarray],
    *,
    config: FeatureConfig,
    score: Callable[[np.ndarray], np.ndarray],
    neutral: int,
    floor: float = NEUTRAL_FLOOR,
    min_reference_seconds: float = MIN_REFERENCE_SECONDS,
    speech_settings: SpeechSettings | None = None,
    names: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
) -> SpeakerAdaptation:
    """Score a speaker's reference recordings and return their adaptation.

    Parameters
    ----------
    waveforms : sequence of np.ndarray, each of shape (samples,)
        Recordings of the speaker's ordinary (neutral) voice, mono at ``config.sample_rate``.
    score : callable
        One prepared piece (samples,) -> the model's calibrated probabilities (n_emotions,), e.g.
        ``lambda piece: bundle.predict_clip(piece, sample_rate=rate).probabilities`` as an array
        in the bundle's label order.
    neutral : int
        Index of neutral in those probabilities.
    names : sequence of str, optional
        The recordings' names for error messages (default "reference recording 1", ...).
    labels : sequence of str, optional
        The model's emotions in the order of ``score``'s output: given, the adaptation carries a
        :class:`~ser.serving.reference.ReferenceVerdict` (short, or not an ordinary voice).

    Raises
    ------
    NoSpeechError
        If a recording holds no speech (naming which), or all of them together hold less
        than ``min_reference_seconds`` of it.
    """
    if not waveforms:
        raise NoSpeechError("no reference recording given; record a few seconds of your ordinary voice")
    pieces = []
    for number, waveform in enumerate(waveforms, start=1):
        try:
            detect_speech(np.asarray(waveform, dtype=np.float32), sample_rate=config.sample_rate,
                          settings=speech_settings).require()
            pieces += reference_segments(waveform, config=config)
        except NoSpeechError as error:
            name = names[number - 1] if names is not None else f"reference recording {number}"
            raise NoSpeechError(f"{name}: {error}") from error
    seconds = sum(piece.size for piece in pieces) / config.sample_rate
    if seconds < min_reference_seconds:
        raise NoSpeechError(
            f"the reference holds only {seconds:.1f} s of speech; record at least "
            f"{min_reference_seconds:.1f} s of your ordinary voice"
        )
    probabilities = np.stack([np.asarray(score(piece), dtype=np.float64) for piece in pieces])
    return adaptation_from_scores(probabilities, neutral=neutral, floor=floor, reference_seconds=seconds,
                                  labels=labels)


def adaptation_from_scores(reference_probabilities: np.ndarray, *, neutral: int, floor: float = NEUTRAL_FLOOR,
                           reference_seconds: float = 0.0, labels: Sequence[str] | None = None) -> SpeakerAdaptation:
    """The adaptation a speaker's scored reference gives (its pieces' or clips' answers).

    Parameters
    ----------
    reference_probabilities : np.ndarray, shape (n_pieces, n_emotions)
        The model's calibrated answers for the reference.
    neutral : int
        Index of neutral in those probabilities.
    reference_seconds : float
        Speech they were measured on (recorded in the adaptation).
    labels : sequence of str, optional
        The emotions of the probabilities' columns: given, the verdict on the reference is added
        (:func:`ser.serving.reference.check_reference`).
    """
    probabilities = np.asarray(reference_probabilities, dtype=np.float64)
    bias = neutral_floor_bias(probabilities, neutral=neutral, floor=floor)
    verdict = None if labels is None else check_reference(probabilities, labels=labels, seconds=reference_seconds)
    return SpeakerAdaptation(
        neutral=neutral, bias=bias, reference_neutral=float(reference_answer(probabilities)[neutral]),
        reference_seconds=reference_seconds, segments=len(probabilities), verdict=verdict,
    )


def calibrate_bundle(bundle: Bundle, *, references: Sequence[AudioSource],
                     names: Sequence[str] | None = None) -> SpeakerAdaptation:
    """The speaker's adaptation for ``bundle``, from their reference recordings.

    Parameters
    ----------
    bundle : Bundle
        The model whose answers will be adapted.
    references : sequence of path, bytes or binary file object
        Recordings of the speaker's ordinary (neutral) voice, in any format the app reads;
        a few seconds in all (at least :data:`MIN_REFERENCE_SECONDS` of speech).
    names : sequence of str, optional
        Shown in error messages (default: the paths, or "reference 1", ...).

    Raises
    ------
    AudioDecodeError
        If a recording cannot be decoded.
    NoSpeechError
        If a recording holds no speech, or all of them together too little.
    """
    if "neutral" not in bundle.emotions:
        raise NoSpeechError("this model has no neutral class, so it cannot be calibrated to a speaker's "
                            "ordinary voice; run without a reference")
    rate = bundle.config.sample_rate
    if names is None:
        names = [str(source) if isinstance(source, (str, os.PathLike)) else f"reference recording {number}"
                 for number, source in enumerate(references, start=1)]
    waveforms = [decode_audio(source, sample_rate=rate, name=name) for source, name in zip(references, names,
                                                                                             strict=True)]

    def score(piece: np.ndarray) -> np.ndarray:
        prediction = bundle.predict_clip(piece, sample_rate=rate)
        return np.array([prediction.probabilities[emotion] for emotion in bundle.emotions])

    return adapt_to_reference(waveforms, config=bundle.config, score=score,
                              neutral=bundle.emotions.index("neutral"), speech_settings=bundle.speech_settings,
                              names=names, labels=bundle.emotions)


def adapt_prediction(prediction: ClipPrediction, *, adaptation: SpeakerAdaptation | VoiceProfile,
                     confidence_threshold: float) -> ClipPrediction:
    """``prediction`` with its emotion probabilities adapted to the speaker.

    ``adaptation`` is a calibration (``--reference``) or a voice profile (``--profile``), which also
    reads the prediction's standardised functionals. The answer, its confidence and whether it is sure are re-derived
    from the adapted probabilities (same threshold); the other heads and the seconds of speech are kept.
    """
    labels = list(prediction.probabilities)
    adapted = adaptation.apply(np.array([prediction.probabilities[label] for label in labels]),
                               features=prediction.features)
    best = int(np.argmax(adapted))
    return dataclasses.replace(
        prediction,
        emotion=labels[best],
        confidence=float(adapted[best]),
        probabilities={label: float(value) for label, value in zip(labels, adapted, strict=True)},
        sure=bool(adapted[best] >= confidence_threshold),
    )
