import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.training.masked_cnn import MaskedBatches, compile_masked, encode_targets, masked_emotion_loss
from ser.training.settings import TrainSettings


def test_loss_equals_cross_entropy_over_the_allowed_classes():
    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(8), 6).astype(np.float32)
    labels = np.array([0, 2, 3, 4, 5, 7])
    mask = np.ones((6, 8), dtype=bool)
    mask[:3, [1, 6, 7]] = False  # three rows from a corpus without calm, disgust, surprised
    loss = np.asarray(masked_emotion_loss(encode_targets(labels, mask), probabilities))
    renormalised = np.where(mask, probabilities, 0) / np.where(mask, probabilities, 0).sum(axis=1, keepdims=True)
    expected = -np.log(renormalised[np.arange(6), labels])
    assert np.allclose(loss, expected, atol=1e-5)
    # All classes allowed: the ordinary cross-entropy.
    assert np.allclose(loss[3:], -np.log(probabilities[np.arange(3, 6), labels[3:]]), atol=1e-5)


def test_targets_refuse_a_label_outside_the_mask():
    with pytest.raises(ValueError, match="not among"):
        encode_targets(np.array([1]), np.array([[1, 0, 1, 1, 1, 1, 0, 0]], dtype=bool))


def test_batches_and_one_training_step_on_a_tiny_network():
    from ser.training.networks import build_model

    config = FeatureConfig(window_seconds=0.5, window_hop_seconds=0.25)
    settings = TrainSettings(batch_size=4)
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal((int(rng.integers(30, 80)), config.n_mels)).astype(np.float32) for _ in range(6)]
    labels = np.array([0, 4, 5, 1, 6, 7])
    mask = np.ones((6, 8), dtype=bool)
    mask[:3, [1, 6, 7]] = False
    batches = MaskedBatches(
        variants={speed: clips for speed in (1.0, 0.9, 1.1)}, targets=encode_targets(labels, mask),
        gender=np.array([0, 1, -1, 0, 1, 0]), intensity=np.array([-1, -1, -1, 0, 1, 0]),
        emotion_weights=np.ones(6), config=config, settings=settings, seed=0,
    )
    windows, targets, weights = batches[0]
    assert windows.shape == (4, config.window_frames, config.n_mels) and len(batches) == 2
    assert targets["emotion"].shape == (4, 8) and (targets["gender"] >= 0).all()
    order = batches.order[:4]
    assert np.array_equal(weights["intensity"], (np.array([-1, -1, -1, 0, 1, 0])[order] >= 0).astype(np.float32))
    model = compile_masked(build_model(window_frames=config.window_frames, n_mels=config.n_mels, width=8),
                           settings=settings)
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
