"""Multinomial logistic regression whose loss, row by row, counts only the classes that row's
corpus has: the model answers in all eight emotions, but an ASED clip (five emotions) never
teaches that it is "not calm": ASED simply has no calm clips.

For row ``i`` with allowed classes ``A_i`` (a row of ``class_mask``) the loss is the cross-entropy
of the softmax restricted to ``A_i``::

    loss_i = log(sum_{c in A_i} exp(z_ic)) - z_i,y_i,      z_i = x_i W + b

A row may instead carry a *target set* ``T_i`` (a row of ``target_mask``, inside ``A_i``): a partial
label such as "neutral or calm" for everyday, unacted speech, where either answer is right. The loss
then rewards the target classes' summed probability::

    loss_i = log(sum_{c in A_i} exp(z_ic)) - log(sum_{c in T_i} exp(z_ic))

so the row teaches "none of A_i outside T_i" and leaves the split within ``T_i`` to the other rows;
a single label is the special case ``T_i = {y_i}`` (the same loss and gradient).

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


def _check(rows: np.ndarray, labels: np.ndarray | None, class_mask: np.ndarray, sample_weight: np.ndarray,
           target_mask: np.ndarray | None = None) -> None:
    n = rows.shape[0] if rows.ndim == 2 else -1
    if rows.ndim != 2 or (labels is not None and labels.shape != (n,)):
        shape = None if labels is None else labels.shape
        raise ValueError(f"rows must be (n, n_features) and labels (n,), got {rows.shape} and {shape}")
    if class_mask.shape != (rows.shape[0], class_mask.shape[1]) or class_mask.dtype != bool:
        raise ValueError(f"class_mask must be a boolean (n, n_classes) array, got {class_mask.dtype}{class_mask.shape}")
    if labels is not None:
        if labels.min() < 0 or labels.max() >= class_mask.shape[1]:
            raise ValueError(f"labels must be in 0..{class_mask.shape[1] - 1}, got {labels.min()}..{labels.max()}")
        taught = class_mask[np.arange(len(labels)), labels]
        if not taught.all():
            first = int(np.flatnonzero(~taught)[0])
            raise ValueError(f"row {first} is labelled class {labels[first]}, which its class_mask row excludes")
    else:
        if target_mask is None or target_mask.shape != class_mask.shape or target_mask.dtype != bool:
            shape = None if target_mask is None else f"{target_mask.dtype}{target_mask.shape}"
            raise ValueError(
                f"target_mask must be a boolean array shaped like class_mask {class_mask.shape}, got {shape}"
            )
        empty = ~target_mask.any(axis=1)
        if empty.any():
            raise ValueError(f"row {int(np.flatnonzero(empty)[0])} has no target class; give every row at least one")
        outside = (target_mask & ~class_mask).any(axis=1)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            raise ValueError(f"row {first} has a target class that its class_mask row excludes; a target "
                             "set must lie inside the classes the row's corpus can teach")
    if sample_weight.shape != (n,) or (sample_weight < 0).any() or not np.isfinite(sample_weight).all():
        raise ValueError("sample_weight must hold one finite, non-negative weight per row")
    if sample_weight.sum() <= 0:
        raise ValueError("sample_weight sums to zero: nothing to learn from")
    if not np.isfinite(rows).all():
        raise ValueError("rows hold NaN or infinite values; drop or impute them first")


def masked_objective(
    coef: np.ndarray,
    intercept: np.ndarray,
    rows: np.ndarray,
    *,
    class_mask: np.ndarray,
    scaled: np.ndarray,
    penalty: float,
    onehot: np.ndarray | None = None,
    target_mask: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray]:
    """The objective of :func:`fit_masked_logistic` and its gradient (see the module docstring).

    Parameters
    ----------
    coef : np.ndarray, shape (n_features, n_classes)
    intercept : np.ndarray, shape (n_classes,)
    rows : np.ndarray, shape (n, n_features)
    class_mask : np.ndarray of bool, shape (n, n_classes)
        ``A_i``.
    scaled : np.ndarray, shape (n,)
        Sample weights divided by their sum.
    penalty : float
        ``1 / (C S)``: the L2 term is ``penalty * ||coef||^2 / 2``.
    onehot : np.ndarray, shape (n, n_classes), optional
        Single labels (one 1 per row); exactly one of ``onehot`` and ``target_mask``.
    target_mask : np.ndarray of bool, shape (n, n_classes), optional
        ``T_i``, the target set of each row.

    Returns
    -------
    loss : float
    coef_gradient : np.ndarray, shape (n_features, n_classes)
    intercept_gradient : np.ndarray, shape (n_classes,)
    """
    if (onehot is None) == (target_mask is None):
        raise ValueError("pass exactly one of onehot (single labels) and target_mask (target sets)")
    logits = (rows @ coef.astype(rows.dtype)).astype(np.float64) + intercept
    logits = np.where(class_mask, logits, -np.inf)
    top = logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits - top)
    normaliser = exponentials.sum(axis=1, keepdims=True)
    log_sum = np.log(normaliser[:, 0]) + top[:, 0]
    if onehot is not None:
        # The single-label path, operation for operation as before target sets existed (bit-for-bit).
        picked = logits[np.arange(len(logits)), onehot.argmax(axis=1)]
        loss = float(np.sum(scaled * (log_sum - picked)))
        pulled = onehot
    else:
        # log-sum-exp over T_i, shifted by the row's top over A_i (T_i lies inside A_i, so no overflow).
        inside = np.where(target_mask, exponentials, 0.0)
        inside_sum = inside.sum(axis=1, keepdims=True)
        loss = float(np.sum(scaled * (log_sum - np.log(inside_sum[:, 0]) - top[:, 0])))
        pulled = inside / inside_sum  # softmax over T_i: where the row's gradient pulls
    loss += 0.5 * penalty * float(np.sum(coef**2))
    error = (exponentials / normaliser - pulled) * scaled[:, None]
    coef_gradient = (rows.T @ error.astype(rows.dtype)).astype(np.float64) + penalty * coef
    return loss, coef_gradient, error.sum(axis=0)


def fit_masked_logistic(
    rows: np.ndarray,
    labels: np.ndarray | None,
    *,
    class_mask: np.ndarray,
    target_mask: np.ndarray | None = None,
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
    labels : np.ndarray of int, shape (n,), or None
        Single labels; None when ``target_mask`` gives every row's target set instead.
    class_mask : np.ndarray of bool, shape (n, n_classes)
        The classes each row's loss is normalised over; its label must be among them.
    target_mask : np.ndarray of bool, shape (n, n_classes), optional
        Each row's target set (a single label is a row with one True), inside its ``class_mask``
        row; only with ``labels=None``.
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
    if (labels is None) == (target_mask is None):
        raise ValueError("pass single labels or a target_mask (labels=None), exactly one of them")
    labels = None if labels is None else np.asarray(labels, dtype=np.int64)
    class_mask = np.asarray(class_mask)
    target_mask = None if target_mask is None else np.asarray(target_mask)
    n_rows = rows.shape[0]
    weights = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    _check(rows, labels, class_mask, weights, target_mask)
    n_features, n_classes = rows.shape[1], class_mask.shape[1]
    total = weights.sum()
    scaled = weights / total
    onehot = None
    if labels is not None:
        onehot = np.zeros((n_rows, n_classes))
        onehot[np.arange(n_rows), labels] = 1.0
    penalty = 1.0 / (c * total)

    def objective(parameters: np.ndarray) -> tuple[float, np.ndarray]:
        coef = parameters[: n_features * n_classes].reshape(n_features, n_classes)
        intercept = parameters[n_features * n_classes :]
        loss, coef_gradient, intercept_gradient = masked_objective(
            coef, intercept, rows, class_mask=class_mask, scaled=scaled, penalty=penalty, onehot=onehot,
            target_mask=target_mask,
        )
        return loss, np.concatenate([coef_gradient.ravel(), intercept_gradient])

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
