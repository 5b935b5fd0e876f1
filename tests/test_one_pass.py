"""One pass per clip: every stage of an analysis runs once, and the answers are the reference ones.

The reference (``tests/fixtures/analysis_reference.json``, written by
``python -m tests.analysis_reference``) was first recorded before the analysis was made
single-pass, when the speech detector ran twice per 3-6 s clip and the log-mel of the whole
clip was computed twice (for the timeline, and once more on the raw audio for display). Made
single-pass, every probability, gender, intensity, timeline window and speech duration came out
bit-identical; the fixture was re-recorded for two intended changes only (see its git history):
the displayed spectrogram is the timeline's (DC offset removed, as the model sees it), and
silence has one message. Then once more for issue 16 (one utterance, one answer): every
recording is cut where the speaker pauses and each segment scored as a clip; single
utterances (the examples, every clip under 6 s) kept their answers bit for bit, and only the
long synthetic recordings, no longer answered by averaging 3 s windows, changed.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from ser.serving.analysis import analyze_audio
from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle
from tests.analysis_reference import EXAMPLES, FIXTURE, clip_outputs, reference_inputs

pytestmark = pytest.mark.skipif(not (DEFAULT_BUNDLE / "model.keras").is_file(), reason="no shipped bundle in models/")
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(DEFAULT_BUNDLE)


def differences(expected: Any, actual: Any, *, path: str = "") -> list[str]:
    """Where two JSON-like values differ (floats within TOLERANCE, NaN/None alike)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{path}/{key}: missing or extra" for key in set(expected) ^ set(actual)]
        for key in expected.keys() & actual.keys():
            found += differences(expected[key], actual[key], path=f"{path}/{key}")
        return found
    if isinstance(expected, list | tuple) and isinstance(actual, list | tuple):
        if len(expected) != len(actual):
            return [f"{path}: length {len(actual)}, expected {len(expected)}"]
        return [line for index, (e, a) in enumerate(zip(expected, actual, strict=True))
                for line in differences(e, a, path=f"{path}[{index}]")]
    if isinstance(expected, float) and isinstance(actual, int | float) and not isinstance(actual, bool):
        if math.isclose(expected, actual, rel_tol=0, abs_tol=TOLERANCE):
            return []
        return [f"{path}: {actual!r}, expected {expected!r}"]
    return [] if expected == actual else [f"{path}: {actual!r}, expected {expected!r}"]


def test_differences_sees_a_changed_probability():
    assert differences({"p": [0.5, None]}, {"p": [0.5 + 1e-7, None]}) == []
    assert differences({"p": [0.5]}, {"p": [0.6]}) == ["/p[0]: 0.6, expected 0.5"]
    assert differences({"error": "NoSpeechError"}, {"error": "AudioDecodeError"})


@pytest.mark.slow
def test_the_shipped_bundle_answers_every_reference_clip_as_before(shipped):
    """The 16 examples and the synthetic clips: same probabilities, gender, intensity, timeline,
    display log-mel and refusal messages as recorded (within 1e-5)."""
    reference = json.loads(FIXTURE.read_text(encoding="utf-8"))
    inputs = reference_inputs()
    assert set(inputs) == set(reference)
    assert sum(name.endswith(".flac") for name in reference) == len(list(EXAMPLES.glob("*.flac"))) == 16
    problems = {
        name: found
        for name, data in inputs.items()
        if (found := differences(reference[name], json.loads(json.dumps(clip_outputs(shipped, name=name, data=data)))))
    }
    assert not problems, json.dumps(problems, indent=1)[:4000]


@pytest.mark.parametrize("seconds", [0.8, 1.6, 6.0])  # one window; two; a long take
def test_one_analysis_computes_each_stage_once(tiny_bundle, monkeypatch, seconds):
    """Decode and the speech detector run once per analysis, and no stage (log-mel, trimming,
    functionals) runs twice on the same audio."""
    import hashlib

    import ser.serving.analysis
    import ser.serving.bundle
    import ser.serving.features
    import ser.serving.recording
    import ser.serving.speech
    from ser.serving.analysis import waveform_to_wav
    from tests.conftest import synthetic_voice

    bundle = load_bundle(tiny_bundle)  # 1 s windows, 0.5 s apart
    calls: list[tuple[str, str]] = []

    def count(name: str) -> None:
        modules = (ser.serving.analysis, ser.serving.bundle, ser.serving.features, ser.serving.recording,
                   ser.serving.speech)
        original = next(getattr(module, name) for module in modules if hasattr(module, name))

        def wrapper(audio, *args, **kwargs):
            digest = hashlib.sha1(np.ascontiguousarray(audio).tobytes()).hexdigest() if name != "decode_audio" else ""
            calls.append((name, digest))
            return original(audio, *args, **kwargs)

        for module in modules:
            if getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, wrapper)

    for name in ("decode_audio", "detect_speech", "log_mel_spectrogram", "trim_silence", "acoustic_functionals"):
        count(name)
    voice = np.concatenate([synthetic_voice(seconds=seconds / 2, seed=1), synthetic_voice(seconds=seconds / 2)])
    analysis = analyze_audio(waveform_to_wav(voice, sample_rate=16000), name="clip.wav", bundle=bundle)

    assert len(analysis.segments) == 1  # one utterance, however long
    names = [name for name, _ in calls]
    assert names.count("decode_audio") == 1 and names.count("detect_speech") == 1, names
    repeated = {call for call in calls if calls.count(call) > 1}
    assert not repeated, f"computed twice on the same audio: {sorted(name for name, _ in repeated)}"
    # The functionals of the one utterance: nothing more.
    assert names.count("acoustic_functionals") == 1
