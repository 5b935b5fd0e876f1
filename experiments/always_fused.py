"""One model without a router: fuse the RAVDESS-trained views with the three-corpus views, always.

Issue 22 wants one model trained on RAVDESS, ASED and speechocean's ordinary voices, and no router.
Every joint training so far loses RAVDESS points on fold 0 (57.9% against 62.5% for the RAVDESS-only
recipe on the same actors), and fusion weights did not win them back. This study asks whether a
model that *always* fuses both sets of views (the RAVDESS-only recipe's three, log-mel CNN,
functionals and voicing, beside the three-corpus recipe's three; equal weight, window by window,
as :func:`ser.serving.layers.fuse_views`) keeps RAVDESS while reading new voices as the joint views
do. Every clip is scored by fold-0 models that never heard its speaker.

Inputs: two fold-0 trainings with their per-view answers (``--save-fold-answers``)::

    python -m ser train --data ../shared/data/ravdess --folds 1 --cache .cache \
        --out runs/ravdess-fold0 --save-fold-answers runs/ravdess-fold0-answers.npz
    python -m ser train --data ../shared/data/ravdess --data ../shared/data/ased \
        --data ../shared/data/speechocean --folds 1 --corpus-weight ravdess=2 --cache .cache \
        --out runs/three-fold0 --save-fold-answers runs/three-fold0-answers.npz
    python -m experiments.always_fused --data ../shared/data   # a few minutes: scores ASED and
                                                                # speechocean with the RAVDESS bundle

Without the three-corpus run's file (``--three``), the study fits fold 0's three-corpus linear views itself
(the same speakers, L2 choice and masked loss as ``ser train``) and compares the variants without the
three-corpus CNN.

The RAVDESS-only fold-0 bundle (``runs/ravdess-fold0/model.keras``) scores the three-corpus run's
ASED and speechocean test speakers the way training scored its own (the clips' log-mel windows at
speed 1.0 and their functionals, no temperature); RAVDESS's test actors (6, 9, 10, 11) are the same in
both runs. Prints one table; writes ``runs/always_fused.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ser.reporting.loco_results import score_set
from ser.serving.layers import fuse_views
from ser.training.data import EMOTIONS

VIEWS = ("log_mel_cnn", "functionals", "voicing")


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return dict(saved)


def _windows_of(answers: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fold 0's test answers per view, per window (linear views repeated over their clip's windows),
    and each window's clip (its index among the fold's test clips)."""
    owners = answers["fold0/test/window_owners"]
    views = {"log_mel_cnn": answers["fold0/test/cnn_windows"]}
    views.update({name: answers[f"fold0/test/{name}"][owners] for name in VIEWS[1:]})
    return views, owners


def _fuse(views: list[np.ndarray], owners: np.ndarray, n_clips: int) -> np.ndarray:
    """Each window's views fused (normalised geometric mean), then averaged per clip: (n_clips, 8)."""
    fused = fuse_views(*views)
    summed = np.zeros((n_clips, fused.shape[1]))
    np.add.at(summed, owners, fused)
    return summed / np.bincount(owners, minlength=n_clips)[:, None]


def ravdess_views_on(clip_rows: np.ndarray, *, bundle: Path, data: Path, cache: Path) -> tuple[dict, np.ndarray]:
    """The RAVDESS-only bundle's three views on the three-corpus table's rows ``clip_rows``, per window."""
    import keras

    from ser.config import FeatureConfig
    from ser.serving.bundle import load_bundle
    from ser.training.clips import build_corpus_clip_set
    from ser.training.cnn import clip_windows
    from ser.training.corpora import index_corpora

    config = FeatureConfig()
    # The whole table, as the three-corpus run built it, so its cached features are found.
    table = index_corpora([data / "ravdess", data / "ased", data / "speechocean"])
    clips = build_corpus_clip_set(table, config=config, cache_dir=cache).subset(np.isin(np.arange(len(table)),
                                                                                       clip_rows))
    model = load_bundle(bundle).model
    fusion = model.get_layer("emotion")
    views_model = keras.Model(model.inputs, fusion.input)
    windows, owners = clip_windows(clips, config=config)
    functionals = clips.functionals[1.0][owners]
    outputs = views_model.predict({"log_mel": windows, "functionals": functionals}, batch_size=256, verbose=0)
    return dict(zip(VIEWS, (np.asarray(values) for values in outputs), strict=True)), owners


def three_corpus_linear_answers(*, data: Path, cache: Path, corpus_weights: tuple = (("ravdess", 2.0),)) -> dict:
    """Fold 0's three-corpus linear views (functionals and voicing), fitted here as ``ser train`` fits them
    (same speakers, L2 choice and masked loss), in the layout of a ``--save-fold-answers`` file with no
    CNN: enough for the variant that adds only these views to the RAVDESS-only recipe (minutes, where the
    three-corpus CNN takes about an hour)."""
    import dataclasses

    from ser.__main__ import _load_dataset
    from ser.training.cross_validation import split_speakers
    from ser.training.fold_answers import clip_identity
    from ser.training.settings import TrainSettings
    from ser.training.views import fit_views

    _, index, clips, speech = _load_dataset([data / "ravdess", data / "ased", data / "speechocean"], cache)
    settings = dataclasses.replace(TrainSettings(), corpus_weights=corpus_weights)
    train, validation, test = split_speakers(clips, n_folds=settings.n_folds, fold=0, seed=settings.seed)
    test_mask = np.isin(clips.actor, test) & speech
    views = fit_views(clips, train_mask=np.isin(clips.actor, train), validation_mask=np.isin(clips.actor, validation)
                      & speech, test_mask=test_mask, speech_mask=speech, settings=settings)
    answers = {**clip_identity(index), "targets": clips.targets(), "allowed": clips.class_mask,
               "fold0/test/positions": np.flatnonzero(test_mask)}
    answers.update({f"fold0/test/{view.name}": view.test_probabilities["emotion"] for view in views})
    return answers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ravdess", type=Path, default=Path("runs/ravdess-fold0-answers.npz"))
    parser.add_argument("--three", type=Path, default=Path("runs/three-fold0-answers.npz"))
    parser.add_argument("--bundle", type=Path, default=Path("runs/ravdess-fold0"))
    parser.add_argument("--cache", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=Path("runs/always_fused.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if not args.three.is_file():  # fit the three-corpus linear views here, once; kept for the next run
        args.three = args.three.with_name("three-linear-fold0-answers.npz")
        if not args.three.is_file():
            np.savez_compressed(args.three, **three_corpus_linear_answers(data=args.data, cache=args.cache))
            print(f"{time.perf_counter() - started:.0f} s: three-corpus linear views in {args.three}", file=sys.stderr)
    three = _load(args.three)
    if not args.ravdess.is_file():
        raise SystemExit(f"{args.ravdess}: no such file; train the RAVDESS-only fold 0 first (see the docstring)")
    ravdess = _load(args.ravdess)
    with_cnn = "fold0/test/cnn_windows" in three
    positions = three["fold0/test/positions"]
    corpus = three["corpus"][positions]
    n_clips = len(positions)

    # The RAVDESS-only views on the same clips: its own answers for RAVDESS's actors (same files),
    # the fold-0 bundle's for ASED and speechocean (corpora it never heard).
    own_views, own_owners = _windows_of(ravdess)
    own_files = ravdess["file_name"][ravdess["fold0/test/positions"]]
    files = three["file_name"][positions]
    ravdess_rows = np.flatnonzero(corpus == "ravdess")
    if sorted(files[ravdess_rows]) != sorted(own_files):
        raise SystemExit("the two runs' RAVDESS test actors differ; train both with the same fold 0")
    other_rows = np.flatnonzero(corpus != "ravdess")
    other_views, other_owners = ravdess_views_on(positions[other_rows], bundle=args.bundle, data=args.data,
                                                 cache=args.cache)
    # Per-window RAVDESS-only views, clip by clip in the three-corpus positions' order (the same windows:
    # both come from the clip's log-mel at speed 1.0).
    own_index = {name: i for i, name in enumerate(own_files)}
    parts, owner_parts = {name: [] for name in VIEWS}, []
    for clip in range(n_clips):
        if corpus[clip] == "ravdess":
            source, windows = own_views, own_owners == own_index[files[clip]]
        else:
            source, windows = other_views, other_owners == int(np.flatnonzero(other_rows == clip)[0])
        for name in VIEWS:
            parts[name].append(source[name][windows])
        owner_parts.append(np.full(int(windows.sum()), clip))
    rav_views = {name: np.concatenate(values) for name, values in parts.items()}
    owners = np.concatenate(owner_parts)
    if with_cnn:
        three_views, three_owners = _windows_of(three)
        if not np.array_equal(three_owners, owners):
            raise SystemExit("the two runs cut different windows from the same clips")
    else:
        three_views = {name: three[f"fold0/test/{name}"][owners] for name in VIEWS[1:]}

    recipes = {
        "RAVDESS only (3 views)": [rav_views[name] for name in VIEWS],
        "three-corpus linear 2": [three_views["functionals"], three_views["voicing"]],
        "RAVDESS 3 + three-corpus linear 2": [*(rav_views[name] for name in VIEWS),
                                              three_views["functionals"], three_views["voicing"]],
    }
    if with_cnn:
        recipes["three corpora (3 views)"] = [three_views[name] for name in VIEWS]
        recipes["both, always fused (6 views)"] = [*(rav_views[name] for name in VIEWS),
                                                   *(three_views[name] for name in VIEWS)]
    targets = three["targets"][positions]
    allowed = three["allowed"][positions]
    labels = np.where(targets.sum(axis=1) == 1, targets.argmax(axis=1), -1)
    speakers = three["speaker"][positions]
    every = np.ones(len(EMOTIONS), dtype=bool)
    rows, report = [], {}
    for name, views in recipes.items():
        probabilities = _fuse(views, owners, n_clips)
        scores = {}
        for part in ("ravdess", "ased", "speechocean"):
            mine = corpus == part
            within = allowed[mine][0] if part == "ased" else every
            scores[part] = score_set(probabilities[mine], targets=targets[mine], labels=labels[mine],
                                     speakers=speakers[mine], allowed=within, ordinary=part == "speechocean")
            if part == "ased":
                scores["ased_app"] = score_set(probabilities[mine], targets=targets[mine], labels=labels[mine],
                                               speakers=speakers[mine], allowed=every)
        report[name] = {part: {"accuracy": s.accuracy, "uar": s.uar, "answer_share": s.answer_share,
                               "neutral_or_calm": s.neutral_or_calm_share, "false_alarms": s.false_alarm_share,
                               "recall": s.recall} for part, s in scores.items()}
        rows.append(f"| {name} | {100 * scores['ravdess'].accuracy:.1f} / {100 * scores['ravdess'].uar:.1f} | "
                    f"{100 * scores['ased'].accuracy:.1f} / {100 * scores['ased'].uar:.1f} | "
                    f"{100 * scores['ased_app'].accuracy:.1f} (largest {scores['ased_app'].largest_share[0]} "
                    f"{100 * scores['ased_app'].largest_share[1]:.0f}%) | "
                    f"{100 * scores['speechocean'].neutral_or_calm_share:.1f} / "
                    f"{100 * scores['speechocean'].false_alarm_share:.1f} |")
    print("| fold 0 test speakers | RAVDESS, 8 emotions: acc / UAR | ASED within 5: acc / UAR | ASED as the app "
          "answers | speechocean neutral or calm / false alarms |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"{time.perf_counter() - started:.0f} s; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
