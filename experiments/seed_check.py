"""How much does the headline move with another training seed? (Research check, ~12 min here.)

Retrains only each fold's refitted CNN (the step that is random) with seed ``fold + offset``,
replaying the learning-rate schedule stored in ``models/metrics.json`` (same folds, same
training + validation actors), keeps the shipped bundle's functional and voice-source members,
fuses window by window as training does, and scores the test actors of each fold. Writes
``models/seed_check.json`` (:class:`ser.reporting.results.SeedCheckResults`; the model card and
README show it while it describes the shipped ``model.keras``). From the repository root:

    python -m experiments.seed_check --data ../shared/data/ravdess --offset 100

Needs the RAVDESS folder; features come from the training cache (``.cache/features``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ser.reporting.metrics import classification_report
from ser.reporting.provenance import model_sha256, package_versions, utc_now
from ser.reporting.results import FILES, SCHEMAS, SEED_CHECK_COMMAND, SeedCheckResults, load_training
from ser.reporting.schema import write_results
from ser.serving.bundle import load_bundle
from ser.training.clips import build_clip_set, training_mask
from ser.training.cnn import average_windows, fit_fold, predict_windows, refit_schedule
from ser.training.data import index_dataset
from ser.training.settings import TrainSettings
from ser.training.views import predict_functionals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/features"))
    parser.add_argument("--offset", type=int, default=100, help="CNN seed = fold + offset (shipped: fold + 0)")
    args = parser.parse_args()
    training = load_training(args.models / "metrics.json")
    settings = TrainSettings.from_dict(training.training.settings)
    bundle = load_bundle(args.models)
    config = bundle.config
    index = index_dataset(args.data)
    clips = build_clip_set(index, config=config, cache_dir=args.cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    truth, cnn_guess, fused_guess = [], [], []
    cv = training.cross_validation
    for split, curve in zip(cv.per_fold, cv.curves, strict=True):
        fold = split.fold
        refit_mask = training_mask(clips, actors=split.train + split.validation)
        test = clips.subset(np.isin(clips.actor, split.test) & speech)
        model, _ = fit_fold(clips.subset(refit_mask), None, config=config, settings=settings,
                            seed=settings.seed + fold + args.offset, schedule=refit_schedule(curve.history))
        windows = predict_windows(model, test, config=config)
        views = [predict_functionals(bundle.model.get_layer(f"{prefix}_{fold}"), test)
                 for prefix in ("functional", "voicing")]
        cnn = average_windows(*windows, n_clips=len(test))["emotion"]
        fused = average_windows(*windows, n_clips=len(test), functional_probabilities=views)["emotion"]
        truth.append(test.emotion)
        cnn_guess.append(cnn.argmax(1))
        fused_guess.append(fused.argmax(1))
        cnn_accuracy, fused_accuracy = (np.mean(guess[-1] == truth[-1]) for guess in (cnn_guess, fused_guess))
        print(f"fold {fold}: CNN {cnn_accuracy:.3f} fused {fused_accuracy:.3f}", flush=True)
    truth = np.concatenate(truth)
    cnn_report = classification_report(truth, np.concatenate(cnn_guess), names=training.labels)
    fused_report = classification_report(truth, np.concatenate(fused_guess), names=training.labels)
    results = SeedCheckResults(
        schema=SCHEMAS[SeedCheckResults],
        model_sha256=model_sha256(args.models / "model.keras"),
        measured=utc_now(),
        command=SEED_CHECK_COMMAND.replace("--offset 100", f"--offset {args.offset}"),
        versions=package_versions(),
        what=f"each fold's refitted CNN trained again with seed fold + {args.offset} "
             "(same folds, schedules and linear views)",
        offset=args.offset,
        cnn_accuracy=cnn_report["accuracy"],
        fused_accuracy=fused_report["accuracy"],
        fused_uar=fused_report["uar"],
    )
    write_results(args.models / FILES[SeedCheckResults][0], results)
    print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
