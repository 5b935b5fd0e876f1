import json

import numpy as np
import pytest

from ser.reporting.metrics import (
    ClipSetScores,
    apply_temperature,
    choose_confidence_threshold,
    classification_report,
    clip_set_scores,
    expected_calibration_error,
    fit_temperature,
)
from ser.reporting.schema import from_json, to_json


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


def test_classes_without_clips_do_not_count_in_uar_or_macro_f1():
    # A corpus without the third class (as ASED lacks calm, disgust, surprised): its recall of 0
    # is not a failure of the model, so the averages cover the classes the clips have.
    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 2, 1, 1])
    report = classification_report(labels, predictions, names=["a", "b", "c"])
    assert report["uar"] == pytest.approx((1 / 2 + 1) / 2)
    assert report["per_class"]["c"]["support"] == 0
    assert 0.0 <= report["macro_f1"] <= 1.0


LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
FIVE = ("neutral", "happy", "sad", "angry", "fearful")


def _clip_set(seed: int, *, refused: int = 0):
    """Seeded probabilities (n, 8), true emotions of ``FIVE`` and a few speakers of uneven size."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 300))
    truth = rng.choice(FIVE, size=n)
    speakers = rng.choice([f"s{k}" for k in range(int(rng.integers(1, 12)))], size=n)
    logits = rng.normal(0.0, 1.5, (n, len(LABELS)))
    logits[np.arange(n), [LABELS.index(name) for name in truth]] += rng.uniform(0.0, 2.0, n)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities[rng.choice(n, size=refused, replace=False)] = np.nan
    return probabilities, truth, speakers


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("space", [LABELS, FIVE, ("sad", "angry")])
def test_clip_set_scores_properties(seed, space):
    probabilities, truth, speakers = _clip_set(seed, refused=seed % 3)
    scores = clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS, answer_space=space,
                             threshold=0.4)
    assert scores.answered + scores.refused == scores.clips == len(truth) and scores.refused == seed % 3
    assert 0 <= scores.accuracy <= 1 and 0 <= scores.uar <= 1 and 0 <= scores.ece_15_bins <= 1
    assert list(scores.answer_share) == [name for name in LABELS if name in space]  # only the given emotions
    assert sum(scores.answer_share.values()) == pytest.approx(1.0)
    assert set(scores.recall) == set(truth.tolist()) and sum(scores.support.values()) == scores.answered
    spread = scores.speaker_accuracy
    assert 0 <= spread.min <= spread.median <= spread.max <= 1
    assert sum(speaker.n for speaker in scores.per_speaker) == scores.answered
    assert spread.fewest_clips == min(speaker.n for speaker in scores.per_speaker)
    weighted = sum(speaker.n * speaker.accuracy for speaker in scores.per_speaker) / scores.answered
    assert scores.accuracy == pytest.approx(weighted)
    assert 0 <= scores.sure_share <= 1
    # The typed result survives its JSON round trip (it is stored in corpus_check.json).
    assert from_json(ClipSetScores, json.loads(json.dumps(to_json(scores))), source="t", command="c") == scores


def test_restricting_can_only_help_and_a_collapse_shows_as_a_share_of_one():
    probabilities, truth, speakers = _clip_set(0)
    everything = clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS)
    within = clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS, answer_space=FIVE)
    assert within.accuracy >= everything.accuracy and everything.answer_space == list(LABELS)
    assert everything.sure_share is None and everything.wrong_when_sure is None  # no threshold given
    collapsed = np.tile(np.eye(len(LABELS))[LABELS.index("sad")] * 0.9 + 0.1 / len(LABELS), (len(truth), 1))
    scores = clip_set_scores(collapsed, truth=truth, speakers=speakers, labels=LABELS, answer_space=FIVE)
    assert scores.answer_share["sad"] == 1.0 and scores.recall["sad"] == 1.0
    assert scores.accuracy == pytest.approx(np.mean(truth == "sad"))
    assert scores.uar == pytest.approx(1 / len(set(truth.tolist())))


@pytest.mark.parametrize("change, message", [
    (lambda p, t, s: (p, t[:-1], s), "one entry per clip"),
    (lambda p, t, s: (p, t, s[1:]), "one entry per clip"),
    (lambda p, t, s: (p[:, :5], t, s), "label order"),
    (lambda p, t, s: (p, np.where(t == "sad", "bored", t), s), "name each clip's emotion as one of"),
    (lambda p, t, s: (np.full_like(p, np.nan), t, s), "score a set with an answered clip"),
])
def test_clip_set_scores_bad_input_says_what_to_do(change, message):
    probabilities, truth, speakers = change(*_clip_set(1))
    with pytest.raises(ValueError, match=message):
        clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS)


def test_clip_set_scores_refuses_an_unknown_answer_space_or_threshold():
    probabilities, truth, speakers = _clip_set(2)
    with pytest.raises(ValueError, match="answer_space must be some of the labels"):
        clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS, answer_space=["bored"])
    with pytest.raises(ValueError, match="threshold must be a probability"):
        clip_set_scores(probabilities, truth=truth, speakers=speakers, labels=LABELS, threshold=46.5)
