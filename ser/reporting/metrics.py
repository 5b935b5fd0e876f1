"""Classification and calibration metrics (pure numpy / scikit-learn), and the scores of a clip set.

:func:`clip_set_scores` is the one place a set of clips is scored (accuracy, UAR, recall and
answer share per emotion, every speaker's accuracy and their spread, calibration): for
``models/corpus_check.json``, the per-corpus scores of ``models/metrics.json``, and the
cross-corpus experiments.

Example
-------
>>> import numpy as np
>>> from ser.reporting.metrics import clip_set_scores, expected_calibration_error
>>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]])
>>> round(expected_calibration_error(probabilities, np.array([0, 1])), 3)
0.15
>>> probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [np.nan] * 3])
>>> scores = clip_set_scores(probabilities, truth=np.array(["a", "b", "b"]), speakers=np.array(["s", "s", "t"]),
...                          labels=["a", "b", "c"], answer_space=["a", "b"], threshold=0.6)
>>> scores.answered, scores.refused, scores.accuracy, scores.answer_share
(2, 1, 1.0, {'a': 0.5, 'b': 0.5})
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
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
        Class names in index order. UAR and macro-F1 average over the classes present in
        ``labels``; every name still gets its per-class row (support 0 where absent).
    """
    # Imported here: the app imports this module for apply_temperature, and scikit-learn
    # would add about a second to its cold start.
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support, recall_score

    classes = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0
    )
    # UAR and macro-F1 average over the classes the clips have: a corpus without calm, disgust or
    # surprised (ASED) would otherwise count three recalls of 0 it could never have earned.
    present = [label for label in classes if support[label] > 0]
    return {
        "n": int(len(labels)),
        "accuracy": float(np.mean(labels == predictions)),
        "uar": float(recall_score(labels, predictions, labels=present, average="macro", zero_division=0)),
        "macro_f1": float(f1_score(labels, predictions, labels=present, average="macro", zero_division=0)),
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
    return calibration_error(probabilities.max(axis=1), probabilities.argmax(axis=1) == labels, bins=bins)


def calibration_error(confidence: np.ndarray, correct: np.ndarray, *, bins: int = 15) -> float:
    """Expected calibration error of answers given with ``confidence`` (shape (n,)) that were ``correct``
    (bool, shape (n,)): the bin-weighted gap between accuracy and mean confidence, ``bins`` equal-width bins.
    (Also for answers right by a target set: :func:`ser.reporting.loco_results.score_set`.)"""
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
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


@dataclasses.dataclass(frozen=True)
class SpeakerScore:
    """One speaker of a clip set: answered clips and accuracy on them."""

    speaker: str
    n: int
    accuracy: float


@dataclasses.dataclass(frozen=True)
class SpeakerSpread:
    """Lowest, median and highest accuracy of a speaker (over speakers with an answered clip), and the
    fewest answered clips a speaker has (a speaker of a few clips can only score coarsely)."""

    min: float
    median: float
    max: float
    fewest_clips: int


@dataclasses.dataclass(frozen=True)
class ClipSetScores:
    """One set of clips, answered within ``answer_space``; fractions in [0, 1], over the answered clips.

    Attributes
    ----------
    answer_space : list of str
        The emotions an answer could be (the probabilities of these, renormalised).
    clips, answered, refused : int
        Clips in the set; scored; refused as "no speech" (``clips = answered + refused``).
    speakers : int
    accuracy, uar : float
        UAR: the recall of every emotion the clips have, averaged.
    support : dict
        ``emotion -> answered clips`` of every emotion the clips have.
    recall : dict
        ``emotion -> recall`` for every emotion the clips have.
    answer_share : dict
        ``emotion -> share of the answers`` for every emotion of ``answer_space`` (a collapse shows).
    speaker_accuracy : SpeakerSpread
    ece_15_bins : float
        Expected calibration error of the top answer, 15 equal-width bins.
    sure_share : float or None
        Share of answers whose top probability is at or above the bundle's threshold ("sure");
        None when no threshold was given.
    wrong_when_sure : float or None
        Share of those sure answers that are wrong (None when none is sure or no threshold was given).
    per_speaker : tuple of SpeakerScore
        Every speaker with an answered clip, sorted by speaker (empty in a ``corpus_check.json``
        written before it was kept).
    """

    answer_space: list[str]
    clips: int
    answered: int
    refused: int
    speakers: int
    accuracy: float
    uar: float
    support: dict[str, int]
    recall: dict[str, float]
    answer_share: dict[str, float]
    speaker_accuracy: SpeakerSpread
    ece_15_bins: float
    sure_share: float | None
    wrong_when_sure: float | None
    per_speaker: tuple[SpeakerScore, ...] = ()


def clip_probabilities(probabilities: np.ndarray, *, labels: Sequence[str],
                       per_clip: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``probabilities`` as float64 after checking its shape (n_clips, len(labels)) and that every
    array of ``per_clip`` (truth, speakers, ...) has one entry per clip."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities must be (n_clips, {len(labels)}) in label order, got {probabilities.shape}: "
                         "pass one row per clip with a column per label")
    if any(np.shape(other) != probabilities.shape[:1] for other in per_clip):
        raise ValueError(f"truth and speakers must have one entry per clip ({len(probabilities)}), got shapes "
                         f"{[np.shape(other) for other in per_clip]}: pass them in the order of the probability rows")
    return probabilities


def restrict(probabilities: np.ndarray, *, labels: Sequence[str], answer_space: Sequence[str]) -> np.ndarray:
    """The probabilities of ``answer_space`` renormalised (others 0); shape (n_clips, len(labels)) kept.

    A row whose ``answer_space`` probabilities are all 0 (or NaN: a refused clip) comes back NaN.
    """
    unknown = sorted(set(answer_space) - set(labels))
    if unknown or not len(answer_space):
        raise ValueError(f"answer_space must be some of the labels {list(labels)}; unknown: {unknown}")
    kept = np.where(np.isin(list(labels), list(answer_space)), clip_probabilities(probabilities, labels=labels), 0.0)
    total = kept.sum(axis=1, keepdims=True)
    return np.divide(kept, total, out=np.full_like(kept, np.nan), where=total > 0)


def clip_set_scores(probabilities: np.ndarray, *, truth: np.ndarray, speakers: np.ndarray, labels: Sequence[str],
                    answer_space: Sequence[str] | None = None, threshold: float | None = None) -> ClipSetScores:
    """Score one set of clips answered within ``answer_space`` (the most probable of those emotions).

    Parameters
    ----------
    probabilities : np.ndarray, shape (n_clips, len(labels))
        Probabilities in ``labels`` order; a row of NaN is a clip refused as no speech.
    truth : np.ndarray of str, shape (n_clips,)
        Each clip's emotion (one of ``labels``).
    speakers : np.ndarray, shape (n_clips,)
    labels : sequence of str
        The model's emotions, in probability order.
    answer_space : sequence of str, optional
        The emotions an answer may be: all ``labels`` (the default) as the app answers, or the
        corpus's emotions ("restricted").
    threshold : float, optional
        The bundle's confidence threshold: at or above it the app calls itself sure. Without it
        ``sure_share`` and ``wrong_when_sure`` are None.

    Raises
    ------
    ValueError
        On mismatched shapes, an emotion not among ``labels``, or no answered clip.
    """
    answer_space = list(labels) if answer_space is None else list(answer_space)
    truth, speakers = np.asarray(truth), np.asarray(speakers)
    probabilities = restrict(clip_probabilities(probabilities, labels=labels, per_clip=(truth, speakers)),
                             labels=labels, answer_space=answer_space)
    unknown = sorted(set(truth.tolist()) - set(labels))
    if unknown:
        raise ValueError(f"truth holds emotions the model does not know: {unknown}; "
                         f"name each clip's emotion as one of {list(labels)}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1] (the bundle's), got {threshold}")
    answered = ~np.isnan(probabilities).any(axis=1)
    if not answered.any():
        raise ValueError("no clip of the set was answered (every row is NaN); score a set with an answered clip")
    scored, who = probabilities[answered], speakers[answered]
    true_index = np.array([list(labels).index(name) for name in truth[answered]])
    answers = scored.argmax(axis=1)
    right = answers == true_index
    present = [index for index in range(len(labels)) if (true_index == index).any()]
    support = {labels[index]: int((true_index == index).sum()) for index in present}
    recall = {labels[index]: float(right[true_index == index].mean()) for index in present}
    shares = np.bincount(answers, minlength=len(labels)) / len(answers)
    per_speaker = tuple(SpeakerScore(speaker=str(speaker), n=int((who == speaker).sum()),
                                     accuracy=float(right[who == speaker].mean()))
                        for speaker in sorted(set(who.tolist())))
    accuracies = np.array([speaker.accuracy for speaker in per_speaker])
    sure = None if threshold is None else scored.max(axis=1) >= threshold
    return ClipSetScores(
        answer_space=answer_space,
        clips=len(probabilities),
        answered=int(answered.sum()),
        refused=int((~answered).sum()),
        speakers=len(set(speakers.tolist())),
        accuracy=float(right.mean()),
        uar=float(np.mean(list(recall.values()))),
        support=support,
        recall=recall,
        answer_share={name: float(shares[index]) for index, name in enumerate(labels) if name in answer_space},
        speaker_accuracy=SpeakerSpread(min=float(accuracies.min()), median=float(np.median(accuracies)),
                                       max=float(accuracies.max()),
                                       fewest_clips=min(speaker.n for speaker in per_speaker)),
        ece_15_bins=expected_calibration_error(scored, true_index, bins=15),
        sure_share=None if sure is None else float(sure.mean()),
        wrong_when_sure=float((~right[sure]).mean()) if sure is not None and sure.any() else None,
        per_speaker=per_speaker,
    )
