"""One utterance, one answer: segmentation, aggregation and the shipped model's answers around silence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ser.serving.analysis import analyze_audio, waveform_to_wav
from ser.serving.audio import decode_audio
from ser.serving.bundle import DEFAULT_BUNDLE, ClipPrediction, load_bundle
from ser.serving.segments import SegmentSettings, combine, speech_segments
from ser.serving.speech import SpeechActivity
from ser.testing import EXAMPLES

RATE = 16000
ANGRY, SAD = EXAMPLES / "03-01-05-02-01-01-12.flac", EXAMPLES / "03-01-04-02-01-01-03.flac"
needs_model = pytest.mark.skipif(not (DEFAULT_BUNDLE / "model.keras").is_file(), reason="no shipped bundle")


def activity(voiced: str, *, level: list[float] | None = None) -> SpeechActivity:
    """Activity from a string of frames: '#' voiced, '.' not (20 ms each)."""
    mask = np.array([c == "#" for c in voiced])
    levels = np.asarray(level if level is not None else np.where(mask, -20.0, -60.0), dtype=float)
    return SpeechActivity(voiced=mask, pitch_hz=np.where(mask, 150.0, np.nan), level_db=levels, frame_seconds=0.02,
                          is_speech=True, reason="")


def test_segments_tile_the_recording_and_part_only_at_long_pauses():
    short_pause, long_pause = "." * 20, "." * 60  # 0.4 s and 1.2 s
    frames = "." * 10 + "#" * 50 + short_pause + "#" * 40 + long_pause + "#" * 30 + "." * 5
    bounds = speech_segments(activity(frames))
    assert bounds.shape == (2, 2)
    assert bounds[0, 0] == 0 and bounds[-1, 1] == len(frames) and bounds[0, 1] == bounds[1, 0]
    assert 120 < bounds[0, 1] < 180  # inside the long pause: the short one is kept inside the first segment


def test_a_blip_is_no_segment_and_nothing_voiced_is_one():
    assert speech_segments(activity("." * 50 + "#" * 40 + "." * 100 + "##" + "." * 20)).tolist() == [[0, 212]]
    assert speech_segments(activity("." * 30)).tolist() == [[0, 30]]


def test_a_long_segment_is_split_at_its_quietest_frame():
    frames = "#" * 600  # 12 s without a pause
    level = np.full(600, -20.0)
    level[350] = -50.0
    bounds = speech_segments(activity(frames, level=level.tolist()), settings=SegmentSettings(max_seconds=8.0))
    assert bounds.tolist() == [[0, 350], [350, 600]]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="max_seconds"):
        SegmentSettings(max_seconds=0.2)


def test_combine_weights_by_speech_seconds():
    def prediction(probabilities: dict[str, float], seconds: float) -> ClipPrediction:
        best = max(probabilities, key=probabilities.get)
        return ClipPrediction(emotion=best, confidence=probabilities[best], probabilities=probabilities, sure=True,
                              speech_seconds=seconds)

    class Threshold:
        confidence_threshold = 0.5

    calm = prediction({"calm": 0.9, "angry": 0.1}, 3.0)
    angry = prediction({"calm": 0.2, "angry": 0.8}, 1.0)
    overall = combine([calm, angry], bundle=Threshold())
    assert overall.probabilities == pytest.approx({"calm": 0.725, "angry": 0.275})
    assert overall.emotion == "calm" and overall.sure and overall.speech_seconds == 4.0
    assert combine([angry], bundle=Threshold()) is angry


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(DEFAULT_BUNDLE)


def padded(clip: np.ndarray, *, before: float, after: float, noise: float = 0.0) -> np.ndarray:
    audio = np.concatenate([np.zeros(int(before * RATE)), clip, np.zeros(int(after * RATE))]).astype(np.float32)
    return audio + (noise * np.random.default_rng(0).standard_normal(audio.size)).astype(np.float32)


@needs_model
@pytest.mark.slow
@pytest.mark.parametrize(("path", "before", "after", "noise"), [
    *[(path, before, after, 0.0) for path in (ANGRY, SAD) for before, after in ((0, 2), (2, 2), (5, 5))],
    (ANGRY, 2, 5, 1e-4),
    pytest.param(SAD, 2, 5, 1e-4, marks=pytest.mark.xfail(strict=True, reason=(
        "not segmentation (same trimmed utterance): the RAVDESS clips hold digital silence between words (this "
        "example 11766 exact-zero samples, quietest 20 ms at -96 dBFS) and -80 dBFS white noise fills it; it moves "
        "5.3 points, 4.5 of them through the openSMILE functionals view and 2.5 through the log-mel view alone "
        "(python -m experiments.noise_floor). The model learned gated silence; fixing it means training with a "
        "noise floor, not a serving change (issue 16 point 4)"))),
])
def test_silence_around_an_utterance_does_not_change_its_answer(shipped, capsys, tmp_path, path, before, after,
                                                                noise):
    """App and CLI give the bare clip's answer within a point; the noise is -80 dBFS, dither level: -70 dBFS
    already moves the angry example by 1.9 points (the model hears the noise floor inside the utterance)."""
    from ser.__main__ import main

    clip = decode_audio(path, sample_rate=RATE)
    bare = shipped.predict_clip(clip, sample_rate=RATE)
    data = waveform_to_wav(padded(clip, before=before, after=after, noise=noise), sample_rate=RATE)
    app = analyze_audio(data, name="padded.wav", bundle=shipped)
    assert len(app.segments) == 1
    assert app.prediction.probabilities == pytest.approx(bare.probabilities, abs=0.01)
    file = tmp_path / "padded.wav"
    file.write_bytes(data)
    assert main(["predict", "--json", str(file)]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["probabilities"] == pytest.approx(app.prediction.probabilities, abs=1e-6)


@needs_model
@pytest.mark.slow
def test_two_utterances_with_a_pause_get_their_own_answers(shipped):
    angry, sad = decode_audio(ANGRY, sample_rate=RATE), decode_audio(SAD, sample_rate=RATE)
    joined = np.concatenate([angry, np.zeros(RATE, np.float32), sad])
    result = analyze_audio(waveform_to_wav(joined, sample_rate=RATE), name="two.wav", bundle=shipped)
    assert len(result.segments) == 2
    assert angry.size / RATE < result.segments[1].start < angry.size / RATE + 1.0
    for segment, clip in zip(result.segments, (angry, sad), strict=True):
        alone = shipped.predict_clip(clip, sample_rate=RATE)
        assert segment.prediction.emotion == alone.emotion
        # 0.1, not 0.01: the sad clip starts 111 samples (< one 10 ms hop) off the frame grid of
        # its segment, and that shift alone moves the model's answer by 7 points (not segmentation).
        assert segment.prediction.probabilities == pytest.approx(alone.probabilities, abs=0.1)


@needs_model
@pytest.mark.slow
def test_single_words_are_scored():
    """Word-length cuts (0.6-1.2 s) around the voiced stretches of every example: all but a few scored."""
    from ser.errors import NoSpeechError
    from ser.serving.speech import detect_speech

    bundle = load_bundle(DEFAULT_BUNDLE)
    scored = refused = 0
    for path in sorted(EXAMPLES.glob("*.flac")):
        clip = decode_audio(path, sample_rate=RATE)
        voiced = np.flatnonzero(detect_speech(clip, sample_rate=RATE).voiced) * 0.02
        for length, centre in zip((0.6, 0.8, 1.0, 1.2), np.linspace(voiced[0] + 0.3, voiced[-1] - 0.3, 4),
                                  strict=True):
            start = int(max(0.0, centre - length / 2) * RATE)
            try:
                bundle.predict_clip(clip[start : start + int(length * RATE)], sample_rate=RATE)
                scored += 1
            except NoSpeechError:
                refused += 1
    assert refused <= 0.05 * (scored + refused), (scored, refused)
