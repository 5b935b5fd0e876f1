import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from ser.training.masked_linear import fit_masked_logistic, group_balanced_weights, masked_softmax


def _problem(seed: int = 0, n: int = 400, d: int = 12, k: int = 5):
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, d))
    labels = (rows @ rng.standard_normal((d, k)) + rng.gumbel(size=(n, k))).argmax(axis=1)
    return rows, labels


@pytest.mark.parametrize("c", [0.01, 1.0])
def test_without_masks_equals_scikit_learn(c):
    rows, labels = _problem()
    ours = fit_masked_logistic(rows, labels, class_mask=np.ones((len(rows), 5), dtype=bool), c=c, tol=1e-7)
    theirs = LogisticRegression(C=c, tol=1e-7, max_iter=5000).fit(rows, labels)
    assert ours.converged
    assert np.abs(ours.predict_proba(rows) - theirs.predict_proba(rows)).max() < 1e-4


def test_balanced_weights_equal_scikit_learn_class_weight():
    rows, labels = _problem(1)
    weights = group_balanced_weights(labels, groups=np.zeros(len(labels)))
    ours = fit_masked_logistic(rows, labels, class_mask=np.ones((len(rows), 5), dtype=bool), c=0.1,
                               sample_weight=weights, tol=1e-7)
    theirs = LogisticRegression(C=0.1, tol=1e-7, max_iter=5000, class_weight="balanced").fit(rows, labels)
    assert np.abs(ours.predict_proba(rows) - theirs.predict_proba(rows)).max() < 1e-4


def test_masked_rows_never_push_against_classes_they_lack():
    # Corpus B has classes 0-2 only. Its rows look exactly like class 3 of corpus A; an unmasked fit
    # would learn "class 3 is unlikely there", a masked one must leave class 3's evidence intact.
    rng = np.random.default_rng(2)
    centres = rng.standard_normal((4, 6)) * 3
    labels_a = np.repeat(np.arange(4), 50)
    rows_a = centres[labels_a] + rng.standard_normal((200, 6))
    rows_b = centres[3] + rng.standard_normal((60, 6))
    labels_b = np.zeros(60, dtype=int)  # B calls that sound class 0: a label conflict, on purpose
    rows, labels = np.concatenate([rows_a, rows_b]), np.concatenate([labels_a, labels_b])
    mask = np.ones((260, 4), dtype=bool)
    mask[200:, 3] = False
    masked = fit_masked_logistic(rows, labels, class_mask=mask, c=1.0)
    # A B-row's loss sees classes 0-2 only, so its softmax over them puts it in class 0...
    assert (masked.predict_proba(rows_b, class_mask=mask[200:]).argmax(axis=1) == 0).mean() > 0.9
    # ...while over all four classes class 3 stays reachable for A's class-3 clips.
    assert (masked.predict_proba(rows_a[labels_a == 3]).argmax(axis=1) == 3).mean() > 0.8


def test_a_fitted_model_is_a_fixed_point_of_a_warm_refit():
    # One step from a warm start that is already optimal must not move: the optimum of a fit
    # is a fixed point of a refit (gradient zero there).
    rows, labels = _problem(3, n=120, d=4, k=3)
    mask = np.ones((120, 3), dtype=bool)
    mask[:40, 2] = False
    labels[:40] = np.minimum(labels[:40], 1)
    first = fit_masked_logistic(rows, labels, class_mask=mask, c=0.5, tol=1e-9)
    again = fit_masked_logistic(rows, labels, class_mask=mask, c=0.5, tol=1e-9, initial=first)
    assert again.iterations <= 2
    assert np.allclose(first.coef, again.coef, atol=1e-6)


def test_probabilities_are_distributions_and_masks_zero_classes():
    probabilities = masked_softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]), np.array([True, True, False]))
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert (probabilities[:, 2] == 0).all() and probabilities[0, 1] > probabilities[0, 0]


def test_bad_input_is_refused_with_a_reason():
    rows, labels = _problem(4, n=30)
    mask = np.ones((30, 5), dtype=bool)
    mask[0, labels[0]] = False
    with pytest.raises(ValueError, match="row 0 is labelled"):
        fit_masked_logistic(rows, labels, class_mask=mask, c=1.0)
    with pytest.raises(ValueError, match="boolean"):
        fit_masked_logistic(rows, labels, class_mask=np.ones((30, 5)), c=1.0)
    with pytest.raises(ValueError, match="positive"):
        fit_masked_logistic(rows, labels, class_mask=np.ones((30, 5), dtype=bool), c=0.0)
    with pytest.raises(ValueError, match="NaN"):
        bad = rows.copy()
        bad[3, 2] = np.nan
        fit_masked_logistic(bad, labels, class_mask=np.ones((30, 5), dtype=bool), c=1.0)
    with pytest.raises(ValueError, match="sums to zero"):
        fit_masked_logistic(rows, labels, class_mask=np.ones((30, 5), dtype=bool), c=1.0, sample_weight=np.zeros(30))


def test_group_balanced_weights_balance_classes_within_and_groups_between():
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 2])
    groups = np.array(["a"] * 4 + ["b"] * 6)
    weights = group_balanced_weights(labels, groups=groups)
    assert np.isclose(weights.mean(), 1.0)
    assert np.isclose(weights[groups == "a"].sum(), weights[groups == "b"].sum())
    for group in "ab":
        totals = [weights[(groups == group) & (labels == label)].sum() for label in set(labels[groups == group])]
        assert np.allclose(totals, totals[0])
    by_size = group_balanced_weights(labels, groups=groups, group_share="size")
    assert np.isclose(by_size[groups == "b"].sum() / by_size.sum(), 0.6)


def test_group_weights_scale_each_groups_share_and_keep_classes_balanced_within():
    labels = np.array([0, 0, 0, 1, 0, 1, 1, 1, 1, 2])
    groups = np.array(["a"] * 4 + ["b"] * 6)
    weights = group_balanced_weights(labels, groups=groups, group_weights={"a": 2.0})
    assert np.isclose(weights.mean(), 1.0)
    assert np.isclose(weights[groups == "a"].sum() / weights.sum(), 2 / 3)
    for group in "ab":
        totals = [weights[(groups == group) & (labels == label)].sum() for label in set(labels[groups == group])]
        assert np.allclose(totals, totals[0])
    same = group_balanced_weights(labels, groups=groups, group_weights={"a": 3.0, "b": 3.0})
    np.testing.assert_allclose(same, group_balanced_weights(labels, groups=groups))


@pytest.mark.parametrize("group_weights", [{"a": 0.0}, {"a": -1.0}, {"a": float("nan")}, {"a": float("inf")}])
def test_group_weights_that_are_not_positive_numbers_are_refused(group_weights):
    with pytest.raises(ValueError, match="finite and > 0"):
        group_balanced_weights(np.array([0, 1]), groups=np.array(["a", "b"]), group_weights=group_weights)


def test_group_weights_need_the_equal_share():
    with pytest.raises(ValueError, match="group_share='equal'"):
        group_balanced_weights(np.array([0, 1]), groups=np.array(["a", "b"]), group_share="size",
                               group_weights={"a": 2.0})


def _objective(rows, class_mask, *, labels=None, target_mask=None, c=0.7, weights=None):
    from ser.training.masked_linear import masked_objective

    weights = np.ones(len(rows)) if weights is None else weights
    onehot = None
    if labels is not None:
        onehot = np.zeros(class_mask.shape)
        onehot[np.arange(len(labels)), labels] = 1.0

    def value_and_gradient(parameters):
        coef = parameters[: rows.shape[1] * class_mask.shape[1]].reshape(rows.shape[1], class_mask.shape[1])
        intercept = parameters[rows.shape[1] * class_mask.shape[1] :]
        loss, coef_gradient, intercept_gradient = masked_objective(
            coef, intercept, rows, class_mask=class_mask, scaled=weights / weights.sum(),
            penalty=1.0 / (c * weights.sum()), onehot=onehot, target_mask=target_mask)
        return loss, np.concatenate([coef_gradient.ravel(), intercept_gradient])

    return value_and_gradient


def _target_problem(seed: int = 5, n: int = 90, d: int = 4, k: int = 5):
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((n, d))
    class_mask = np.ones((n, k), dtype=bool)
    class_mask[: n // 3, k - 1] = False  # a corpus that cannot teach the last class
    targets = np.zeros((n, k), dtype=bool)
    targets[np.arange(n), rng.integers(0, k - 1, n)] = True
    targets[n // 2 :, :2] = True  # partial labels: "class 0 or 1" (and the row's own)
    return rows, class_mask, targets, rng.random(n) + 0.1


def test_target_set_gradient_matches_finite_differences():
    from scipy.optimize import approx_fprime

    rows, class_mask, targets, weights = _target_problem()
    objective = _objective(rows, class_mask, target_mask=targets, weights=weights)
    point = np.random.default_rng(6).standard_normal(rows.shape[1] * 5 + 5) * 0.5
    numeric = approx_fprime(point, lambda p: objective(p)[0], 1e-6)
    np.testing.assert_allclose(objective(point)[1], numeric, atol=2e-6, rtol=1e-4)


def test_singleton_target_sets_are_the_single_labels():
    # Same loss and gradient at any point, and the same fit.
    rows, class_mask, _, weights = _target_problem()
    labels = np.random.default_rng(7).integers(0, 4, len(rows))
    onehot = np.zeros(class_mask.shape, dtype=bool)
    onehot[np.arange(len(rows)), labels] = True
    point = np.random.default_rng(8).standard_normal(rows.shape[1] * 5 + 5)
    by_label = _objective(rows, class_mask, labels=labels, weights=weights)(point)
    by_set = _objective(rows, class_mask, target_mask=onehot, weights=weights)(point)
    assert np.isclose(by_label[0], by_set[0], rtol=1e-12)
    np.testing.assert_allclose(by_label[1], by_set[1], rtol=1e-10, atol=1e-14)
    first = fit_masked_logistic(rows, labels, class_mask=class_mask, c=0.7, sample_weight=weights, tol=1e-8)
    second = fit_masked_logistic(rows, None, class_mask=class_mask, target_mask=onehot, c=0.7,
                                 sample_weight=weights, tol=1e-8)
    np.testing.assert_allclose(first.coef, second.coef, atol=1e-8)
    # The intercepts are not identified: adding one constant to all of them changes no masked softmax, and
    # the class no label names (4) only ever loses, so its intercept drifts towards -inf until the solver
    # stops. Both fits landed 8e-4 apart along those flat directions in one CI run. What must agree is
    # what the model answers, and the intercepts of the labelled classes up to their common shift.
    np.testing.assert_allclose(first.predict_proba(rows, class_mask=class_mask),
                               second.predict_proba(rows, class_mask=class_mask), atol=1e-6)
    labelled = first.intercept[:4] - second.intercept[:4]
    np.testing.assert_allclose(labelled - labelled.mean(), 0.0, atol=1e-6)


def test_a_partial_label_earns_its_share_and_teaches_the_others_away():
    # Intercept only (features all zero): 30 rows labelled class 2, 70 rows "class 0 or 1", every
    # class allowed. The optimum gives class 2 its 30% and the pair 70% in total; class 3, which no
    # row has, is taught away by both kinds of row.
    rows = np.zeros((100, 1))
    targets = np.zeros((100, 4), dtype=bool)
    targets[:30, 2] = True
    targets[30:, :2] = True
    model = fit_masked_logistic(rows, None, class_mask=np.ones((100, 4), dtype=bool), target_mask=targets,
                                c=1.0, tol=1e-10, max_iter=20000)
    probabilities = model.predict_proba(rows[:1])[0]
    assert abs(probabilities[2] - 0.3) < 1e-3
    assert abs(probabilities[0] + probabilities[1] - 0.7) < 1e-3
    assert probabilities[3] < 1e-3
    # Nothing separates 0 from 1, so a start at zero keeps them equal (the split is left to other rows).
    assert abs(probabilities[0] - probabilities[1]) < 1e-6


def test_a_partial_label_leaves_the_split_within_its_set_to_single_labels():
    # Single-labelled rows tell classes 0 and 1 apart along feature 0; partial "0 or 1" rows spread
    # over both must not blur that: they only teach "not class 2".
    rng = np.random.default_rng(9)
    single = rng.standard_normal((200, 2)) + np.array([[3.0, 0.0]])
    single[100:, 0] -= 6.0
    labels = np.repeat([0, 1], 100)
    partial = rng.standard_normal((200, 2)) * np.array([[3.0, 1.0]])
    other = rng.standard_normal((100, 2)) + np.array([[0.0, 4.0]])
    rows = np.concatenate([single, partial, other])
    targets = np.zeros((500, 3), dtype=bool)
    targets[np.arange(200), labels] = True
    targets[200:400, :2] = True
    targets[400:, 2] = True
    model = fit_masked_logistic(rows, None, class_mask=np.ones((500, 3), dtype=bool), target_mask=targets, c=1.0)
    answers = model.predict_proba(rows).argmax(axis=1)
    assert (answers[:200] == labels).mean() > 0.95
    assert (answers[200:400] != 2).mean() > 0.9 and (answers[400:] == 2).mean() > 0.9


def test_bad_target_sets_are_refused_with_a_reason():
    rows, class_mask, targets, _ = _target_problem()
    with pytest.raises(ValueError, match="exactly one"):
        fit_masked_logistic(rows, None, class_mask=class_mask, c=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        fit_masked_logistic(rows, targets.argmax(axis=1), class_mask=class_mask, target_mask=targets, c=1.0)
    empty = targets.copy()
    empty[4] = False
    with pytest.raises(ValueError, match="row 4 has no target"):
        fit_masked_logistic(rows, None, class_mask=class_mask, target_mask=empty, c=1.0)
    outside = targets.copy()
    outside[0, 4] = True  # row 0's corpus cannot teach class 4
    with pytest.raises(ValueError, match="row 0 has a target class"):
        fit_masked_logistic(rows, None, class_mask=class_mask, target_mask=outside, c=1.0)
    with pytest.raises(ValueError, match="boolean array shaped like"):
        fit_masked_logistic(rows, None, class_mask=class_mask, target_mask=targets[:, :3], c=1.0)
