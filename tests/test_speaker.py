import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.errors import BundleError, NoSpeechError
from ser.serving.features import prepare_waveform
from ser.serving.functionals import acoustic_functionals, n_functionals
from ser.serving.speaker import (
    SpeakerAdaptation,
    SpeakerCalibration,
    adapt_to_speaker,
    reference_segments,
)
from ser.testing import synthetic_voice

CONFIG = FeatureConfig()


def test_a_reference_equal_to_the_centroid_gives_no_offset():
    voice = synthetic_voice(seconds=2.5, seed=1)
    centroid = acoustic_functionals(prepare_waveform(voice, config=CONFIG), config=CONFIG)
    adaptation = adapt_to_speaker([voice], config=CONFIG, calibration=SpeakerCalibration(centroid=centroid))
    assert adaptation.segments == 1
    assert np.allclose(adaptation.offset, 0.0, atol=1e-3 * (1 + np.abs(centroid)))
    assert 2.0 < adaptation.reference_seconds <= 2.5


def test_offset_moves_the_reference_mean_onto_the_centroid_with_strength():
    voices = [synthetic_voice(seconds=2.0, pitch=120.0, seed=2), synthetic_voice(seconds=2.0, pitch=160.0, seed=3)]
    values = np.stack([acoustic_functionals(prepare_waveform(v, config=CONFIG), config=CONFIG) for v in voices])
    centroid = np.linspace(-1, 1, n_functionals(CONFIG))
    full = adapt_to_speaker(voices, config=CONFIG, calibration=SpeakerCalibration(centroid=centroid))
    half = adapt_to_speaker(voices, config=CONFIG, calibration=SpeakerCalibration(centroid=centroid, strength=0.5))
    assert full.segments == 2
    scale = 1 + np.abs(values).max(axis=0)  # float32 offsets: compare relative to each functional's size
    assert np.all(np.abs(full.apply(values.mean(axis=0)) - centroid) <= 1e-5 * scale)
    assert np.all(np.abs(half.offset - full.offset / 2) <= 1e-5 * scale)
    assert full.apply(values).shape == values.shape and full.apply(values).dtype == np.float32


def test_long_reference_is_cut_into_window_length_pieces():
    pieces = reference_segments(synthetic_voice(seconds=10.0, seed=4), config=CONFIG)
    assert len(pieces) == 3  # 10 s -> 3 s + 3 s + 3 s (+ a last second, under half a window: dropped)
    assert all(piece.size <= CONFIG.window_samples for piece in pieces)
    assert len(reference_segments(synthetic_voice(seconds=4.0, seed=4), config=CONFIG)) == 1


def test_silent_noisy_or_too_short_references_are_refused():
    calibration = SpeakerCalibration(centroid=np.zeros(n_functionals(CONFIG)))
    rng = np.random.default_rng(0)
    with pytest.raises(NoSpeechError, match="reference recording 2"):
        adapt_to_speaker([synthetic_voice(seconds=2.0), np.zeros(32000, np.float32)], config=CONFIG,
                         calibration=calibration)
    with pytest.raises(NoSpeechError, match="reference recording 1"):
        adapt_to_speaker([0.1 * rng.standard_normal(32000).astype(np.float32)], config=CONFIG, calibration=calibration)
    with pytest.raises(NoSpeechError, match="at least 1.5 s"):
        adapt_to_speaker([synthetic_voice(seconds=1.0)], config=CONFIG, calibration=calibration)
    with pytest.raises(NoSpeechError, match="no reference"):
        adapt_to_speaker([], config=CONFIG, calibration=calibration)


def test_calibration_round_trips_through_json_and_is_checked(tmp_path):
    calibration = SpeakerCalibration(centroid=np.arange(n_functionals(CONFIG), dtype=float), strength=0.5)
    calibration.save(tmp_path)
    loaded = SpeakerCalibration.load(tmp_path, config=CONFIG)
    assert np.array_equal(loaded.centroid, calibration.centroid) and loaded.strength == 0.5
    assert SpeakerCalibration.load(tmp_path / "missing", config=CONFIG) is None
    with pytest.raises(BundleError, match="different trainings"):
        SpeakerCalibration.from_dict({"centroid": [0.0, 1.0]}, config=CONFIG)
    with pytest.raises(BundleError, match="malformed"):
        SpeakerCalibration.from_dict({"strength": 1.0}, config=CONFIG)
    with pytest.raises(BundleError, match="finite"):
        SpeakerCalibration(centroid=np.array([np.nan]))
    with pytest.raises(BundleError, match="strength"):
        SpeakerCalibration(centroid=np.zeros(3), strength=0.0)
    with pytest.raises(BundleError, match="reads no functionals"):
        adapt_to_speaker([synthetic_voice()], config=FeatureConfig(functionals=""), calibration=calibration)


def test_apply_refuses_the_wrong_length():
    adaptation = SpeakerAdaptation(offset=np.zeros(4, np.float32), reference_seconds=2.0, segments=1)
    with pytest.raises(ValueError, match="4"):
        adaptation.apply(np.zeros(5))
