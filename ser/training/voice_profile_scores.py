"""Every clip of RAVDESS actors 1-20 and ASED scored as the app scores a clip, by a model that never
heard its speaker, with its openSMILE functionals: the raw material of the voice-profile study
(:mod:`ser.training.voice_profile`).

- RAVDESS speech (1200 clips): by the members of the one fold whose test actors include the clip's
  actor (:func:`ser.training.robustness.fold_bundles`), as the headline scores it.
- ASED (2470 clips): by the main model alone (``load_bundle(joint_views=False)``): it was trained on
  RAVDESS only, so no ASED speaker was ever heard (the shipped joint views heard them all).

Each clip goes through ``Bundle.predict_recording`` (speech detector, trimming, windows, fusion,
temperature); a clip refused as "no speech" is kept with NaN rows. Cached in
``.cache/voice_profile/CORPUS-SHA.npz`` (keyed by the model's SHA-256); about 6 minutes here the
first time, by ``python -m ser profile-check`` (:mod:`ser.profile_check_cli`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser.errors import SERError

RATE = 16000
CACHE = Path(".cache") / "voice_profile"


def cache_path(*, corpus: str, models: Path, cache: Path = CACHE) -> Path:
    """The cache file of ``corpus``'s scores by the model of ``models``."""
    from ser.reporting.provenance import model_sha256

    return cache / f"{corpus}-{model_sha256(models / 'model.keras')[:12]}.npz"


def _score(rows, bundle_of, *, log: Callable[[str], None]) -> dict[str, np.ndarray]:
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
            log(f"{position}/{len(rows)} clips, {time.perf_counter() - started:.0f} s")
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


def collect(*, data: Path, models: Path, cache: Path = CACHE,
            log: Callable[[str], None] = lambda message: None) -> dict[str, dict[str, np.ndarray]]:
    """The cached scores of both corpora (scored now when missing): ``corpus -> arrays``.

    Parameters
    ----------
    data : Path
        The folder holding ``ravdess/`` and ``ased/``.
    models : Path
        The bundle folder (``model.keras`` and its ``metrics.json``: the folds).
    cache : Path
        Where the scores are kept, keyed by the model's SHA-256.
    log : callable
        Progress messages.
    """
    from ser.reporting.results import load_training
    from ser.serving.bundle import load_bundle
    from ser.training.data import index_ased, index_ravdess
    from ser.training.robustness import fold_bundles

    result = {}
    main = None
    for corpus in ("ravdess", "ased"):
        path = cache_path(corpus=corpus, models=models, cache=cache)
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
        arrays = _score(table, bundle_of, log=log)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        result[corpus] = arrays
    return result

