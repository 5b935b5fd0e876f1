"""One answer per utterance: a recording cut where the speaker pauses, each part scored as a clip.

The model was trained on single acted utterances (RAVDESS sentences of 3-5 s, trimmed of
silence). A recording is answered the same way whatever surrounds the speech:

1. :func:`speech_segments` finds the utterances from the speech detector's voiced frames
   (:mod:`ser.serving.speech`): voiced stretches closer than ``join_gap_seconds`` are one
   utterance, one longer than ``max_seconds`` is split at its quietest frame, and neighbours
   part in the middle of the pause between them (the segments tile the recording).
2. :func:`score_recording` scores every segment exactly as
   :meth:`ser.serving.bundle.Bundle.predict_recording` scores a clip (trimmed within the
   segment, windows averaged, calibrated). The overall answer averages the segments'
   calibrated probabilities weighted by their seconds of speech; with one segment it is that
   segment's answer, so silence or recorder time around one utterance does not change it.

Why these numbers: in 80 RAVDESS sentences (every third clip of actors 1-4) the longest
unvoiced stretch inside the sentence is under 0.3 s in 90% of them, under 0.64 s in 99%, and
0.68 s at most, while a clip holds at least 0.3 s of silence before and 0.5 s after its
speech; 0.8 s therefore keeps every acted sentence whole and still parts sentences separated
by a breath-and-pause. 8 s is about twice the longest training utterance, beyond which one
answer would blur changes of tone. A single utterance is one segment spanning the whole
recording, so it is scored on exactly the samples a clip would be (silence trimmed the same way).

Example
-------
>>> from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle
>>> from ser.serving.audio import decode_audio
>>> from ser.serving.segments import score_recording
>>> from ser.testing import EXAMPLES
>>> bundle = load_bundle(DEFAULT_BUNDLE)
>>> waveform = decode_audio(EXAMPLES / "03-01-05-02-01-01-12.flac", sample_rate=bundle.config.sample_rate)
>>> scored = score_recording(bundle.recording(waveform, sample_rate=16000), bundle=bundle)
>>> len(scored.segments), scored.overall.emotion
(1, 'angry')
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from ser.errors import NoSpeechError
from ser.serving.bundle import Bundle, ClipPrediction
from ser.serving.cues import VoiceCues, recording_cues
from ser.serving.joint_views import BOTH_CORPORA, STUDIO
from ser.serving.recording import Recording
from ser.serving.speaker import SpeakerAdaptation, adapt_prediction
from ser.serving.speech import SILENT_MESSAGE, SpeechActivity
from ser.serving.unfamiliarity import Unfamiliarity, combine_unfamiliarity

#: Threads scoring segments at once (each also uses the shared openSMILE threads).
SEGMENT_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Called after each segment with (segments scored, segments in all, seconds elapsed).
Progress = Callable[[int, int, float], None]


@dataclasses.dataclass(frozen=True)
class SegmentSettings:
    """Where a recording is cut (see the module docstring for why these values).

    Attributes
    ----------
    join_gap_seconds : float
        Voiced stretches separated by less than this are one segment.
    min_voiced_seconds : float
        A stretch with fewer voiced seconds is no utterance of its own (a click, a breath): it
        stays inside its neighbour's segment. As the detector's own minimum for a clip.
    max_seconds : float
        Longer segments are split at their quietest frame.
    """

    join_gap_seconds: float = 0.8
    min_voiced_seconds: float = 0.15
    max_seconds: float = 8.0

    def __post_init__(self) -> None:
        if self.join_gap_seconds < 0:
            raise ValueError("join_gap_seconds must be zero or more")
        if self.max_seconds < 1.0:
            raise ValueError("max_seconds must be at least 1 s: shorter segments hold too little speech to score")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One utterance of a recording and its answer.

    Attributes
    ----------
    start, end : float
        Bounds in seconds from the start of the recording.
    prediction : ClipPrediction or None
        None when the segment holds too little speech to score (``problem`` says why).
    problem : str
    cues : VoiceCues or None
        What a listener hears in the segment (:func:`ser.serving.cues.recording_cues`); None when unscored.
    unfamiliarity : Unfamiliarity or None
        Which "unlike the training data" checks fired (:meth:`ser.serving.bundle.Bundle.unfamiliarity_of`);
        None when unscored or the bundle has no detector.
    """

    start: float
    end: float
    prediction: ClipPrediction | None
    problem: str = ""
    cues: VoiceCues | None = None
    unfamiliarity: Unfamiliarity | None = None

    @property
    def speech_seconds(self) -> float:
        """Seconds of sound scored (0 for an unscored segment): the segment's weight in the overall answer."""
        return self.prediction.speech_seconds if self.prediction is not None else 0.0


@dataclasses.dataclass(frozen=True)
class ScoredRecording:
    """The segments of a recording and its overall answer.

    With a speaker adaptation, ``segments`` and ``overall`` are adapted to the speaker and
    ``unadapted`` is the overall answer without it (None when no adaptation was given).
    ``unfamiliarity`` is the whole recording's verdict (:func:`recording_unfamiliarity`).
    """

    segments: tuple[Segment, ...]
    overall: ClipPrediction
    unadapted: ClipPrediction | None = None
    adaptation: SpeakerAdaptation | None = None
    unfamiliarity: Unfamiliarity | None = None

    @property
    def adapted(self) -> bool:
        """Whether the answers are calibrated to the speaker's reference recording."""
        return self.adaptation is not None


def _runs(mask: np.ndarray) -> np.ndarray:
    """``[first, last)`` frame bounds of the True runs of a boolean array; shape (n_runs, 2)."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.stack([np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)], axis=1)


def _split(first: int, last: int, *, level_db: np.ndarray, max_frames: int) -> list[tuple[int, int]]:
    """Split ``[first, last)`` at its quietest frame of the middle half until no part exceeds ``max_frames``."""
    if last - first <= max_frames:
        return [(first, last)]
    quarter = (last - first) // 4
    cut = first + quarter + int(np.argmin(level_db[first + quarter : last - quarter]))
    return _split(first, cut, level_db=level_db, max_frames=max_frames) + _split(
        cut, last, level_db=level_db, max_frames=max_frames
    )


def speech_segments(activity: SpeechActivity, *, settings: SegmentSettings | None = None) -> np.ndarray:
    """Utterance bounds from the speech detector's voiced frames, tiling the recording.

    Voiced stretches closer than ``join_gap_seconds`` are one utterance; one longer than
    ``max_seconds`` is split at its quietest frame; consecutive utterances part in the middle
    of the pause between them, the first starts at 0 and the last ends with the recording, so
    no sound is lost and each segment's silence is trimmed as a clip's is.

    Parameters
    ----------
    activity : SpeechActivity
        Of the whole recording (:attr:`ser.serving.recording.Recording.activity`).
    settings : SegmentSettings, optional

    Returns
    -------
    np.ndarray of int64, shape (n_segments, 2)
        ``[first, last)`` bounds in ``activity.frame_seconds`` frames, in order, each starting
        where the previous ends, covering ``[0, len(activity.voiced))``; one segment when
        nothing is voiced.
    """
    settings = settings or SegmentSettings()
    frames = activity.voiced.size
    runs = _runs(activity.voiced)
    if runs.size == 0:
        return np.array([[0, frames]], dtype=np.int64)
    per_second = 1.0 / activity.frame_seconds
    join = int(round(settings.join_gap_seconds * per_second))
    joined = [list(runs[0])]
    for first, last in runs[1:]:
        if first - joined[-1][1] < join:
            joined[-1][1] = last
        else:
            joined.append([first, last])
    voiced_before = np.concatenate([[0], np.cumsum(activity.voiced, dtype=np.int64)])
    needed = settings.min_voiced_seconds * per_second
    # A lone blip (a click, a breath) is no utterance: it stays in its neighbour's segment.
    joined = [span for span in joined if voiced_before[span[1]] - voiced_before[span[0]] >= needed] or joined[:0]
    if not joined:
        return np.array([[0, frames]], dtype=np.int64)
    longest = int(round(settings.max_seconds * per_second))
    spans = [part for first, last in joined for part in _split(first, last, level_db=activity.level_db,
                                                                max_frames=longest)]
    middles = [(previous[1] + following[0]) // 2 for previous, following in zip(spans, spans[1:], strict=False)]
    cuts = [0, *middles, frames]
    return np.stack([cuts[:-1], cuts[1:]], axis=1).astype(np.int64)


def combine(predictions: list[ClipPrediction], *, bundle: Bundle) -> ClipPrediction:
    """Segments' answers averaged, weighted by their seconds of speech (calibrated probabilities).

    Returns the single prediction itself when there is one. ``answered_by`` is the joint views'
    when the segments they answered hold at least half the speech: as the recording's unfamiliarity
    verdict counts a reason (:func:`recording_unfamiliarity`).
    """
    if not predictions:
        raise ValueError("combine needs at least one prediction")
    if len(predictions) == 1:
        return predictions[0]
    weights = np.array([p.speech_seconds for p in predictions], dtype=np.float64)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(predictions), 1 / len(predictions))

    def average(dicts: list[dict[str, float] | None]) -> dict[str, float] | None:
        if any(d is None for d in dicts):
            return None
        return {label: float(sum(w * d[label] for w, d in zip(weights, dicts, strict=True))) for label in dicts[0]}

    probabilities = average([p.probabilities for p in predictions])
    emotion = max(probabilities, key=probabilities.get)
    routed = sum(w for w, p in zip(weights, predictions, strict=True) if p.answered_by == BOTH_CORPORA)
    return ClipPrediction(
        emotion=emotion,
        confidence=probabilities[emotion],
        probabilities=probabilities,
        sure=bool(probabilities[emotion] >= bundle.confidence_threshold),
        gender=average([p.gender for p in predictions]),
        intensity=average([p.intensity for p in predictions]),
        speech_seconds=float(sum(p.speech_seconds for p in predictions)),
        answered_by=BOTH_CORPORA if routed >= 0.5 else STUDIO,
    )


def adapt_segments(segments: Sequence[Segment], *, adaptation: SpeakerAdaptation,
                   bundle: Bundle) -> tuple[Segment, ...]:
    """Every scored segment's answer calibrated to the speaker (:func:`ser.serving.speaker.adapt_prediction`,
    "not sure" re-derived with the bundle's threshold); unscored segments as they are."""
    threshold = bundle.confidence_threshold
    return tuple(
        dataclasses.replace(segment, prediction=adapt_prediction(segment.prediction, adaptation=adaptation,
                                                                 confidence_threshold=threshold))
        if segment.prediction is not None else segment
        for segment in segments
    )


def score_recording(recording: Recording, *, bundle: Bundle, settings: SegmentSettings | None = None,
                    progress: Progress | None = None,
                    adaptation: SpeakerAdaptation | None = None) -> ScoredRecording:
    """Cut a recording into utterances and score each as a clip.

    Parameters
    ----------
    recording : Recording
        From :meth:`ser.serving.bundle.Bundle.recording`.
    bundle : Bundle
    settings : SegmentSettings, optional
    progress : callable, optional
        ``progress(done, total, elapsed_seconds)`` after each segment (for a progress bar).
    adaptation : SpeakerAdaptation, optional
        Calibration to the speaker (:func:`ser.serving.speaker.calibrate_bundle`): every
        segment's answer is adapted before they are combined; the unadapted overall answer is kept.

    Returns
    -------
    ScoredRecording

    Raises
    ------
    NoSpeechError
        Silent, no speech anywhere, or no segment long enough to score (the detector's reason).
    """
    if recording.is_silent:
        raise NoSpeechError(SILENT_MESSAGE)
    activity = recording.activity.require()
    bounds = speech_segments(activity, settings=settings)
    started = time.perf_counter()

    def score(first: int, last: int) -> Segment:
        # One utterance: the recording itself, scored exactly as a clip (the segments tile it).
        piece = recording if len(bounds) == 1 else recording.piece(first_frame=first, last_frame=last)
        start, end = first * activity.frame_seconds, min(last * activity.frame_seconds, recording.duration)
        try:
            prediction = bundle.predict_recording(piece)
        except NoSpeechError as error:
            return Segment(start=float(start), end=float(end), prediction=None, problem=str(error))
        # The cues from the stages the prediction computed: the detector's frames, the model's functionals.
        return Segment(start=float(start), end=float(end), prediction=prediction, cues=recording_cues(piece),
                       unfamiliarity=bundle.unfamiliarity_of(piece))

    # Segments are scored on a few threads: trimming, log-mel and openSMILE release the GIL for
    # much of their work, and the model calls are serialised by the bundle's lock anyway.
    with concurrent.futures.ThreadPoolExecutor(max_workers=SEGMENT_WORKERS,
                                               thread_name_prefix="ser-segments") as workers:
        futures = [workers.submit(score, int(first), int(last)) for first, last in bounds]
        for done, _ in enumerate(concurrent.futures.as_completed(futures), start=1):
            if progress is not None:  # called on this thread: the app's progress bar lives here
                progress(done, len(futures), time.perf_counter() - started)
        segments = [future.result() for future in futures]
    scored = [segment.prediction for segment in segments if segment.prediction is not None]
    if not scored:
        problems = [segment.problem for segment in segments]
        raise NoSpeechError(problems[0] if len(problems) == 1 else "no speech detected: no part of the "
                            "recording holds enough voiced sound to score; record someone speaking")
    unfamiliarity = recording_unfamiliarity(segments)
    if adaptation is None:
        return ScoredRecording(segments=tuple(segments), overall=combine(scored, bundle=bundle),
                               unfamiliarity=unfamiliarity)
    adapted = adapt_segments(segments, adaptation=adaptation, bundle=bundle)
    return ScoredRecording(
        segments=adapted,
        overall=combine([segment.prediction for segment in adapted if segment.prediction is not None], bundle=bundle),
        unadapted=combine(scored, bundle=bundle),
        adaptation=adaptation,
        unfamiliarity=unfamiliarity,
    )


def recording_unfamiliarity(segments: Sequence[Segment]) -> Unfamiliarity | None:
    """The whole recording's unfamiliarity verdict from its scored segments'
    (:func:`ser.serving.unfamiliarity.combine_unfamiliarity`: a reason counts when the segments
    showing it hold at least half the speech); None when no segment was checked."""
    checked = [(segment.unfamiliarity, segment.speech_seconds) for segment in segments
               if segment.unfamiliarity is not None]
    return combine_unfamiliarity(checked) if checked else None
