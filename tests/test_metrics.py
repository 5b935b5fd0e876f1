import json

import numpy as np
import pytest

from ser.reporting.metrics import (
    apply_temperature,
    choose_confidence_threshold,
    classification_report,
    expected_calibration_error,
    fit_temperature,
)


def _overconfident(n: int = 4000, temperature: float = 2.0, seed: int = 0):
    """Labels drawn from calibrated probabilities, then sharpened by ``temperature``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, 8))
    calibrated = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(8, p=p) for p in calibrated])
    return apply_temperature(calibrated, temperature=1 / temperature), labels, calibrated


def test_temperature_scaling_recovers_the_sharpening_and_lowers_ece():
    sharpened, labels, _ = _overconfident()
    temperature = fit_temperature(sharpened, labels)
    assert temperature == pytest.approx(2.0, rel=0.15)
    before = expected_calibration_error(sharpened, labels)
    after = expected_calibration_error(apply_temperature(sharpened, temperature=temperature), labels)
    assert after < before / 2
    assert after < 0.05


def test_ece_zero_for_perfectly_calibrated_confident_answers():
    probabilities = np.eye(8)[[0, 1, 2, 3]]
    assert expected_calibration_error(probabilities, np.array([0, 1, 2, 3])) == pytest.approx(0.0)
    assert expected_calibration_error(probabilities, np.array([1, 2, 3, 4])) == pytest.approx(1.0)


def test_threshold_rises_when_low_confidence_answers_are_wrong():
    rng = np.random.default_rng(1)
    n = 5000
    confidence = rng.uniform(0.15, 0.95, n)
    predicted = rng.integers(0, 8, n)
    # Below 0.4 the answers are near chance (10%); above, right as often as they claim.
    right = rng.uniform(size=n) < np.where(confidence < 0.4, 0.1, confidence)
    labels = np.where(right, predicted, (predicted + 1) % 8)
    probabilities = np.repeat(((1 - confidence) / 7)[:, None], 8, axis=1)  # the rest spread evenly
    probabilities[np.arange(n), predicted] = confidence
    # Twice chance (25%) is reached where the near-chance answers start to be outnumbered.
    assert 0.3 <= choose_confidence_threshold(probabilities, labels, n_classes=8, lift=2.0) <= 0.42
    # The default, right at least half of the time, needs bands of confidence around 0.5.
    assert 0.42 <= choose_confidence_threshold(probabilities, labels, n_classes=8) <= 0.55


def test_classification_report_counts_and_macro_recall():
    labels = np.array([0, 0, 1, 1, 1, 1])
    predictions = np.array([0, 1, 1, 1, 1, 0])
    report = classification_report(labels, predictions, names=["a", "b"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["uar"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert report["confusion_matrix"]["counts"] == [[1, 1], [1, 3]]
    json.dumps(report)  # JSON-ready
