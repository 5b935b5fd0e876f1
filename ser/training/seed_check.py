"""How much does the headline move with another training seed?

Retrains only each fold's refitted CNN (the step that is random) with seed ``fold + offset``,
replaying the learning-rate schedule stored in ``models/metrics.json`` (same folds, same training +
validation actors), keeps the shipped bundle's functional and voice-source members, fuses window by
window as training does, and scores the test actors of each fold. ``python -m ser seed-check``
(:mod:`ser.checks_cli`) writes ``models/seed_check.json``
(:class:`ser.reporting.results.SeedCheckResults`; the model card and README show it while it
describes the shipped ``model.keras``). About 12 minutes here, features from the training cache::

    python -m ser seed-check --data ../shared/data/ravdess --out models/ --offset 100
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ser.reporting.metrics import classification_report
from ser.reporting.results import TrainingResults
from ser.training.cnn import average_windows, fit_fold, predict_windows, refit_schedule
from ser.training.settings import TrainSettings
from ser.training.views import predict_functionals


def retrained_scores(clips: Any, *, speech: np.ndarray, bundle: Any, training: TrainingResults, offset: int,
                     log: Callable[[str], None]) -> dict[str, float]:
    """Each fold's CNN retrained with seed ``fold + offset``, alone and fused with the shipped linear views.

    Parameters
    ----------
    clips : ser.training.clips.ClipSet
        RAVDESS as ``python -m ser train`` loads it.
    speech : numpy.ndarray
        True for the speech clips (the scored ones).
    bundle : ser.serving.bundle.Bundle
        The shipped bundle: its ``functional_F`` and (when it has them) ``voicing_F`` members are kept.
    training : TrainingResults
        ``metrics.json`` of that bundle: its settings, folds and learning curves.
    offset : int
        The CNN of fold F is trained with seed ``settings.seed + F + offset`` (shipped: offset 0).

    Returns
    -------
    dict
        ``cnn_accuracy``, ``fused_accuracy`` and ``fused_uar`` over every fold's test clips.
    """
    from ser.training.clips import training_mask

    settings = TrainSettings.from_dict(training.training.settings)
    config = bundle.config
    names = {layer.name for layer in bundle.model.layers}
    truth, cnn_guess, fused_guess = [], [], []
    cv = training.cross_validation
    for split, curve in zip(cv.per_fold, cv.curves, strict=True):
        fold = split.fold
        refit_mask = training_mask(clips, actors=split.train + split.validation)
        test = clips.subset(np.isin(clips.actor, split.test) & speech)
        model, _ = fit_fold(clips.subset(refit_mask), None, config=config, settings=settings,
                            seed=settings.seed + fold + offset, schedule=refit_schedule(curve.history))
        windows = predict_windows(model, test, config=config)
        views = [predict_functionals(bundle.model.get_layer(f"{prefix}_{fold}"), test)
                 for prefix in ("functional", "voicing") if f"{prefix}_{fold}" in names]  # voicing: when trained
        cnn = average_windows(*windows, n_clips=len(test))["emotion"]
        fused = average_windows(*windows, n_clips=len(test), functional_probabilities=views)["emotion"]
        truth.append(test.emotion)
        cnn_guess.append(cnn.argmax(1))
        fused_guess.append(fused.argmax(1))
        cnn_accuracy, fused_accuracy = (np.mean(guess[-1] == truth[-1]) for guess in (cnn_guess, fused_guess))
        log(f"fold {fold}: CNN {cnn_accuracy:.3f} fused {fused_accuracy:.3f}")
    every = np.concatenate(truth)
    cnn_report = classification_report(every, np.concatenate(cnn_guess), names=training.labels)
    fused_report = classification_report(every, np.concatenate(fused_guess), names=training.labels)
    return {"cnn_accuracy": cnn_report["accuracy"], "fused_accuracy": fused_report["accuracy"],
            "fused_uar": fused_report["uar"]}
