"""Building a voice profile from audio: each enrolment clip scored as the app scores a clip.

``python -m ser profile`` and the app's "Teach it your voice" both call :func:`enrol`; the maths of
the profile itself is :mod:`ser.serving.profile`.

Example
-------
>>> from ser.serving.bundle import load_bundle
>>> from ser.serving.enrolment import enrol, parse_enrolment
>>> from ser.testing import EXAMPLES
>>> bundle = load_bundle()
>>> items = [parse_enrolment(f"neutral={EXAMPLES / '03-01-01-01-01-01-03.flac'}"),
...          parse_enrolment(f"angry={EXAMPLES / '03-01-05-02-01-01-12.flac'}")]
>>> profile = enrol(bundle, items)
>>> profile.enrolled_emotions
['neutral', 'angry']
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

from ser.errors import NoSpeechError, SERError
from ser.serving.audio import AudioSource, decode_audio
from ser.serving.bundle import Bundle
from ser.serving.level import CLIP_RUN_SAMPLES, SILENCE_DBFS, TOO_QUIET_DBFS, dbfs, longest_full_scale_run
from ser.serving.profile import Enrolment, ProfileError, VoiceProfile, build_profile
from ser.serving.speaker import calibrate_bundle

#: Least speech an enrolment clip must hold (seconds): a word or two is too little to learn a voice from.
MIN_ENROLMENT_SECONDS = 0.8


@dataclasses.dataclass(frozen=True)
class EnrolmentItem:
    """One clip to enrol: the emotion the person meant, the audio and a name for messages."""

    emotion: str
    source: AudioSource
    name: str


def parse_enrolment(argument: str) -> EnrolmentItem:
    """``EMOTION=FILE`` (as ``python -m ser profile`` takes it) as an :class:`EnrolmentItem`.

    Raises
    ------
    ProfileError
        Without ``=`` or with an empty emotion or file.
    """
    emotion, separator, path = argument.partition("=")
    if not separator or not emotion.strip() or not path.strip():
        raise ProfileError(f"{argument!r}: write each clip as EMOTION=FILE, e.g. neutral=my_voice.wav")
    return EnrolmentItem(emotion=emotion.strip().lower(), source=path.strip(), name=path.strip())


def score_enrolment(bundle: Bundle, item: EnrolmentItem) -> Enrolment:
    """One enrolment clip scored as one utterance (``Bundle.predict_recording``).

    Raises
    ------
    AudioDecodeError
        The file cannot be decoded.
    ProfileError
        The clip holds no speech or too little, or the model has no views to learn from.
    """
    rate = bundle.config.sample_rate
    waveform = decode_audio(item.source, sample_rate=rate, name=item.name)
    try:
        prediction = bundle.predict_recording(bundle.recording(waveform, sample_rate=rate))
    except NoSpeechError as error:
        raise ProfileError(f"{item.name} ({item.emotion}): {error}; record the sentence again") from error
    if prediction.speech_seconds < MIN_ENROLMENT_SECONDS:
        raise ProfileError(f"{item.name} ({item.emotion}) holds only {prediction.speech_seconds:.1f} s of speech; "
                           f"say a whole sentence (at least {MIN_ENROLMENT_SECONDS:.1f} s)")
    if prediction.features is None:
        raise ProfileError("this model reads no openSMILE functionals, so it cannot learn a voice profile; "
                           "use --reference instead")
    probabilities = np.array([prediction.probabilities[emotion] for emotion in bundle.emotions])
    return Enrolment(emotion=item.emotion, probabilities=probabilities,
                     features=prediction.features, seconds=prediction.speech_seconds, name=item.name)


def check_emotions(items: Sequence[EnrolmentItem], *, emotions: Sequence[str]) -> None:
    """Refuse an emotion the model does not know, or no neutral clip, before any audio is read.

    Raises
    ------
    ProfileError
        Naming the unknown emotions and the known ones, or asking for a neutral clip.
    """
    unknown = sorted({item.emotion for item in items} - set(emotions))
    if unknown:
        raise ProfileError(f"unknown emotion {', '.join(unknown)}; the model knows {', '.join(emotions)}")
    if not any(item.emotion == "neutral" for item in items):
        raise ProfileError("a profile needs at least one neutral clip (your ordinary voice): add neutral=FILE")


def enrol(bundle: Bundle, items: Sequence[EnrolmentItem]) -> VoiceProfile:
    """The voice profile of these clips for ``bundle`` (nothing is written anywhere).

    Raises
    ------
    ProfileError
        An unknown emotion or no neutral clip (checked before any audio is read), a clip without
        enough speech (naming it).
    AudioDecodeError
        A clip cannot be decoded.
    """
    check_emotions(items, emotions=bundle.emotions)
    enrolments = [score_enrolment(bundle, item) for item in items]
    neutral = [item for item in items if item.emotion == "neutral"]
    # The neutral floor exactly as --reference computes it from the same clips, so a profile of neutral
    # clips alone answers as that calibration does.
    try:
        calibration = calibrate_bundle(bundle, references=[item.source for item in neutral],
                                       names=[item.name for item in neutral])
    except NoSpeechError:  # under --reference's 1.5 s: the floor from the clips' own answers instead
        calibration = None
    return build_profile(enrolments, emotions=bundle.emotions, bundle_version=bundle.version,
                         confidence_threshold=bundle.confidence_threshold, calibration=calibration)


def load_profile(bundle: Bundle, source: str | os.PathLike[str] | bytes) -> VoiceProfile:
    """A profile file checked against ``bundle`` (its version and emotions); ProfileError says what is wrong."""
    from ser.serving.profile import read_profile

    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    return read_profile(source, bundle_version=bundle.version, emotions=bundle.emotions)


@dataclasses.dataclass(frozen=True)
class TakeCheck:
    """Whether one recorded take is fit to enrol: loud enough, not clipped, long enough.

    ``problem`` is None when it is, else one sentence saying what to change.
    """

    speech_seconds: float
    peak_dbfs: float
    problem: str | None


def check_take(waveform: np.ndarray, *, sample_rate: int, bundle: Bundle) -> TakeCheck:
    """The level check the app runs on each take before it is enrolled.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio at ``sample_rate``, floats in [-1, 1].
    """
    audio = np.asarray(waveform, dtype=np.float32).reshape(-1)
    block = max(1, int(round(0.1 * sample_rate)))
    usable = audio[: audio.size - audio.size % block].astype(np.float64)
    loudest = dbfs(float(np.sqrt((usable.reshape(-1, block) ** 2).mean(axis=1)).max())) if usable.size else SILENCE_DBFS
    peak = dbfs(float(np.max(np.abs(audio)))) if audio.size else SILENCE_DBFS
    try:
        speech = bundle.recording(audio, sample_rate=sample_rate).utterance.size / bundle.config.sample_rate
    except SERError:
        speech = 0.0
    problem = None
    if longest_full_scale_run(audio) >= CLIP_RUN_SAMPLES:
        problem = "the take is clipped (too loud): move back from the microphone a little and record it again"
    elif loudest < TOO_QUIET_DBFS:
        problem = "the take is very quiet: move closer to the microphone or speak up, and record it again"
    elif speech < MIN_ENROLMENT_SECONDS:
        problem = f"only {speech:.1f} s of speech was heard: say the whole sentence and record it again"
    return TakeCheck(speech_seconds=float(speech), peak_dbfs=float(peak), problem=problem)
