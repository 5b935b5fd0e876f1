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
