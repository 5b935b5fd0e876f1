"""Judge the recipe on speakers it never heard, and on a leaky split for comparison.

:func:`summarize_cross_validation` pools the out-of-fold predictions of
:func:`ser.training.cross_validation.cross_validate` into what ``python -m ser train`` writes to
``models/metrics.json``. ``python -m ser evaluate --data ../shared/data/ravdess --out models/
--baselines`` writes ``models/evaluation.json``: :func:`leaky_random_split` (the same recipe under a
random clip-level 80/20 split, stored and labelled as *leaky*: the same actors, even the same
sentences, on both sides, so the app can show how much such splits inflate results) and the seed
projects' baselines.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from ser.config import FeatureConfig
from ser.reporting.metrics import (
    apply_temperature,
    choose_confidence_threshold,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from ser.reporting.results import (
    ActorScore,
    Calibration,
    ChosenC,
    ClassScores,
    ConfusionMatrix,
    CrossValidationSummary,
    DataCounts,
    FoldScore,
    LeakySplit,
    LearningCurve,
    Reliability,
    Spread,
    ViewScores,
)
from ser.training.clips import ClipSet
from ser.training.cnn import fit_cnn, predict_clips
from ser.training.cross_validation import CrossValidationRun
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
from ser.training.settings import TrainSettings
from ser.training.views import fit_views

PROTOCOL = (
    "Speech clips of RAVDESS actors 1-20, 8 emotions. 5-fold cross-validation grouped by "
    "actor (4 actors per test fold, 2 male and 2 female); in each fold 4 other actors are "
    "the validation set for early stopping and calibration, the remaining 12 (with their "
    "song clips) the training set. Augmentation only on training batches. Every clip is "
    "scored once, by the model that never heard its speaker."
)
#: Added when the model has the functional views.
FUNCTIONAL_PROTOCOL = (
    " The functional view's L2 strength is chosen on the validation actors by a fit on the "
    "12 training actors, then it is refitted on training + validation actors (speech only); "
    "the test actors are never used for either."
)
REFIT_PROTOCOL = (
    " The CNN, once early-stopped on the validation actors, is trained again on training + "
    "validation actors with the same learning-rate schedule up to its best epoch; that model "
    "is scored on the test actors (validation probabilities, for calibration, come from the "
    "early-stopped one)."
)
HEADLINE_PROTOCOL = "5-fold cross-validation grouped by actor, RAVDESS speech, actors 1-20, 8 emotions"
LEAKY_PROTOCOL = (
    "LEAKY: random 80/20 split of speech clips regardless of actor (the same speakers and "
    "sentences on both sides, as many published RAVDESS projects do). Shown only to measure "
    "how much such splits inflate results; never a figure for unseen speakers. As in the honest "
    "recipe, the CNN is trained again on training + validation clips up to its best epoch."
)


def _scores(truth: np.ndarray, predictions: np.ndarray) -> ViewScores:
    report = classification_report(truth, predictions, names=list(EMOTIONS))
    return ViewScores(accuracy=report["accuracy"], uar=report["uar"], macro_f1=report["macro_f1"])


def _calibration(
    probabilities: np.ndarray, truth: np.ndarray, validation: np.ndarray, validation_truth: np.ndarray
) -> tuple[Calibration, np.ndarray]:
    """Temperature and "not sure" threshold fitted on the validation clips, judged on the test clips.

    Returns the calibration record and the calibrated test probabilities ``(n_clips, n_emotions)``.
    """
    temperature = fit_temperature(validation, validation_truth)
    calibrated = apply_temperature(probabilities, temperature=temperature)
    threshold = choose_confidence_threshold(
        apply_temperature(validation, temperature=temperature), validation_truth, n_classes=len(EMOTIONS)
    )
    sure = calibrated.max(axis=1) >= threshold
    predictions = calibrated.argmax(axis=1)
    before, after = (reliability_curve(p, truth) for p in (probabilities, calibrated))
    record = Calibration(
        method="temperature scaling fitted on the validation speakers of each fold",
        temperature=temperature,
        ece_15_bins_before=expected_calibration_error(probabilities, truth),
        ece_15_bins_after=expected_calibration_error(calibrated, truth),
        confidence_threshold=threshold,
        threshold_rule=(
            "lowest confidence whose answers (0.1-wide band, validation speakers) "
            "are right at least half of the time (4x chance)"
        ),
        coverage_above_threshold=float(sure.mean()),
        accuracy_above_threshold=float(np.mean(predictions[sure] == truth[sure])) if sure.any() else None,
        reliability_before=Reliability(**before),
        reliability_after=Reliability(**after),
    )
    return record, calibrated


def restrict(probabilities: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Probabilities renormalised over each clip's allowed emotions (``allowed``: bool, the same
    shape; None keeps all eight): an emotion a clip's corpus lacks can then be neither its answer
    nor counted as a wrong one. Temperature scaling commutes with this (it is the masked loss)."""
    if allowed is None:
        return probabilities
    kept = np.where(allowed, probabilities, 0.0)
    return kept / np.maximum(kept.sum(axis=1, keepdims=True), 1e-12)


def _known_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float | None:
    known = labels >= 0  # -1: unknown in this clip's corpus
    return float(np.mean(probabilities[known].argmax(1) == labels[known])) if known.any() else None


def summarize_cross_validation(
    clips: ClipSet, run: CrossValidationRun, *, scope: np.ndarray | None = None, protocol: str | None = None
) -> CrossValidationSummary:
    """Pool the out-of-fold predictions into the metrics the app and model card show.

    Parameters
    ----------
    scope : np.ndarray of bool, shape (len(clips),), optional
        The test clips the summary counts (a multi-corpus run: RAVDESS's, for the headline);
        all by default. Calibration is fitted on every single-labelled validation clip, whatever the scope.
    protocol : str, optional
        Replaces the RAVDESS protocol text (a multi-corpus run says its own).

    For clips of several corpora (``clips.masked``) every probability is first restricted to the
    clip's corpus's emotions (:func:`restrict`); RAVDESS clips have all eight, so they are unchanged.

    Raises
    ------
    ValueError
        When ``scope`` holds a clip with a partial label (no single emotion to confuse it with):
        leave those out of the scope; their corpus's own summary scores them
        (:func:`ser.training.corpus_summary.summarize_corpora`).
    """
    positions = np.concatenate([fold.test_positions for fold in run.folds])
    keep = np.ones(len(positions), dtype=bool) if scope is None else scope[positions]
    if (clips.emotion[positions][keep] < 0).any():
        raise ValueError("the scope holds clips with a partial label, which have no single emotion for a confusion "
                         "matrix; pass a scope of single-labelled clips (summarize_corpora does)")
    allowed = None if clips.class_mask is None else clips.class_mask[positions][keep]
    validation_positions = np.concatenate([fold.validation_positions for fold in run.folds])
    # Temperature and threshold are fitted on single labels: both weigh the probability of the one
    # right answer, which a partial label ("neutral or calm") does not name.
    validation_rows = clips.emotion[validation_positions] >= 0
    validation_positions = validation_positions[validation_rows]
    probabilities = {
        head: np.concatenate([fold.test_probabilities[head] for fold in run.folds])[keep]
        for head in ("emotion", "gender", "intensity")
    }
    probabilities["emotion"] = restrict(probabilities["emotion"], allowed)
    positions = positions[keep]
    truth = clips.emotion[positions]
    calibration, calibrated = _calibration(
        probabilities["emotion"], truth,
        restrict(np.concatenate([fold.validation_probabilities["emotion"] for fold in run.folds])[validation_rows],
                 None if clips.class_mask is None else clips.class_mask[validation_positions]),
        clips.emotion[validation_positions],
    )
    predictions = calibrated.argmax(axis=1)
    report = classification_report(truth, predictions, names=list(EMOTIONS))

    per_actor = []
    for actor in sorted(set(clips.actor[positions].tolist())):
        mine = clips.actor[positions] == actor
        if clips.speakers is None:
            gender, speaker = GENDERS[0] if actor % 2 else GENDERS[1], None
        else:
            code = int(clips.gender[positions][mine][0])
            gender, speaker = GENDERS[code] if code >= 0 else "unknown", clips.speakers[actor - 1]
        per_actor.append(
            ActorScore(actor=int(actor), gender=gender, n=int(mine.sum()),
                       accuracy=float(np.mean(predictions[mine] == truth[mine])), speaker=speaker)
        )
    per_fold, start, offset = [], 0, 0
    for fold in run.folds:
        stop = start + int(keep[offset : offset + len(fold.test_positions)].sum())
        offset += len(fold.test_positions)
        scores = _scores(truth[start:stop], predictions[start:stop])
        per_fold.append(
            FoldScore(fold=fold.fold, train=list(fold.train_actors), validation=list(fold.validation_actors),
                      test=list(fold.test_actors), accuracy=scores.accuracy, uar=scores.uar,
                      epochs=len(fold.history["loss"]), refit_epochs=fold.refit_epochs, seconds=round(fold.seconds, 1))
        )
        start = stop
    actor_accuracies = np.array([row.accuracy for row in per_actor])
    view_names = list(run.folds[0].view_probabilities)
    views: dict[str, ViewScores] = {}
    if len(view_names) > 1:
        pooled = {name: restrict(np.concatenate([fold.view_probabilities[name] for fold in run.folds])[keep], allowed)
                  for name in view_names}
        views = {name: _scores(truth, values.argmax(axis=1)) for name, values in pooled.items()}
        views["fused"] = ViewScores(accuracy=report["accuracy"], uar=report["uar"], macro_f1=report["macro_f1"])
        # The fusion it replaced, for the record: the plain average of the views' clip probabilities.
        views["averaged"] = _scores(truth, np.mean(list(pooled.values()), axis=0).argmax(axis=1))

    def chosen(name: str) -> list[ChosenC]:
        fits = [(fold.fold, fold.view(name)) for fold in run.folds if fold.view(name) is not None]
        return [ChosenC(fold=number, chosen=fit.c, validation_accuracy=fit.validation_accuracy) for number, fit in fits]

    default_protocol = PROTOCOL + (FUNCTIONAL_PROTOCOL if views else "") + REFIT_PROTOCOL
    return CrossValidationSummary(
        n=report["n"],
        accuracy=report["accuracy"],
        uar=report["uar"],
        macro_f1=report["macro_f1"],
        per_class={name: ClassScores(**row) for name, row in report["per_class"].items()},
        confusion_matrix=ConfusionMatrix(**report["confusion_matrix"]),
        views=views,
        functional_c=chosen("functionals"),
        voicing_c=chosen("voicing"),
        protocol=default_protocol if protocol is None else protocol,
        gender_accuracy=_known_accuracy(probabilities["gender"], clips.gender[positions]),
        intensity_accuracy=_known_accuracy(probabilities["intensity"], clips.intensity[positions]),
        per_actor=per_actor,
        per_actor_spread=Spread(min=float(actor_accuracies.min()), max=float(actor_accuracies.max()),
                                std=float(actor_accuracies.std())),
        per_fold=per_fold,
        curves=[LearningCurve(fold=fold.fold, history=fold.history) for fold in run.folds],
        calibration=calibration,
    )


def leaky_random_split(
    clips: ClipSet, *, speech_mask: np.ndarray, config: FeatureConfig, settings: TrainSettings
) -> LeakySplit:
    """Train the same recipe on a random clip-level 80/20 split of speech (leaky on purpose)."""
    rng = np.random.default_rng(settings.seed)
    shuffled = rng.permutation(np.flatnonzero(speech_mask))
    n_test = len(shuffled) // 5
    test, rest = shuffled[:n_test], shuffled[n_test:]
    validation, train = rest[: len(rest) // 10], rest[len(rest) // 10 :]
    train = np.concatenate([train, np.flatnonzero(~speech_mask)])  # as the honest recipe: song clips too
    positions = np.arange(len(clips))
    train_mask, validation_mask, test_mask = (np.isin(positions, part) for part in (train, validation, test))
    started = time.perf_counter()
    # As the honest recipe: early-stopped, then trained again on training + validation clips.
    _, model, history, refit_epochs = fit_cnn(
        clips.subset(train_mask),
        clips.subset(validation_mask),
        refit_on=clips.subset(train_mask | validation_mask),
        config=config,
        settings=settings,
        seed=settings.seed,
    )
    views = fit_views(clips, train_mask=train_mask, validation_mask=validation_mask, test_mask=test_mask,
                      speech_mask=speech_mask, settings=settings)
    test_clips = clips.subset(test_mask)
    # subset() keeps positions in ascending order, so the labels must come from the mask too.
    truth = clips.emotion[test_mask]
    cnn_alone = predict_clips(model, test_clips, config=config)["emotion"]
    fused = predict_clips(
        model, test_clips, config=config, functional_probabilities=[view.test_probabilities for view in views]
    )["emotion"]
    # Several corpora: each clip answered within its corpus's emotions (restrict is a no-op otherwise);
    # clips with a partial label have no single emotion to score against and are left out.
    allowed = None if clips.class_mask is None else clips.class_mask[test_mask]
    single = truth >= 0
    allowed, truth = (None if allowed is None else allowed[single]), truth[single]
    scores = _scores(truth, restrict(fused[single], allowed).argmax(1))
    view_accuracy = {}
    if views:
        alone = {"log_mel_cnn": cnn_alone, **{view.name: view.test_probabilities["emotion"] for view in views}}
        view_accuracy = {name: float(np.mean(restrict(p[single], allowed).argmax(1) == truth))
                         for name, p in alone.items()}
    return LeakySplit(
        protocol=LEAKY_PROTOCOL,
        accuracy=scores.accuracy,
        uar=scores.uar,
        macro_f1=scores.macro_f1,
        n_test=int(n_test),
        epochs=len(history["loss"]),
        refit_epochs=refit_epochs,
        seconds=round(time.perf_counter() - started, 1),
        view_accuracy=view_accuracy,
    )


def data_counts(index: pd.DataFrame) -> DataCounts:
    """Clip counts per vocal channel and emotion (for the Model and Dataset pages) of a RAVDESS
    index (:func:`ser.training.data.index_dataset`) or a corpus table (several corpora)."""
    def per_emotion(channel: str) -> dict[str, int]:
        group = index[index["vocal_channel"] == channel]
        return {emotion: int((group["emotion"] == emotion).sum()) for emotion in EMOTIONS}

    if "actor" in index:
        actors = sorted(int(actor) for actor in index["actor"].unique())
    else:  # a corpus table (several corpora): the speaker codes of ser.training.clips.build_corpus_clip_set
        actors = list(range(1, index["speaker"].nunique() + 1))
    speech = index[index["vocal_channel"] == "speech"]
    partial = speech["emotion"][~speech["emotion"].isin(EMOTIONS)].value_counts()  # "neutral or calm", ...
    return DataCounts(
        actors=actors,
        song_clips=int((index["vocal_channel"] == "song").sum()),
        song_per_emotion=per_emotion("song"),
        speech_clips=len(speech),
        speech_per_emotion=per_emotion("speech"),
        intensity_labels=list(INTENSITIES),
        speech_per_partial_label={str(label): int(count) for label, count in sorted(partial.items())} or None,
    )
