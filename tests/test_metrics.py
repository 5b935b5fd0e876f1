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


def test_model_card_shows_the_metrics_numbers(tmp_path):
    from ser.reporting.model_card import render

    metrics = {
        "cross_validation": {"accuracy": 0.5123, "uar": 0.4987, "macro_f1": 0.49, "protocol": "grouped by actor",
                             "per_class": {"calm": {"precision": 0.1, "recall": 0.2, "f1": 0.3}},
                             "calibration": {"temperature": 1.3, "confidence_threshold": 0.31,
                                             "ece_15_bins_before": 0.08, "ece_15_bins_after": 0.02}},
        "leaky_random_split": {"accuracy": 0.81, "uar": 0.8},
        "baselines": [{"name": "(a)", "accuracy": 0.3, "uar": 0.28, "leaky_accuracy": 0.6, "leaky_uar": 0.58}],
    }
    card = render(metrics, {"features": {"sample_rate": 16000}})
    for text in ("51.2%", "49.9%", "grouped by actor", "81.0%", "(a) | 30.0% / 28.0% | 60.0% / 58.0%", "0.31"):
        assert text in card


def test_seed_check_is_shown_with_the_gap_it_measured():
    from ser.reporting.model_card import render, results_table, seed_check_sentence

    metrics = {
        "cross_validation": {"accuracy": 0.663, "uar": 0.666, "macro_f1": 0.65, "protocol": "grouped by actor",
                             "calibration": {}},
        "seed_check": {"what": "CNN seeds fold + 100", "cnn_accuracy": 0.509, "fused_accuracy": 0.649,
                       "fused_uar": 0.652, "command": "python experiments/seed_check.py --offset 100"},
    }
    sentence = seed_check_sentence(metrics)
    for text in ("64.9%", "65.2%", "66.3%", "1.4 points", "--offset 100"):
        assert text in sentence
    assert sentence in render(metrics, {"features": {}}) and sentence in results_table(metrics)
    assert seed_check_sentence({"cross_validation": {"accuracy": 0.6}}) is None


def test_robustness_table_shows_every_condition_in_card_and_readme():
    from ser.reporting.model_card import render, results_table, robustness_lines

    metrics = {
        "cross_validation": {"accuracy": 0.66, "uar": 0.66, "macro_f1": 0.65, "protocol": "grouped by actor",
                             "calibration": {}},
        "robustness": {
            "clips": 1200, "minutes": 14.6, "command": "python experiments/robustness.py --data X",
            "conditions": {
                "clean": {"accuracy": 0.662, "uar": 0.665, "refused": 1, "same_answer_as_clean": 1199,
                          "seen_in_training": False},
                "phone_8k": {"accuracy": 0.483, "uar": 0.47, "refused": 11, "same_answer_as_clean": 601,
                             "seen_in_training": False},
                "white_20db": {"accuracy": 0.55, "uar": 0.54, "refused": 2, "same_answer_as_clean": 800,
                               "seen_in_training": True},
            },
        },
    }
    lines = robustness_lines(metrics)
    table = "\n".join(lines)
    for text in ("| studio clip as recorded | no | 66.2% | 66.5% | 1 | 1199 of 1200 |",
                 "| telephone band (8 kHz, 300-3400 Hz) | no | 48.3%",
                 "| white noise, 20 dB below the speech | yes | 55.0%",
                 "python experiments/robustness.py --data X", "15 min"):
        assert text in table
    card = render(metrics, {"features": {}})
    assert table in card and table in results_table(metrics)
    assert ("costs the most: telephone band (8 kHz, 300-3400 Hz) 48.3% and white noise, 20 dB below the speech "
            "55.0%, against 66.2%") in card
    assert robustness_lines({"cross_validation": {}}) == []
