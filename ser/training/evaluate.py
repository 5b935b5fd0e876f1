"""Judge models on speakers they never heard, and write ``models/metrics.json``.

Run ``python -m ser evaluate --data ../shared/data/ravdess --out models/``. It runs the
speaker-grouped cross-validation of the shipped architecture (unless ``train`` already
stored it and ``--reuse`` is given), the same recipe under a random clip-level 80/20
split, stored and labelled as *leaky* (the same actors, even the same sentences, on
both sides), so the app can show how much such splits inflate results.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from ser.reporting.metrics import (
    apply_temperature,
    choose_confidence_threshold,
    classification_report,
    expected_calibration_error,
    fit_temperature,
    reliability_curve,
)
from ser.training.cross_validation import (
    ClipSet,
    TrainSettings,
    fit_cnn,
    fit_functional_view,
    predict_clips,
    predict_functionals,
    voicing_view_columns,
)
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES

PROTOCOL = (
    "Speech clips of RAVDESS actors 1-20, 8 emotions. 5-fold cross-validation grouped by "
    "actor (4 actors per test fold, 2 male and 2 female); in each fold 4 other actors are "
    "the validation set for early stopping and calibration, the remaining 12 (with their "
    "song clips) the training set. Augmentation only on training batches. Every clip is "
    "scored once, by the model that never heard its speaker."
)
#: Added when the model has the functional view (``cross_validation.views`` present).
FUNCTIONAL_PROTOCOL = (
    " The functional view's L2 strength is chosen on the validation actors by a fit on the "
    "12 training actors, then it is refitted on training + validation actors (speech only); "
    "the test actors are never used for either."
)
#: Added when the CNN that ships was refitted on training + validation actors (``refit_cnn``).
REFIT_PROTOCOL = (
    " The CNN, once early-stopped on the validation actors, is trained again on training + "
    "validation actors with the same learning-rate schedule up to its best epoch; that model "
    "is scored on the test actors (validation probabilities, for calibration, come from the "
    "early-stopped one)."
)
LEAKY_PROTOCOL = (
    "LEAKY: random 80/20 split of speech clips regardless of actor (the same speakers and "
    "sentences on both sides, as many published RAVDESS projects do). Shown only to measure "
    "how much such splits inflate results; never a figure for unseen speakers."
)


def summarize_cross_validation(clips: ClipSet, index: pd.DataFrame, result: dict[str, Any]) -> dict[str, Any]:
    """Pool the out-of-fold predictions into the metrics the app and model card show."""
    positions = np.concatenate(result["test_positions"])
    probabilities = {
        head: np.concatenate([p[head] for p in result["test_probabilities"]])
        for head in ("emotion", "gender", "intensity")
    }
    emotion_true = clips.emotion[positions]
    val_positions = np.concatenate(result["val_positions"])
    val_emotion = np.concatenate([p["emotion"] for p in result["val_probabilities"]])
    temperature = fit_temperature(val_emotion, clips.emotion[val_positions])
    calibrated = apply_temperature(probabilities["emotion"], temperature=temperature)
    threshold = choose_confidence_threshold(
        apply_temperature(val_emotion, temperature=temperature), clips.emotion[val_positions], n_classes=len(EMOTIONS)
    )
    predictions = calibrated.argmax(axis=1)
    report = classification_report(emotion_true, predictions, names=list(EMOTIONS))

    per_actor = []
    for actor in sorted(set(clips.actor[positions].tolist())):
        mine = clips.actor[positions] == actor
        per_actor.append(
            {
                "actor": int(actor),
                "gender": GENDERS[0] if actor % 2 else GENDERS[1],
                "n": int(mine.sum()),
                "accuracy": float(np.mean(predictions[mine] == emotion_true[mine])),
            }
        )
    per_fold = []
    start = 0
    refit_epochs = result.get("refit_epochs") or [None] * len(result["splits"])
    for split, history, seconds, fold_positions, refit in zip(
        result["splits"], result["histories"], result["seconds"], result["test_positions"], refit_epochs, strict=True
    ):
        stop = start + len(fold_positions)
        fold_report = classification_report(emotion_true[start:stop], predictions[start:stop], names=list(EMOTIONS))
        per_fold.append(
            {
                **split,
                "accuracy": fold_report["accuracy"],
                "uar": fold_report["uar"],
                "epochs": len(history["loss"]),
                **({"refit_epochs": refit} if refit is not None else {}),
                "seconds": round(seconds, 1),
            }
        )
        start = stop
    actor_accuracies = np.array([row["accuracy"] for row in per_actor])
    sure = calibrated.max(axis=1) >= threshold
    views = {}
    view_names = list(result["view_probabilities"][0]) if result.get("view_probabilities") else []
    for view in view_names:
        view_predictions = np.concatenate([p[view] for p in result["view_probabilities"]]).argmax(axis=1)
        view_report = classification_report(emotion_true, view_predictions, names=list(EMOTIONS))
        views[view] = {key: view_report[key] for key in ("accuracy", "uar", "macro_f1")}
    extra = {}
    if len(views) > 1:
        views["fused"] = {"accuracy": report["accuracy"], "uar": report["uar"], "macro_f1": report["macro_f1"]}
        # The fusion it replaced, for the record: the plain average of the views' clip probabilities.
        averaged = np.mean(
            [np.concatenate([p[view] for p in result["view_probabilities"]]) for view in view_names], axis=0
        ).argmax(axis=1)
        averaged_report = classification_report(emotion_true, averaged, names=list(EMOTIONS))
        views["averaged"] = {key: averaged_report[key] for key in ("accuracy", "uar", "macro_f1")}
        extra = {"views": views, "functional_c": result.get("functional_c", [])}
        if result.get("voicing_c"):
            extra["voicing_c"] = result["voicing_c"]
    return {
        **report,
        **extra,
        "protocol": PROTOCOL
        + (FUNCTIONAL_PROTOCOL if extra else "")
        + (REFIT_PROTOCOL if result.get("refit_epochs") else ""),
        "gender_accuracy": float(np.mean(probabilities["gender"].argmax(1) == clips.gender[positions])),
        "intensity_accuracy": float(np.mean(probabilities["intensity"].argmax(1) == clips.intensity[positions])),
        "per_actor": per_actor,
        "per_actor_spread": {
            "min": float(actor_accuracies.min()),
            "max": float(actor_accuracies.max()),
            "std": float(actor_accuracies.std()),
        },
        "per_fold": per_fold,
        "curves": [
            {"fold": split["fold"], **history}
            for split, history in zip(result["splits"], result["histories"], strict=True)
        ],
        "calibration": {
            "method": "temperature scaling fitted on the validation speakers of each fold",
            "temperature": temperature,
            "ece_15_bins_before": expected_calibration_error(probabilities["emotion"], emotion_true),
            "ece_15_bins_after": expected_calibration_error(calibrated, emotion_true),
            "confidence_threshold": threshold,
            "threshold_rule": (
                "lowest confidence whose answers (0.1-wide band, validation speakers) "
                "are right at least half of the time (4x chance)"
            ),
            "coverage_above_threshold": float(sure.mean()),
            "accuracy_above_threshold": float(np.mean(predictions[sure] == emotion_true[sure])) if sure.any() else None,
            "reliability_before": reliability_curve(probabilities["emotion"], emotion_true),
            "reliability_after": reliability_curve(calibrated, emotion_true),
        },
    }


def leaky_random_split(clips: ClipSet, *, speech_mask: np.ndarray, config, settings: TrainSettings) -> dict[str, Any]:
    """Train the same recipe on a random clip-level 80/20 split of speech (leaky on purpose)."""
    rng = np.random.default_rng(settings.seed)
    shuffled = rng.permutation(np.flatnonzero(speech_mask))
    n_test = len(shuffled) // 5
    test, rest = shuffled[:n_test], shuffled[n_test:]
    validation, train = rest[: len(rest) // 10], rest[len(rest) // 10 :]
    if settings.use_song:  # the same training data as the honest recipe: song clips too
        train = np.concatenate([train, np.flatnonzero(~speech_mask)])
    positions = np.arange(len(clips))
    train_mask, validation_mask, test_mask = (np.isin(positions, part) for part in (train, validation, test))
    started = time.perf_counter()
    # As the honest recipe: with refit_cnn, trained again on training + validation clips.
    _, model, history, refit_epochs = fit_cnn(
        clips.subset(train_mask),
        clips.subset(validation_mask),
        refit_on=clips.subset(train_mask | validation_mask),
        config=config,
        settings=settings,
        seed=settings.seed,
    )
    # subset() keeps positions in ascending order, so the labels must come from the mask too.
    probabilities = predict_clips(model, clips.subset(test_mask), config=config)["emotion"]
    views = {"log_mel_cnn": probabilities}
    if clips.functionals is not None:  # the shipped recipe's second view, fitted the same way
        functional, _, _, _ = fit_functional_view(
            clips, train_mask=train_mask & speech_mask, validation_mask=validation_mask, settings=settings
        )
        functional_test = predict_functionals(functional, clips.subset(test_mask))
        views["functionals"] = functional_test["emotion"]
        clip_views = [functional_test]
        voicing = voicing_view_columns(clips, settings=settings)
        if voicing is not None:
            voicing_model, _, _, _ = fit_functional_view(
                clips, train_mask=train_mask & speech_mask, validation_mask=validation_mask, settings=settings,
                columns=voicing, grid=settings.voicing_c_grid,
            )
            clip_views.append(predict_functionals(voicing_model, clips.subset(test_mask)))
            views["voicing"] = clip_views[-1]["emotion"]
        probabilities = predict_clips(
            model, clips.subset(test_mask), config=config, functional_probabilities=clip_views
        )["emotion"]
    report = classification_report(clips.emotion[test_mask], probabilities.argmax(1), names=list(EMOTIONS))
    extra = {}
    if len(views) > 1:
        extra["views"] = {
            view: {"accuracy": float(np.mean(p.argmax(1) == clips.emotion[test_mask]))} for view, p in views.items()
        }
    return {
        **extra,
        "leaky": True,
        "protocol": LEAKY_PROTOCOL
        + (" As in the honest recipe, the CNN is trained again on training + validation clips up to its "
           "best epoch." if refit_epochs else ""),
        "accuracy": report["accuracy"],
        "uar": report["uar"],
        "macro_f1": report["macro_f1"],
        "n_test": int(n_test),
        "epochs": len(history["loss"]),
        **({"refit_epochs": refit_epochs} if refit_epochs else {}),
        "seconds": round(time.perf_counter() - started, 1),
    }


def data_counts(index: pd.DataFrame) -> dict[str, Any]:
    """Clip counts per vocal channel and emotion (for the Model and Dataset pages)."""
    counts: dict[str, Any] = {"actors": sorted(int(a) for a in index["actor"].unique())}
    for channel, group in index.groupby("vocal_channel"):
        counts[f"{channel}_clips"] = int(len(group))
        counts[f"{channel}_per_emotion"] = {e: int((group["emotion"] == e).sum()) for e in EMOTIONS}
    counts["intensity_labels"] = list(INTENSITIES)
    return counts


def settings_dict(settings: TrainSettings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def budget(metrics: dict[str, Any], *, bench_results: Any | None) -> dict[str, Any]:
    """The three budgets of the shipped model: bundle size, retrain time, clip latency.

    Size and retrain time come from the training run recorded in ``metrics``; latency from
    ``bench/results.json`` (``make bench``) when it exists, with the load it was measured under.
    """
    training = metrics.get("training", {})
    result: dict[str, Any] = {
        "bundle_mb": round(training.get("bundle_bytes", 0) / 1e6, 2),
        "bundle_mb_target": 25,
        "retrain_minutes": round(training.get("wall_seconds", 0) / 60, 1),
        "retrain_minutes_target": 45,
        "clip_4s_median_ms_target": 60,
    }
    if bench_results:
        clip = bench_results.get("results", {}).get("clip", {})
        result.update(
            {
                "clip_4s_median_ms": clip.get("median_ms"),
                "clip_4s_min_ms": clip.get("min_ms"),
                "latency_measured": bench_results.get("generated"),
                "latency_load_average": bench_results.get("machine", {}).get("load_average_at_start"),
                "latency_model": bench_results.get("bundle", {}),
            }
        )
    return result
