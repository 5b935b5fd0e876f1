"""Does dividing out the main model's prior on word-length speech stop a word being pulled to one emotion?

Issue 22, item 4. The rule was written before any figure here was computed (``docs/cross-corpus.md``,
"A short-speech prior for the main model"). One seeded 0.5-1.2 s cut of every clip
(:func:`ser.training.loco.word_cut`) is answered by the main model alone, through the app's trimming
and features:

- RAVDESS actors 1-20: by the members of the fold that never heard the actor;
- ASED and speechocean (the main model heard neither): by the shipped main model.

The correction is p'(c) proportional to p(c) / w(c), with w(c) the mean calibrated answer on RAVDESS
cuts divided by the class share of those clips. On RAVDESS it is cross-fitted (each fold's actors
are corrected with w from the other four folds' actors); on ASED and speechocean w comes from all 20
actors. Prints, corrected against as is, accuracy, UAR, the largest answer share and, for the
ordinary voices, the neutral-or-calm and false-alarm shares::

    python -m experiments.word_prior --data ../shared/data     # ~4 min here, answers cached in .cache/
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def cut_answers(bundle, paths: list[str], *, log) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The bundle's calibrated answers on one word cut of each file (NaN rows: refused), each cut's seconds
    and why it was refused ("" when answered)."""
    from ser.serving.audio import decode_audio
    from ser.training.corpus_check import score_file
    from ser.training.loco import word_cut

    config = bundle.config
    answers = np.full((len(paths), len(bundle.emotions)), np.nan)
    seconds = np.zeros(len(paths))
    problems = [""] * len(paths)
    started = time.perf_counter()
    for row, path in enumerate(paths):
        cut = word_cut(decode_audio(path, sample_rate=config.sample_rate), name=Path(path).name, config=config)
        seconds[row] = cut.size / config.sample_rate
        probabilities, problems[row] = score_file(bundle, cut)
        if probabilities is not None:
            answers[row] = probabilities
        if row % 500 == 0:
            log(f"  {row} of {len(paths)} cuts ({time.perf_counter() - started:.0f} s)")
    return answers, seconds, problems


def by_unseen_models(bundle, table, answer, *, metrics: Path, log) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``answer(bundle, paths) -> {name: array, one row per path}`` for every clip of ``table``: RAVDESS by the
    members of the fold that never heard the actor, every other corpus by ``bundle``'s main model (it heard
    none). Returns the arrays in the table's order and each clip's fold (-1: the main model)."""
    from ser.reporting.results import load_training
    from ser.training.robustness import fold_bundles

    ravdess = table["corpus"].to_numpy() == "ravdess"
    actors = np.where(ravdess, table["speaker"].str[-2:], "0").astype(int)
    fold = np.full(len(table), -1)
    parts = []
    for number, (fold_bundle, tested) in fold_bundles(bundle, load_training(metrics).cross_validation.per_fold).items():
        rows = np.flatnonzero(ravdess & np.isin(actors, sorted(tested)))
        parts.append((rows, answer(fold_bundle, table["path"].iloc[rows].tolist())))
        fold[rows] = number
        log(f"fold {number}: {len(rows)} RAVDESS cuts")
    rows = np.flatnonzero(~ravdess)
    parts.append((rows, answer(bundle, table["path"].iloc[rows].tolist())))
    order = np.concatenate([rows for rows, _ in parts])
    if not np.array_equal(np.sort(order), np.arange(len(table))):
        raise SystemExit("some RAVDESS actors were tested by no fold of metrics.json: pass the data it was trained on")
    back = np.argsort(order)  # the parts' rows, concatenated, put back in the table's order
    return {name: np.concatenate([values[name] for _, values in parts])[back] for name in parts[0][1]}, fold


def all_answers(bundle, table, *, models: Path, cache: Path, log) -> dict[str, np.ndarray]:
    """Every clip's cut answered (:func:`by_unseen_models`), cached by the model's hash."""
    from ser.reporting.provenance import model_sha256

    file = cache / f"word-prior-{model_sha256(models / 'model.keras')[:12]}-{len(table)}.npz"
    if file.exists():
        with np.load(file) as stored:
            return dict(stored)

    def answer(scorer, paths: list[str]) -> dict[str, np.ndarray]:
        answers, seconds, problems = cut_answers(scorer, paths, log=log)
        return {"answers": answers, "seconds": seconds, "problems": np.array(problems, dtype=str)}

    arrays, fold = by_unseen_models(bundle, table, answer, metrics=models / "metrics.json", log=log)
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, **arrays, fold=fold)
    with np.load(file) as stored:
        return dict(stored)


def word_sets(table) -> dict[str, tuple[np.ndarray, np.ndarray, bool]]:
    """The sets both word studies score: ``name -> (rows, emotions an answer may be, ordinary voices)``."""
    from ser.training.corpora import corpus_emotions
    from ser.training.data import EMOTIONS

    corpus = table["corpus"].to_numpy()
    common = table["common_sentence"].fillna(False).to_numpy(dtype=bool)
    every = np.ones(len(EMOTIONS), dtype=bool)
    ased = np.isin(EMOTIONS, corpus_emotions(table)["ased"])
    return {"ravdess, 8 emotions": (corpus == "ravdess", every, False),
            "ased, within 5, all sentences": (corpus == "ased", ased, False),
            "ased, within 5, common sentences": ((corpus == "ased") & common, ased, False),
            "speechocean, as the app answers": (corpus == "speechocean", every, True)}


def score_words(probabilities: np.ndarray, table, *, kind: str) -> dict[str, dict]:
    """Score ``probabilities`` (n_clips, n_emotions; NaN rows refused) on every :func:`word_sets` set, print one
    line per set, and return the figures per set."""
    from ser.reporting.loco_results import score_set
    from ser.training.corpora import target_mask
    from ser.training.target_sets import single_labels

    targets = target_mask(table)
    labels, speakers = single_labels(targets), table["speaker"].to_numpy()
    report = {}
    for name, (rows, allowed, ordinary) in word_sets(table).items():
        scores = score_set(probabilities[rows], targets=targets[rows], labels=labels[rows],
                           speakers=speakers[rows], allowed=allowed, ordinary=ordinary)
        top = max(scores.answer_share, key=scores.answer_share.get)
        report[name] = {"accuracy": scores.accuracy, "uar": scores.uar, "refused": scores.refused,
                        "largest_share": [top, scores.answer_share[top]], "answer_share": scores.answer_share,
                        "false_alarms": scores.false_alarm_share if ordinary else None}
        uar = f"{scores.uar:.1%}" if scores.uar is not None else "-"
        alarms = f", false alarms {scores.false_alarm_share:.1%}" if ordinary else ""
        print(f"{kind:34s} {name:34s} accuracy {scores.accuracy:.1%}, UAR {uar}, most given {top} "
              f"{scores.answer_share[top]:.1%}{alarms} (refused {scores.refused})")
    return report


def prior_weights(answers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """w(c): the mean answer on these cuts over the share of clips labelled c (refused cuts left out)."""
    answered = ~np.isnan(answers).any(axis=1)
    mean = answers[answered].mean(axis=0)
    share = np.bincount(labels[answered], minlength=answers.shape[1]) / answered.sum()
    return mean / share


def corrected(answers: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """p(c) / w(c), renormalised; NaN rows stay NaN."""
    divided = answers / weights
    return divided / divided.sum(axis=1, keepdims=True)


def main(argv: list[str] | None = None) -> int:
    from ser.serving.bundle import load_bundle
    from ser.training.corpora import target_mask
    from ser.training.data import EMOTIONS
    from ser.training.loco import corpus_table
    from ser.training.target_sets import single_labels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "word_prior.json")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    table = corpus_table(args.data, ordinary=True)
    bundle = load_bundle(args.models, joint_views=False)
    stored = all_answers(bundle, table, models=args.models, cache=args.cache, log=log)
    answers, fold = stored["answers"], stored["fold"]
    labels = single_labels(target_mask(table))
    ravdess = table["corpus"].to_numpy() == "ravdess"

    fixed = np.full_like(answers, np.nan)
    for number in np.unique(fold[ravdess]):
        mine, others = ravdess & (fold == number), ravdess & (fold != number)
        fixed[mine] = corrected(answers[mine], prior_weights(answers[others], labels[others]))
    weights = prior_weights(answers[ravdess], labels[ravdess])
    fixed[~ravdess] = corrected(answers[~ravdess], weights)
    refused = stored["problems"][stored["problems"] != ""]
    for problem, count in zip(*np.unique([p.split(":")[0] for p in refused], return_counts=True), strict=True):
        log(f"refused {count}: {problem}")
    log("w(c) from all 20 actors: " + ", ".join(f"{e} {w:.2f}" for e, w in zip(EMOTIONS, weights, strict=True)))
    report = {"weights": dict(zip(EMOTIONS, weights.round(4).tolist(), strict=True)),
              "as is": score_words(answers, table, kind="as is"),
              "corrected": score_words(fixed, table, kind="corrected")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
