"""Every clip of RAVDESS actors 1-20 and ASED scored as the app scores a clip, by a model that never
heard its speaker, with its openSMILE functionals: the raw material of the voice-profile study
(:mod:`experiments.voice_profile`).

- RAVDESS speech (1200 clips): by the members of the one fold whose test actors include the clip's
  actor (:func:`experiments.robustness.fold_bundles`), as the headline scores it.
- ASED (2470 clips): by the main model alone (``load_bundle(joint_views=False)``): it was trained on
  RAVDESS only, so no ASED speaker was ever heard (the shipped joint views heard them all).

Each clip goes through ``Bundle.predict_recording`` (speech detector, trimming, windows, fusion,
temperature); a clip refused as "no speech" is kept with NaN rows. Cached in
``runs/voice_profile/CORPUS-SHA.npz`` (keyed by the model's SHA-256); about 6 minutes here the first
time. From the repository root:

    python -m experiments.voice_profile_scores --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from ser.errors import SERError

RATE = 16000
CACHE = Path("runs/voice_profile")


def cache_path(*, corpus: str, models: Path) -> Path:
    from ser.reporting.provenance import model_sha256

    return CACHE / f"{corpus}-{model_sha256(models / 'model.keras')[:12]}.npz"


def _score(rows, bundle_of) -> dict[str, np.ndarray]:
    from ser.serving.audio import decode_audio

    probabilities, functionals = [], []
    started = time.perf_counter()
    for position, row in enumerate(rows.itertuples()):
        bundle = bundle_of(row)
        try:
            recording = bundle.recording(decode_audio(row.path, sample_rate=RATE), sample_rate=RATE)
            prediction = bundle.predict_recording(recording)
            probabilities.append([prediction.probabilities[emotion] for emotion in bundle.emotions])
            functionals.append(recording.functionals)
        except SERError:
            probabilities.append([np.nan] * len(bundle.emotions))
            functionals.append(None)
        if position % 300 == 0:
            print(f"{position}/{len(rows)} clips, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    size = len(next(f for f in functionals if f is not None))
    functionals = [f if f is not None else np.full(size, np.nan) for f in functionals]
    return {
        "probabilities": np.asarray(probabilities, dtype=np.float64),
        "functionals": np.asarray(functionals, dtype=np.float32),
        "speaker": rows["speaker"].to_numpy(dtype=str),
        "emotion": rows["emotion"].to_numpy(dtype=str),
        "sentence": rows["sentence"].to_numpy(dtype=np.int64),
        "repetition": rows["repetition"].to_numpy(dtype=np.int64),
        "common": rows["common_sentence"].to_numpy(dtype=bool),
        "intensity": rows["intensity"].fillna("").to_numpy(dtype=str),
        "path": rows["path"].to_numpy(dtype=str),
    }


def collect(*, data: Path, models: Path) -> dict[str, dict[str, np.ndarray]]:
    """The cached scores of both corpora (scored now when missing): ``corpus -> arrays``."""
    from experiments.robustness import fold_bundles
    from ser.reporting.results import load_training
    from ser.serving.bundle import load_bundle
    from ser.training.data import index_ased, index_ravdess

    result = {}
    main = None
    for corpus in ("ravdess", "ased"):
        path = cache_path(corpus=corpus, models=models)
        if path.is_file():
            with np.load(path) as saved:
                result[corpus] = {key: saved[key] for key in saved.files}
            continue
        if main is None:
            main = load_bundle(models, joint_views=False)
        if corpus == "ravdess":
            table = index_ravdess(data / "ravdess")
            table = table[table["vocal_channel"] == "speech"].reset_index(drop=True)
            folds = fold_bundles(main, load_training(models / "metrics.json").cross_validation.per_fold)
            by_actor = {actor: bundle for bundle, actors in folds.values() for actor in actors}

            def bundle_of(row, by_actor=by_actor):
                return by_actor[int(row.speaker.split("-")[1])]
        else:
            table = index_ased(data / "ased").reset_index(drop=True)

            def bundle_of(row, main=main):
                return main
        arrays = _score(table, bundle_of)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        result[corpus] = arrays
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    args = parser.parse_args()
    for corpus, arrays in collect(data=args.data, models=args.models).items():
        refused = int(np.isnan(arrays["probabilities"][:, 0]).sum())
        print(f"{corpus}: {len(arrays['speaker'])} clips, {refused} refused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
