"""The joint views: the bundle's second model, for voices unlike RAVDESS's actors.

The main model (``model.keras``) learnt from RAVDESS's 20 actors only and collapses on other voices.
Training the whole model on several corpora costs the RAVDESS headline 4-10 points (``docs/cross-corpus.md``),
so the bundle keeps it and adds a small model beside it: the two linear views (L2 logistic regressions on
the openSMILE functionals, all 6373 and the 473 voice-source ones, fused by the normalised geometric mean)
trained on RAVDESS, ASED and (the shipped recipe) speechocean's ordinary voices with the multi-corpus recipe
(:class:`ser.training.linear_views.LinearRecipe`: masked loss with target sets, so an ordinary voice teaches
"neutral or calm" and ASED never teaches "not calm"; corpora equal, classes balanced within each corpus, every
speed and room copy). :meth:`ser.serving.bundle.Bundle.predict_recording` answers with it when the
unfamiliar-voice check fires.

:func:`train_joint_views`:

1. cross-validates the views, 5 folds by speaker over every corpus (fold k of each corpus is the test
   set and fold k+1 the validation set, so the RAVDESS part is exactly the headline's folds); each
   fold's L2 strength per view is the grid value with the best validation accuracy (an answer in the
   clip's target set, pooled over the corpora), refitted on training + validation speakers;
2. fits both views on every clip, each with the L2 strength of the best mean validation accuracy over
   the folds;
3. fits the temperature on the out-of-fold answers (each corpus's clips weighted equally; a partial
   label's likelihood is its target set's summed probability).

``python -m ser joint-views`` writes ``joint_views.keras``, ``joint_views.json`` (with each fold's L2
choice) and the out-of-fold answers ``joint_views_out_of_fold.npz`` (which ``python -m ser routing``
scores) into the bundle::

    python -m ser joint-views --data ../shared/data --out models/     # ~23 min here, functionals cached
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from ser.training.corpora import corpus_emotions, fold_speakers
from ser.training.data import EMOTIONS
from ser.training.linear_views import FunctionalClips, LinearRecipe, LinearView, fit_views, fuse_probabilities

#: The corpora the joint views learn from, in the row order of their clip table ...
CORPORA = ("ravdess", "ased")
#: ... and the ordinary voices they may learn from too (partial label "neutral or calm"; ``--ordinary``).
ORDINARY = "speechocean"
#: Speaker folds of the cross-validation, and their seed (:func:`ser.training.corpora.fold_speakers`).
N_FOLDS, SEED = 5, 0
#: The views, in the order the model fuses them.
VIEWS = ("functionals", "voicing")
#: Their out-of-fold answers in the bundle (one writer: ``python -m ser joint-views``).
JOINT_OUT_OF_FOLD_FILE = "joint_views_out_of_fold.npz"


@dataclasses.dataclass(frozen=True)
class JointFolds:
    """The cross-validation's answers: ``rows`` (n,) into the clips, ``fused`` (n, 8) probabilities of the
    fold's refitted views, and per fold ``choices[k][view]`` = ``{"chosen": C, "validation_accuracy":
    {str(C): accuracy}}``."""

    rows: np.ndarray
    fused: np.ndarray
    choices: list[dict[str, dict]]


def _columns(clips: FunctionalClips, view: str) -> np.ndarray | None:
    from ser.serving.functionals import voicing_columns

    return None if view == "functionals" else voicing_columns(clips.names)


def _grid(recipe: LinearRecipe, view: str) -> tuple[float, ...]:
    return tuple(recipe.c_grid if view == "functionals" else recipe.voicing_c_grid)


def _allowed(clips: FunctionalClips, rows: np.ndarray) -> np.ndarray:
    """Which of the app's emotions the corpora of ``rows`` (bool, n_clips) teach, shape (len(EMOTIONS),)."""
    space = corpus_emotions(clips.table[rows])
    return np.isin(EMOTIONS, sorted({emotion for names in space.values() for emotion in names}))


def fit_fold(clips: FunctionalClips, train: np.ndarray, validation: np.ndarray, recipe: LinearRecipe, *,
             log: Callable[[str], None], label: str) -> tuple[list[LinearView], dict[str, dict]]:
    """Both views for one fold: every L2 strength of the grid fitted on ``train`` (bool, n_clips), the one
    with the best accuracy on ``validation`` (ties: the stronger L2) refitted on both."""
    views, choice = [], {}
    allowed = _allowed(clips, train)
    for view in VIEWS:
        started, grid, columns = time.perf_counter(), _grid(recipe, view), _columns(clips, view)
        if len(grid) == 1:  # nothing to choose
            views += fit_views(clips, train | validation, recipe=recipe, c_values=grid, columns=columns)
            choice[view] = {"chosen": grid[0]}
            continue
        candidates = fit_views(clips, train, recipe=recipe, c_values=grid, columns=columns)
        accuracy = {}
        targets = clips.targets[validation]  # a single label is a target set of one: right = the label
        for c, candidate in zip(grid, candidates, strict=True):
            answers = np.where(allowed, candidate.probabilities(clips.speeds[1.0][validation]), -1).argmax(axis=1)
            accuracy[c] = float(np.mean(targets[np.arange(len(answers)), answers]))
        best = max(grid, key=lambda c: (accuracy[c], -c))
        views += fit_views(clips, train | validation, recipe=recipe, c_values=(best,), columns=columns)
        choice[view] = {"chosen": best, "validation_accuracy": {str(c): value for c, value in accuracy.items()}}
        log(f"  {label} {view}: C {best} ({time.perf_counter() - started:.0f} s)")
    return views, choice


def cross_validate_joint(clips: FunctionalClips, recipe: LinearRecipe, *, corpora: tuple[str, ...] = CORPORA,
                         log: Callable[[str], None] = lambda message: None) -> JointFolds:
    """Out-of-fold answers of the joint views on every clip of ``corpora`` (5 folds by speaker)."""
    from ser.training.loco import fused_answers  # the fusion leave-one-corpus-out scores with (NaN rows: none here)

    members = np.isin(clips.corpus, corpora)
    rows, fused, choices = [], [], []
    for fold in range(N_FOLDS):
        groups = fold_speakers(clips.table[members], n_folds=N_FOLDS, fold=fold, seed=SEED)
        train, validation, test = (np.isin(clips.speaker, group) & members for group in groups)
        views, choice = fit_fold(clips, train, validation, recipe, log=log, label=f"fold {fold}")
        rows.append(np.flatnonzero(test))
        fused.append(fused_answers(views, clips.speeds[1.0][test], _allowed(clips, train | validation)))
        choices.append(choice)
    return JointFolds(rows=np.concatenate(rows), fused=np.concatenate(fused), choices=choices)


def chosen_c(choices: list[dict[str, dict]], *, grid: tuple[float, ...], view: str) -> float:
    """The L2 strength with the best mean validation accuracy over the folds (ties: the stronger L2).

    >>> chosen_c([{"voicing": {"validation_accuracy": {"0.1": 0.5, "1.0": 0.6}}}], grid=(0.1, 1.0), view="voicing")
    1.0
    """
    if len(grid) == 1:
        return grid[0]
    mean = {c: float(np.mean([fold[view]["validation_accuracy"][str(c)] for fold in choices])) for c in grid}
    return max(grid, key=lambda c: (mean[c], -c))


def fit_equal_temperature(probabilities: np.ndarray, targets: np.ndarray, corpora: np.ndarray) -> float:
    """The temperature minimising the mean of each corpus's negative log-likelihood (corpora equal); the
    likelihood of a partial label is its target set's summed probability, as in the masked loss.

    Parameters
    ----------
    probabilities : np.ndarray, shape (n, n_emotions)
    targets : np.ndarray of bool, shape (n, n_emotions)
        Each clip's target set (a single label: one class).
    corpora : np.ndarray of str, shape (n,)
    """
    from scipy.optimize import minimize_scalar

    from ser.serving.calibration import apply_temperature

    targets = np.asarray(targets, dtype=bool)

    def loss(temperature: float) -> float:
        scaled = apply_temperature(probabilities, temperature=temperature)
        picked = np.log(np.clip(np.where(targets, scaled, 0.0).sum(axis=1), 1e-12, 1.0))
        return float(-np.mean([picked[corpora == corpus].mean() for corpus in np.unique(corpora)]))

    return float(minimize_scalar(loss, bounds=(0.05, 10.0), method="bounded").x)


def joint_model(views: list[LinearView], *, n_features: int):
    """One Keras model: raw functionals (batch, n_features) -> fused emotion probabilities (batch, 8).

    Raises
    ------
    ValueError
        If the views answer another number of emotions than the app.
    """
    import keras

    from ser.serving.layers import LogLinearFusion
    from ser.training.data import GENDERS, INTENSITIES
    from ser.training.views import linear_member

    inputs = keras.Input(shape=(n_features,), name="functionals")
    outputs = []
    for name, view in zip(VIEWS, views, strict=True):
        width = n_features if view.columns is None else len(view.columns)
        silent = {head: (np.zeros((width, len(classes))), np.zeros(len(classes)))
                  for head, classes in (("gender", GENDERS), ("intensity", INTENSITIES))}
        member = linear_member(n_features=n_features, columns=view.columns, mean=view.mean, scale=view.scale,
                               heads={"emotion": (view.model.coef, view.model.intercept), **silent})
        member.name = f"joint_{name}"
        outputs.append(member(inputs)["emotion"])
    fused = LogLinearFusion(name="emotion")(outputs)
    if fused.shape[-1] != len(EMOTIONS):
        raise ValueError(f"the joint views answer {fused.shape[-1]} emotions, the app {len(EMOTIONS)}")
    return keras.Model(inputs, {"emotion": fused}, name="ser_joint_views")


@dataclasses.dataclass(frozen=True)
class TrainedJointViews:
    """What :func:`train_joint_views` produced: the Keras ``model``, its ``temperature``, the L2 strength
    per view (``c``), the clips and speakers it learnt from, and the cross-validation (``folds``)."""

    model: object
    temperature: float
    c: dict[str, float]
    clips: int
    speakers: int
    folds: JointFolds


def train_joint_views(clips: FunctionalClips, *, recipe: LinearRecipe | None = None,
                      corpora: tuple[str, ...] = CORPORA,
                      log: Callable[[str], None] = lambda message: None) -> TrainedJointViews:
    """Cross-validate, choose the L2 strengths, fit on every clip of ``corpora``, fit the temperature.

    ``corpora`` holds :data:`CORPORA`, and may add :data:`ORDINARY` (the ordinary voices, partial label).

    Raises
    ------
    ValueError
        If ``corpora`` lacks one of :data:`CORPORA` or names one the clips lack, or the Keras model answers
        otherwise than the fitted views (more than 1e-4 apart: float32 against float64 is about 1e-6).
    """
    recipe = recipe or LinearRecipe()
    corpora = tuple(corpora)
    missing = sorted(set(CORPORA) - set(corpora)) + sorted(set(corpora) - set(clips.corpus))
    if missing:
        raise ValueError(f"the joint views learn from {CORPORA} (and may add {ORDINARY}); training on {corpora} "
                         f"lacks the clips of {missing}")
    folds = cross_validate_joint(clips, recipe, corpora=corpora, log=log)
    c = {view: chosen_c(folds.choices, grid=_grid(recipe, view), view=view) for view in VIEWS}
    log(f"L2 strength per view (best mean validation accuracy over {N_FOLDS} folds): {c}")
    everyone = np.isin(clips.corpus, corpora)
    views = []
    for view in VIEWS:
        views += fit_views(clips, everyone, recipe=recipe, c_values=(c[view],), columns=_columns(clips, view))
    model = joint_model(views, n_features=clips.speeds[1.0].shape[1])
    sample = clips.speeds[1.0][:: max(1, len(clips) // 200)]
    expected = fuse_probabilities(*[view.probabilities(sample) for view in views])
    got = np.asarray(model.predict(sample.astype(np.float32), verbose=0)["emotion"])
    if np.abs(got - expected).max() > 1e-4:
        raise ValueError(f"the Keras joint views differ from the fitted views by {np.abs(got - expected).max():.2g}")
    temperature = fit_equal_temperature(folds.fused, clips.targets[folds.rows], clips.corpus[folds.rows])
    return TrainedJointViews(model=model, temperature=temperature, c=c, clips=int(everyone.sum()),
                      speakers=int(len(np.unique(clips.speaker[everyone]))), folds=folds)


def out_of_fold_answers(trained: TrainedJointViews, clips: FunctionalClips):
    """The cross-validation's answers as :class:`ser.training.fold_answers.OutOfFold`, tempered as shipped."""
    from ser.serving.calibration import apply_temperature
    from ser.training.fold_answers import OutOfFold, clip_identity

    rows = trained.folds.rows
    identity = clip_identity(clips.table.iloc[rows].reset_index(drop=True))
    return OutOfFold(**identity, raw=trained.folds.fused,
                     probabilities=apply_temperature(trained.folds.fused, temperature=trained.temperature),
                     temperature=trained.temperature)
