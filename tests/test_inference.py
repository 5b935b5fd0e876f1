import json
import zipfile

import numpy as np
import pytest

from ser.errors import BundleError, NoSpeechError
from ser.serving.bundle import load_bundle
from ser.training.data import EMOTIONS
from tests.conftest import synthetic_voice


def test_bundle_files_are_json_and_keras(tiny_bundle):
    labels = json.loads((tiny_bundle / "labels.json").read_text())
    config = json.loads((tiny_bundle / "config.json").read_text())
    assert labels["emotion"] == list(EMOTIONS)
    assert config["features"]["window_seconds"] == 1.0
    assert zipfile.is_zipfile(tiny_bundle / "model.keras")
    assert not list(tiny_bundle.glob("*.pkl"))


def test_load_rebuilds_config_and_predicts(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    assert bundle.config.window_seconds == 1.0
    probabilities = bundle.predict_clip(synthetic_voice(seconds=2.0), sample_rate=16000).probabilities
    assert list(probabilities) == list(EMOTIONS)
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert all(0 <= p <= 1 for p in probabilities.values())


def test_prediction_is_independent_of_input_rate(tiny_bundle):
    from ser.serving.audio import resample

    bundle = load_bundle(tiny_bundle)
    voice = synthetic_voice(seconds=2.0)
    at_44k = resample(voice, orig_sample_rate=16000, target_sample_rate=44100)
    a = bundle.predict_clip(voice, sample_rate=16000)
    b = bundle.predict_clip(at_44k, sample_rate=44100)
    for label in EMOTIONS:
        assert a.probabilities[label] == pytest.approx(b.probabilities[label], abs=0.05)
    assert set(a.gender) == {"male", "female"}
    assert set(a.intensity) == {"normal", "strong"}


def test_timeline_windows_and_silent_gap(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    voice = synthetic_voice(seconds=3.0)
    recording = np.concatenate([voice, np.zeros(16000 * 3, np.float32), voice])
    timeline = bundle.timeline(recording, sample_rate=16000)
    assert timeline.starts[0] == 0
    assert timeline.ends[-1] == pytest.approx(recording.size / 16000, abs=0.02)
    assert timeline.probabilities.shape == (len(timeline.starts), 8)
    assert not timeline.voiced.all()  # the silent stretch is skipped
    assert np.allclose(np.nansum(timeline.probabilities[timeline.voiced], axis=1), 1.0)
    assert timeline.overall.emotion in EMOTIONS


def test_timeline_windows_get_their_own_functionals_in_order(tiny_bundle):
    """The windows' functionals are extracted on parallel threads; each window must still be
    scored with the functionals of its own audio (a one-by-one recomputation agrees)."""
    from ser.reporting.metrics import apply_temperature
    from ser.serving.features import log_mel_spectrogram, window_features
    from ser.serving.recording import window_functionals

    bundle = load_bundle(tiny_bundle)
    config = bundle.config
    recording = np.concatenate(
        [synthetic_voice(seconds=1.5, pitch=100.0 + 40 * k, seed=k) for k in range(4)]
    )
    timeline = bundle.timeline(recording, sample_rate=16000)
    assert timeline.voiced.sum() >= 5
    audio = recording - np.float32(recording.mean())
    windows, starts = window_features(log_mel_spectrogram(audio, config=config), config=config)
    positions = np.flatnonzero(timeline.voiced)
    functionals = np.stack(
        [window_functionals(audio[s * config.hop_length : s * config.hop_length + config.window_samples], config=config)
         for s in starts[positions]]
    )
    expected = bundle.score_windows(windows[positions], functionals=functionals)["emotion"]
    np.testing.assert_allclose(
        timeline.probabilities[positions], apply_temperature(expected, temperature=bundle.temperature), atol=1e-6
    )


def test_silence_is_not_an_emotion(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    with pytest.raises(NoSpeechError):
        bundle.predict_clip(np.zeros(32000, np.float32), sample_rate=16000)
    with pytest.raises(NoSpeechError):
        bundle.timeline(np.zeros(32000, np.float32), sample_rate=16000)


def test_missing_or_mismatched_bundle(tmp_path, tiny_bundle):
    with pytest.raises(BundleError, match="missing"):
        load_bundle(tmp_path)
    for name in ("model.keras", "config.json"):
        (tmp_path / name).write_bytes((tiny_bundle / name).read_bytes())
    (tmp_path / "labels.json").write_text(json.dumps({"emotion": ["a", "b"]}))
    with pytest.raises(BundleError, match="different trainings"):
        load_bundle(tmp_path)


def test_unsafe_lambda_model_is_refused(tmp_path, tiny_bundle):
    """safe_mode=True: a model carrying Python bytecode (a Lambda layer) does not load."""
    import keras

    inputs = keras.Input((5,))
    outputs = keras.layers.Lambda(lambda x: x * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "model.keras")
    for name in ("labels.json", "config.json"):
        (tmp_path / name).write_bytes((tiny_bundle / name).read_bytes())
    with pytest.raises(ValueError, match="(?i)lambda|unsafe|safe_mode"):
        load_bundle(tmp_path)
