"""Train the shipped model with speaker-grouped cross-validation.

Run ``python -m ser train --data ../shared/data/ravdess --out models/``. Five folds by
actor: in each, four actors are the test set, four others the validation set (early
stopping, the linear views' L2 strength and calibration watch them) and the remaining
twelve, with their song clips, the training set. The shipped model fuses the five fold
models of every view, so every actor you have contributed to it; the metrics are the fold
models' scores on their own unseen test actors (:func:`ser.training.evaluate.summarize_cross_validation`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from ser.config import FeatureConfig
from ser.training.clips import ClipSet, training_mask
from ser.training.cnn import average_windows, fit_cnn, predict_windows
from ser.training.settings import TrainSettings
from ser.training.splits import train_validation_test
from ser.training.target_sets import answered_right, one_hot_targets
from ser.training.views import ViewFit, fit_views


@dataclasses.dataclass(frozen=True)
class FoldRun:
    """One fold of the cross-validation: what was fitted and what it predicted.

    Attributes
    ----------
    fold : int
    train_actors, validation_actors, test_actors : tuple of int
    cnn : keras.Model
        The fold CNN that ships: refitted on training + validation actors for ``refit_epochs``.
    views : tuple of ViewFit
        The clip-level linear views (:func:`ser.training.views.fit_views`); empty without functionals.
    history : dict
        Per-epoch curves of the early-stopped CNN run.
    refit_epochs : int
    seconds : float
        Wall time of the fold.
    test_positions : np.ndarray, shape (n_test,)
        Positions of the test clips in the ClipSet.
    test_probabilities : dict
        ``head -> (n_test, n_classes)``: the views fused window by window, as the shipped model does.
    validation_positions : np.ndarray, shape (n_validation,)
    validation_probabilities : dict
        ``head -> (n_validation, n_classes)`` from models that never saw the validation actors
        (the early-stopped CNN, the views' training-only fits), for calibration.
    view_probabilities : dict
        ``view -> (n_test, n_emotions)`` emotion probabilities of each view alone (``log_mel_cnn`` first).
    validation_view_probabilities : dict
        ``view -> (n_validation, n_emotions)``: the same from the models that never saw the
        validation speakers (what a fusion weight could be fitted on).
    test_windows, validation_windows : tuple of (np.ndarray, np.ndarray)
        The CNN's emotion probabilities per window, shape (n_windows, n_emotions), and each
        window's clip (its position among the fold's test or validation clips), shape (n_windows,):
        the fusion works window by window (:func:`ser.training.cnn.average_windows`).
    """

    fold: int
    train_actors: tuple[int, ...]
    validation_actors: tuple[int, ...]
    test_actors: tuple[int, ...]
    cnn: object
    views: tuple[ViewFit, ...]
    history: dict[str, list[float]]
    refit_epochs: int
    seconds: float
    test_positions: np.ndarray
    test_probabilities: dict[str, np.ndarray]
    validation_positions: np.ndarray
    validation_probabilities: dict[str, np.ndarray]
    view_probabilities: dict[str, np.ndarray]
    validation_view_probabilities: dict[str, np.ndarray]
    test_windows: tuple[np.ndarray, np.ndarray]
    validation_windows: tuple[np.ndarray, np.ndarray]

    def view(self, name: str) -> ViewFit | None:
        """The linear view called ``name`` (``functionals`` or ``voicing``), or None."""
        return next((view for view in self.views if view.name == name), None)


@dataclasses.dataclass(frozen=True)
class CrossValidationRun:
    """Every fold of one cross-validation run, in fold order."""

    folds: tuple[FoldRun, ...]

    def models(self, view: str) -> list:
        """The fold models of one view: ``"log_mel_cnn"``, ``"functionals"`` or ``"voicing"`` (may be empty)."""
        if view == "log_mel_cnn":
            return [fold.cnn for fold in self.folds]
        return [fold.view(view).model for fold in self.folds if fold.view(view) is not None]


def _accuracy(probabilities: np.ndarray, truth: np.ndarray, allowed: np.ndarray | None, *,
              targets: np.ndarray | None = None) -> float:
    """Share of clips answered right; with ``allowed`` (bool, like ``probabilities``) the answer is
    the most probable of the clip's corpus's emotions (an emotion the corpus lacks is never wrong).
    With ``targets`` (bool, like ``probabilities``) an answer is right anywhere in the clip's target
    set (a partial label, whose ``truth`` is -1); else it must be ``truth``."""
    if targets is None:
        targets = one_hot_targets(truth, n_classes=probabilities.shape[1])
    return float(np.mean(answered_right(probabilities, targets=targets, allowed=allowed)))


def split_speakers(clips: ClipSet, *, n_folds: int, fold: int, seed: int) -> tuple[list[int], list[int], list[int]]:
    """Training, validation and test speakers (codes of ``clips.actor``) of one fold.

    One RAVDESS folder: :func:`ser.training.splits.train_validation_test` over the actors (the
    headline's folds). Several corpora: :func:`ser.training.corpora.fold_speakers`, which deals
    each corpus's speakers into the folds on its own (RAVDESS's actors land exactly as in the
    headline's folds, and every fold holds speakers of every corpus that has enough of them).
    """
    if clips.speakers is None:
        return train_validation_test(sorted(set(clips.actor.tolist())), n_folds=n_folds, fold=fold, seed=seed)
    import pandas as pd

    from ser.training.corpora import fold_speakers
    from ser.training.data import GENDERS

    codes, first = np.unique(clips.actor, return_index=True)
    table = pd.DataFrame({
        "speaker": [clips.speakers[code - 1] for code in codes],
        "corpus": clips.corpus[first],
        "gender": [GENDERS[gender] if gender >= 0 else None for gender in clips.gender[first]],
    })
    parts = fold_speakers(table, n_folds=n_folds, fold=fold, seed=seed)
    code = {name: int(value) for name, value in zip(table["speaker"], codes, strict=True)}
    return tuple(sorted(code[name] for name in part) for part in parts)


def cnn_corpus_mask(clips: ClipSet, *, corpora: tuple[str, ...]) -> np.ndarray:
    """The clips the log-mel CNN may learn from (:attr:`TrainSettings.cnn_corpora`): those of
    ``corpora``, or every clip when ``corpora`` is empty.

    Returns
    -------
    np.ndarray of bool, shape (len(clips),)

    Raises
    ------
    ValueError
        When ``corpora`` is given for clips of one RAVDESS folder (nothing to choose from) or names
        a corpus the clips do not hold.
    """
    if not corpora:
        return np.ones(len(clips), dtype=bool)
    if clips.corpus is None:
        raise ValueError("cnn_corpora chooses among several corpora; these clips are one RAVDESS folder's")
    known = sorted(set(clips.corpus.tolist()))
    unknown = sorted(set(corpora) - set(known))
    if unknown:
        raise ValueError(f"cnn_corpora {unknown} are not among the clips' corpora {known}")
    return np.isin(clips.corpus, list(corpora))


def cross_validate(
    clips: ClipSet,
    *,
    speech_mask: np.ndarray,
    config: FeatureConfig,
    settings: TrainSettings,
    folds: list[int] | None = None,
    log: Callable[[str], None] = print,
    verbose: int = 0,
) -> CrossValidationRun:
    """Speaker-grouped cross-validation of the shipped recipe.

    Parameters
    ----------
    clips : ClipSet
        Speech and song clips; only speech clips (``speech_mask``, bool of shape ``(len(clips),)``)
        are validated and tested on.
    folds : list of int, optional
        Run only these folds (all ``settings.n_folds`` by default).
    settings : TrainSettings
        With ``cnn_corpora`` (several corpora), the CNN trains and early-stops on those corpora's
        clips only (:func:`cnn_corpus_mask`); the linear views and the calibration use every corpus.
    verbose : int
        Keras' verbosity while fitting.
    """
    # The CNN's own clips (settings.cnn_corpora): training, early stopping and refit; it still
    # scores every validation and test clip for the fusion.
    cnn_clips = cnn_corpus_mask(clips, corpora=settings.cnn_corpora)
    runs = []
    for fold in folds if folds is not None else range(settings.n_folds):
        train_actors, val_actors, test_actors = split_speakers(clips, n_folds=settings.n_folds, fold=fold,
                                                               seed=settings.seed)
        overlap = (
            (set(train_actors) & set(val_actors))
            | (set(train_actors) & set(test_actors))
            | (set(val_actors) & set(test_actors))
        )
        if overlap:  # cannot happen by construction; refuse to report a leaky number if it ever does
            raise RuntimeError(f"actors {sorted(overlap)} are in two parts of fold {fold}")
        val_mask = np.isin(clips.actor, val_actors) & speech_mask
        test_mask = np.isin(clips.actor, test_actors) & speech_mask
        if not np.any(val_mask & cnn_clips):
            raise ValueError(f"fold {fold} has no validation speakers of {list(settings.cnn_corpora)} to early-stop "
                             "the CNN on; let the CNN learn from more corpora or use fewer folds")
        started = time.perf_counter()
        early_stopped, model, history, refit_epochs = fit_cnn(
            clips.subset(training_mask(clips, actors=train_actors) & cnn_clips),
            clips.subset(val_mask & cnn_clips),
            refit_on=clips.subset(training_mask(clips, actors=train_actors + val_actors) & cnn_clips),
            config=config,
            settings=settings,
            seed=settings.seed + fold,
            verbose=verbose,
        )
        # Validation (and calibration) probabilities come from the early-stopped model, which
        # never saw those actors; test probabilities from the model that ships.
        val_windows = predict_windows(early_stopped, clips.subset(val_mask), config=config)
        test_windows = predict_windows(model, clips.subset(test_mask), config=config)
        views = fit_views(
            clips, train_mask=np.isin(clips.actor, train_actors), validation_mask=val_mask, test_mask=test_mask,
            speech_mask=speech_mask, settings=settings,
        )
        n_test, n_val = int(test_mask.sum()), int(val_mask.sum())
        test_probabilities = average_windows(
            *test_windows, n_clips=n_test, functional_probabilities=[view.test_probabilities for view in views]
        )
        val_probabilities = average_windows(
            *val_windows, n_clips=n_val,
            functional_probabilities=[{"emotion": view.validation_probabilities} for view in views],
        )
        view_probabilities = {
            "log_mel_cnn": average_windows(*test_windows, n_clips=n_test)["emotion"],
            **{view.name: view.test_probabilities["emotion"] for view in views},
        }
        validation_view_probabilities = {
            "log_mel_cnn": average_windows(*val_windows, n_clips=n_val)["emotion"],
            **{view.name: view.validation_probabilities for view in views},
        }
        seconds = time.perf_counter() - started
        truth, targets = clips.emotion[test_mask], clips.targets()[test_mask]
        allowed = None if clips.class_mask is None else clips.class_mask[test_mask]
        accuracy = _accuracy(test_probabilities["emotion"], truth, allowed, targets=targets)
        who = "actors" if clips.speakers is None else "speakers"
        log(
            f"fold {fold}: test {who} {test_actors} accuracy {accuracy:.3f} "
            + " ".join(f"{name} {_accuracy(p, truth, allowed, targets=targets):.3f}"
                       for name, p in view_probabilities.items())
            + f" ({len(history['loss'])} epochs, {seconds:.0f} s)"
        )
        runs.append(
            FoldRun(
                fold=fold, train_actors=tuple(train_actors), validation_actors=tuple(val_actors),
                test_actors=tuple(test_actors), cnn=model, views=views, history=history, refit_epochs=refit_epochs,
                seconds=seconds, test_positions=np.flatnonzero(test_mask), test_probabilities=test_probabilities,
                validation_positions=np.flatnonzero(val_mask), validation_probabilities=val_probabilities,
                view_probabilities=view_probabilities, validation_view_probabilities=validation_view_probabilities,
                test_windows=(test_windows[0]["emotion"], test_windows[1]),
                validation_windows=(val_windows[0]["emotion"], val_windows[1]),
            )
        )
    return CrossValidationRun(folds=tuple(runs))
