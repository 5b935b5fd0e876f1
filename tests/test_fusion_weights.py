"""The per-view fusion weight fit of experiments.fusion_weights, on seeded synthetic view probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.fusion_weights import ViewClips, fit_view_weights, fused_probabilities
from ser.serving.layers import fuse_views

N_CLASSES = 4


def one_window_clips(views: np.ndarray) -> ViewClips:
    """Clips of one segment of one window each; ``views`` (n_clips, n_views, n_classes)."""
    n_clips = len(views)
    return ViewClips(windows=views, window_segment=np.arange(n_clips), segment_seconds=np.ones(n_clips),
                     segment_clip=np.arange(n_clips), n_clips=n_clips)


def informative_view(truth: np.ndarray, *, rng: np.random.Generator, strength: float) -> np.ndarray:
    logits = rng.normal(size=(len(truth), N_CLASSES))
    logits[np.arange(len(truth)), truth] += strength
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def random_view(n: int, *, rng: np.random.Generator) -> np.ndarray:
    probabilities = np.exp(2.0 * rng.normal(size=(n, N_CLASSES)))
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def test_equal_weights_give_the_shipped_fusion():
    rng = np.random.default_rng(0)
    views = np.stack([random_view(50, rng=rng) for _ in range(3)], axis=1)
    fused = fused_probabilities(one_window_clips(views), weights=np.full(3, 1 / 3), temperature=1.0)
    np.testing.assert_allclose(fused, fuse_views(*views.transpose(1, 0, 2)), atol=1e-12)


def test_windows_segments_and_refusals():
    rng = np.random.default_rng(1)
    windows = np.stack([random_view(5, rng=rng) for _ in range(2)], axis=1)
    # clip 0: one segment of 2 windows; clip 1: refused; clip 2: segments of 2 and 1 windows, 1 s and 3 s
    clips = ViewClips(windows=windows, window_segment=np.array([0, 0, 1, 1, 2]),
                      segment_seconds=np.array([2.0, 1.0, 3.0]), segment_clip=np.array([0, 2, 2]), n_clips=3)
    fused = fused_probabilities(clips, weights=np.array([0.5, 0.5]), temperature=1.0)
    assert fused.shape == (3, N_CLASSES)
    assert np.isnan(fused[1]).all()
    np.testing.assert_allclose(fused[[0, 2]].sum(axis=1), 1.0)
    per_window = fuse_views(windows[:, 0], windows[:, 1])
    np.testing.assert_allclose(fused[0], per_window[:2].mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(fused[2], 0.25 * per_window[2:4].mean(axis=0) + 0.75 * per_window[4], atol=1e-12)
    subset = fused_probabilities(clips.subset(np.array([2, 0])), weights=np.array([0.5, 0.5]), temperature=1.0)
    np.testing.assert_allclose(subset, fused[[2, 0]], atol=1e-12)


def test_identical_views_get_equal_weights():
    rng = np.random.default_rng(2)
    truth = rng.integers(N_CLASSES, size=300)
    view = informative_view(truth, rng=rng, strength=1.5)
    weights = fit_view_weights([(one_window_clips(np.stack([view, view], axis=1)), truth)], temperature=1.0)
    assert (weights >= 0).all()
    assert weights[0] == pytest.approx(weights[1], rel=1e-3)


def test_a_useless_view_gets_about_no_weight():
    rng = np.random.default_rng(3)
    truth = rng.integers(N_CLASSES, size=400)
    views = np.stack([informative_view(truth, rng=rng, strength=2.0), random_view(400, rng=rng),
                      informative_view(truth, rng=rng, strength=2.0)], axis=1)
    halves = [(one_window_clips(views[:200]), truth[:200]), (one_window_clips(views[200:]), truth[200:])]
    weights = fit_view_weights(halves, temperature=0.7)
    assert (weights >= 0).all()
    assert weights[1] < 0.1 * min(weights[0], weights[2])


def test_no_groups_is_refused():
    with pytest.raises(ValueError, match="at least one group"):
        fit_view_weights([], temperature=1.0)
