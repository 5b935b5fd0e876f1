"""The model split at its fusion (ser.serving.forward) answers what the whole fused model answers.

predict_recording scores the CNN views while openSMILE runs and the functional views on one
functionals row afterwards; every answer must stay the whole model's (to float32 rounding).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ser.serving.audio import decode_audio
from ser.serving.features import window_features
from ser.serving.forward import ModelCalls
from tests.conftest import EXAMPLES, synthetic_voice

#: float32 rounding of the fusion's logs and exponentials (measured worst ~5e-7).
TOLERANCE = 1e-5
HEADS = ("emotion", "gender", "intensity")


@pytest.fixture(scope="module")
def shipped():
    from ser.serving.bundle import load_bundle

    return load_bundle()


def _whole(bundle):
    """The same bundle's model, called whole (as before the split), in a shallow copy."""
    import copy
    import threading

    calls = ModelCalls(model=bundle.model)
    calls.split = None
    whole = copy.copy(bundle)
    whole.__dict__.update(_calls=calls, _lock=threading.Lock())
    return whole


def _clips():
    rng = np.random.default_rng(22)
    clips = [(f"synthetic-{seed}", synthetic_voice(seconds=float(rng.uniform(2.0, 9.0)),
                                                   pitch=float(rng.uniform(90, 260)), seed=seed)) for seed in range(3)]
    for name in ("03-01-05-02-01-01-12.flac", "03-01-02-02-01-01-03.flac"):
        clips.append((name, decode_audio(EXAMPLES / name, sample_rate=16000)))
    return clips


def test_the_shipped_model_splits_at_its_fusion(shipped):
    split = shipped.calls.split
    assert split is not None and split.functionals is not None
    assert all(first == [True, False, False] for first in split.first.values())  # CNN, functional, voicing


@pytest.mark.parametrize(("name", "waveform"), _clips(), ids=[name for name, _ in _clips()])
def test_split_scores_equal_the_fused_model(shipped, name, waveform):
    recording = shipped.recording(waveform, sample_rate=16000)
    split_answer = shipped.predict_recording(recording)
    windows, _ = window_features(recording.utterance_log_mel, config=shipped.config)
    functionals = recording.functionals.astype(np.float32)
    rows = np.broadcast_to(functionals, (len(windows), functionals.size))
    fused = shipped.model.predict({"log_mel": windows, "functionals": rows}, verbose=0)
    split = shipped.score_windows(windows, functionals=functionals)
    per_window = shipped.score_windows(windows, functionals=rows)  # the timeline's form: one row per window
    for head in HEADS:
        np.testing.assert_allclose(split[head], fused[head], rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(per_window[head], fused[head], rtol=0, atol=TOLERANCE)
    whole_answer = _whole(shipped).predict_clip(waveform, sample_rate=16000)
    assert split_answer.emotion == whole_answer.emotion and split_answer.answered_by == whole_answer.answered_by
    assert split_answer.sure == whole_answer.sure
    for field in ("probabilities", "gender", "intensity"):
        assert getattr(split_answer, field) == pytest.approx(getattr(whole_answer, field), abs=TOLERANCE)
    assert split_answer.confidence == pytest.approx(whole_answer.confidence, abs=TOLERANCE)


def test_timeline_and_score_windows_equal_the_whole_model(shipped):
    waveform = synthetic_voice(seconds=7.0, seed=5)
    split, whole = shipped.timeline(waveform, sample_rate=16000), _whole(shipped).timeline(waveform, sample_rate=16000)
    np.testing.assert_array_equal(split.voiced, whole.voiced)
    np.testing.assert_allclose(split.probabilities, whole.probabilities, rtol=0, atol=TOLERANCE)
    assert split.overall.emotion == whole.overall.emotion
    windows = np.random.default_rng(3).normal(-5, 2, (11, shipped.config.window_frames, shipped.config.n_mels))
    functionals = np.random.default_rng(4).normal(0, 1, 6373).astype(np.float32)
    for head, values in shipped.score_windows(windows, functionals=functionals).items():
        expected = _whole(shipped).score_windows(windows, functionals=functionals)[head]
        np.testing.assert_allclose(values, expected, rtol=0, atol=TOLERANCE)


def test_a_log_mel_only_bundle_is_its_own_view(tmp_path):
    from ser.config import FeatureConfig
    from ser.serving.bundle import load_bundle, save_bundle
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.training.networks import build_model

    config = dataclasses.replace(FeatureConfig(window_seconds=1.0, window_hop_seconds=0.5), functionals="")
    save_bundle(model=build_model(window_frames=config.window_frames, n_mels=config.n_mels, width=8), path=tmp_path,
                config=config, labels={"emotion": list(EMOTIONS), "gender": list(GENDERS),
                                       "intensity": list(INTENSITIES)}, calibration={"temperature": 1.0})
    bundle = load_bundle(tmp_path)
    assert bundle.calls.split is not None and bundle.calls.split.functionals is None
    windows = np.random.default_rng(1).normal(-5, 2, (3, config.window_frames, config.n_mels)).astype(np.float32)
    expected = bundle.model.predict(windows, verbose=0)
    for head, values in bundle.score_windows(windows).items():
        np.testing.assert_allclose(values, expected[head], rtol=0, atol=TOLERANCE)
    voice = synthetic_voice(seconds=2.5, seed=2)
    answer, whole = bundle.predict_clip(voice, sample_rate=16000), _whole(bundle).predict_clip(voice, sample_rate=16000)
    assert answer.emotion == whole.emotion and answer.probabilities == pytest.approx(whole.probabilities, abs=TOLERANCE)


def test_a_model_that_is_not_a_fusion_is_called_whole(tiny_bundle):
    """A model with outputs besides the fused heads (as experiments.fusion_weights builds) is not split."""
    import keras

    from ser.serving.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    assert bundle.calls.split is not None
    fusion = bundle.model.get_layer("emotion")
    outputs = {head: bundle.model.get_layer(head).output for head in bundle.model.output_names}
    outputs["view_0"] = fusion.input[0]
    bundle.model = keras.Model(inputs=bundle.model.inputs, outputs=outputs)
    assert bundle.calls.split is None  # rebuilt for the replaced model
    windows = np.zeros((2, bundle.config.window_frames, bundle.config.n_mels), dtype=np.float32)
    scores = bundle.score_windows(windows)
    assert set(scores) == {*HEADS, "view_0"} and scores["emotion"].shape == (2, 8)
