"""Target sets: what a clip's label allows as a right answer, for single and partial labels alike.

A single label is a target set of one emotion; a partial label (:data:`ser.training.corpora.PARTIAL_LABELS`,
e.g. speechocean's "neutral or calm") a set of several. The masked losses reward the target set's summed
probability (:mod:`ser.training.masked_linear`, :mod:`ser.training.masked_cnn`), and an answer is right
when it lies in the set. These helpers are the one place both the linear-only study
(:mod:`ser.training.linear_views`) and ``python -m ser train`` take that logic from.

Example
-------
>>> import numpy as np
>>> from ser.training.target_sets import narrow_partial_labels, single_labels, taught_classes
>>> targets = np.array([[1, 0, 0], [0, 0, 1], [1, 1, 0]], dtype=bool)  # the last row: "0 or 1"
>>> labels = single_labels(targets)
>>> labels.tolist()
[0, 2, -1]
>>> mask = np.ones((3, 3), dtype=bool)
>>> narrowed, mask = narrow_partial_labels(labels, targets, mask, taught=taught_classes(labels, mask))
>>> narrowed[2].tolist(), mask[2].tolist()  # class 1 has no single label here: it leaves the set
([True, False, False], [True, False, True])
"""

from __future__ import annotations

import numpy as np


def single_labels(targets: np.ndarray) -> np.ndarray:
    """Each row's class when its target set holds exactly one, else -1 (a partial label).

    Parameters
    ----------
    targets : np.ndarray of bool, shape (n, n_classes)

    Returns
    -------
    np.ndarray of int64, shape (n,)
    """
    targets = np.asarray(targets, dtype=bool)
    return np.where(targets.sum(axis=1) == 1, targets.argmax(axis=1), -1).astype(np.int64)


def one_hot_targets(labels: np.ndarray, *, n_classes: int) -> np.ndarray:
    """Single labels as target sets of one class: bool, shape (n, n_classes).

    Raises
    ------
    ValueError
        For a label outside 0..n_classes-1 (a partial label, -1, has no single class: pass its
        target set instead).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}; "
                         "give partial labels as target sets")
    return np.arange(n_classes) == labels[:, None]


def taught_classes(labels: np.ndarray, class_mask: np.ndarray) -> np.ndarray:
    """The classes some single-labelled row teaches: what a model trained on these rows can answer
    (a class named only inside a partial label is not learnt).

    Falls back to every class some row's ``class_mask`` allows when every row is partially labelled
    (nothing else could tell the classes apart).

    Parameters
    ----------
    labels : np.ndarray of int, shape (n,)
        -1 for a partial label (:func:`single_labels`).
    class_mask : np.ndarray of bool, shape (n, n_classes)

    Returns
    -------
    np.ndarray of bool, shape (n_classes,)
    """
    labels, class_mask = np.asarray(labels), np.asarray(class_mask, dtype=bool)
    if (labels < 0).all():
        return class_mask.any(axis=0)
    return np.isin(np.arange(class_mask.shape[1]), labels[labels >= 0])


def narrow_partial_labels(
    labels: np.ndarray, targets: np.ndarray, class_mask: np.ndarray, *, taught: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Drop the classes outside ``taught`` from every partial label's target set and class mask.

    A target class that no single label teaches is a sink: rewarded inside the set, taught against by
    nobody, it wins wherever it is not ruled out (ASED + speechocean answered "calm" for every RAVDESS
    clip). Such classes leave the partial label, which then speaks only of the others. Nothing changes
    when that would empty some partial label's target set, or when no row is partially labelled.

    Parameters
    ----------
    labels : np.ndarray of int, shape (n,)
        -1 marks the partial labels (the rows narrowed).
    targets, class_mask : np.ndarray of bool, shape (n, n_classes)
    taught : np.ndarray of bool, shape (n_classes,)
        :func:`taught_classes` of the *training* rows (validation rows are narrowed by the same).

    Returns
    -------
    targets, class_mask : np.ndarray of bool, shape (n, n_classes)
        New arrays when narrowed, else the ones given.
    """
    partial = np.asarray(labels) < 0
    if not partial.any() or not (targets[partial] & taught).any(axis=1).all():
        return targets, class_mask
    targets, class_mask = targets.copy(), class_mask.copy()
    targets[partial] &= taught
    class_mask[partial] &= taught
    return targets, class_mask


def answered_right(probabilities: np.ndarray, *, targets: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Whether each clip's answer lies in its target set; with ``allowed`` the answer is the most
    probable of the clip's allowed emotions (an emotion its corpus lacks is never its answer).

    Parameters
    ----------
    probabilities : np.ndarray, shape (n, n_classes)
    targets : np.ndarray of bool, shape (n, n_classes)
    allowed : np.ndarray of bool, broadcastable to (n, n_classes), or None (every class)

    Returns
    -------
    np.ndarray of bool, shape (n,)
    """
    if allowed is not None:
        probabilities = np.where(allowed, probabilities, -np.inf)
    answers = np.asarray(probabilities).argmax(axis=1)
    return np.asarray(targets, dtype=bool)[np.arange(len(answers)), answers]
