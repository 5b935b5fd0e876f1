"""Does training the main model on word-length crops stop a single word being pulled to one emotion?

Issue 22, item 4. The rule was written before any figure here was computed (``docs/cross-corpus.md``,
"Teaching the main model words"). Two fold-0 bundles of the one-folder recipe, trained on the same
actors with the same seed, one as shipped and one with ``--word-crops 0.25``, each answer through the
app's path (:func:`ser.training.corpus_check.score_file`) the whole clip and one seeded word cut
(:func:`ser.training.loco.word_cut`) of:

- fold 0's RAVDESS test actors (neither bundle heard them);
- every ASED and speechocean clip (neither bundle heard either corpus).

Prints, per bundle, accuracy, UAR, the largest answer share and the ordinary voices' false alarms on
whole clips and on words, then the rule's verdict::

    python -m ser train --data ../shared/data/ravdess --folds 1 --cache .cache --out runs/words/base
    python -m ser train --data ../shared/data/ravdess --folds 1 --cache .cache --word-crops 0.25 \\
        --out runs/words/crops
    python -m experiments.word_training --data ../shared/data    # ~15 min here, answers cached in .cache/

The five-fold rule (written after that gate, before these figures) compares the shipped bundle with the
five-fold word-crops run, every RAVDESS actor answered by the fold members that never heard them::

    python -m ser train --data ../shared/data/ravdess --cache .cache --word-crops 0.25 --out runs/words/full
    python -m experiments.word_training --data ../shared/data --five-fold    # ~20 min here
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def clip_answers(bundle, paths: list[str], *, log) -> np.ndarray:
    """The bundle's calibrated answers on each whole file (NaN rows: refused)."""
    from ser.serving.audio import decode_audio
    from ser.training.corpus_check import score_file

    answers = np.full((len(paths), len(bundle.emotions)), np.nan)
    started = time.perf_counter()
    for row, path in enumerate(paths):
        probabilities, _ = score_file(bundle, decode_audio(path, sample_rate=bundle.config.sample_rate))
        if probabilities is not None:
            answers[row] = probabilities
        if row % 500 == 0:
            log(f"  {row} of {len(paths)} clips ({time.perf_counter() - started:.0f} s)")
    return answers


def bundle_answers(folder: Path, table, *, cache: Path, log) -> dict[str, np.ndarray]:
    """Whole-clip and word-cut answers of the bundle in ``folder`` on every row of ``table``, cached by its hash."""
    from experiments.word_prior import cut_answers
    from ser.reporting.provenance import model_sha256
    from ser.serving.bundle import load_bundle

    file = cache / f"word-training-{model_sha256(folder / 'model.keras')[:12]}-{len(table)}.npz"
    if file.exists():
        with np.load(file) as stored:
            return dict(stored)
    bundle = load_bundle(folder, joint_views=False)
    paths = table["path"].tolist()
    log(f"{folder.name}: whole clips")
    whole = clip_answers(bundle, paths, log=log)
    log(f"{folder.name}: word cuts")
    words, _, _ = cut_answers(bundle, paths, log=log)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, whole=whole, words=words)
    return {"whole": whole, "words": words}


#: Figures are shares of whole clips: a loss of exactly the allowed points must not fail on rounding.
TOLERANCE = 1e-9


#: The headline floor of issue 22's item 3, which the five-fold rule holds the word-crops recipe to.
HEADLINE_FLOOR = 0.66


def verdict(base: dict, crops: dict, *, headline: tuple[float, float] | None = None) -> list[tuple[str, bool]]:
    """The rule written before the figures, criterion by criterion (``docs/cross-corpus.md``).

    Parameters
    ----------
    base, crops : dict
        ``{"whole" | "words": {set name: figures}}`` as :func:`experiments.word_prior.score_words` gives them.
    headline : (accuracy, UAR), optional
        The five-fold rule: the word-crops recipe's cross-validated RAVDESS headline, held to
        :data:`HEADLINE_FLOOR` instead of to the RAVDESS whole clips of ``base``.

    Returns
    -------
    list of (criterion, met)
    """
    ravdess, ased, ordinary = "ravdess, 8 emotions", "ased, within 5, all sentences", "speechocean, as the app answers"

    def change(kind: str, name: str, figure: str) -> float:
        return crops[kind][name][figure] - base[kind][name][figure]

    def share(report: dict, name: str) -> float:
        return report["words"][name]["largest_share"][1]

    if headline is None:
        sentences = [
            ("RAVDESS whole clips: accuracy -2 at most", change("whole", ravdess, "accuracy") >= -0.02 - TOLERANCE),
            ("RAVDESS whole clips: UAR -2 at most", change("whole", ravdess, "uar") >= -0.02 - TOLERANCE),
        ]
    else:
        sentences = [(f"RAVDESS headline, 5 folds: accuracy >= {HEADLINE_FLOOR:.0%}", headline[0] >= HEADLINE_FLOOR),
                     (f"RAVDESS headline, 5 folds: UAR >= {HEADLINE_FLOOR:.0%}", headline[1] >= HEADLINE_FLOOR)]
    return [
        *sentences,
        ("RAVDESS words: UAR +5 or more", change("words", ravdess, "uar") >= 0.05 - TOLERANCE),
        ("RAVDESS words: largest share falls, <= 25%",
         share(crops, ravdess) < share(base, ravdess) and share(crops, ravdess) <= 0.25),
        ("ASED words within 5: -1 at most", change("words", ased, "accuracy") >= -0.01 - TOLERANCE),
        ("ASED words: largest share falls", share(crops, ased) < share(base, ased)),
        ("ASED whole clips within 5: -2 at most", change("whole", ased, "accuracy") >= -0.02 - TOLERANCE),
        ("speechocean words: false alarms +2 at most", change("words", ordinary, "false_alarms") <= 0.02 + TOLERANCE),
        ("speechocean whole clips: false alarms +2 at most",
         change("whole", ordinary, "false_alarms") <= 0.02 + TOLERANCE),
    ]


def five_fold_answers(folder: Path, table, *, cache: Path, log) -> dict[str, np.ndarray]:
    """Whole-clip and word-cut answers of a five-fold bundle: RAVDESS by the fold members that never heard the
    actor, every other corpus by its main model (:func:`experiments.word_prior.by_unseen_models`), cached."""
    from experiments.word_prior import by_unseen_models, cut_answers
    from ser.reporting.provenance import model_sha256
    from ser.serving.bundle import load_bundle

    file = cache / f"word-training-folds-{model_sha256(folder / 'model.keras')[:12]}-{len(table)}.npz"
    if file.exists():
        with np.load(file) as stored:
            return dict(stored)

    def answer(scorer, paths: list[str]) -> dict[str, np.ndarray]:
        return {"whole": clip_answers(scorer, paths, log=log), "words": cut_answers(scorer, paths, log=log)[0]}

    arrays, _ = by_unseen_models(load_bundle(folder, joint_views=False), table, answer,
                                 metrics=folder / "metrics.json", log=log)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, **arrays)
    return arrays


def main(argv: list[str] | None = None) -> int:
    from experiments.word_prior import score_words
    from ser.reporting.results import load_training
    from ser.training.loco import corpus_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--base", type=Path, default=None,
                        help="default runs/words/base (models/ with --five-fold)")
    parser.add_argument("--crops", type=Path, default=None,
                        help="default runs/words/crops (runs/words/full with --five-fold)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=None,
                        help="default runs/word_training.json (runs/word_training_folds.json with --five-fold)")
    parser.add_argument("--five-fold", action="store_true",
                        help="the five-fold rule: --base the shipped bundle (models/), --crops runs/words/full")
    args = parser.parse_args(argv)
    if args.five_fold:
        return five_fold(args)
    args.base = args.base or ROOT / "runs" / "words" / "base"
    args.crops = args.crops or ROOT / "runs" / "words" / "crops"
    args.out = args.out or ROOT / "runs" / "word_training.json"

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    runs = {name: load_training(folder / "metrics.json") for name, folder in (("base", args.base),
                                                                             ("crops", args.crops))}
    folds = {name: run.cross_validation.per_fold for name, run in runs.items()}
    if any(len(fold) != 1 for fold in folds.values()) or any(
            getattr(folds["base"][0], part) != getattr(folds["crops"][0], part)
            for part in ("train", "validation", "test")):
        raise SystemExit("both bundles must be one fold (ser train --folds 1) of the same actors: retrain one of them")
    settings = {name: dict(run.training.settings) for name, run in runs.items()}
    shares = {name: float(values.pop("word_crop_probability", 0.0)) for name, values in settings.items()}
    if settings["base"] != settings["crops"] or not shares["base"] == 0.0 < shares["crops"]:
        raise SystemExit(f"--base must be the recipe as shipped and --crops the same with --word-crops (given word "
                         f"crops {shares['base']} and {shares['crops']}, other settings "
                         f"{'equal' if settings['base'] == settings['crops'] else 'different'})")
    tested = [set(folds["base"][0].test)]
    table = corpus_table(args.data, ordinary=True)
    ravdess = table["corpus"].to_numpy() == "ravdess"
    actors = np.where(ravdess, table["speaker"].str[-2:], "0").astype(int)
    table = table[~ravdess | np.isin(actors, sorted(tested[0]))].reset_index(drop=True)
    log(f"RAVDESS actors {sorted(tested[0])}: {int((table['corpus'] == 'ravdess').sum())} clips; "
        f"{len(table)} clips in all")
    report = {}
    for name, folder in (("base", args.base), ("crops", args.crops)):
        answers = bundle_answers(folder, table, cache=args.cache, log=log)
        report[name] = {kind: score_words(answers[kind], table, kind=f"{name}, {kind}") for kind in ("whole", "words")}
    checks = verdict(report["base"], report["crops"])
    for criterion, met in checks:
        print(f"{'met' if met else 'NOT MET':8s} {criterion}")
    report["rule"] = {criterion: met for criterion, met in checks}
    report["adopt"] = all(met for _, met in checks)
    print("adopt: the 5-fold retrain" if report["adopt"] else "not adopted")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


def five_fold(args: argparse.Namespace) -> int:
    """The five-fold rule: every RAVDESS actor by the fold members that never heard them, both bundles whole."""
    from experiments.word_prior import score_words
    from ser.reporting.results import load_training
    from ser.training.loco import corpus_table

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    base = args.base or ROOT / "models"
    crops = args.crops or ROOT / "runs" / "words" / "full"
    runs = {"base": load_training(base / "metrics.json"), "crops": load_training(crops / "metrics.json")}
    if [len(run.cross_validation.per_fold) for run in runs.values()] != [5, 5] or [
            [fold.test for fold in run.cross_validation.per_fold] for run in runs.values()].count(
            [fold.test for fold in runs["base"].cross_validation.per_fold]) != 2:
        raise SystemExit("both bundles must be five folds of the same actors (ser train without --folds)")
    shares = [float(run.training.settings.get("word_crop_probability", 0.0)) for run in runs.values()]
    if not shares[0] == 0.0 < shares[1]:
        raise SystemExit(f"--base must be trained without word crops and --crops with them (given {shares})")
    table = corpus_table(args.data, ordinary=True)
    report = {}
    for name, folder in (("base", base), ("crops", crops)):
        answers = five_fold_answers(folder, table, cache=args.cache, log=log)
        report[name] = {kind: score_words(answers[kind], table, kind=f"{name}, {kind}") for kind in ("whole", "words")}
    headline = runs["crops"].headline
    print(f"headline (cross-validation): as shipped {runs['base'].headline.accuracy:.1%} / "
          f"{runs['base'].headline.uar:.1%}; word crops {headline.accuracy:.1%} / {headline.uar:.1%}")
    checks = verdict(report["base"], report["crops"], headline=(headline.accuracy, headline.uar))
    for criterion, met in checks:
        print(f"{'met' if met else 'NOT MET':8s} {criterion}")
    report["headline"] = {"base": [runs["base"].headline.accuracy, runs["base"].headline.uar],
                          "crops": [headline.accuracy, headline.uar]}
    report["rule"] = {criterion: met for criterion, met in checks}
    report["adopt"] = all(met for _, met in checks)
    print("adopt: word crops become the shipped recipe" if report["adopt"] else "not adopted")
    out = args.out or ROOT / "runs" / "word_training_folds.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
