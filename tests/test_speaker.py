import dataclasses

import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.errors import NoSpeechError
from ser.serving.speaker import (
    NEUTRAL_FLOOR,
    SpeakerAdaptation,
    adapt_to_reference,
    apply_neutral_bias,
    neutral_floor_bias,
    reference_segments,
)
from ser.testing import synthetic_voice

CONFIG = FeatureConfig()
FEARFUL = np.array([0.1, 0.05, 0.05, 0.05, 0.05, 0.6, 0.05, 0.05])


def _neutral_share(probabilities: np.ndarray) -> float:
    logs = np.log(probabilities).mean(axis=0)
    mean = np.exp(logs - logs.max())
    return float(mean[0] / mean.sum())


def test_bias_lifts_the_reference_exactly_to_the_floor():
    rng = np.random.default_rng(0)
    reference = rng.dirichlet(np.ones(8), 4)
    reference[:, 0] *= 0.05
    reference /= reference.sum(axis=1, keepdims=True)
    for floor in (0.3, 0.5, 0.7):
        bias = neutral_floor_bias(reference, neutral=0, floor=floor)
        assert bias > 0
        assert np.isclose(_neutral_share(apply_neutral_bias(reference, neutral=0, bias=bias)), floor)


def test_a_reference_already_neutral_changes_nothing():
    reference = np.array([[0.8, 0.05, 0.05, 0.02, 0.02, 0.02, 0.02, 0.02]])
    assert neutral_floor_bias(reference, neutral=0) == 0.0
    clip = np.array([0.1, 0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert np.allclose(apply_neutral_bias(clip, neutral=0, bias=0.0), clip)


def test_bias_keeps_the_order_of_the_other_emotions_and_sums_to_one():
    rng = np.random.default_rng(1)
    clips = rng.dirichlet(np.ones(8), 20)
    adapted = apply_neutral_bias(clips, neutral=0, bias=2.0)
    assert np.allclose(adapted.sum(axis=1), 1.0) and (adapted[:, 0] >= clips[:, 0]).all()
    others = np.delete(adapted, 0, axis=1) / np.delete(clips, 0, axis=1)
    assert np.allclose(others, others[:, :1])  # the rest scaled alike: their ranking never changes


def test_adapt_to_reference_scores_every_piece():
    seen = []

    def score(piece):
        seen.append(piece.size)
        return FEARFUL

    adaptation = adapt_to_reference([synthetic_voice(seconds=10.0, seed=1), synthetic_voice(seconds=2.0, seed=2)],
                                    config=CONFIG, score=score, neutral=0)
    assert adaptation.segments == len(seen) == 4  # 3 windows of the long one (+ a short tail dropped), 1 whole
    assert np.isclose(adaptation.reference_neutral, 0.1) and adaptation.bias > 0
    assert np.isclose(adaptation.apply(FEARFUL)[0], NEUTRAL_FLOOR)
    assert adaptation.to_dict()["segments"] == 4
    assert isinstance(adaptation, SpeakerAdaptation)


def test_long_reference_is_cut_into_window_length_pieces():
    pieces = reference_segments(synthetic_voice(seconds=10.0, seed=4), config=CONFIG)
    assert len(pieces) == 3 and all(piece.size <= CONFIG.window_samples for piece in pieces)
    assert len(reference_segments(synthetic_voice(seconds=4.0, seed=4), config=CONFIG)) == 1


def test_silent_noisy_or_too_short_references_are_refused():
    rng = np.random.default_rng(0)

    def score(piece):
        return FEARFUL

    with pytest.raises(NoSpeechError, match="reference recording 2"):
        adapt_to_reference([synthetic_voice(seconds=2.0), np.zeros(32000, np.float32)], config=CONFIG, score=score,
                           neutral=0)
    with pytest.raises(NoSpeechError, match="reference recording 1"):
        adapt_to_reference([0.1 * rng.standard_normal(32000).astype(np.float32)], config=CONFIG, score=score,
                           neutral=0)
    with pytest.raises(NoSpeechError, match="at least 1.5 s"):
        adapt_to_reference([synthetic_voice(seconds=1.0)], config=CONFIG, score=score, neutral=0)
    with pytest.raises(NoSpeechError, match="no reference"):
        adapt_to_reference([], config=CONFIG, score=score, neutral=0)


def test_bad_floor_or_shapes_are_refused():
    with pytest.raises(ValueError, match="strictly between"):
        neutral_floor_bias(FEARFUL[None], neutral=0, floor=1.0)
    with pytest.raises(ValueError, match="n_pieces"):
        neutral_floor_bias(FEARFUL, neutral=0)
    with pytest.raises(ValueError, match="n_pieces"):
        neutral_floor_bias(FEARFUL[None], neutral=9)


# --- the bundle, the recording and the command line, calibrated -------------------------------

def _prediction(probabilities: dict[str, float], *, threshold: float = 0.5):
    from ser.serving.bundle import ClipPrediction

    best = max(probabilities, key=probabilities.get)
    return ClipPrediction(emotion=best, confidence=probabilities[best], probabilities=probabilities,
                          sure=probabilities[best] >= threshold, gender={"male": 0.3, "female": 0.7},
                          speech_seconds=2.0)


def test_adapt_prediction_rederives_the_answer_and_keeps_the_other_heads():
    from ser.serving.speaker import adapt_prediction

    labels = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
    before = _prediction(dict(zip(labels, FEARFUL.tolist(), strict=True)))
    adaptation = SpeakerAdaptation(neutral=0, bias=3.0, reference_neutral=0.05, reference_seconds=3.0, segments=1)
    after = adapt_prediction(before, adaptation=adaptation, confidence_threshold=0.5)
    assert list(after.probabilities) == labels
    assert sum(after.probabilities.values()) == pytest.approx(1.0)
    assert after.probabilities["neutral"] > before.probabilities["neutral"]
    assert after.emotion == max(after.probabilities, key=after.probabilities.get) == "neutral"
    assert after.confidence == after.probabilities["neutral"] and after.sure == (after.confidence >= 0.5)
    assert after.gender == before.gender and after.speech_seconds == before.speech_seconds
    # Neutral aside, the other emotions keep their ratios.
    assert after.probabilities["fearful"] / after.probabilities["happy"] == pytest.approx(12.0)
    unchanged = adapt_prediction(before, adaptation=dataclasses.replace(adaptation, bias=0.0),
                                 confidence_threshold=0.5)
    assert unchanged.probabilities == pytest.approx(before.probabilities) and unchanged.emotion == "fearful"


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    from ser.serving.bundle import load_bundle

    return load_bundle(tiny_bundle)


def test_calibrated_recording_keeps_the_unadapted_answer_and_never_lowers_neutral(bundle):
    from ser.serving.analysis import waveform_to_wav as wav_bytes
    from ser.serving.segments import score_recording
    from ser.serving.speaker import calibrate_bundle

    reference = wav_bytes(synthetic_voice(seconds=3.0, seed=1), sample_rate=CONFIG.sample_rate)
    adaptation = calibrate_bundle(bundle, references=[reference])
    assert adaptation.bias >= 0 and adaptation.segments >= 1 and adaptation.reference_seconds >= 1.5
    recording = bundle.recording(synthetic_voice(seconds=4.0, seed=2), sample_rate=CONFIG.sample_rate)
    plain = score_recording(recording, bundle=bundle)
    calibrated = score_recording(recording, bundle=bundle, adaptation=adaptation)
    assert not plain.adapted and plain.unadapted is None
    assert calibrated.adapted and calibrated.adaptation == adaptation
    assert calibrated.unadapted.probabilities == pytest.approx(plain.overall.probabilities)
    assert calibrated.overall.probabilities["neutral"] >= plain.overall.probabilities["neutral"] - 1e-9
    assert len(calibrated.segments) == len(plain.segments)
    assert [s.start for s in calibrated.segments] == [s.start for s in plain.segments]


def test_calibrating_to_silence_or_garbage_says_what_to_do(bundle):
    from ser.errors import AudioDecodeError
    from ser.serving.analysis import waveform_to_wav as wav_bytes
    from ser.serving.speaker import calibrate_bundle

    silence = wav_bytes(np.zeros(3 * CONFIG.sample_rate, dtype=np.float32), sample_rate=CONFIG.sample_rate)
    with pytest.raises(NoSpeechError, match="reference recording 1"):
        calibrate_bundle(bundle, references=[silence])
    with pytest.raises(AudioDecodeError):
        calibrate_bundle(bundle, references=[b"not audio at all"], names=["notes.txt"])
    with pytest.raises(NoSpeechError, match="no reference"):
        calibrate_bundle(bundle, references=[])
