"""How far can the Live page trust a reading made on the first moments of an utterance?

The Live meter scores the last 3 s as soon as the speech detector accepts them, which can be
half a second into a sentence. For clips of a corpus, this replays what the meter sees at
``onset + t`` (the last 3 s up to that moment, onset = the first voiced frame) and records
whether that reading names the same emotion as the whole clip's, binned by how much sound the
reading scored (``ClipPrediction.speech_seconds``, which the page shows). Prints JSON.

    python experiments/live_early_readings.py --data ../shared/data --every 10

The shipped model was trained on RAVDESS actors 1-20, so on RAVDESS the whole-clip answers
are those of training clips; ASED (Amharic) is speech the model never heard. The figure is
agreement with the model's own whole-clip answer, not accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.errors import NoSpeechError  # noqa: E402
from ser.serving.audio import decode_audio  # noqa: E402
from ser.serving.bundle import load_bundle  # noqa: E402
from ser.serving.speech import detect_speech  # noqa: E402

#: Seconds after the speech onset at which the meter's view is scored.
MOMENTS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
#: Bins of scored sound (seconds), as the page reports it.
BINS = (0.0, 0.75, 1.0, 1.25, 1.5, 2.0, 3.01)
CORPORA = {"ravdess": "ravdess/speech/*/*.flac", "ased": "ased/*/*.flac"}


def replay(path: Path, *, bundle, window: float) -> list[tuple[float, bool]]:
    """(sound scored, agrees with the whole clip) for each moment the detector accepts."""
    rate = bundle.config.sample_rate
    audio = decode_audio(path, sample_rate=rate)
    try:
        whole = bundle.predict_clip(audio, sample_rate=rate)
    except NoSpeechError:
        return []
    activity = detect_speech(audio, sample_rate=rate, settings=bundle.speech_settings)
    onset = np.flatnonzero(activity.voiced)[0] * activity.frame_seconds
    rows = []
    for moment in MOMENTS:
        end = int(round((onset + moment) * rate))
        if end > audio.size:
            break
        try:
            early = bundle.predict_clip(audio[max(0, end - int(window * rate)) : end], sample_rate=rate)
        except NoSpeechError:
            continue
        rows.append((early.speech_seconds, early.emotion == whole.emotion))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--every", type=int, default=10, help="use every n-th clip of each corpus")
    arguments = parser.parse_args()
    bundle = load_bundle(arguments.models)
    result = {}
    for corpus, pattern in CORPORA.items():
        paths = sorted(arguments.data.glob(pattern))[:: arguments.every]
        rows = [row for path in paths for row in replay(path, bundle=bundle, window=bundle.config.window_seconds)]
        sound = np.array([seconds for seconds, _ in rows])
        agree = np.array([same for _, same in rows])
        bins = {}
        for low, high in zip(BINS, BINS[1:], strict=False):
            inside = (sound >= low) & (sound < high)
            if inside.any():
                bins[f"{low:g}-{high:g} s"] = {"agree": round(float(agree[inside].mean()), 3),
                                               "readings": int(inside.sum())}
        result[corpus] = {"clips": len(paths), "by_sound_scored": bins}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
