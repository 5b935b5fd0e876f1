"""Leave one corpus out with the linear views: RAVDESS, ASED and speechocean's ordinary voices (issue 22).

The linear views (L2 logistic regressions on the 6373 openSMILE ComParE functionals and on their 473
voice-source columns, fused by the normalised geometric mean) with the joint views' recipe
(``ser.training.linear_views.LinearRecipe()``: masked loss, corpora equal, classes balanced within
each corpus, every speed and room copy), now on three corpora. speechocean762's 125 ordinary
speakers have no emotion labels: each clip carries the partial label "neutral or calm"
(``ser.training.corpora.NEUTRAL_OR_CALM``), whose loss rewards the two emotions' summed probability
and teaches all eight (an ordinary voice is not angry): ``ser.training.masked_linear``.

Parts (each writes its answers to ``runs/loco_linear/``; run them in any order, in parallel)::

    python -m experiments.loco_linear --data ../shared/data --part cuts                # cut functionals
    python -m experiments.loco_linear --data ../shared/data --part loco [--training NAME ...]
    python -m experiments.loco_linear --data ../shared/data --part cv [--fold K ...] [--corpora ravdess ...]
    python -m experiments.loco_linear --data ../shared/data --part report              # results.json

- ``loco``: train on every speaker of the named corpora (:data:`TRAININGS`), test on the others'
  clips. The L2 strength of each view is chosen on validation speakers of the *training* corpora only
  (fold 0 of their speaker folds, ``corpora.speaker_folds``, seed 0: every corpus's speakers dealt
  by gender), with a fit on the other four folds, then refitted on all their speakers. The left-out
  corpus is never used for either.
- ``cv``: the three corpora together (or ``--corpora``: RAVDESS alone, RAVDESS and ASED, for
  comparison), 5 folds by speaker dealt corpus by corpus (RAVDESS's are the headline's folds,
  ASED's those of ``experiments.cross_corpus``, whatever else is in the table), fold k+1 the
  validation set for the L2 strength, then refitted on train + validation; the test fold's speakers
  never heard.
- ``cuts``: one word-length cut (0.5-1.2 s, uniform, at a uniform place inside the trimmed speech,
  seeded by the file name) of every clip, through the app's own trimming and functionals. Every
  model above scores the cuts of the speakers it never heard, beside their full sentences.

A validation clip counts as right when the answer among its corpus's emotions is in its target set
(speechocean: neutral or calm); corpora count equally in the validation score, as in the loss.

Measured wall time (2026-12-07, 2 cores shared with four other engineers' jobs, nice 15, functionals
cached; extracting them for the three corpora took about 30 min): cuts 10.1 min, loco 12.0 min (five
trainings), cv 18.7 min (three corpora), 11.0 min (``--corpora ravdess ased``), 2.1 min
(``--corpora ravdess``), 12.3 min (``--ordinary-as-neutral``), report 0.1 min. Results and plain
words: ``docs/cross-corpus.md``, section "Three corpora, one left out".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# One BLAS thread: a second one spins against the other jobs of this shared machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from ser.training.corpora import speaker_folds  # noqa: E402
from ser.training.data import EMOTIONS  # noqa: E402
from ser.training.linear_views import LinearRecipe, single_label_classes  # noqa: E402

# The protocol's pieces are python -m ser loco's (ser.training.loco): the study runs the same code.
from ser.training.loco import (  # noqa: E402, F401  (CUT_SECONDS, word_cut: the study's tests read them here)
    CUT_SECONDS,
    corpus_table,
    fit_and_choose,
    fused_answers,
    load_cuts,
    load_functional_clips,
    speechocean_ages,
    word_cut,
)

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "loco_linear"
CORPORA = ("ravdess", "ased", "speechocean")
#: ``name -> training corpora`` of the leave-one-corpus-out part (with and without the ordinary voices).
TRAININGS: dict[str, tuple[str, ...]] = {
    "ased+speechocean": ("ased", "speechocean"),
    "ased": ("ased",),
    "ravdess+speechocean": ("ravdess", "speechocean"),
    "ravdess": ("ravdess",),
    "ravdess+ased": ("ravdess", "ased"),
}
N_FOLDS, SEED = 5, 0
#: File-name suffix of the variant whose ordinary voices are taught as neutral alone (``--ordinary-as-neutral``).
VARIANT = "~neutral"


def load_three(data: Path, cache: Path):
    """RAVDESS speech (actors 1-20), ASED and speechocean, with cached functionals of every copy
    (:func:`ser.training.loco.load_functional_clips`; ``clips.age``: speechocean's ages, NaN elsewhere)."""
    return load_functional_clips(corpus_table(data), cache=cache, ages=speechocean_ages(data))


def answer_space(clips, trained_on: np.ndarray) -> np.ndarray:
    """Boolean (len(EMOTIONS),): the emotions the training corpora taught as single labels (the model's
    answers; a class known only inside "neutral or calm" is not learnt: ``linear_views.training_copies``)."""
    return single_label_classes(clips, trained_on)


VIEWS = ("functionals", "voicing")


def save_answers(file: Path, clips, views, rows: np.ndarray, allowed: np.ndarray, **extra) -> None:
    """The test rows' fused answers on full sentences, and the fitted views (to score the cuts
    later), into ``file`` (.npz); ``extra`` into its .json twin."""
    arrays = {"rows": np.flatnonzero(rows), "allowed": allowed,
              "full": fused_answers(views, clips.speeds[1.0][rows], allowed)}
    for name, view in zip(VIEWS, views, strict=True):
        arrays |= {f"{name}_mean": view.mean, f"{name}_scale": view.scale, f"{name}_coef": view.model.coef,
                   f"{name}_intercept": view.model.intercept}
        if view.columns is not None:
            arrays[f"{name}_columns"] = view.columns
    np.savez(file, **arrays)
    (file.with_suffix(".json")).write_text(json.dumps(extra, indent=1, default=float) + "\n", encoding="utf-8")


def load_views(stored) -> list:
    """The views saved by :func:`save_answers` (an opened .npz)."""
    from ser.training.linear_views import LinearView
    from ser.training.masked_linear import MaskedLogistic

    return [LinearView(columns=stored[f"{name}_columns"] if f"{name}_columns" in stored else None,
                       mean=stored[f"{name}_mean"], scale=stored[f"{name}_scale"],
                       model=MaskedLogistic(coef=stored[f"{name}_coef"], intercept=stored[f"{name}_intercept"],
                                            iterations=0, converged=True))
            for name in VIEWS]


def run_loco(clips, names: list[str], recipe: LinearRecipe, *, suffix: str = "", log) -> None:
    for name in names:
        started = time.perf_counter()
        corpora = TRAININGS[name]
        members = np.isin(clips.corpus, corpora)
        folds = speaker_folds(clips.table[members], n_folds=N_FOLDS, seed=SEED)
        validation = members & np.isin(clips.speaker, folds[0])
        train = members & ~validation
        views, choice = fit_and_choose(clips, train, validation, recipe, log=log, label=name)
        save_answers(RUNS / f"loco-{name}{suffix}.npz", clips, views, ~members, answer_space(clips, members),
                     trained_on=list(corpora), c=choice, seconds=round(time.perf_counter() - started, 1))
        log(f"loco {name}: {(time.perf_counter() - started) / 60:.1f} min")


def cv_tag(corpora: tuple[str, ...]) -> str:
    """File-name tag of a cross-validation over ``corpora`` (``cv-<tag>-fold<k>.npz``)."""
    return "+".join(corpus for corpus in CORPORA if corpus in corpora)


def run_cv(clips, folds: list[int], recipe: LinearRecipe, *, corpora: tuple[str, ...], suffix: str = "", log) -> None:
    members = np.isin(clips.corpus, corpora)
    everyone = speaker_folds(clips.table[members], n_folds=N_FOLDS, seed=SEED)
    for fold in folds:
        started = time.perf_counter()
        test = np.isin(clips.speaker, everyone[fold])
        validation = np.isin(clips.speaker, everyone[(fold + 1) % N_FOLDS])
        train = members & ~test & ~validation
        views, choice = fit_and_choose(clips, train, validation, recipe, log=log, label=f"fold {fold}")
        save_answers(RUNS / f"cv-{cv_tag(corpora)}{suffix}-fold{fold}.npz", clips, views, test,
                     answer_space(clips, train), corpora=list(corpora), fold=fold, c=choice,
                     seconds=round(time.perf_counter() - started, 1))
        log(f"cv {cv_tag(corpora)} fold {fold}: {(time.perf_counter() - started) / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/, ased/ and speechocean/")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--part", choices=("cuts", "loco", "cv", "report"), required=True)
    parser.add_argument("--training", action="append", choices=sorted(TRAININGS), help="loco: repeat; default all")
    parser.add_argument("--fold", action="append", type=int, choices=range(N_FOLDS), help="cv: repeat; default all")
    parser.add_argument("--ordinary-as-neutral", action="store_true",
                        help="variant: speechocean's target set is neutral alone (files named ~neutral)")
    parser.add_argument("--corpora", nargs="+", choices=CORPORA, default=list(CORPORA),
                        help="cv: the corpora cross-validated together (default all three)")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    RUNS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if args.part == "cuts":  # needs the clips only, not the cached functionals of the copies
        load_cuts(corpus_table(args.data), cache=args.cache, log=log)
        log(f"part cuts: {(time.perf_counter() - started) / 60:.1f} min")
        return 0
    clips = load_three(args.data, args.cache)
    log(f"{len(clips)} clips: " + ", ".join(f"{k} {v}" for k, v in clips.table.groupby("corpus").size().items()))
    recipe = LinearRecipe()
    suffix = ""
    if args.ordinary_as_neutral:
        # The variant: "calm" leaves the ordinary voices' target set (they still teach all eight).
        clips.targets[clips.corpus == "speechocean", EMOTIONS.index("calm")] = False
        suffix = VARIANT
    if args.part == "loco":
        run_loco(clips, args.training or list(TRAININGS), recipe, suffix=suffix, log=log)
    elif args.part == "cv":
        run_cv(clips, args.fold or list(range(N_FOLDS)), recipe, corpora=tuple(args.corpora), suffix=suffix,
               log=log)
    else:
        from experiments.loco_linear_report import write_report

        cuts, seconds = load_cuts(clips.table, cache=args.cache, log=log)
        write_report(clips, cuts=cuts, cut_seconds=seconds, runs=RUNS, log=log)
    log(f"part {args.part}: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
