"""Classification and calibration metrics (pure numpy / scikit-learn).

Example
-------
>>> import numpy as np
>>> from ser.reporting.metrics import expected_calibration_error
>>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> round(expected_calibration_error(probabilities, np.array([0, 1])), 3)
0.15
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ser.serving.calibration import apply_temperature  # noqa: F401  (re-exported for training)


def classification_report(labels: np.ndarray, predictions: np.ndarray, *, names: list[str]) -> dict[str, Any]:
    """Accuracy, UAR (macro recall), macro-F1, per-class P/R/F1 and the confusion matrix.

    Parameters
    ----------
    labels, predictions : np.ndarray, shape (n,)
        Integer class indices.
    names : list of str
        Class names in index order.
    """
    # Imported here: the app imports this module for apply_temperature, and scikit-learn
    # would add about a second to its cold start.
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

    classes = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)),
        "uar": float(recall_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": {
            "labels": list(names),
            "counts": confusion_matrix(labels, predictions, labels=classes).tolist(),
        },
    }


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """Expected calibration error of the top class, with ``bins`` equal-width confidence bins.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n, n_classes)
    labels : np.ndarray, shape (n,)
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            error += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(error)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of ``labels``."""
    from scipy.optimize import minimize_scalar

    def negative_log_likelihood(temperature: float) -> float:
        scaled = apply_temperature(probabilities, temperature=temperature)
        return float(-np.mean(np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1.0))))

    return float(minimize_scalar(negative_log_likelihood, bounds=(0.05, 20.0), method="bounded").x)


def choose_confidence_threshold(
    probabilities: np.ndarray, labels: np.ndarray, *, n_classes: int, lift: float = 4.0
) -> float:
    """Lowest confidence at which answers are right at least ``lift`` times chance.

    The default, 4 times chance with 8 classes, is "right at least half of the time": below
    the threshold the best guess is more likely wrong than right, and the app says so.

    Scans thresholds on a 0.01 grid and returns the smallest ``t`` such that predictions
    with confidence in ``[t, t + 0.1)`` are right at least ``lift / n_classes`` of the time
    (a window of 0.1 keeps the estimate from resting on a handful of clips).
    """
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    target = lift / n_classes
    for threshold in np.arange(1.0 / n_classes, 1.0, 0.01):
        in_band = (confidence >= threshold) & (confidence < threshold + 0.1)
        if in_band.sum() >= 20 and correct[in_band].mean() >= target:
            return float(round(threshold, 3))
    return float(round(1.0 / n_classes, 3))


def reliability_curve(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> dict[str, list[float]]:
    """Per-bin mean confidence, accuracy and count, for a reliability diagram."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    curve: dict[str, list[float]] = {"confidence": [], "accuracy": [], "count": []}
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        curve["confidence"].append(float(confidence[in_bin].mean()) if in_bin.any() else float((low + high) / 2))
        curve["accuracy"].append(float(correct[in_bin].mean()) if in_bin.any() else 0.0)
        curve["count"].append(int(in_bin.sum()))
    return curve
