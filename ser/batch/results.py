"""Score one file as ``python -m ser predict`` does, and lay the answer out as table rows.

:func:`score_file` decodes and scores one path and never raises: a file that cannot be
scored is a :class:`FileResult` with ``error`` set. :class:`Layout` turns results into flat
rows whose columns come from the bundle's ``labels.json`` (one probability column per
emotion), the same for every output format.

Example
-------
>>> from ser.batch.results import Layout, score_file
>>> from ser.serving.bundle import load_bundle
>>> bundle = load_bundle("models")
>>> layout = Layout.from_labels(bundle.labels)
>>> row = layout.row(score_file(bundle, "assets/examples/03-01-05-02-01-01-12.flac", timeline=False))
>>> row["emotion"], row["error"]
('angry', None)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import AudioDecodeError, NoSpeechError, SERError

#: Values of the ``error_kind`` column (None when the file was scored).
NO_SPEECH, UNREADABLE, REFUSED, INTERNAL = "no_speech", "unreadable", "refused", "internal"


@dataclasses.dataclass(frozen=True)
class SpeakerReference:
    """Recordings of one speaker's ordinary voice, to calibrate answers to.

    Carried as bytes so that every worker of a cluster has them without a shared disk.

    Attributes
    ----------
    names : tuple of str
        The files' paths, for messages.
    contents : tuple of bytes
        Their encoded audio.
    """

    names: tuple[str, ...]
    contents: tuple[bytes, ...]

    @classmethod
    def from_files(cls, paths: list[str | Path]) -> SpeakerReference:
        """Read the reference files (raises SERError when one cannot be read)."""
        contents = []
        for path in paths:
            try:
                contents.append(Path(path).read_bytes())
            except OSError as error:
                raise SERError(f"{path}: cannot read the reference recording ({error.strerror}); check the path") \
                    from error
        return cls(names=tuple(str(path) for path in paths), contents=tuple(contents))

    def adaptation(self, bundle: Any) -> Any:
        """The speaker's :class:`ser.serving.speaker.SpeakerAdaptation` for ``bundle``
        (deterministic: every worker computes the same one). Raises SERError naming the file."""
        from ser.serving.speaker import calibrate_bundle

        return calibrate_bundle(bundle, references=list(self.contents), names=list(self.names))


@dataclasses.dataclass(frozen=True)
class SpeakerProfile:
    """A voice profile file (``python -m ser profile``), carried as its text like :class:`SpeakerReference`.

    Attributes
    ----------
    name : str
        The file's path, for messages.
    content : bytes
        Its JSON.
    """

    name: str
    content: bytes

    @classmethod
    def from_file(cls, path: str | Path) -> SpeakerProfile:
        """Read the profile file (raises SERError when it cannot be read)."""
        try:
            return cls(name=str(path), content=Path(path).read_bytes())
        except OSError as error:
            raise SERError(f"{path}: cannot read the voice profile ({error.strerror}); check the path") from error

    def adaptation(self, bundle: Any) -> Any:
        """The :class:`ser.serving.profile.VoiceProfile`, checked against ``bundle`` (SERError naming the file)."""
        from ser.serving.enrolment import load_profile
        from ser.serving.profile import ProfileError

        try:
            return load_profile(bundle, self.content)
        except ProfileError as error:
            raise ProfileError(f"{self.name}: {error}") from error


@dataclasses.dataclass(frozen=True)
class FileResult:
    """The outcome for one file.

    Attributes
    ----------
    path : str
    prediction : ClipPrediction or None
        The answer ``python -m ser predict`` gives; None when the file failed.
    duration_seconds : float or None
        Length of the decoded audio; None when it could not be decoded.
    error : str or None
        What went wrong, without the path (it is in its own column).
    error_kind : str or None
        One of ``no_speech``, ``unreadable``, ``refused``, ``internal``.
    timeline : Timeline or None
        Window-by-window answers, when asked for and the recording is longer than a window.
    unadapted : ClipPrediction or None
        The answer without the speaker calibration, when the run was calibrated.
    unfamiliarity : Unfamiliarity or None
        Which "unlike the training data" checks fired (as ``predict --json``'s ``unfamiliar``);
        None when the file failed or the bundle has no detector.
    """

    path: str
    prediction: Any = None
    duration_seconds: float | None = None
    error: str | None = None
    error_kind: str | None = None
    timeline: Any = None
    unadapted: Any = None
    unfamiliarity: Any = None


def _error_text(error: BaseException, path: str) -> str:
    message = str(error) if isinstance(error, SERError) else f"{type(error).__name__}: {error}"
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def _error_kind(error: BaseException) -> str:
    if isinstance(error, NoSpeechError):
        return NO_SPEECH
    if isinstance(error, AudioDecodeError):
        return UNREADABLE
    return REFUSED if isinstance(error, SERError) else INTERNAL


def _predict(bundle: Any, waveform: np.ndarray, *, adaptation: Any) -> Any:
    """The file's scored recording exactly as ``python -m ser predict`` computes it: cut where the
    speaker pauses, each utterance scored as a clip, adapted to the speaker when an adaptation is
    given (:func:`ser.serving.segments.score_recording`)."""
    from ser.serving.segments import score_recording

    recording = bundle.recording(waveform, sample_rate=bundle.config.sample_rate)
    return score_recording(recording, bundle=bundle, adaptation=adaptation)


def score_file(bundle: Any, path: str, *, timeline: bool, adaptation: Any = None) -> FileResult:
    """Decode and score one file; never raises (failures are results with ``error`` set).

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
    path : str
        The audio file (its content decides the format).
    timeline : bool
        Also score a recording longer than one model window window by window.
    adaptation : ser.serving.speaker.SpeakerAdaptation, optional
        Calibrate every answer to this speaker (:meth:`SpeakerReference.adaptation`).
    """
    from ser.serving.audio import decode_audio

    rate = bundle.config.sample_rate
    duration = None
    try:
        waveform = decode_audio(path, sample_rate=rate, name=path)
        duration = waveform.size / rate
        scored = _predict(bundle, waveform, adaptation=adaptation)
    except Exception as error:  # noqa: BLE001  one bad file never stops the run
        return FileResult(path=path, duration_seconds=duration, error=_error_text(error, path),
                          error_kind=_error_kind(error))
    windows = None
    if timeline and duration > bundle.config.window_seconds:
        try:
            windows = bundle.timeline(waveform, sample_rate=rate)
        except SERError:
            windows = None  # no window holds speech on its own: the clip's row says what was heard
    return FileResult(path=path, prediction=scored.overall, duration_seconds=duration, timeline=windows,
                      unadapted=scored.unadapted, unfamiliarity=scored.unfamiliarity)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclasses.dataclass(frozen=True)
class Layout:
    """The columns of the results and timeline tables, from the bundle's labels.

    Attributes
    ----------
    emotions : tuple of str
        One ``probability_<emotion>`` column each, in the bundle's order.
    heads : tuple of str
        The extra heads the bundle has (``gender``, ``intensity``): a label and a
        ``<head>_confidence`` column each.
    calibrated : bool
        The run is calibrated to a speaker (``--reference``): the answer columns are adapted,
        and ``unadapted_emotion`` / ``unadapted_confidence`` say what it would be without.
    profiled : bool
        The run answers relative to a voice profile (``--profile``): ``unprofiled_emotion`` /
        ``unprofiled_confidence`` hold the generic answer.
    """

    emotions: tuple[str, ...]
    heads: tuple[str, ...] = ()
    calibrated: bool = False
    profiled: bool = False

    @classmethod
    def from_labels(cls, labels: dict[str, list[str]], *, calibrated: bool = False, profiled: bool = False) -> Layout:
        """From the ``labels.json`` mapping (``emotion`` and optional ``gender``/``intensity``)."""
        if not labels.get("emotion"):
            raise SERError("labels.json names no emotions; the bundle is broken, train it again")
        return cls(emotions=tuple(labels["emotion"]),
                   heads=tuple(head for head in ("gender", "intensity") if labels.get(head)), calibrated=calibrated,
                   profiled=profiled)

    @classmethod
    def for_run(cls, labels: dict[str, list[str]], *, reference: Any) -> Layout:
        """The layout of a run calibrated by ``reference`` (a :class:`SpeakerReference`, a
        :class:`SpeakerProfile` or None)."""
        return cls.from_labels(labels, calibrated=isinstance(reference, SpeakerReference),
                               profiled=isinstance(reference, SpeakerProfile))

    @property
    def columns(self) -> list[str]:
        """Column names of the results table, in order."""
        heads = [name for head in self.heads for name in (head, f"{head}_confidence")]
        unadapted = ["unadapted_emotion", "unadapted_confidence"] if self.calibrated else []
        unadapted += ["unprofiled_emotion", "unprofiled_confidence"] if self.profiled else []
        return ["path", "emotion", "confidence", "sure", *unadapted, *self.probability_columns, *heads,
                "unfamiliar", "answered_by", "speech_seconds", "duration_seconds", "error", "error_kind"]

    @property
    def probability_columns(self) -> list[str]:
        return [f"probability_{emotion}" for emotion in self.emotions]

    @property
    def timeline_columns(self) -> list[str]:
        """Column names of the timeline table (one row per window), in order."""
        return ["path", "start_seconds", "end_seconds", "voiced", "emotion", *self.probability_columns]

    def column_types(self, *, timeline: bool = False) -> dict[str, str]:
        """``column -> "string" | "float" | "bool"``, for typed formats (Parquet)."""
        strings = {"path", "emotion", "unadapted_emotion", "unprofiled_emotion", "unfamiliar", "answered_by", "error",
                   "error_kind", *self.heads}
        booleans = {"sure", "voiced"}
        names = self.timeline_columns if timeline else self.columns
        return {name: "string" if name in strings else "bool" if name in booleans else "float" for name in names}

    def row(self, result: FileResult) -> dict[str, Any]:
        """The results-table row of one file (None where a failed file has no value)."""
        row: dict[str, Any] = dict.fromkeys(self.columns)
        row.update(path=result.path, duration_seconds=result.duration_seconds, error=result.error,
                   error_kind=result.error_kind)
        prediction = result.prediction
        if prediction is None:
            return row
        row.update(emotion=prediction.emotion, confidence=prediction.confidence, sure=prediction.sure,
                   speech_seconds=prediction.speech_seconds, answered_by=prediction.answered_by)
        if result.unfamiliarity is not None:  # the codes that fired, ";"-joined ("" when none did)
            row["unfamiliar"] = ";".join(result.unfamiliarity.reasons)
        if self.calibrated and result.unadapted is not None:
            row.update(unadapted_emotion=result.unadapted.emotion, unadapted_confidence=result.unadapted.confidence)
        if self.profiled and result.unadapted is not None:
            row.update(unprofiled_emotion=result.unadapted.emotion, unprofiled_confidence=result.unadapted.confidence)
        for emotion, column in zip(self.emotions, self.probability_columns, strict=True):
            row[column] = prediction.probabilities[emotion]
        for head in self.heads:
            values = getattr(prediction, head, None)
            if values:
                best = max(values, key=values.get)
                row[head], row[f"{head}_confidence"] = best, values[best]
        return row

    def timeline_rows(self, result: FileResult) -> list[dict[str, Any]]:
        """One row per model window of ``result.timeline`` (empty without one).

        Unvoiced windows have ``voiced`` False and no emotion or probabilities.
        """
        timeline = result.timeline
        if timeline is None:
            return []
        rows = []
        for start, end, voiced, probabilities in zip(
            timeline.starts, timeline.ends, timeline.voiced, timeline.probabilities, strict=True
        ):
            row: dict[str, Any] = {"path": result.path, "start_seconds": float(start), "end_seconds": float(end),
                                   "voiced": bool(voiced), "emotion": None}
            if voiced:
                row["emotion"] = self.emotions[int(np.argmax(probabilities))]
            for column, value in zip(self.probability_columns, probabilities, strict=True):
                row[column] = _finite(value) if voiced else None
            rows.append(row)
        return rows
