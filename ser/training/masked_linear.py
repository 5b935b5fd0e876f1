"""Multinomial logistic regression whose loss, row by row, counts only the classes that row's
corpus has: the model answers in all eight emotions, but an ASED clip (five emotions) never
teaches that it is "not calm": ASED simply has no calm clips.

For row ``i`` with allowed classes ``A_i`` (a row of ``class_mask``) the loss is the cross-entropy
of the softmax restricted to ``A_i``::

    loss_i = log(sum_{c in A_i} exp(z_ic)) - z_i,y_i,      z_i = x_i W + b

and the objective is ``sum_i s_i loss_i / S + ||W||^2 / (2 C S)`` with sample weights ``s_i`` and
``S = sum_i s_i`` (the intercept is not penalised). With every class allowed on every row this is
exactly scikit-learn's multinomial ``LogisticRegression(C=C)`` objective, so the L2 grid of the
shipped linear views carries over (tests/test_masked_linear.py checks the two agree).

Example
-------
>>> import numpy as np
>>> from ser.training.masked_linear import fit_masked_logistic
>>> rng = np.random.default_rng(0)
>>> rows = rng.standard_normal((60, 4))
>>> labels = rng.integers(0, 3, 60)
>>> mask = np.ones((60, 3), dtype=bool)
>>> model = fit_masked_logistic(rows, labels, class_mask=mask, c=1.0)
>>> model.predict_proba(rows).shape
(60, 3)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np


@dataclasses.dataclass(frozen=True)
class MaskedLogistic:
    """A fitted model: ``softmax(rows @ coef + intercept)`` over all classes.

    Attributes
    ----------
    coef : np.ndarray, shape (n_features, n_classes)
    intercept : np.ndarray, shape (n_classes,)
    iterations : int
        L-BFGS iterations used.
    converged : bool
        Whether L-BFGS met its tolerance before ``max_iter``.
    """

    coef: np.ndarray
    intercept: np.ndarray
    iterations: int
    converged: bool

    def logits(self, rows: np.ndarray) -> np.ndarray:
        """``rows @ coef + intercept``, shape (n_rows, n_classes), float64."""
        return np.asarray(rows, dtype=np.float64) @ self.coef + self.intercept

    def predict_proba(self, rows: np.ndarray, *, class_mask: np.ndarray | None = None) -> np.ndarray:
        """Probabilities over all classes, or only over ``class_mask``'s (others 0).

        Parameters
        ----------
        rows : np.ndarray, shape (n_rows, n_features)
        class_mask : np.ndarray of bool, shape (n_classes,) or (n_rows, n_classes), optional
        """
        return masked_softmax(self.logits(rows), class_mask)


def masked_softmax(logits: np.ndarray, class_mask: np.ndarray | None = None) -> np.ndarray:
    """Softmax over the last axis, over the allowed classes only (disallowed get 0).

    Parameters
    ----------
    logits : np.ndarray, shape (n, n_classes)
    class_mask : np.ndarray of bool, broadcastable to ``logits``, optional
    """
    logits = np.asarray(logits, dtype=np.float64)
    if class_mask is not None:
        logits = np.where(class_mask, logits, -np.inf)
    logits = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(logits)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def _check(rows: np.ndarray, labels: np.ndarray, class_mask: np.ndarray, sample_weight: np.ndarray) -> None:
    if rows.ndim != 2 or labels.shape != (rows.shape[0],):
        raise ValueError(f"rows must be (n, n_features) and labels (n,), got {rows.shape} and {labels.shape}")
    if class_mask.shape != (rows.shape[0], class_mask.shape[1]) or class_mask.dtype != bool:
        raise ValueError(f"class_mask must be a boolean (n, n_classes) array, got {class_mask.dtype}{class_mask.shape}")
    if labels.min() < 0 or labels.max() >= class_mask.shape[1]:
        raise ValueError(f"labels must be in 0..{class_mask.shape[1] - 1}, got {labels.min()}..{labels.max()}")
    taught = class_mask[np.arange(len(labels)), labels]
    if not taught.all():
        first = int(np.flatnonzero(~taught)[0])
        raise ValueError(f"row {first} is labelled class {labels[first]}, which its class_mask row excludes")
    if sample_weight.shape != labels.shape or (sample_weight < 0).any() or not np.isfinite(sample_weight).all():
        raise ValueError("sample_weight must hold one finite, non-negative weight per row")
    if sample_weight.sum() <= 0:
        raise ValueError("sample_weight sums to zero: nothing to learn from")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold NaN or infinite values; drop or impute them first")


def fit_masked_logistic(
    rows: np.ndarray,
    labels: np.ndarray,
    *,
    class_mask: np.ndarray,
    c: float,
    sample_weight: np.ndarray | None = None,
    max_iter: int = 3000,
    tol: float = 1e-4,
    initial: MaskedLogistic | None = None,
) -> MaskedLogistic:
    """Fit the masked multinomial logistic regression by L-BFGS (see the module docstring).

    Parameters
    ----------
    rows : np.ndarray, shape (n, n_features)
        Standardised features; float32 input is kept float32 for the big products (half
        the memory and time), the objective and parameters are float64.
    labels : np.ndarray of int, shape (n,)
    class_mask : np.ndarray of bool, shape (n, n_classes)
        The classes each row's loss is normalised over; its label must be among them.
    c : float
        Inverse L2 strength, as scikit-learn's ``C``.
    sample_weight : np.ndarray, shape (n,), optional
        E.g. :func:`group_balanced_weights`; all ones when omitted.
    max_iter, tol
        L-BFGS limits (``tol`` on the projected gradient, as scikit-learn's lbfgs).
    initial : MaskedLogistic, optional
        Start from this model (a warm start along an L2 grid).

    Returns
    -------
    MaskedLogistic
    """
    from scipy.optimize import minimize

    if c <= 0:
        raise ValueError(f"c must be positive, got {c}")
    rows = np.asarray(rows)
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    class_mask = np.asarray(class_mask)
    weights = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    _check(rows, labels, class_mask, weights)
    n_features, n_classes = rows.shape[1], class_mask.shape[1]
    total = weights.sum()
    scaled = weights / total
    onehot = np.zeros((len(labels), n_classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    penalty = 1.0 / (c * total)

    def objective(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        coef = parameters[: n_features * n_classes].reshape(n_features, n_classes)
        intercept = parameters[n_features * n_classes :]
        logits = (rows @ coef.astype(rows.dtype)).astype(np.float64) + intercept
        logits = np.where(class_mask, logits, -np.inf)
        top = logits.max(axis=1, keepdims=True)
        exponentials = np.exp(logits - top)
        normaliser = exponentials.sum(axis=1, keepdims=True)
        log_sum = np.log(normaliser[:, 0]) + top[:, 0]
        loss = float(np.sum(scaled * (log_sum - logits[np.arange(len(labels)), labels])))
        loss += 0.5 * penalty * float(np.sum(coef**2))
        error = (exponentials / normaliser - onehot) * scaled[:, None]
        coef_gradient = (rows.T @ error.astype(rows.dtype)).astype(np.float64) + penalty * coef
        return loss, np.concatenate([coef_gradient.ravel(), error.sum(axis=0)])

    start = (
        np.zeros(n_features * n_classes + n_classes)
        if initial is None
        else np.concatenate([initial.coef.ravel(), initial.intercept])
    )
    result = minimize(
        objective, start, jac=True, method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": 64 * np.finfo(float).eps, "maxcor": 30},
    )
    parameters = result.x
    return MaskedLogistic(
        coef=parameters[: n_features * n_classes].reshape(n_features, n_classes),
        intercept=parameters[n_features * n_classes :],
        iterations=int(result.nit),
        converged=bool(result.success),
    )


def group_balanced_weights(labels: np.ndarray, *, groups: np.ndarray, group_share: str = "equal",
                           group_weights: Mapping[str, float] | None = None) -> np.ndarray:
    """Sample weights that balance classes within each group (e.g. corpus), and the groups.

    Within a group every class present gets the same total weight (scikit-learn's "balanced"
    inside the group). ``group_share="equal"`` then gives every group the same total weight, or
    with ``group_weights`` a total in proportion to its weight (groups not named weigh 1);
    ``"size"`` keeps each group's share of the rows.

    Parameters
    ----------
    labels : np.ndarray of int, shape (n,)
    groups : np.ndarray, shape (n,)
    group_weights : mapping, optional
        ``group -> relative weight`` (finite, > 0); only with ``group_share="equal"``.

    Returns
    -------
    np.ndarray, shape (n,), float64, mean 1
    """
    if group_share not in ("equal", "size"):
        raise ValueError(f"group_share must be 'equal' or 'size', got {group_share!r}")
    labels, groups = np.asarray(labels), np.asarray(groups)
    if labels.shape != groups.shape:
        raise ValueError(f"labels and groups must have the same shape, got {labels.shape} and {groups.shape}")
    group_weights = dict(group_weights or {})
    if group_weights and group_share != "equal":
        raise ValueError("group_weights scale the groups' equal shares: use them with group_share='equal'")
    bad = {name: value for name, value in group_weights.items() if not (np.isfinite(value) and value > 0)}
    if bad:
        raise ValueError(f"group weights must be finite and > 0, got {bad}")
    weights = np.zeros(len(labels))
    names = np.unique(groups)
    relative = {name: float(group_weights.get(str(name), 1.0)) for name in names}
    total = sum(relative.values())
    for name in names:
        in_group = groups == name
        classes, counts = np.unique(labels[in_group], return_counts=True)
        share = relative[name] / total if group_share == "equal" else in_group.mean()
        per_class = share / len(classes)
        for label, count in zip(classes, counts, strict=True):
            weights[in_group & (labels == label)] = per_class / count
    return weights * len(labels)
