"""What the shipped bundle answers for a fixed set of clips: the reference the serving code must keep.

``tests/test_one_pass.py`` recomputes these outputs and compares them with
``tests/fixtures/analysis_reference.json`` (within 1e-5), so a refactor of the analysis
(one decode, one speech detection, one set of features per clip) cannot change an answer.
The clips are the 16 examples in ``assets/examples`` plus seeded synthetic ones: short,
long (a timeline), with silent gaps, noise, DC offset, and inputs that must be refused.

Regenerate the fixture (only when the model or the intended behaviour changes, and say so
in the commit) with::

    python -m tests.analysis_reference
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ser.errors import SERError
from ser.serving.analysis import analyze_audio, waveform_to_wav
from ser.serving.audio import decode_audio, resample
from ser.serving.bundle import Bundle
from ser.testing import synthetic_voice

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "analysis_reference.json"
RATE = 16000


def _example(name: str) -> np.ndarray:
    return decode_audio(EXAMPLES / name, sample_rate=RATE)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def _noise(seconds: float, *, level: float, seed: int) -> np.ndarray:
    return (level * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def _synthetic_clips() -> dict[str, np.ndarray]:
    """Seeded clips beyond the examples (16 kHz float32), by name."""
    angry, neutral, sad, happy = (
        _example(f"03-01-{code}-01-01-{actor}.flac")
        for code, actor in (("05-02", "12"), ("01-01", "03"), ("04-02", "03"), ("03-02", "12"))
    )
    examples = [_example(path.name) for path in sorted(EXAMPLES.glob("*.flac"))]
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(4 * RATE) / RATE)).astype(np.float32)
    return {
        "short 2.5 s of speech": angry[: int(2.5 * RATE)],
        "example with a DC offset": neutral + np.float32(0.05),
        "quiet example (-26 dB)": sad * np.float32(0.05),
        "quiet example (-40 dB)": sad * np.float32(0.01),
        "5 s: example then silence": np.concatenate([happy, _silence(5.0 - happy.size / RATE)]),
        "7 s: example then faint noise": np.concatenate([angry, _noise(7.0 - angry.size / RATE, level=0.003, seed=1)]),
        "20 s: four examples with silent gaps": np.concatenate(
            [part for clip in (angry, neutral, sad, happy) for part in (clip, _silence(1.2))]
        ),
        "12 s: synthetic voice, loud noise, voice": np.concatenate(
            [synthetic_voice(seconds=4.0, seed=2), _noise(4.0, level=0.1, seed=3), synthetic_voice(seconds=4.0, seed=4)]
        ),
        "60 s: every example, gaps and noise": np.concatenate(
            [part for index, clip in enumerate(examples)
             for part in (clip, _noise(0.4, level=0.002, seed=index))]
        )[: 60 * RATE],
        "refused: silence 0.5 s": _silence(0.5),
        "refused: silence 4 s": _silence(4.0),
        "refused: white noise 4 s": _noise(4.0, level=0.1, seed=5),
        "refused: 0.3 s of speech": angry[RATE : RATE + int(0.3 * RATE)],
        "refused: steady tone 4 s": tone,
    }


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _log_mel_summary(log_mel: np.ndarray) -> dict[str, Any]:
    return {
        "shape": list(log_mel.shape),
        "mean": float(log_mel.mean(dtype=np.float64)),
        "band_means": [float(v) for v in log_mel.mean(axis=0, dtype=np.float64)],
        "frame_means": [float(v) for v in log_mel.mean(axis=1, dtype=np.float64)[::25]],
    }


def _attempt(call: Callable[[], Any]) -> tuple[Any, dict[str, str] | None]:
    try:
        return call(), None
    except SERError as error:
        return None, {"error": type(error).__name__, "message": str(error)}


def clip_outputs(bundle: Bundle, *, name: str, data: bytes) -> dict[str, Any]:
    """The analysis (as the app runs it) and the whole-clip prediction (as the CLI runs it) of one clip."""
    analysis, failure = _attempt(lambda: analyze_audio(data, name=name, bundle=bundle))
    record: dict[str, Any] = {"analysis": failure}
    if analysis is not None:
        record["analysis"] = {
            "samples": int(analysis.waveform.size),
            "duration": analysis.duration,
            "prediction": analysis.prediction.to_dict(),
            "log_mel": _log_mel_summary(analysis.log_mel),
            "segments": [
                {"start": segment.start, "end": segment.end, "problem": segment.problem,
                 "prediction": None if segment.prediction is None else segment.prediction.to_dict()}
                for segment in analysis.segments
            ],
        }
    waveform, failure = _attempt(lambda: decode_audio(data, sample_rate=bundle.config.sample_rate, name=name))
    if waveform is not None:
        prediction, failure = _attempt(lambda: bundle.predict_clip(waveform, sample_rate=bundle.config.sample_rate))
    record["predict_clip"] = failure if failure is not None else prediction.to_dict()
    return record


def reference_inputs() -> dict[str, bytes]:
    """Every clip as the bytes the app receives: the example files as they are, the others as 16-bit WAV."""
    inputs = {path.name: path.read_bytes() for path in sorted(EXAMPLES.glob("*.flac"))}
    inputs.update({name: waveform_to_wav(clip, sample_rate=RATE) for name, clip in _synthetic_clips().items()})
    stereo = resample(_example("03-01-07-02-01-01-12.flac"), orig_sample_rate=RATE, target_sample_rate=44100)
    inputs["example as 44.1 kHz stereo WAV"] = waveform_to_wav(np.stack([stereo, 0.5 * stereo], axis=1),
                                                                sample_rate=44100)
    return inputs


def reference_outputs(bundle: Bundle) -> dict[str, dict[str, Any]]:
    """:func:`clip_outputs` of every clip of :func:`reference_inputs`, by clip name."""
    return {name: clip_outputs(bundle, name=name, data=data) for name, data in reference_inputs().items()}


def main() -> None:
    from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle

    outputs = reference_outputs(load_bundle(DEFAULT_BUNDLE))
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(outputs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(outputs)} clips to {FIXTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
