"""ser.serving.analysis.analyze_audio: the one function behind uploads, recordings, live takes and examples."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser.errors import AudioDecodeError, NoSpeechError, SERError
from ser.serving.analysis import Analysis, analyze_audio, waveform_to_wav
from ser.serving.bundle import load_bundle
from ser.serving.words import results_table
from ser.training.data import EMOTIONS
from tests.audio_files import encode
from tests.conftest import synthetic_voice


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)  # window_seconds=1.0, window_hop_seconds=0.5


def wav_bytes(waveform: np.ndarray, rate: int = 16000) -> bytes:
    return waveform_to_wav(waveform, sample_rate=rate)


def test_short_clip_gets_one_prediction_and_display_features(bundle):
    voice = synthetic_voice(seconds=0.8)
    result = analyze_audio(wav_bytes(voice), name="short.wav", bundle=bundle)
    assert isinstance(result, Analysis)
    assert len(result.segments) == 1
    assert result.sample_rate == bundle.config.sample_rate
    assert result.waveform.shape == voice.shape and result.duration == pytest.approx(0.8)
    assert result.log_mel.shape == (1 + voice.size // bundle.config.hop_length, bundle.config.n_mels)
    assert list(result.prediction.probabilities) == list(EMOTIONS)
    assert sum(result.prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_one_utterance_is_answered_whole_as_the_cli_does(bundle):
    """One utterance, whatever its length, is one segment scored as a clip (as `python -m ser predict`)."""
    voice = synthetic_voice(seconds=2.5 * bundle.config.window_seconds, seed=5)
    result = analyze_audio(wav_bytes(voice), name="utterance.wav", bundle=bundle)
    assert len(result.segments) == 1
    assert (result.segments[0].start, result.segments[0].end) == (0.0, pytest.approx(result.duration, abs=0.02))
    whole = bundle.predict_clip(result.waveform, sample_rate=result.sample_rate)
    assert result.prediction.probabilities == pytest.approx(whole.probabilities, abs=1e-6)


def test_long_clip_is_cut_at_its_pause_and_exported_in_one_schema(bundle):
    voice = synthetic_voice(seconds=3.0)
    recording = np.concatenate([voice, np.zeros(16000 * 2, np.float32), voice])  # 8 s with a silent gap
    result = analyze_audio(wav_bytes(recording), name="long.wav", bundle=bundle)
    assert len(result.segments) == 2
    first, second = result.segments
    assert first.start == 0.0 and first.end == second.start and second.end == pytest.approx(result.duration, abs=0.02)
    assert 3.0 < first.end < 5.0  # inside the pause
    assert result.prediction.speech_seconds == pytest.approx(first.speech_seconds + second.speech_seconds)

    exported = json.loads(result.to_json())
    assert {"file", "answer", "emotion", "confidence", "segments", "model_version", "threshold",
            "analysis_seconds"} <= set(exported)
    assert exported["file"] == "long.wav" and exported["model_version"] == bundle.version
    assert len(exported["segments"]) == 2 and exported["segments"][1]["start"] == round(second.start, 3)
    table = pd.read_csv(io.StringIO(result.to_csv()))
    assert len(table) == 2 and set(table["file"]) == {"long.wav"}
    for number in (*exported["probabilities"].values(), exported["confidence"], exported["threshold"]):
        assert number == round(number, 4)


def test_input_format_and_rate_do_not_matter(bundle):
    from ser.serving.audio import resample

    voice = synthetic_voice(seconds=0.9)
    at_44k = resample(voice, orig_sample_rate=16000, target_sample_rate=44100)
    stereo_44k = np.stack([at_44k, at_44k], axis=1)
    reference = analyze_audio(wav_bytes(voice), name="a.wav", bundle=bundle)
    for data in (wav_bytes(stereo_44k, rate=44100), encode("flac", voice, sample_rate=16000)):
        other = analyze_audio(data, name="b", bundle=bundle)
        assert other.sample_rate == 16000
        assert abs(other.duration - reference.duration) < 0.01
        for label in EMOTIONS:
            assert other.prediction.probabilities[label] == pytest.approx(
                reference.prediction.probabilities[label], abs=0.05)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", AudioDecodeError),
        (b"this is not audio at all" * 20, AudioDecodeError),
        ("a path, not bytes", AudioDecodeError),
        (None, AudioDecodeError),
    ],
)
def test_bad_input_raises_a_readable_ser_error(bundle, data, error):
    with pytest.raises(error) as raised:
        analyze_audio(data, name="bad.wav", bundle=bundle)
    assert isinstance(raised.value, SERError)
    assert "bad.wav" in str(raised.value)


@pytest.mark.parametrize("seconds", [0.5, 4.0])  # a short clip and one long enough for a timeline
def test_silence_is_no_speech_whatever_its_length(bundle, seconds):
    silent = wav_bytes(np.zeros(int(16000 * seconds), np.float32))
    with pytest.raises(NoSpeechError, match="no speech"):
        analyze_audio(silent, name="silent.wav", bundle=bundle)


def test_results_table_has_one_row_per_clip_and_says_not_sure_as_the_detail_does(bundle):
    from ser.serving.analysis import NOT_SURE, segments_table

    analyses = [analyze_audio(wav_bytes(synthetic_voice(seconds=0.8, seed=s, pitch=120 + 40 * s)), name=f"{s}.wav",
                              bundle=bundle) for s in range(3)]
    table = results_table(analyses)
    assert list(table["file"]) == ["0.wav", "1.wav", "2.wav"]
    for row, analysis in zip(table.to_dict("records"), analyses, strict=True):
        guess = analysis.prediction.emotion  # the best guess is in the answer, "not sure" or not
        assert row["answer"] == (guess if analysis.prediction.sure else f"{NOT_SURE}: perhaps {guess}")
        percent = row["confidence"]
        assert percent.endswith("%") and abs(int(percent[:-1]) - 100 * analysis.prediction.confidence) <= 0.5
    segments = segments_table(analyses)
    assert list(segments["file"]) == ["0.wav", "1.wav", "2.wav"]  # one segment each
    assert list(segments["emotion"]) == list(segments["segment_emotion"]) == [a.prediction.emotion for a in analyses]
    single = pd.read_csv(io.StringIO(analyses[0].to_csv()))
    assert list(single.columns) == list(segments.columns)  # one schema for a single file and a batch


def test_waveform_to_wav_round_trips():
    voice = synthetic_voice(seconds=0.5)
    decoded, rate = soundfile.read(io.BytesIO(waveform_to_wav(voice, sample_rate=16000)), dtype="float32")
    assert rate == 16000
    np.testing.assert_allclose(decoded, voice, atol=1 / 32768 + 1e-6)
