"""Speaker-grouped splits: no actor is ever in two parts of a split.

Example
-------
>>> from ser.training.splits import actor_folds
>>> folds = actor_folds(list(range(1, 21)), n_folds=5, seed=0)
>>> len(folds), sorted(sum(folds, []))[:3]
(5, [1, 2, 3])
"""

from __future__ import annotations

import numpy as np


def actor_folds(actors: list[int], *, n_folds: int, seed: int) -> list[list[int]]:
    """Split actors into ``n_folds`` disjoint groups, balanced by gender (odd = male).

    Returns
    -------
    list of list of int
        Each actor appears in exactly one group; group sizes differ by at most one per gender.
    """
    unique = sorted(set(int(actor) for actor in actors))
    if n_folds < 2 or n_folds > len(unique):
        raise ValueError(f"n_folds must be between 2 and the number of actors ({len(unique)})")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    position = 0
    for parity in (1, 0):  # male actors first, then female, dealt round-robin
        group = [actor for actor in unique if actor % 2 == parity]
        rng.shuffle(group)
        for actor in group:
            folds[position % n_folds].append(int(actor))
            position += 1
    return [sorted(fold) for fold in folds]


def train_validation_test(
    actors: list[int], *, n_folds: int, fold: int, seed: int
) -> tuple[list[int], list[int], list[int]]:
    """Outer fold ``fold`` is the test set; the next fold is the validation set.

    Returns
    -------
    train, validation, test : list of int
        Disjoint actor lists covering ``actors``.
    """
    folds = actor_folds(actors, n_folds=n_folds, seed=seed)
    test = folds[fold]
    validation = folds[(fold + 1) % n_folds]
    train = sorted(actor for group in folds for actor in group if actor not in test + validation)
    return train, validation, test
