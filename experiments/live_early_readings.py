"""Does the Live meter's first reading of a sentence agree with what the whole sentence gets?

Each clip of a corpus is played as a stream: 1 s of digital silence (a fake or muted
microphone before the speaker starts), the clip, then 2 s of silence, pushed into a
``LiveBuffer`` in 0.1 s chunks (the page redraws every 0.5 s; audio often arrives in bursts).
The meter reads when the page would (``reading_due``) with two policies:

* ``before``: the last 3 s scored as soon as the speech detector accepts them (the meter up
  to issue 24: a window holding 0.3-0.5 s of onset and silence);
* ``after``: :func:`ser.serving.live_reading.read_latest`, the utterance so far, read only
  once it holds ``MIN_SPEECH_SECONDS`` of speech.

For each policy: how often the first reading with an answer names the whole clip's emotion
(``Bundle.predict_clip`` of the clip), how often it says "surprised", and how much speech it
scored. ``by_speech_seconds`` scores the utterance so far (from 0.2 s before its first voiced
frame) at moments after the onset, the measurement behind ``MIN_SPEECH_SECONDS``. Prints JSON.

    python experiments/live_early_readings.py --every 12

The shipped model was trained on RAVDESS actors 1-20, so most whole-clip answers are those of
training clips: the figure is agreement with the model's own whole-clip answer, not accuracy.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.errors import NoSpeechError  # noqa: E402
from ser.serving.audio import decode_audio  # noqa: E402
from ser.serving.bundle import load_bundle  # noqa: E402
from ser.serving.live import LiveBuffer  # noqa: E402
from ser.serving.live_reading import (  # noqa: E402
    LEAD_SECONDS,
    MIN_SPEECH_SECONDS,
    Reading,
    read_latest,
    reading_due,
)

#: Seconds after the first voiced frame at which the utterance so far is scored.
MOMENTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
#: Digital silence before and after the clip in the simulated stream (seconds).
LEAD, TAIL = 1.0, 2.0
#: Audio pushed per step of the simulated stream (seconds).
CHUNK = 0.1


def fixed_window(buffer: LiveBuffer, *, bundle, previous: Reading | None = None) -> Reading:
    """The meter before issue 24: the last window, scored as soon as the detector accepts it."""
    audio, end = buffer.snapshot(seconds=bundle.config.window_seconds)
    recording = bundle.recording(audio, sample_rate=buffer.sample_rate)
    seconds = audio.size / buffer.sample_rate
    if not recording.activity.is_speech:
        return Reading(end_seconds=end, audio_seconds=seconds, prediction=None)
    try:
        prediction = bundle.predict_recording(recording)
    except NoSpeechError:
        return Reading(end_seconds=end, audio_seconds=seconds, prediction=None)
    return Reading(end_seconds=end, audio_seconds=seconds, prediction=prediction, ongoing=True)


def stream(audio: np.ndarray, *, bundle, read) -> list[Reading]:
    """The readings of ``read`` on ``audio`` played as a live stream (silence around it)."""
    rate = bundle.config.sample_rate
    signal = np.concatenate([np.zeros(int(LEAD * rate), np.float32), audio, np.zeros(int(TAIL * rate), np.float32)])
    buffer = LiveBuffer(sample_rate=rate, max_seconds=30.0)
    readings: list[Reading] = []
    step = int(CHUNK * rate)
    for start in range(0, signal.size, step):
        buffer.push(signal[start : start + step].reshape(1, -1), sample_rate=rate, channels=1)
        previous = readings[-1] if readings else None
        if reading_due(previous, received=buffer.seconds):
            readings.append(read(buffer, bundle=bundle, previous=previous))
    return readings


def clip_rows(path: Path, *, bundle, minimums: tuple[float, ...]) -> dict | None:
    rate = bundle.config.sample_rate
    audio = decode_audio(path, sample_rate=rate)
    recording = bundle.recording(audio, sample_rate=rate)
    try:
        whole = bundle.predict_recording(recording)
    except NoSpeechError:
        return None
    onset = np.flatnonzero(recording.activity.voiced)[0] * recording.activity.frame_seconds
    row: dict = {"whole": whole.emotion, "moments": {}}
    for moment in MOMENTS:
        end = int(round((onset + moment) * rate))
        if end > audio.size:
            break
        try:
            early = bundle.predict_clip(audio[max(0, int((onset - LEAD_SECONDS) * rate)) : end], sample_rate=rate)
        except NoSpeechError:
            continue
        row["moments"][moment] = early.emotion == whole.emotion
    policies = {"before": fixed_window}
    for least in minimums:
        policies[f"after_{least:g}s"] = functools.partial(read_latest, min_speech_seconds=least)
    for name, read in policies.items():
        voiced = [reading for reading in stream(audio, bundle=bundle, read=read) if reading.prediction is not None]
        first = voiced[0].prediction if voiced else None
        row[name] = None if first is None else {
            "agrees": first.emotion == whole.emotion, "surprised": first.emotion == "surprised",
            "speech_seconds": first.speech_seconds,
            "all_agree": float(np.mean([reading.prediction.emotion == whole.emotion for reading in voiced])),
            "last_agrees": voiced[-1].prediction.emotion == whole.emotion}
    return row


def summary(rows: list[dict]) -> dict:
    result: dict = {"clips": len(rows), "whole_surprised": round(float(np.mean([r["whole"] == "surprised"
                                                                                 for r in rows])), 3)}
    result["by_speech_seconds"] = {
        f"{moment:g} s": round(float(np.mean(values)), 3) for moment in MOMENTS
        if (values := [r["moments"][moment] for r in rows if moment in r["moments"]])}
    for name in [key for key in rows[0] if key == "before" or key.startswith("after")]:
        read = [r[name] for r in rows if r[name] is not None]
        result[name] = {
            "clips_read": len(read),
            "first_reading_agrees": round(float(np.mean([r["agrees"] for r in read])), 3),
            "first_reading_surprised": round(float(np.mean([r["surprised"] for r in read])), 3),
            "first_reading_speech_s_median": round(float(np.median([r["speech_seconds"] for r in read])), 2),
            "every_reading_agrees": round(float(np.mean([r["all_agree"] for r in read])), 3),
            "last_reading_agrees": round(float(np.mean([r["last_agrees"] for r in read])), 3),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--every", type=int, default=12, help="use every n-th RAVDESS speech clip")
    parser.add_argument("--min-speech", type=float, nargs="+", default=[MIN_SPEECH_SECONDS],
                        help="the 'after' policy's minimum speech (seconds), one run each")
    arguments = parser.parse_args()
    bundle = load_bundle(arguments.models)
    paths = sorted(arguments.data.glob("ravdess/speech/*/*.flac"))[:: arguments.every]
    minimums = tuple(arguments.min_speech)
    rows = [row for path in paths if (row := clip_rows(path, bundle=bundle, minimums=minimums)) is not None]
    print(json.dumps({"ravdess": summary(rows)}, indent=2))


if __name__ == "__main__":
    main()
