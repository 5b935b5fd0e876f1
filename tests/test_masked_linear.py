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
