"""The one analysis the app and the CLI run on every clip: upload, recording, live take or example.

:func:`analyze_audio` decodes the bytes once, cuts the recording where the speaker pauses and
scores each utterance as a clip (:mod:`ser.serving.segments`); the overall answer weighs the
utterances by their seconds of speech, so one utterance gets the same answer however much
silence surrounds it. One :class:`~ser.serving.recording.Recording` holds the stages the answers
share, so the speech detector and the log-mel spectrogram (displayed) are each computed once.
Bad input raises only :class:`~ser.errors.SERError` subclasses, whose messages the app shows as
they are. :meth:`Analysis.to_dict` / :meth:`Analysis.to_csv` share one schema (file, overall answer
and best guess, segments, model version, threshold, time); the on-screen words for the same
answers are :mod:`ser.serving.words`.

Calibrated to a speaker (:mod:`ser.serving.speaker`), :func:`adapt_analysis` turns an analysis
into its adapted twin without scoring anything again: each segment's probabilities are adapted
and recombined, and the unadapted answers are kept beside them (``adapted``, ``unadapted`` in
the downloads, as in ``python -m ser predict --reference --json``).

Example
-------
>>> from ser.serving.analysis import analyze_audio
>>> from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle
>>> from ser.testing import EXAMPLES
>>> bundle = load_bundle(DEFAULT_BUNDLE)
>>> data = (EXAMPLES / "03-01-05-02-01-01-12.flac").read_bytes()
>>> result = analyze_audio(data, name="angry.flac", bundle=bundle)
>>> result.prediction.emotion in bundle.emotions
True
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import soundfile

from ser.errors import AudioDecodeError, NoSpeechError
from ser.serving.audio import decode_audio
from ser.serving.bundle import Bundle, ClipPrediction
from ser.serving.cues import VoiceCues, recording_cues
from ser.serving.profile import VoiceProfile
from ser.serving.recording import Recording
from ser.serving.segments import Progress, Segment, adapt_segments, combine, score_recording
from ser.serving.speaker import SpeakerAdaptation
from ser.serving.speech import SILENT_MESSAGE
from ser.serving.unfamiliarity import Unfamiliarity

#: Digits kept in downloads: probabilities to 0.1 percentage point, times to the millisecond.
DIGITS = 4
TIME_DIGITS = 3
NOT_SURE = "not sure"
#: Speech (trimmed) this short or shorter is about one word, far less than the sentences the model learnt from: the
#: main model is right on about half as many words as sentences of voices it never heard, and leans towards a few
#: emotions (``models/robustness.json``, condition ``one_word``, cuts of up to this length).
WORD_SECONDS = 1.2


def answer_label(prediction: ClipPrediction | None) -> str:
    """What the app says: the emotion, "not sure" below the threshold, "no speech" without a prediction."""
    if prediction is None:
        return "no speech"
    return prediction.emotion if prediction.sure else NOT_SURE


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Everything the app shows about one clip.

    Attributes
    ----------
    name : str
        The file name (or a label such as "recording"), for display only.
    sample_rate : int
        Rate of ``waveform`` in Hz (the model's rate).
    waveform : np.ndarray, shape (samples,), float32
        The decoded mono audio, untrimmed.
    duration : float
        ``samples / sample_rate`` in seconds.
    log_mel : np.ndarray, shape (frames, n_mels), float32
        Natural-log mel power of the whole clip, DC offset removed
        (:attr:`ser.serving.recording.Recording.log_mel`); frames ``hop_length / sample_rate`` s apart.
    prediction : ClipPrediction
        The calibrated overall answer (:attr:`ser.serving.segments.ScoredRecording.overall`).
    segments : tuple of Segment
        The utterances in order, tiling ``[0, duration]``, each with its own answer.
    model_version : str
        :attr:`ser.serving.bundle.Bundle.version`.
    threshold : float
        The bundle's confidence threshold ("not sure" below it).
    analysis_seconds : float
        Wall time of the analysis (decode to answer).
    cues : VoiceCues or None
        What a listener hears in the whole clip (pitch, loudness, rate, voice quality;
        :func:`overall_cues`); None when no segment was scored.
    analysed_at : datetime.datetime or None
        When the analysis finished (UTC).
    unadapted : ClipPrediction or None
        Calibrated to the speaker (:func:`adapt_analysis`): the overall answer without the
        calibration (``prediction`` and ``segments`` are then adapted). None when not calibrated.
    unadapted_segments : tuple of Segment or None
        The segments without the calibration, in the same order; None when not calibrated.
    adaptation : SpeakerAdaptation, VoiceProfile or None
        The calibration the answers are adapted to.
    unfamiliarity : Unfamiliarity or None
        Which "unlike the training data" checks fired for the recording
        (:mod:`ser.serving.unfamiliarity`); None when the bundle has no detector.
    """

    name: str
    sample_rate: int
    waveform: np.ndarray
    duration: float
    log_mel: np.ndarray
    prediction: ClipPrediction
    segments: tuple[Segment, ...]
    model_version: str = ""
    threshold: float = 0.0
    analysis_seconds: float = 0.0
    cues: VoiceCues | None = None
    analysed_at: datetime.datetime | None = None
    unadapted: ClipPrediction | None = None
    unadapted_segments: tuple[Segment, ...] | None = None
    adaptation: SpeakerAdaptation | None = None
    unfamiliarity: Unfamiliarity | None = None

    @property
    def adapted(self) -> bool:
        """Whether the answers are calibrated to the speaker's voice (:func:`adapt_analysis`)."""
        return self.adaptation is not None

    @property
    def about_one_word(self) -> bool:
        """Whether the answer rests on :data:`WORD_SECONDS` of speech or less."""
        return 0 < self.prediction.speech_seconds <= WORD_SECONDS

    @property
    def profiled(self) -> bool:
        """Whether the answers are read with a voice profile (:mod:`ser.serving.profile`), not a calibration."""
        return isinstance(self.adaptation, VoiceProfile)

    def to_dict(self) -> dict[str, Any]:
        """The download schema (numbers rounded): file, overall answer, segments, model, threshold, time,
        ``adapted``, ``unfamiliar`` (reason codes, None when not checked), ``answered_by`` (which model
        gave the emotion, :mod:`ser.serving.joint_views`); calibrated, also the ``unadapted`` answers and
        the ``reference``'s figures."""
        prediction = self.prediction
        record = {
            "file": self.name,
            "duration_seconds": round(self.duration, TIME_DIGITS),
            "answer": answer_label(prediction),
            "emotion": prediction.emotion,
            "confidence": round(prediction.confidence, DIGITS),
            "sure": prediction.sure,
            "speech_seconds": round(prediction.speech_seconds, TIME_DIGITS),
            "probabilities": {label: round(p, DIGITS) for label, p in prediction.probabilities.items()},
            "segments": [
                {
                    "start": round(segment.start, TIME_DIGITS),
                    "end": round(segment.end, TIME_DIGITS),
                    "answer": answer_label(segment.prediction),
                    "emotion": segment.prediction.emotion if segment.prediction else None,
                    "confidence": round(segment.prediction.confidence, DIGITS) if segment.prediction else None,
                    "speech_seconds": round(segment.speech_seconds, TIME_DIGITS),
                }
                for segment in self.segments
            ],
            "model_version": self.model_version,
            "threshold": round(self.threshold, DIGITS),
            "analysis_seconds": round(self.analysis_seconds, TIME_DIGITS),
            "adapted": self.adapted,
            "profile": self.profiled,
            "unfamiliar": unfamiliar_codes(self.unfamiliarity),
            "answered_by": prediction.answered_by,
        }
        if self.adapted:
            record["unadapted"] = _answer_dict(self.unadapted) | {
                "probabilities": {label: round(p, DIGITS) for label, p in self.unadapted.probabilities.items()}}
            for row, segment in zip(record["segments"], self.unadapted_segments, strict=True):
                row["unadapted"] = _answer_dict(segment.prediction)
            if self.profiled:  # the generic answer is "unadapted", as for a calibration
                record["voice_profile"] = self.adaptation.summary()
            else:
                record["reference"] = {key: round(value, DIGITS) if isinstance(value, float) else value
                                       for key, value in self.adaptation.to_dict().items()}
        return record

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """:func:`segments_table` of this clip as CSV."""
        return segments_table([self]).to_csv(index=False)


def unfamiliar_codes(unfamiliarity: Unfamiliarity | None) -> list[str] | None:
    """The ``unfamiliar`` field of every download and of ``python -m ser predict --json``: the reason
    codes that fired (empty when none did), None when the bundle has no detector."""
    return None if unfamiliarity is None else list(unfamiliarity.reasons)


def _answer_dict(prediction: ClipPrediction | None) -> dict[str, Any]:
    """The answer in the download schema: what the app says, the best guess and its confidence."""
    return {"answer": answer_label(prediction), "emotion": prediction.emotion if prediction else None,
            "confidence": round(prediction.confidence, DIGITS) if prediction else None}


#: Columns of :func:`segments_table`: the same for one clip, a long recording or a batch, calibrated
#: or not (the ``unadapted_*`` columns are empty when ``adapted`` is False; with a voice profile,
#: ``profile`` is True and they hold the generic answer).
#: Each ``*_emotion`` column is the best guess beside its ``*_answer`` (as the JSON's ``emotion``): the
#: emotion the model heard most, also when the answer is "not sure".
SEGMENT_COLUMNS = ["file", "answer", "emotion", "confidence", "segment", "start", "end", "segment_answer",
                   "segment_emotion", "segment_confidence", "model_version", "threshold", "analysis_seconds",
                   "adapted", "profile", "unadapted_answer", "unadapted_emotion", "unadapted_confidence",
                   "segment_unadapted_answer", "segment_unadapted_emotion", "segment_unadapted_confidence",
                   "unfamiliar", "answered_by"]


def segments_table(analyses: list[Analysis]) -> pd.DataFrame:
    """One row per segment of every clip, each row naming its file and the file's overall answer; every
    answer with its best guess (``emotion``), so a "not sure" row still says what the model heard most.

    Returns
    -------
    pandas.DataFrame with columns :data:`SEGMENT_COLUMNS`
    """
    rows = []
    for analysis in analyses:
        record = analysis.to_dict()
        unadapted = record.get("unadapted", {})
        for index, segment in enumerate(record["segments"], start=1):
            rows.append({
                "file": record["file"], "answer": record["answer"], "emotion": record["emotion"],
                "confidence": record["confidence"], "segment": index, "start": segment["start"], "end": segment["end"],
                "segment_answer": segment["answer"], "segment_emotion": segment["emotion"],
                "segment_confidence": segment["confidence"],
                "model_version": record["model_version"], "threshold": record["threshold"],
                "analysis_seconds": record["analysis_seconds"], "adapted": record["adapted"],
                "profile": record["profile"],
                "unadapted_answer": unadapted.get("answer"), "unadapted_emotion": unadapted.get("emotion"),
                "unadapted_confidence": unadapted.get("confidence"),
                "segment_unadapted_answer": segment.get("unadapted", {}).get("answer"),
                "segment_unadapted_emotion": segment.get("unadapted", {}).get("emotion"),
                "segment_unadapted_confidence": segment.get("unadapted", {}).get("confidence"),
                "unfamiliar": unfamiliar_text(record["unfamiliar"]), "answered_by": record["answered_by"],
            })
    return pd.DataFrame(rows, columns=SEGMENT_COLUMNS)


def unfamiliar_text(codes: list[str] | None) -> str | None:
    """The reason codes in one table cell ("phone_line;unfamiliar_voice"), "" when none fired, None unchecked."""
    return None if codes is None else ";".join(codes)


def adapt_analysis(analysis: Analysis, *, adaptation: SpeakerAdaptation | None, bundle: Bundle) -> Analysis:
    """``analysis`` calibrated to the speaker, without scoring the audio again.

    Each scored segment's probabilities are adapted (:func:`ser.serving.segments.adapt_segments`,
    the answer re-derived with the bundle's threshold) and the overall answer recombined from
    them (:func:`ser.serving.segments.combine`), exactly as
    :func:`ser.serving.segments.score_recording` does with an adaptation; the unadapted overall
    answer and segments are kept. An analysis that is already adapted is first taken back to
    its unadapted answers, so a new calibration replaces the old one; with ``adaptation=None``
    the unadapted analysis is returned (the very object, when it was never adapted).

    Parameters
    ----------
    analysis : Analysis
        From :func:`analyze_audio`, adapted or not.
    adaptation : SpeakerAdaptation or None
        From :func:`ser.serving.speaker.calibrate_bundle` with ``bundle``.
    bundle : Bundle
        The model that scored ``analysis`` (its threshold re-derives "not sure").

    Raises
    ------
    ValueError
        If ``analysis`` was scored by another model than ``bundle``.
    """
    if analysis.adapted:
        analysis = dataclasses.replace(analysis, prediction=analysis.unadapted, segments=analysis.unadapted_segments,
                                       unadapted=None, unadapted_segments=None, adaptation=None)
    if adaptation is None:
        return analysis
    if analysis.model_version and analysis.model_version != bundle.version:
        raise ValueError(f"{analysis.name} was analysed by model {analysis.model_version}, not {bundle.version}; "
                         "analyse it again with this model")
    segments = adapt_segments(analysis.segments, adaptation=adaptation, bundle=bundle)
    scored = [segment.prediction for segment in segments if segment.prediction is not None]
    return dataclasses.replace(
        analysis,
        prediction=combine(scored, bundle=bundle) if scored else analysis.prediction,
        segments=segments,
        unadapted=analysis.prediction,
        unadapted_segments=analysis.segments,
        adaptation=adaptation,
    )


def waveform_to_wav(waveform: np.ndarray, *, sample_rate: int) -> bytes:
    """Encode mono float audio as 16-bit PCM WAV bytes (for the player and for live takes).

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
    sample_rate : int
    """
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(np.asarray(waveform, dtype=np.float32), -1.0, 1.0), sample_rate,
                    format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def overall_cues(recording: Recording, segments: tuple[Segment, ...]) -> VoiceCues | None:
    """The cues of a whole recording, from what scoring it computed.

    One segment: its own cues (the segment is the recording). Several: pitch, loudness and rate
    over the whole recording's speech-detector frames, and voice quality (from each segment's
    functionals) averaged over the scored segments, weighted by their seconds of speech as the
    answer is. None when no segment was scored.
    """
    described = [segment for segment in segments if segment.cues is not None]
    if not described:
        return None
    if len(segments) == 1:
        return described[0].cues
    weights = [segment.speech_seconds for segment in described]

    def weighted(field: str) -> float:
        pairs = [(getattr(segment.cues, field), weight) for segment, weight in zip(described, weights, strict=True)
                 if math.isfinite(getattr(segment.cues, field)) and weight > 0]
        total = sum(weight for _, weight in pairs)
        return sum(value * weight for value, weight in pairs) / total if total > 0 else math.nan

    return dataclasses.replace(recording_cues(recording), harmonics_to_noise_db=weighted("harmonics_to_noise_db"),
                               jitter_percent=weighted("jitter_percent"))


def analyze_audio(data: bytes, *, name: str, bundle: Bundle, progress: Progress | None = None) -> Analysis:
    """Decode, segment and score one clip.

    Parameters
    ----------
    data : bytes
        The encoded file as uploaded or recorded (WAV, FLAC, OGG, MP3, M4A, WebM); its
        content decides the format, never ``name``.
    name : str
        Shown in messages and results only.
    bundle : Bundle
        From :func:`ser.serving.bundle.load_bundle`.
    progress : callable, optional
        ``progress(done, total, elapsed_seconds)`` after each segment is scored.

    Returns
    -------
    Analysis

    Raises
    ------
    AudioDecodeError
        Not bytes, empty, unreadable, too long or corrupt audio.
    NoSpeechError
        The audio decodes but holds no speech to score.
    """
    started = time.perf_counter()
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AudioDecodeError(f"{name}: expected the file's bytes, got {type(data).__name__}; upload an audio file")
    config = bundle.config
    waveform = decode_audio(bytes(data), sample_rate=config.sample_rate, name=name)
    recording = bundle.recording(waveform, sample_rate=config.sample_rate)
    # Checked first so a silent file gets the same message whatever its length.
    if recording.is_silent:
        raise NoSpeechError(f"{name}: {SILENT_MESSAGE}")
    scored = score_recording(recording, bundle=bundle, progress=progress)
    cues = overall_cues(recording, scored.segments)
    return Analysis(
        name=name,
        sample_rate=config.sample_rate,
        waveform=waveform,
        duration=recording.duration,
        log_mel=recording.log_mel,
        prediction=scored.overall,
        segments=scored.segments,
        model_version=bundle.version,
        threshold=bundle.confidence_threshold,
        analysis_seconds=time.perf_counter() - started,
        cues=cues,
        analysed_at=datetime.datetime.now(datetime.UTC),
        unfamiliarity=scored.unfamiliarity,
    )
