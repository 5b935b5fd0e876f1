"""The clip-level linear views trained on several corpora: the same Keras views as the shipped ones
(:mod:`ser.training.views`), fitted with the masked loss of :mod:`ser.training.masked_linear`.

Each corpus teaches only the emotions it has; a clip with a partial label (speechocean's "neutral or
calm") teaches its target set's summed probability, and a class no single label teaches leaves it
(:func:`ser.training.target_sets.narrow_partial_labels`, as the linear study does); classes are
balanced within each corpus (a partial label is one class) and the corpora weigh the same (the
recipe ``docs/cross-corpus.md`` recommends), and every speed and room copy is a training row, as
shipped. Gender learns from the clips whose gender is known, intensity from those that have one
(RAVDESS); a head with no such clips answers 50/50.
:func:`ser.training.views.fit_views` calls these for a multi-corpus :class:`ClipSet`::

    model = fit_masked_member(train_clips, c=0.003)           # keras.Model, as fit_functional_member
    c, scores, probabilities = choose_masked_c(train_clips, validation_clips, grid=(0.001, 0.01))
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from ser.serving.layers import STANDARDIZE_LIMIT
from ser.training.clips import ClipSet
from ser.training.masked_linear import MaskedLogistic, fit_masked_logistic, group_balanced_weights, masked_softmax
from ser.training.target_sets import answered_right, narrow_partial_labels, taught_classes
from ser.training.views import binary_softmax_head, linear_member


def _training_rows(train: ClipSet, columns: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every copy of every training clip, standardised (float32, clipped), with the mean and scale."""
    copies = train.functional_copies()
    stacked = np.concatenate([copy if columns is None else copy[:, columns] for copy in copies])
    mean = stacked.mean(axis=0, dtype=np.float64)
    scale = stacked.std(axis=0, dtype=np.float64)
    scale = np.where(scale > 1e-8, scale, 1.0)
    stacked = np.clip((stacked - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT).astype(np.float32)
    return stacked, mean, scale


def _emotion_fits(
    train: ClipSet, rows: np.ndarray, *, grid: tuple[float, ...], corpus_weights: dict[str, float] | None = None
) -> dict[float, MaskedLogistic]:
    """The masked emotion model for each C of ``grid``, warm-started from the strongest L2 up."""
    copies = len(rows) // len(train)
    labels = np.tile(train.emotion, copies)
    class_mask = np.tile(train.class_mask, (copies, 1))
    weights = group_balanced_weights(labels, groups=np.tile(train.corpus, copies), group_weights=corpus_weights)
    targets = None
    if (labels < 0).any():  # partial labels: target sets (single labels only keep the labels path, bit for bit)
        targets, class_mask = narrow_partial_labels(labels, np.tile(train.targets(), (copies, 1)), class_mask,
                                                    taught=taught_classes(labels, class_mask))
        labels = None
    fits: dict[float, MaskedLogistic] = {}
    previous = None
    for c in sorted(grid):
        previous = fit_masked_logistic(rows, labels, class_mask=class_mask, target_mask=targets, c=c,
                                       sample_weight=weights, initial=previous)
        fits[c] = previous
    return fits


def _binary_head(rows: np.ndarray, labels: np.ndarray, *, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax kernel (n_columns, 2) and bias (2,) of an L2 logistic regression on the rows whose
    label is known (>= 0); zeros (50/50) when they hold fewer than two classes."""
    known = labels >= 0
    if len(np.unique(labels[known])) < 2:
        return np.zeros((rows.shape[1], 2)), np.zeros(2)
    return binary_softmax_head(LogisticRegression(C=c, max_iter=3000).fit(rows[known], labels[known]))


def fit_masked_member(train: ClipSet, *, c: float, columns: np.ndarray | None = None,
                      corpus_weights: dict[str, float] | None = None):
    """Fit one linear view on clips of several corpora (``train.masked``); see the module docstring.
    ``corpus_weights`` (``corpus -> weight``, others 1) scale the corpora's equal shares of the emotion loss.

    Returns
    -------
    keras.Model
        As :func:`ser.training.views.fit_functional_member`: input ``(batch, n_functionals)``
        (with ``columns``, zero weights elsewhere); softmax heads ``emotion`` (8), ``gender``, ``intensity``.
    """
    rows, mean, scale = _training_rows(train, columns)
    copies = len(rows) // len(train)
    emotion = _emotion_fits(train, rows, grid=(c,), corpus_weights=corpus_weights)[c]
    heads = {"emotion": (emotion.coef, emotion.intercept)}
    for head in ("gender", "intensity"):
        heads[head] = _binary_head(rows, np.tile(getattr(train, head), copies), c=c)
    return linear_member(n_features=train.functionals[1.0].shape[1], columns=columns, mean=mean, scale=scale,
                         heads=heads)


def corpus_mean_accuracy(probabilities: np.ndarray, clips: ClipSet, *,
                         corpus_weights: dict[str, float] | None = None) -> float:
    """Accuracy within each clip's corpus's emotions, averaged over the corpora (each counts once,
    or by its weight in ``corpus_weights``, others 1). An answer is right when it is in the clip's
    target set (its emotion, or any of a partial label's).

    Parameters
    ----------
    probabilities : np.ndarray, shape (len(clips), len(EMOTIONS))
    """
    correct = answered_right(probabilities, targets=clips.targets(), allowed=clips.class_mask)
    names = np.unique(clips.corpus)
    weights = [(corpus_weights or {}).get(str(name), 1.0) for name in names]
    return float(np.average([correct[clips.corpus == name].mean() for name in names], weights=weights))


def choose_masked_c(
    train: ClipSet, validation: ClipSet, *, grid: tuple[float, ...], columns: np.ndarray | None = None,
    corpus_weights: dict[str, float] | None = None,
) -> tuple[float, dict[str, float], np.ndarray]:
    """Pick the L2 strength whose masked emotion model, fitted on ``train``, scores best on the
    validation speakers (:func:`corpus_mean_accuracy`: every corpus counts the same, or by its
    weight in ``corpus_weights``, as in the loss).

    Returns
    -------
    c : float
    scores : dict
        Validation score per candidate (keys are the C values as strings).
    validation_probabilities : np.ndarray, shape (len(validation), len(EMOTIONS))
        The chosen model's probabilities over all eight emotions (for calibration).
    """
    rows, mean, scale = _training_rows(train, columns)
    fits = _emotion_fits(train, rows, grid=grid, corpus_weights=corpus_weights)
    del rows
    values = validation.functionals[1.0] if columns is None else validation.functionals[1.0][:, columns]
    validation_rows = np.clip((values - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT)
    probabilities = {c: masked_softmax(fit.logits(validation_rows)) for c, fit in fits.items()}
    scores = {str(c): corpus_mean_accuracy(probabilities[c], validation, corpus_weights=corpus_weights)
              for c in grid}
    best = max(grid, key=lambda c: (scores[str(c)], -c))  # ties: stronger L2
    return best, scores, probabilities[best]
