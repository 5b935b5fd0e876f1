"""A small run of the log-mel CNN trained on RAVDESS and ASED with the masked emotion loss
(:mod:`ser.training.masked_cnn`), beside the same CNN trained on RAVDESS only: it shows the
masked training runs and what it does on one fold; it is not the shipped model's training.

Run (log-mel features are cached in ``.cache/``)::

    python -m experiments.cross_corpus_cnn --fold 0 --epochs 15

One joint fold (:func:`ser.training.corpora.fold_speakers`, seed 0): the CNN trains on the
training speakers of both corpora (RAVDESS speech and song, ASED) for a fixed number of
epochs, then scores the fold's test speakers: RAVDESS (8 emotions, the headline's fold) and
ASED (its 5 emotions; all sentences and the common ones). The RAVDESS-only CNN trains on the
same RAVDESS speakers. Results go to ``runs/cross_corpus/cnn_fold<k>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from experiments.cross_corpus_report import study_scores  # noqa: E402
from ser.config import FeatureConfig  # noqa: E402
from ser.reporting.metrics import clip_set_scores  # noqa: E402
from ser.training.cache import load_features  # noqa: E402
from ser.training.corpora import corpus_emotions, emotion_mask, fold_speakers, index_corpora  # noqa: E402
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES  # noqa: E402


def _load(ravdess: Path, ased: Path, cache: Path, config: FeatureConfig):
    import pandas as pd

    table = index_corpora([ravdess.resolve(), ased.resolve()])
    variants: dict[float, list[np.ndarray]] = {}
    for corpus in ("ravdess", "ased"):  # cached per corpus
        part = table[table["corpus"] == corpus]
        index = pd.DataFrame({"path": part["path"].tolist()})
        for speed, items in load_features(index, config=config, cache_dir=cache).items():
            variants.setdefault(speed, []).extend(items)
    order = np.concatenate([np.flatnonzero(table["corpus"] == corpus) for corpus in ("ravdess", "ased")])
    return table.iloc[order].reset_index(drop=True), variants


def _fit(rows, *, table, variants, config, settings, epochs, seed, log):
    from ser.training.masked_cnn import MaskedBatches, compile_masked, encode_targets
    from ser.training.networks import build_model

    part = table[rows]
    labels = part["emotion"].map(EMOTIONS.index).to_numpy()
    # Classes balanced within each corpus, corpora equal (as the linear views' default recipe).
    weights = np.zeros(len(part))
    corpora = part["corpus"].to_numpy()
    for corpus in np.unique(corpora):
        in_corpus = corpora == corpus
        for label in np.unique(labels[in_corpus]):
            chosen = in_corpus & (labels == label)
            weights[chosen] = 1.0 / chosen.sum() / len(np.unique(labels[in_corpus])) / len(np.unique(corpora))
    weights *= len(weights) / weights.sum()
    batches = MaskedBatches(
        variants={speed: [items[i] for i in np.flatnonzero(rows)] for speed, items in variants.items()},
        targets=encode_targets(labels, emotion_mask(part)),
        gender=part["gender"].map(lambda g: GENDERS.index(g) if g in GENDERS else -1).to_numpy(),
        intensity=part["intensity"].map(lambda i: INTENSITIES.index(i) if i in INTENSITIES else -1).to_numpy(),
        emotion_weights=weights, config=config, settings=settings, seed=seed,
    )
    model = compile_masked(
        build_model(window_frames=config.window_frames, n_mels=config.n_mels, width=settings.width,
                    dropout=settings.dropout, seed=seed),
        settings=settings,
    )
    started = time.perf_counter()
    history = model.fit(batches, epochs=epochs, verbose=0)
    losses = [round(float(value), 4) for value in history.history["emotion_loss"]]
    log(f"  {len(part)} clips, {epochs} epochs in {time.perf_counter() - started:.0f} s; emotion loss {losses}")
    return model, losses


def _clip_probabilities(model, rows, *, variants, config) -> np.ndarray:
    from ser.serving.features import window_features

    windows, owners = [], []
    for position, index in enumerate(np.flatnonzero(rows)):
        clip_windows, _ = window_features(variants[1.0][index], config=config)
        windows.append(clip_windows)
        owners.append(np.full(len(clip_windows), position))
    outputs = model.predict(np.concatenate(windows), batch_size=64, verbose=0)["emotion"]
    owners = np.concatenate(owners)
    summed = np.zeros((rows.sum(), len(EMOTIONS)))
    np.add.at(summed, owners, outputs)
    return summed / np.bincount(owners)[:, None]


def main(argv: list[str] | None = None) -> int:
    from ser.training.settings import TrainSettings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--ased", type=Path, default=ROOT.parent / "shared" / "data" / "ased")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "cross_corpus")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=15)
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    config, settings = FeatureConfig(), TrainSettings()
    table, variants = _load(args.ravdess, args.ased, args.cache, config)
    speech = table["vocal_channel"] == "speech"
    train, validation, test = fold_speakers(table[speech], n_folds=5, fold=args.fold, seed=0)
    learn = table["speaker"].isin(train + validation).to_numpy()  # fixed epochs: no early stopping
    scored = table["speaker"].isin(test).to_numpy() & speech.to_numpy()
    is_ravdess = (table["corpus"] == "ravdess").to_numpy()
    common = table["common_sentence"].fillna(False).to_numpy(bool)
    shared = corpus_emotions(table)["ased"]
    subsets = {
        "ravdess": (scored & is_ravdess, EMOTIONS),
        "ased": (scored & ~is_ravdess, shared),
        "ased_common_sentences": (scored & ~is_ravdess & common, shared),
    }
    results = {
        "fold": args.fold, "epochs": args.epochs, "test_speakers": test, "settings": dataclasses.asdict(settings),
    }
    for name, rows in (("ravdess_only", learn & is_ravdess), ("joint_masked", learn)):
        log(f"{name}:")
        model, losses = _fit(rows, table=table, variants=variants, config=config, settings=settings,
                             epochs=args.epochs, seed=args.fold, log=log)
        entry = {"emotion_loss": losses}
        for subset, (chosen, space) in subsets.items():
            probabilities = _clip_probabilities(model, chosen, variants=variants, config=config)
            shared = {"truth": table.loc[chosen, "emotion"].to_numpy(str), "labels": EMOTIONS,
                      "speakers": table.loc[chosen, "speaker"].to_numpy(str)}
            entry[subset] = {
                "restricted": study_scores(clip_set_scores(probabilities, answer_space=space, **shared)),
                "app": study_scores(clip_set_scores(probabilities, **shared)),
            }
            log(f"  {subset}: {100 * entry[subset]['restricted']['accuracy']:.1f}% "
                f"(UAR {100 * entry[subset]['restricted']['uar']:.1f}), as the app answers "
                f"{100 * entry[subset]['app']['accuracy']:.1f}%")
        results[name] = entry
    results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results["command"] = "python -m experiments.cross_corpus_cnn " + " ".join(argv or sys.argv[1:])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"cnn_fold{args.fold}.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
