"""How much does the headline move with another training seed? (Research check, ~12 min here.)

Retrains only each fold's refitted CNN (the step that is random) with seed ``fold + offset``,
replaying the learning-rate schedule stored in ``models/metrics.json`` (same folds, same
training + validation actors), keeps the shipped bundle's functional and voice-source members,
fuses window by window as training does, and scores the test actors of each fold. Writes the
result into ``models/metrics.json`` under ``seed_check`` (the model card and README show it).

    python experiments/seed_check.py --data ../shared/data/ravdess --offset 100

Needs the RAVDESS folder; features come from the training cache (``.cache/features``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ser.config import read_json, write_json  # noqa: E402
from ser.reporting.metrics import classification_report  # noqa: E402
from ser.serving.bundle import load_bundle  # noqa: E402
from ser.training.cross_validation import (  # noqa: E402
    TrainSettings,
    average_windows,
    build_clip_set,
    fit_fold,
    predict_functionals,
    predict_windows,
    refit_schedule,
    training_mask,
)
from ser.training.data import index_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/features"))
    parser.add_argument("--offset", type=int, default=100, help="CNN seed = fold + offset (shipped: fold + 0)")
    args = parser.parse_args()
    metrics = read_json(args.models / "metrics.json")
    settings = TrainSettings(**{key: tuple(value) if isinstance(value, list) else value
                                for key, value in metrics["training"]["settings"].items()})
    if not settings.refit_cnn:
        raise SystemExit("the shipped recipe does not refit its CNN; this check replays the refit")
    bundle = load_bundle(args.models)
    config = bundle.config
    index = index_dataset(args.data)
    clips = build_clip_set(index, config=config, cache_dir=args.cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    truth, cnn_guess, fused_guess = [], [], []
    for split, curve in zip(metrics["cross_validation"]["per_fold"], metrics["cross_validation"]["curves"],
                            strict=True):
        fold = split["fold"]
        refit_mask = training_mask(clips, actors=split["train"] + split["validation"], speech_mask=speech,
                                   settings=settings)
        test_mask = np.isin(clips.actor, split["test"]) & speech
        model, _ = fit_fold(clips.subset(refit_mask), None, config=config, settings=settings,
                            seed=settings.seed + fold + args.offset, schedule=refit_schedule(curve))
        test = clips.subset(test_mask)
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
    names = list(metrics["labels"])
    cnn_report = classification_report(truth, np.concatenate(cnn_guess), names=names)
    fused_report = classification_report(truth, np.concatenate(fused_guess), names=names)
    # Read again: another check (experiments/robustness.py) may have written meanwhile.
    metrics = read_json(args.models / "metrics.json")
    metrics["seed_check"] = {
        "what": f"each fold's refitted CNN trained again with seed fold + {args.offset} "
                "(same folds, schedules and linear views)",
        "cnn_accuracy": cnn_report["accuracy"],
        "fused_accuracy": fused_report["accuracy"],
        "fused_uar": fused_report["uar"],
        "command": f"python experiments/seed_check.py --data ../shared/data/ravdess --offset {args.offset}",
    }
    write_json(args.models / "metrics.json", metrics)
    print(metrics["seed_check"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
