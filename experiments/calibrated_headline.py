"""The RAVDESS headline protocol with and without calibration to the speaker, for the shipped recipe.

Re-runs the shipped recipe's cross-validation (``python -m ser train``'s: 5 folds by actor over
actors 1-20, speech scored, the fused CNN + linear views, temperature from the validation actors)
and keeps every clip's out-of-fold answer; then, per actor, the two reference clips of
:func:`ser.training.corpora.reference_clips` (neutral, statements 1 and 2, first repetition:
chosen without looking at audio or answers) calibrate the actor's other clips with the neutral
floor (:mod:`ser.serving.speaker`, exactly the app's and ``predict --reference``'s arithmetic).
The reference clips are not scored; "without" is the same clips without calibration.

The model trained here is not shipped (a re-run of the recipe, so its headline differs from the
shipped model's by the run-to-run spread that ``python -m ser seed-check`` measures).

Run (about 40 min of fitting on 2 quiet cores; features cached in ``.cache/features``)::

    python -m experiments.calibrated_headline --data ../shared/data/ravdess

Out-of-fold answers go to ``runs/calibrated_headline/oof.npz``; ``--summary-only`` re-reads them.
The summary is printed and written to ``runs/calibrated_headline/summary.json`` (each set of clips
as :class:`ser.reporting.metrics.ClipSetScores`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "calibrated_headline"


def _run_cross_validation(data: Path, cache: Path) -> None:
    from ser.config import FeatureConfig
    from ser.serving.calibration import apply_temperature
    from ser.training.clips import build_clip_set
    from ser.training.cross_validation import cross_validate
    from ser.training.data import index_dataset
    from ser.training.evaluate import summarize_cross_validation
    from ser.training.settings import TrainSettings

    config = FeatureConfig()
    index = index_dataset(data)
    clips = build_clip_set(index, config=config, cache_dir=cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    started = time.perf_counter()
    run = cross_validate(clips, speech_mask=speech, config=config, settings=TrainSettings(),
                         log=lambda message: print(message, flush=True))
    summary = summarize_cross_validation(clips, run)
    positions = np.concatenate([fold.test_positions for fold in run.folds])
    raw = np.concatenate([fold.test_probabilities["emotion"] for fold in run.folds])
    calibrated = apply_temperature(raw, temperature=summary.calibration.temperature)
    RUNS.mkdir(parents=True, exist_ok=True)
    np.savez(RUNS / "oof.npz", paths=np.array([str(index["path"].iloc[p]) for p in positions]),
             probabilities=calibrated, raw=raw, temperature=summary.calibration.temperature,
             accuracy=summary.accuracy, uar=summary.uar, seconds=time.perf_counter() - started)
    print(f"cross-validation: accuracy {summary.accuracy:.4f} UAR {summary.uar:.4f} "
          f"in {(time.perf_counter() - started) / 60:.1f} min", flush=True)


def summarize(data: Path) -> dict:
    from ser.reporting.corpus_results import adapt_per_speaker
    from ser.reporting.metrics import clip_set_scores
    from ser.reporting.schema import to_json
    from ser.training.corpora import reference_clips
    from ser.training.data import EMOTIONS, index_ravdess

    saved = np.load(RUNS / "oof.npz")
    paths = [str(path) for path in saved["paths"]]
    probabilities = saved["probabilities"]
    table = index_ravdess(data)
    table = table.set_index(table["path"].astype(str)).loc[paths].reset_index(drop=True)
    truth = table["emotion"].to_numpy(str)
    speakers = table["speaker"].to_numpy()
    reference = reference_clips(table)
    neutral = list(EMOTIONS).index("neutral")
    adapted, _ = adapt_per_speaker(probabilities, speakers=speakers, reference=reference, neutral=neutral)
    scored = ~reference

    def scores(chosen: np.ndarray, answers: np.ndarray) -> dict:
        # As the app answers (all eight emotions); no confidence threshold: this re-run has none shipped.
        return to_json(clip_set_scores(answers[chosen], truth=truth[chosen], speakers=speakers[chosen],
                                       labels=EMOTIONS))

    summary = {
        "protocol": "RAVDESS speech, actors 1-20, 8 emotions, 5-fold cross-validation grouped by actor "
                    "(the shipped recipe re-run); calibrated: per actor, 2 neutral reference clips (not scored), "
                    "neutral floor 0.5",
        "command": "python -m experiments.calibrated_headline --data ../shared/data/ravdess",
        "all_clips": scores(np.ones_like(scored), probabilities),
        "without_calibration": scores(scored, probabilities),
        "with_calibration": scores(scored, adapted),
        "reference_clips": int(reference.sum()),
        "training_minutes": round(float(saved["seconds"]) / 60, 1),
    }
    (RUNS / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/ravdess"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/features"))
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    if not args.summary_only:
        _run_cross_validation(args.data, args.cache)
    summary = summarize(args.data)
    for name in ("all_clips", "without_calibration", "with_calibration"):
        scores = summary[name]
        spread = scores["speaker_accuracy"]
        print(f"{name:22s} clips {scores['clips']:5d} accuracy {scores['accuracy']:.3f} UAR {scores['uar']:.3f} "
              f"neutral recall {scores['recall']['neutral']:.2f} per actor min / median / max "
              f"{spread['min']:.3f} / {spread['median']:.3f} / {spread['max']:.3f}")


if __name__ == "__main__":
    main()
