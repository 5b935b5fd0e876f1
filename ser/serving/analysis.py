"""The one analysis the app runs on every clip: upload, recording, live take or example.

:func:`analyze_audio` decodes the bytes once and scores them with the bundle: a clip no
longer than the model's window is scored as one clip, a longer one window by window (an
emotion timeline) with the overall answer aggregated from the voiced windows. One
:class:`~ser.serving.recording.Recording` holds the stages the answers share, so the speech
detector, the log-mel spectrogram (scored by the timeline and displayed) and the trimmed
utterance are each computed once. Bad input raises only :class:`~ser.errors.SERError`
subclasses, whose messages the app shows as they are.

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
import io
import json
from typing import Any

import numpy as np
import pandas as pd
import soundfile

from ser.errors import AudioDecodeError, NoSpeechError
from ser.serving.audio import decode_audio
from ser.serving.bundle import Bundle, ClipPrediction, Timeline
from ser.serving.speech import SILENT_MESSAGE

#: Recordings up to this many model windows long are one utterance: their answer is the
#: whole clip scored at once; longer ones are answered by the timeline's voiced windows.
WHOLE_CLIP_WINDOWS = 2


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
        Natural-log mel power of the whole clip, DC offset removed, as the timeline's windows
        are cut from it (:attr:`ser.serving.recording.Recording.log_mel`); frames
        ``hop_length / sample_rate`` seconds apart.
    prediction : ClipPrediction
        The calibrated answer: the whole clip scored at once up to ``WHOLE_CLIP_WINDOWS``
        windows long (as in training and the CLI), the timeline's aggregate beyond.
    timeline : Timeline or None
        Window-by-window probabilities when the clip is longer than one model window.
    """

    name: str
    sample_rate: int
    waveform: np.ndarray
    duration: float
    log_mel: np.ndarray
    prediction: ClipPrediction
    timeline: Timeline | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: the prediction and, for long clips, every window."""
        result: dict[str, Any] = {
            "name": self.name,
            "duration_seconds": round(self.duration, 3),
            **self.prediction.to_dict(),
        }
        if self.timeline is not None:
            result["timeline"] = timeline_rows(self.timeline, emotions=list(self.prediction.probabilities))
        return result

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON (NaN-free: unvoiced windows hold ``null``)."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        """One row per window for a long clip, else one row for the clip."""
        if self.timeline is None:
            return results_table([self]).to_csv(index=False)
        rows = timeline_rows(self.timeline, emotions=list(self.prediction.probabilities))
        frame = pd.DataFrame(
            [{**{k: v for k, v in row.items() if k != "probabilities"}, **row["probabilities"]} for row in rows]
        )
        return frame.to_csv(index=False)


def timeline_rows(timeline: Timeline, *, emotions: list[str]) -> list[dict[str, Any]]:
    """The timeline as a list of JSON-ready rows (``None`` probabilities for unvoiced windows).

    Parameters
    ----------
    timeline : Timeline
        With ``probabilities`` of shape (n_windows, len(emotions)).
    emotions : list of str
        Column labels of ``timeline.probabilities``.
    """
    rows = []
    for start, end, voiced, probabilities in zip(
        timeline.starts, timeline.ends, timeline.voiced, timeline.probabilities, strict=True
    ):
        best = int(np.argmax(probabilities)) if voiced else None
        rows.append(
            {
                "start": round(float(start), 3),
                "end": round(float(end), 3),
                "voiced": bool(voiced),
                "emotion": emotions[best] if best is not None else None,
                "probabilities": {
                    label: (float(p) if voiced else None) for label, p in zip(emotions, probabilities, strict=True)
                },
            }
        )
    return rows


def results_table(analyses: list[Analysis]) -> pd.DataFrame:
    """One row per analysed clip: name, duration, answer, confidence, sure, then every probability.

    Returns
    -------
    pandas.DataFrame, shape (len(analyses), 5 + n_emotions [+ gender/intensity columns])
    """
    rows = []
    for analysis in analyses:
        prediction = analysis.prediction
        row: dict[str, Any] = {
            "file": analysis.name,
            "seconds": round(analysis.duration, 2),
            "emotion": prediction.emotion,
            "confidence": round(prediction.confidence, 4),
            "sure": prediction.sure,
        }
        for head in ("gender", "intensity"):
            values = getattr(prediction, head)
            if values:
                row[head] = max(values, key=values.get)
        row.update({label: round(p, 4) for label, p in prediction.probabilities.items()})
        rows.append(row)
    return pd.DataFrame(rows)


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


def analyze_audio(data: bytes, *, name: str, bundle: Bundle) -> Analysis:
    """Decode, display-featurise and score one clip.

    Parameters
    ----------
    data : bytes
        The encoded file as uploaded or recorded (WAV, FLAC, OGG, MP3, M4A, WebM); its
        content decides the format, never ``name``.
    name : str
        Shown in messages and results only.
    bundle : Bundle
        From :func:`ser.serving.bundle.load_bundle`.

    Returns
    -------
    Analysis
        ``timeline`` is set when the clip is longer than ``bundle.config.window_seconds``,
        and ``prediction`` is then the timeline's aggregate over its voiced windows.

    Raises
    ------
    AudioDecodeError
        Not bytes, empty, unreadable, too long or corrupt audio.
    NoSpeechError
        The audio decodes but holds no speech to score.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AudioDecodeError(f"{name}: expected the file's bytes, got {type(data).__name__}; upload an audio file")
    config = bundle.config
    waveform = decode_audio(bytes(data), sample_rate=config.sample_rate, name=name)
    recording = bundle.recording(waveform, sample_rate=config.sample_rate)
    # Checked first so a silent file gets the same message whatever its length.
    if recording.is_silent:
        raise NoSpeechError(f"{name}: {SILENT_MESSAGE}")
    timeline = None
    if recording.duration > config.window_seconds:
        timeline = bundle.timeline_of(recording)
        prediction = timeline.overall
    if timeline is None or recording.duration <= WHOLE_CLIP_WINDOWS * config.window_seconds:
        # A short clip, or one utterance (RAVDESS clips are 3-5 s): scored whole, as the model was
        # trained and as `python -m ser predict` scores it; a timeline is shown beside it.
        prediction = bundle.predict_recording(recording)
    return Analysis(
        name=name,
        sample_rate=config.sample_rate,
        waveform=waveform,
        duration=recording.duration,
        log_mel=recording.log_mel,
        prediction=prediction,
        timeline=timeline,
    )
