"""The clip-level linear views: L2 logistic regression on openSMILE functionals (all of them, and
the voice-source ones alone), fitted with scikit-learn and copied into Keras models.

:func:`fit_views` is the one function every protocol (cross-validation, the leaky split) calls::

    from ser.training.views import fit_views
    views = fit_views(clips, train_mask=train, validation_mask=validation, test_mask=test,
                      speech_mask=speech, settings=settings)
    [(view.name, view.c) for view in views]  # [("functionals", 0.003), ("voicing", 0.001)]
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from sklearn.linear_model import LogisticRegression

from ser.serving.functionals import voicing_columns
from ser.serving.layers import STANDARDIZE_LIMIT
from ser.training.clips import ClipSet
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
from ser.training.networks import build_functional_model
from ser.training.settings import TrainSettings


@dataclasses.dataclass(frozen=True)
class ViewFit:
    """One clip-level view fitted for one split of the clips.

    Attributes
    ----------
    name : str
        ``"functionals"`` (every functional) or ``"voicing"`` (the voice-source ones only).
    model : keras.Model
        From :func:`fit_functional_member` on the training + validation clips.
    c : float
        The L2 strength chosen on the validation clips.
    validation_accuracy : dict
        Validation accuracy per candidate C (keys are the C values as strings).
    validation_probabilities : np.ndarray, shape (n_validation_clips, n_emotions)
        Emotion probabilities of the training-only fit, which never saw the validation clips
        (for calibration).
    test_probabilities : dict
        ``head -> (n_test_clips, n_classes)`` from ``model``.
    """

    name: str
    model: object
    c: float
    validation_accuracy: dict[str, float]
    validation_probabilities: np.ndarray
    test_probabilities: dict[str, np.ndarray]


def _standardize(
    copies: list[np.ndarray], columns: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack every training copy (:meth:`ClipSet.functional_copies`; only ``columns`` if
    given); return (standardised rows, mean, scale) as the model computes them."""
    stacked = np.concatenate(copies).astype(np.float64)
    if columns is not None:
        stacked = stacked[:, columns]
    mean = stacked.mean(axis=0)
    scale = stacked.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    return np.clip((stacked - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT), mean, scale


def _logistic(rows: np.ndarray, labels: np.ndarray, *, c: float, balanced: bool, n_classes: int):
    classifier = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if balanced else None)
    classifier.fit(rows, labels)
    if list(classifier.classes_) != list(range(n_classes)):
        raise ValueError(
            f"the training clips hold classes {list(classifier.classes_)}, not all {n_classes}; "
            "train on more actors"
        )
    return classifier


def fit_functional_member(train: ClipSet, *, c: float, columns: np.ndarray | None = None):
    """Fit a functional view: L2 logistic regression per head on standardised functionals.

    With ``columns``, only those functionals are used (the voicing view); the Keras model still
    takes the whole vector, with zero weights (and identity standardisation) elsewhere.

    Every speed copy of each training clip (0.9/1.0/1.1), its room copy (noise and
    reverberation, when loaded) and its word copy (a 0.5-1.2 s cut, when loaded) is a training
    row: that is the view's augmentation, done after the split like the CNN's. Emotion classes
    are weighted inversely to their frequency (neutral has half the clips). The fitted coefficients are copied into
    :func:`ser.training.networks.build_functional_model`, so the result is a Keras model.

    Returns
    -------
    keras.Model
        Input ``(batch, n_functionals)``; softmax heads ``emotion``, ``gender``, ``intensity``.
    """
    copies = train.functional_copies()
    rows, mean, scale = _standardize(copies, columns)
    heads = {}
    for head, n_classes in (("emotion", len(EMOTIONS)), ("gender", len(GENDERS)), ("intensity", len(INTENSITIES))):
        labels = np.tile(getattr(train, head), len(copies))
        classifier = _logistic(rows, labels, c=c, balanced=head == "emotion", n_classes=n_classes)
        if n_classes == 2:
            heads[head] = binary_softmax_head(classifier)
        else:
            heads[head] = (classifier.coef_.T, classifier.intercept_)
    return linear_member(n_features=train.functionals[1.0].shape[1], columns=columns, mean=mean, scale=scale,
                         heads=heads)


def binary_softmax_head(classifier: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """A fitted two-class logistic regression as a softmax kernel (n_columns, 2) and bias (2,):
    sigmoid(w.x + b) is the softmax of the logits (0, w.x + b)."""
    weights = classifier.coef_[0]
    return np.stack([np.zeros(weights.shape[0]), weights], axis=1), np.array([0.0, classifier.intercept_[0]])


def linear_member(*, n_features: int, columns: np.ndarray | None, mean: np.ndarray, scale: np.ndarray,
                  heads: dict[str, tuple[np.ndarray, np.ndarray]]):
    """The Keras model of a linear view (:func:`ser.training.networks.build_functional_model`)
    holding fitted standardisation and heads.

    Parameters
    ----------
    n_features : int
        Width of the model's input (every functional).
    columns : np.ndarray of int, shape (n_columns,), optional
        The functionals the view reads; identity standardisation and zero weights elsewhere.
    mean, scale : np.ndarray, shape (n_columns,)
        Standardisation of those columns.
    heads : dict
        ``"emotion"``, ``"gender"``, ``"intensity"`` -> (kernel ``(n_columns, n_classes)``, bias ``(n_classes,)``).
    """
    used = np.arange(n_features) if columns is None else np.asarray(columns)
    full_mean, full_scale = np.zeros(n_features), np.ones(n_features)
    full_mean[used], full_scale[used] = mean, scale
    model = build_functional_model(n_features=n_features, n_emotions=len(EMOTIONS))
    model.get_layer("standardize").set_weights([full_mean.astype(np.float32), full_scale.astype(np.float32)])
    for head, n_classes in (("emotion", len(EMOTIONS)), ("gender", len(GENDERS)), ("intensity", len(INTENSITIES))):
        weights, bias = heads[head]
        kernel = np.zeros((n_features, n_classes))
        kernel[used] = weights
        model.get_layer(head).set_weights([kernel.astype(np.float32), np.asarray(bias, dtype=np.float32)])
    return model


def choose_functional_c(
    train: ClipSet, validation: ClipSet, *, grid: tuple[float, ...], columns: np.ndarray | None = None
) -> tuple[float, dict[str, float], np.ndarray]:
    """Pick the L2 strength whose emotion model scores best on the validation actors.

    Returns
    -------
    c : float
    scores : dict
        Validation accuracy for every candidate (keys are the C values as strings).
    validation_probabilities : np.ndarray, shape (len(validation), n_emotions)
        The chosen model's emotion probabilities for the validation clips (for calibration).
    """
    copies = train.functional_copies()
    rows, mean, scale = _standardize(copies, columns)
    labels = np.tile(train.emotion, len(copies))
    values = validation.functionals[1.0] if columns is None else validation.functionals[1.0][:, columns]
    validation_rows = np.clip((values - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT)
    scores, probabilities = {}, {}
    for c in grid:
        classifier = _logistic(rows, labels, c=c, balanced=True, n_classes=len(EMOTIONS))
        probabilities[c] = classifier.predict_proba(validation_rows)
        scores[str(c)] = float(np.mean(probabilities[c].argmax(axis=1) == validation.emotion))
    best = max(grid, key=lambda c: (scores[str(c)], -c))  # ties: stronger L2
    return best, scores, probabilities[best]


def predict_functionals(model, clips: ClipSet) -> dict[str, np.ndarray]:
    """Each head's probabilities ``head -> (n_clips, n_classes)`` from every clip's functionals."""
    outputs = model.predict(clips.functionals[1.0], batch_size=256, verbose=0)
    return {head: np.asarray(values, dtype=np.float64) for head, values in outputs.items()}


def view_columns(clips: ClipSet) -> dict[str, np.ndarray | None]:
    """The clip-level views these clips support and the functionals each reads (None: all).

    ``{}`` without functionals; the voicing view only when the names include voice-source functionals.
    """
    if clips.functionals is None:
        return {}
    views: dict[str, np.ndarray | None] = {"functionals": None}
    voicing = voicing_columns(clips.functional_names) if clips.functional_names else np.array([], dtype=int)
    if voicing.size:
        views["voicing"] = voicing
    return views


def fit_views(
    clips: ClipSet,
    *,
    train_mask: np.ndarray,
    validation_mask: np.ndarray,
    test_mask: np.ndarray,
    speech_mask: np.ndarray,
    settings: TrainSettings,
) -> tuple[ViewFit, ...]:
    """Fit every clip-level view for one split: choose each view's L2 strength on the validation
    clips with a fit on the training clips, then refit on both (the views have no early stopping
    to feed, and they are short of data), and score the test clips.

    The views learn from speech clips only (song clips have no room copy). Masks are bool arrays
    of shape ``(len(clips),)``; the test clips are never used for fitting or choosing.

    Returns
    -------
    tuple of ViewFit
        ``functionals`` then ``voicing`` (when the clips have voice-source functionals); empty for
        clips without functionals.
    """
    train_mask, validation_mask = train_mask & speech_mask, validation_mask & speech_mask
    if np.any((train_mask | validation_mask) & test_mask):
        raise ValueError("the test clips overlap the training or validation clips; split the clips first")
    grids = {"functionals": settings.functional_c_grid, "voicing": settings.voicing_c_grid}
    test = clips.subset(test_mask)
    fits = []
    choose, fit = choose_functional_c, fit_functional_member
    if clips.masked:  # several corpora: the masked loss, corpora equal (ser.training.masked_views)
        from ser.training.masked_views import choose_masked_c, fit_masked_member

        weights = settings.corpus_weight_map()  # each corpus's share of the emotion loss, as the CNN's
        choose = functools.partial(choose_masked_c, corpus_weights=weights)
        fit = functools.partial(fit_masked_member, corpus_weights=weights)
    for name, columns in view_columns(clips).items():
        c, scores, validation_probabilities = choose(
            clips.subset(train_mask), clips.subset(validation_mask), grid=grids[name], columns=columns
        )
        model = fit(clips.subset(train_mask | validation_mask), c=c, columns=columns)
        fits.append(
            ViewFit(
                name=name, model=model, c=c, validation_accuracy=scores,
                validation_probabilities=validation_probabilities,
                test_probabilities=predict_functionals(model, test),
            )
        )
    return tuple(fits)
