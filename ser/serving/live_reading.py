"""The Live meter's emotion readings, without Streamlit: one utterance at a time, once enough of it.

A reading scores the *current utterance so far*, from the onset of the speech that follows
the last pause up to now, as one clip (:meth:`ser.serving.bundle.Bundle.predict_recording`,
as an upload is scored), and only once it holds :data:`MIN_SPEECH_SECONDS` of speech. Until
then the reading only says how much speech it has heard (the page's "listening" state). An
utterance that has ended (a pause after it) is read whole from :data:`MIN_SENTENCE_SECONDS`:
that reading is the sentence's answer, the one an upload of it would get.

Why: the meter used to score the last 3 s as soon as the speech detector accepted them. At a
sentence onset that window is silence plus 0.3-0.5 s of speech; trimmed and repeated to fill
the model's window, the first syllable read "surprised" at 80-100% (2 of the 3 neutral and
angry examples tried), a pink spike at every sentence onset in the history. And a window
holding the end of the last sentence, the pause and the new onset scored the pause with them.

Measured by playing 100 RAVDESS clips (every 12th) as streams after 1 s of digital silence and
reading when the page would (``python experiments/live_early_readings.py --every 12``): the
first reading of a sentence named the whole clip's emotion 23% of the time before (54% of
first readings said "surprised", 1% of the whole clips do; median 0.66 s of sound) and 89%
now (2% "surprised", median 1.73 s of speech); the last reading of a sentence agrees 96% (45%
before, when it was the last 3 s, silence included).

Example
-------
>>> import numpy as np
>>> from ser.serving.live_reading import current_utterance
>>> voiced = np.zeros(100, bool); voiced[10:40] = True; voiced[70:80] = True
>>> current_utterance(voiced, frame_seconds=0.02, pause_seconds=0.5)  # 30 silent frames: 0.6 s > 0.5 s
Utterance(first_frame=70, last_frame=80, ended=False)
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ser.errors import NoSpeechError

if TYPE_CHECKING:  # only the types: the buffer and the bundle are handed in
    from ser.serving.bundle import Bundle, ClipPrediction
    from ser.serving.live import LiveBuffer
    from ser.serving.speaker import SpeakerAdaptation
    from ser.serving.unfamiliarity import Unfamiliarity

#: No reading of an utterance still going on with less speech than this (seconds from its
#: first voiced frame to its last). Scored at moments after the onset (the utterance so far,
#: ``experiments/live_early_readings.py --every 12``, 100 RAVDESS clips), the reading named the
#: whole clip's emotion on 0.5 / 0.75 / 1 / 1.25 / 1.5 / 2 s of speech 19 / 37 / 59 / 77 / 85 / 96%
#: of the time; as the first reading of a stream (``--min-speech 1.0``), 1 s gave 67% agreement
#: and 12% "surprised".
MIN_SPEECH_SECONDS = 1.5
#: An utterance that has ended (a pause after it) is read whole from this much speech: that
#: reading *is* the utterance's answer, the one an upload of it would get. 0.5 s is the shortest
#: single word people say on their own ("yes", "no", "what?"): a word is answered from the word,
#: not ignored (issue 22). Shorter sounds (a click, a cough's burst) are not read.
MIN_SENTENCE_SECONDS = 0.5
#: A gap this long between voiced frames ends an utterance: longer than the unvoiced stretches
#: inside a sentence (consonant clusters, a breath: 0.1-0.4 s), short enough that the next
#: sentence starts a new utterance.
PAUSE_SECONDS = 0.8
#: The newest audio a reading looks at: an utterance longer than this is scored on its last
#: seconds (4 model windows; one reading stays ~0.2 s of CPU on two cores).
UTTERANCE_SECONDS = 6.0
#: Audio kept before the first voiced frame (and after the last one of an ended utterance):
#: unvoiced consonants ("s", "t") and breaths are part of the sentence; the bundle trims what is
#: quiet (40 dB under the peak) as it trims an uploaded clip, so the sentence's final reading
#: scores what an upload of it would.
LEAD_SECONDS = 0.5
#: While no utterance is being read, read again once this much new audio arrived: the
#: detector alone runs (~10 ms), so the "listening" state and the first reading follow the voice.
ONSET_EVERY = 0.5
#: While an utterance is read, read again once this much new audio arrived (one model call each).
READING_EVERY = 1.0
#: Two readings whose utterances end within this much (seconds) read the same speech.
SAME_SPEECH_SECONDS = 0.1


@dataclasses.dataclass(frozen=True)
class Utterance:
    """The newest utterance of a stretch of audio, in speech-detector frames.

    Attributes
    ----------
    first_frame, last_frame : int
        Its first voiced frame and one past its last voiced frame.
    ended : bool
        A pause of at least ``pause_seconds`` follows it (the speaker stopped).
    """

    first_frame: int
    last_frame: int
    ended: bool


def current_utterance(voiced: np.ndarray, *, frame_seconds: float, pause_seconds: float) -> Utterance | None:
    """The last run of voiced frames with no gap of ``pause_seconds`` or more inside; None without voice.

    Parameters
    ----------
    voiced : np.ndarray of bool, shape (n_frames,)
        :attr:`ser.serving.speech.SpeechActivity.voiced`.
    frame_seconds, pause_seconds : float
    """
    index = np.flatnonzero(np.asarray(voiced, dtype=bool))
    if index.size == 0:
        return None
    pause = int(np.ceil(pause_seconds / frame_seconds - 1e-9))
    # A gap of g unvoiced frames between voiced frames a and b is b - a - 1.
    splits = np.flatnonzero(np.diff(index) - 1 >= pause)
    first = int(index[splits[-1] + 1]) if splits.size else int(index[0])
    last = int(index[-1]) + 1
    return Utterance(first_frame=first, last_frame=last, ended=len(voiced) - last >= pause)


@dataclasses.dataclass(frozen=True)
class Reading:
    """One reading of the emotion meter.

    Attributes
    ----------
    end_seconds : float
        Where the scored audio ends on the take's clock.
    audio_seconds : float
        Length of the audio given to the model (the utterance so far, at most :data:`UTTERANCE_SECONDS`).
    prediction : ClipPrediction or None
        None when nothing was scored (``message`` says why: no speech, or not enough yet).
    message : str
    unadapted : ClipPrediction or None
        Calibrated to the speaker (:func:`adapt_reading`): the answer without the calibration.
    unfamiliarity : Unfamiliarity or None
        Which "unlike the training data" checks fired on the scored audio
        (:meth:`ser.serving.bundle.Bundle.unfamiliarity_of`); None without a prediction or a detector.
    speech_seconds : float
        Speech in the current utterance so far (first to last voiced frame); 0 without one.
    speech_end : float
        Where the utterance's last voiced frame ends on the take's clock (0 without one).
    ongoing : bool
        The utterance was still going on (no pause after it yet): the reading is "now".
    listening : bool
        Speech is going on but less than the minimum so far: no reading yet, keep speaking.
    """

    end_seconds: float
    audio_seconds: float
    prediction: ClipPrediction | None
    message: str = ""
    unadapted: ClipPrediction | None = None
    unfamiliarity: Unfamiliarity | None = None
    speech_seconds: float = 0.0
    speech_end: float = 0.0
    ongoing: bool = False
    listening: bool = False

    @property
    def start_seconds(self) -> float:
        return self.end_seconds - self.audio_seconds


def reading_due(previous: Reading | None, *, received: float) -> bool:
    """Whether the meter should read again, ``received`` seconds into the take.

    Every :data:`READING_EVERY` while an utterance is read (a model call each), every
    :data:`ONSET_EVERY` otherwise (the detector only, until enough speech arrives).
    """
    if previous is None:
        return received >= ONSET_EVERY
    reading = previous.prediction is not None and previous.ongoing
    return received - previous.end_seconds >= (READING_EVERY if reading else ONSET_EVERY)


def read_latest(buffer: LiveBuffer, *, bundle: Bundle, previous: Reading | None = None,
                min_speech_seconds: float = MIN_SPEECH_SECONDS, min_sentence_seconds: float = MIN_SENTENCE_SECONDS,
                seconds: float = UTTERANCE_SECONDS, pause_seconds: float = PAUSE_SECONDS) -> Reading:
    """Score the current utterance so far as one clip, once it holds enough speech.

    The utterance is the newest run of voiced frames (of the bundle's speech detector) in the
    last ``seconds`` with no pause of ``pause_seconds`` inside. It is scored once it holds
    ``min_speech_seconds`` of speech, or, once a pause ended it, ``min_sentence_seconds``. With
    less the reading has no prediction and says how much it heard (``listening`` while the
    utterance goes on); an utterance ``previous`` already read to its end is not scored again.

    Parameters
    ----------
    buffer : LiveBuffer
    bundle : Bundle
    previous : Reading, optional
        The take's last reading.
    min_speech_seconds, min_sentence_seconds, seconds, pause_seconds : float

    Raises
    ------
    SERError
        Anything but "no speech" (e.g. a broken device sending NaN or absurd sample values).
    """
    audio, end = buffer.snapshot(seconds=seconds)
    rate = buffer.sample_rate
    begin = end - audio.size / rate  # the snapshot's start on the take's clock
    recording = bundle.recording(audio, sample_rate=rate)
    # The detector alone first: most of a live stream is pauses or onsets, and refusing them
    # here skips the openSMILE and model work (~0.1 s of CPU per reading).
    activity = recording.activity
    frame = activity.frame_seconds
    utterance = current_utterance(activity.voiced, frame_seconds=frame, pause_seconds=pause_seconds)
    if not activity.is_speech or utterance is None:
        return Reading(end_seconds=end, audio_seconds=audio.size / rate, prediction=None,
                       message=activity.reason or "no speech detected")
    speech = (utterance.last_frame - utterance.first_frame) * frame
    if utterance.ended and speech < bundle.config.min_speech_seconds:
        # A click or a cough after the sentence: less than any clip the bundle scores, not an utterance.
        return Reading(end_seconds=end, audio_seconds=audio.size / rate, prediction=None,
                       message="no speech detected: only a short sound since the last reading")
    speech_end = begin + utterance.last_frame * frame
    read_before = (previous is not None and not previous.listening
                   and previous.speech_end >= speech_end - SAME_SPEECH_SECONDS)
    if utterance.ended and read_before:  # a pause after speech already read
        silent = (len(activity.voiced) - utterance.last_frame) * frame
        return Reading(end_seconds=end, audio_seconds=audio.size / rate, prediction=None,
                       message=f"no speech detected in the last {silent:.1f} s")
    context = {"speech_seconds": speech, "speech_end": speech_end, "ongoing": not utterance.ended}
    if speech < (min_sentence_seconds if utterance.ended else min_speech_seconds):
        if utterance.ended:
            message = (f"too little speech to read: {speech:.1f} s, a sentence needs {min_sentence_seconds:g} s; "
                       "say a whole sentence")
        else:
            message = f"listening: {speech:.1f} s of speech so far, a reading needs {min_speech_seconds:g} s"
        return Reading(end_seconds=end, audio_seconds=0.0, prediction=None, message=message,
                       listening=not utterance.ended, **context)
    lead = int(round(LEAD_SECONDS / frame))
    first = max(0, utterance.first_frame - lead)
    last = len(activity.voiced) if not utterance.ended else min(len(activity.voiced), utterance.last_frame + lead)
    piece = recording.piece(first_frame=first, last_frame=last)
    piece_end = begin + piece.audio.size / rate + first * frame
    try:
        prediction = bundle.predict_recording(piece)  # as predict_clip, keeping the functionals
    except NoSpeechError as error:
        return Reading(end_seconds=piece_end, audio_seconds=piece.duration, prediction=None, message=str(error),
                       **context)
    return Reading(end_seconds=piece_end, audio_seconds=piece.duration, prediction=prediction,
                   unfamiliarity=bundle.unfamiliarity_of(piece), **context)


def adapt_reading(reading: Reading, *, adaptation: SpeakerAdaptation | None, confidence_threshold: float) -> Reading:
    """``reading`` calibrated to the speaker (:func:`ser.serving.speaker.adapt_prediction`), its
    unadapted answer kept in ``unadapted``; the reading itself without an adaptation or without speech.

    Readings are kept unadapted and adapted when shown, so calibrating or forgetting the
    calibration never scores the audio again.
    """
    if adaptation is None or reading.prediction is None:
        return reading
    from ser.serving.speaker import adapt_prediction

    unadapted = reading.unadapted or reading.prediction
    return dataclasses.replace(reading, unadapted=unadapted, prediction=adapt_prediction(
        unadapted, adaptation=adaptation, confidence_threshold=confidence_threshold))
