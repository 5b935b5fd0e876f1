"""The joint views for voices unlike RAVDESS: the producer's pieces (the Keras model answers as the fitted
views, the L2 choice), the routed answer and its calibration, and the typed ``routing.json`` in the card."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ser.reporting import results as r
from ser.reporting.corpus_results import adapt_per_speaker, calibrated_comparison, corpus_comparison
from ser.reporting.loco_results import score_set
from ser.reporting.model_card import render
from ser.reporting.model_results import load_model_results
from ser.reporting.routing_results import AcrossCorpora, OrdinaryRouted, RoutedSet, RoutingResults, routing_rows
from ser.reporting.schema import write_results
from ser.serving.calibration import apply_temperature
from ser.training.data import EMOTIONS
from ser.training.joint_views import chosen_c, fit_equal_temperature, joint_model
from ser.training.linear_views import LinearView, fuse_probabilities
from ser.training.masked_linear import MaskedLogistic
from ser.training.routing import routed_probabilities
from tests.test_results import SHA, bundle_folder  # noqa: F401  (bundle_folder is a fixture)

LABELS = list(EMOTIONS)
ASED = ["neutral", "happy", "sad", "angry", "fearful"]


def _view(rng, *, n_features: int, columns: np.ndarray | None) -> LinearView:
    width = n_features if columns is None else len(columns)
    model = MaskedLogistic(coef=rng.normal(0, 0.3, (width, len(LABELS))), intercept=rng.normal(0, 0.5, len(LABELS)),
                           iterations=1, converged=True)
    return LinearView(columns=columns, mean=rng.normal(0, 1, width), scale=rng.uniform(0.5, 2, width), model=model)


def test_the_keras_joint_views_answer_as_the_fitted_views_and_load_safely(tmp_path):
    import keras

    import ser.serving.layers  # noqa: F401  registers the custom layers

    rng = np.random.default_rng(0)
    views = [_view(rng, n_features=12, columns=None), _view(rng, n_features=12, columns=np.array([1, 4, 7]))]
    model = joint_model(views, n_features=12)
    rows = rng.normal(0, 3, (20, 12)).astype(np.float32)
    expected = fuse_probabilities(*[view.probabilities(rows) for view in views])
    model.save(tmp_path / "joint_views.keras")
    loaded = keras.saving.load_model(tmp_path / "joint_views.keras", safe_mode=True, compile=False)
    got = np.asarray(loaded.predict(rows, verbose=0)["emotion"])
    assert got.shape == (20, len(LABELS))
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_the_l2_choice_is_the_best_mean_over_folds_and_ties_go_to_the_stronger():
    folds = [{"functionals": {"validation_accuracy": {"0.001": 0.5, "0.01": 0.7}}},
             {"functionals": {"validation_accuracy": {"0.001": 0.8, "0.01": 0.6}}}]
    assert chosen_c(folds, grid=(0.001, 0.01), view="functionals") == 0.001  # 0.65 each: the stronger L2
    folds[0]["functionals"]["validation_accuracy"]["0.01"] = 0.9
    assert chosen_c(folds, grid=(0.001, 0.01), view="functionals") == 0.01


def test_the_temperature_sharpens_an_underconfident_model_and_weighs_corpora_equally():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2.0, (2000, 8))
    sharp = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(8, p=row) for row in sharp])  # calibrated by construction
    soft = apply_temperature(sharp, temperature=3.0)  # the same answers, three times too soft
    corpora = np.array(["a"] * 1500 + ["b"] * 500)
    targets = np.eye(8, dtype=bool)[labels]
    assert fit_equal_temperature(soft, targets, corpora) == pytest.approx(1 / 3, rel=0.1)


def test_a_partial_label_is_likely_by_its_target_sets_summed_probability():
    """Ordinary voices ("neutral or calm"): a model sure it is one of the two is right, whichever it leans to."""
    leaning = np.array([[0.7, 0.28] + [0.02 / 6] * 6, [0.28, 0.7] + [0.02 / 6] * 6] * 100)
    either = np.zeros((200, 8), dtype=bool)
    either[:, :2] = True
    corpora = np.array(["ordinary"] * 200)
    # the summed probability (0.98) is right on every clip: sharpening only helps, down to the search's bound
    assert fit_equal_temperature(leaning, either, corpora) < 0.2
    neutral_only = np.eye(8, dtype=bool)[np.zeros(200, dtype=int)]
    assert fit_equal_temperature(leaning, neutral_only, corpora) > 1.0  # half the clips lean the wrong way


def test_routing_takes_the_joint_answer_only_where_the_checks_fire():
    rng = np.random.default_rng(2)
    main, joint = rng.dirichlet(np.ones(8), 10), rng.dirichlet(np.ones(8), 10)
    route = np.arange(10) % 3 == 0
    routed = routed_probabilities(main, joint, route)
    np.testing.assert_array_equal(routed[route], joint[route])
    np.testing.assert_array_equal(routed[~route], main[~route])


def test_calibration_lifts_each_reference_to_the_neutral_floor_and_never_lowers_neutral():
    rng = np.random.default_rng(3)
    speakers = np.repeat(["s1", "s2", "s3"], 10)
    probabilities = rng.dirichlet(np.ones(8), 30)
    reference = np.zeros(30, dtype=bool)
    reference[[0, 1, 10, 11]] = True  # s3 has no reference
    probabilities[10:12, 0] = 0.9  # s2's reference is already neutral enough
    probabilities[10:12] /= probabilities[10:12].sum(axis=1, keepdims=True)
    adapted, adaptations = adapt_per_speaker(probabilities, speakers=speakers, reference=reference, neutral=0)
    assert adaptations["s3"] is None and np.isnan(adapted[speakers == "s3"]).all()
    assert adaptations["s1"]["bias"] > 0 and adaptations["s2"]["bias"] == 0
    assert np.all(adapted[:20, 0] >= probabilities[:20, 0] - 1e-12)
    lifted = np.exp(np.log(adapted[:2]).mean(axis=0))
    assert lifted[0] / lifted.sum() == pytest.approx(0.5, abs=1e-6)


def routing_fixture(seed: int = 4) -> RoutingResults:
    rng = np.random.default_rng(seed)
    sets = []
    for name, emotions in (("ravdess", LABELS), ("ased", ASED), ("ased_common", ASED)):
        truth = np.array(emotions * 8)
        speakers = np.repeat([f"{name}-{k}" for k in range(4)], len(truth) // 4)
        main = rng.dirichlet(np.ones(8), len(truth))
        routed = main.copy()
        routed[np.arange(len(truth)), [LABELS.index(e) for e in truth]] += 1.0
        routed /= routed.sum(axis=1, keepdims=True)
        reference = np.zeros(len(truth), dtype=bool)
        reference[np.flatnonzero(truth == "neutral")[::2]] = True
        shared = {"truth": truth, "speakers": speakers, "labels": LABELS, "emotions": emotions, "threshold": 0.465}
        adaptations = {s: {"bias": 0.5, "reference_neutral": 0.3} for s in np.unique(speakers)}
        share = 0.25 if name == "ravdess" else 1.0
        sets.append(RoutedSet(name=name, description=f"{name} (fixture)", routed_share=share,
                              routed=corpus_comparison(routed, **shared), main_only=corpus_comparison(main, **shared),
                              calibrated=calibrated_comparison(routed, routed, reference=reference,
                                                               adaptations=adaptations, **shared)))
    across = [AcrossCorpora(name=f"across_{entry.name}", description=f"across to {entry.name} (fixture)",
                            scores=entry.main_only, calibrated=entry.calibrated) for entry in sets[:2]]
    either = np.zeros((40, 8), dtype=bool)
    either[:, :2] = True  # neutral or calm
    shared = {"targets": either, "labels": np.full(40, -1), "speakers": np.repeat(["so-1", "so-2"], 20),
              "allowed": np.ones(8, dtype=bool), "ordinary": True}
    ordinary = OrdinaryRouted(description="ordinary voices (fixture)", joint_views_heard_corpus=True,
                              routed_share=0.5, routed=score_set(rng.dirichlet(np.ones(8), 40), **shared),
                              main_only=score_set(rng.dirichlet(np.ones(8), 40), **shared),
                              joint_only=score_set(rng.dirichlet(np.ones(8), 40), **shared))
    return RoutingResults(schema=r.SCHEMAS[RoutingResults], model_sha256=SHA, joint_views_sha256="b" * 64,
                          measured="2026-12-02 10:00 UTC", command=r.ROUTING_COMMAND, versions={"numpy": "x"},
                          protocol="held-out speakers (fixture)", labels=LABELS, joint_temperature=0.97, sets=sets,
                          across_corpora=across, ordinary=ordinary)


def test_routing_json_round_trips_and_its_table_reads_the_sets(tmp_path):
    fixture = routing_fixture()
    write_results(tmp_path / "routing.json", fixture)
    assert r.load_routing(tmp_path / "routing.json") == fixture
    assert 0 <= fixture.ordinary.routed.false_alarm_share <= 1 - fixture.ordinary.routed.neutral_or_calm_share
    older = dataclasses.replace(fixture, ordinary=None)  # files measured before the ordinary voices were scored
    write_results(tmp_path / "older.json", older)
    assert r.load_routing(tmp_path / "older.json").ordinary is None
    rows = routing_rows(fixture)
    assert [row.description for row in rows] == [entry.description for entry in fixture.sets]
    for row, entry in zip(rows, fixture.sets, strict=True):
        assert row.accuracy == entry.routed.restricted.accuracy
        assert row.main_accuracy == entry.main_only.restricted.accuracy
        assert row.largest_share[1] == max(entry.routed.app.answer_share.values())
        assert 0 <= row.speaker_min <= row.speaker_median <= row.speaker_max <= 1
    with pytest.raises(KeyError, match="ased_common"):
        fixture.set_named("nothing")


def test_the_card_shows_routing_only_for_the_joint_views_it_was_measured_on(bundle_folder):  # noqa: F811
    fixture = routing_fixture()
    write_results(bundle_folder / "routing.json", fixture)
    (bundle_folder / "joint_views.keras").write_bytes(b"not these views")
    results = load_model_results(bundle_folder, bench=None)
    assert results.routing is None and any("routing.json" in note for note in results.notes)
    write_results(bundle_folder / "routing.json", dataclasses.replace(
        fixture, joint_views_sha256=__import__("hashlib").sha256(b"not these views").hexdigest()))
    results = load_model_results(bundle_folder, bench=None)
    assert results.routing is not None
    card = render(results)
    row = routing_rows(results.routing)[1]
    assert "## Voices unlike RAVDESS" in card and f"**{100 * row.accuracy:.1f}% / {100 * row.uar:.1f}%**" in card
    across = results.routing.across_corpora[1].scores.restricted
    assert "across to ased (fixture)" in card
    assert f"neutral {100 * across.recall['neutral']:.1f}% ({100 * across.answer_share['neutral']:.1f}%)" in card
