"""Properties of the familiarity (out-of-distribution) score (ser.serving.familiarity)."""

from __future__ import annotations

import numpy as np
import pytest

from ser.serving.familiarity import (
    UNFAMILIAR_MESSAGE,
    FamiliarityModel,
    fit_familiarity,
    load_familiarity,
)

SIZE = 40


def _model(rng: np.random.Generator, *, threshold: float = np.inf) -> tuple[FamiliarityModel, np.ndarray]:
    """A model fitted on correlated synthetic 'functionals' (3 latent factors plus noise)."""
    mixing = rng.standard_normal((3, SIZE))
    train = rng.standard_normal((300, 3)) @ mixing + 0.3 * rng.standard_normal((300, SIZE)) + 5.0
    mean, scale = train.mean(axis=0), train.std(axis=0)
    standard = (train - mean) / scale
    centre, components, variances, residual_scale = fit_familiarity(standard, n_components=3)
    model = FamiliarityModel(mean=mean, scale=scale, limit=8.0, centre=centre, components=components,
                             variances=variances, residual_scale=residual_scale, threshold=threshold)
    return model, mixing


def test_components_are_orthonormal_and_scores_finite():
    model, _ = _model(np.random.default_rng(0))
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(3), atol=1e-8)
    scores = model.scores(np.random.default_rng(1).standard_normal((50, SIZE)))
    assert scores.shape == (50,) and np.all(np.isfinite(scores)) and np.all(scores >= 0)


def test_held_out_clips_mostly_under_a_held_out_threshold_and_off_manifold_flagged():
    rng = np.random.default_rng(2)
    model, mixing = _model(rng)
    def draw(n: int) -> np.ndarray:
        return rng.standard_normal((n, 3)) @ mixing + 0.3 * rng.standard_normal((n, SIZE)) + 5.0
    threshold = float(np.percentile(model.scores(draw(400)), 99))
    model = FamiliarityModel(**{**model.__dict__, "threshold": threshold})
    assert np.mean(model.scores(draw(400)) > threshold) < 0.05
    unlike = 5.0 + 3.0 * rng.standard_normal((50, SIZE))  # no latent structure, wider
    assert np.mean(model.scores(unlike) > threshold) > 0.9
    verdict = model.assess(unlike[0])
    assert not verdict.familiar and verdict.message == UNFAMILIAR_MESSAGE
    assert model.assess(draw(1)[0]).score < verdict.score


def test_bad_input_is_refused():
    model, _ = _model(np.random.default_rng(3))
    with pytest.raises(ValueError, match="shape"):
        model.scores(np.zeros((2, SIZE + 1)))
    with pytest.raises(ValueError, match="NaN"):
        model.scores(np.full(SIZE, np.nan))
    with pytest.raises(ValueError, match="n_components"):
        fit_familiarity(np.zeros((3, SIZE)), n_components=3)


@pytest.fixture(scope="module")
def shipped():
    from ser.serving.bundle import load_bundle

    bundle = load_bundle()
    return bundle, load_familiarity(model=bundle.model)


def test_shipped_score_flags_a_steady_tone_but_not_example_speech(shipped):
    from ser.serving.audio import decode_audio
    from ser.serving.features import prepare_waveform
    from ser.serving.functionals import acoustic_functionals
    from ser.testing import EXAMPLES

    bundle, familiarity = shipped
    config = bundle.config
    def score(waveform: np.ndarray) -> float:
        return familiarity.assess(acoustic_functionals(prepare_waveform(waveform, config=config), config=config)).score
    time_axis = np.arange(3 * 16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * time_axis)).astype(np.float32)
    noise = (0.1 * np.random.default_rng(0).standard_normal(time_axis.size)).astype(np.float32)
    assert score(tone) > familiarity.threshold
    # White noise is NOT flagged with 5 components (docs/familiarity.md); the speech detector refuses it.
    assert np.isfinite(score(noise))
    speech = [score(decode_audio(path, sample_rate=16000)) for path in sorted(EXAMPLES.glob("*.flac"))[::3]]
    assert np.all(np.isfinite(speech))
    assert np.mean(np.array(speech) <= familiarity.threshold) >= 0.8
