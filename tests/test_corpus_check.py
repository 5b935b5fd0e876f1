"""The shipped model on a corpus it never heard: the summaries (synthetic probabilities, no model), the
typed result file, its place in the model card and summary, and the producer's cache."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from ser.config import read_json, write_json
from ser.reporting import results as r
from ser.reporting.corpus_results import CorpusCheckResults, calibrated_comparison, corpus_comparison, synthetic_check
from ser.reporting.metrics import clip_set_scores, restrict
from ser.reporting.model_card import render
from ser.reporting.model_results import load_model_results
from ser.reporting.schema import ResultsError, write_results
from ser.reporting.summary import corpus_summary, percent, plain_summary
from ser.serving.speaker import SpeakerAdaptation
from ser.training.corpus_check import ScoreCache, adapted_probabilities
from tests.test_results import SHA, bundle_folder, training_fixture  # noqa: F401  (bundle_folder is a fixture)

LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
EMOTIONS = ["neutral", "happy", "sad", "angry", "fearful"]


def collapsed_corpus(seed: int = 0, *, speakers: int = 6, per_speaker: int = 20):
    """A corpus of 5 emotions the model hears mostly as fearful, some of it right, a few clips refused."""
    rng = np.random.default_rng(seed)
    n = speakers * per_speaker
    truth = np.array(EMOTIONS * (n // len(EMOTIONS)))[:n]
    rng.shuffle(truth)
    who = np.repeat([f"s{k}" for k in range(speakers)], per_speaker)
    logits = rng.normal(0.0, 1.0, (n, len(LABELS)))
    logits[:, LABELS.index("fearful")] += 2.0
    logits[np.arange(n), [LABELS.index(name) for name in truth]] += rng.uniform(0.0, 2.5, n)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probabilities[rng.choice(n, size=3, replace=False)] = np.nan  # refused as no speech
    return probabilities, truth, who


def test_scores_count_refusals_and_shares_cover_the_answer_space():
    probabilities, truth, who = collapsed_corpus()
    for space in (LABELS, EMOTIONS):
        scores = clip_set_scores(probabilities, truth=truth, speakers=who, labels=LABELS, answer_space=space,
                                 threshold=0.465)
        assert scores.refused == 3 and scores.answered + scores.refused == scores.clips == len(truth)
        assert sorted(scores.answer_share) == sorted(space)
        assert sum(scores.answer_share.values()) == pytest.approx(1.0)
        assert sorted(scores.recall) == sorted(EMOTIONS) and sum(scores.support.values()) == scores.answered
        assert scores.uar == pytest.approx(np.mean(list(scores.recall.values())))
        weighted = sum(scores.recall[name] * scores.support[name] for name in EMOTIONS) / scores.answered
        assert scores.accuracy == pytest.approx(weighted)
        spread = scores.speaker_accuracy
        assert 0 <= spread.min <= spread.median <= spread.max <= 1 and scores.speakers == 6
        assert 0 <= scores.ece_15_bins <= 1 and 0 <= scores.sure_share <= 1
        assert scores.wrong_when_sure is None or 0 <= scores.wrong_when_sure <= 1
        assert max(scores.answer_share, key=scores.answer_share.get) == "fearful"  # the collapse shows


def test_restricting_renormalises_and_can_only_help_accuracy():
    probabilities, truth, who = collapsed_corpus(1)
    restricted = restrict(probabilities, labels=LABELS, answer_space=EMOTIONS)
    answered = ~np.isnan(restricted).any(axis=1)
    np.testing.assert_allclose(restricted[answered].sum(axis=1), 1.0)
    assert (restricted[:, [LABELS.index("calm"), LABELS.index("surprised")]][answered] == 0).all()
    both = corpus_comparison(probabilities, truth=truth, speakers=who, labels=LABELS, emotions=EMOTIONS,
                             threshold=0.465)
    assert both.restricted.accuracy >= both.app.accuracy
    assert both.restricted.sure_share >= both.app.sure_share  # renormalising only raises the top probability


def test_a_model_that_always_answers_one_emotion():
    truth = np.array(EMOTIONS * 4)
    probabilities = np.tile(np.eye(len(LABELS))[LABELS.index("fearful")] * 0.9 + 0.1 / len(LABELS), (20, 1))
    scores = clip_set_scores(probabilities, truth=truth, speakers=np.array(["a", "b"] * 10), labels=LABELS,
                             answer_space=LABELS, threshold=0.5)
    assert scores.answer_share["fearful"] == 1.0 and scores.recall["neutral"] == 0.0
    assert scores.accuracy == pytest.approx(0.2) and scores.sure_share == 1.0
    assert scores.wrong_when_sure == pytest.approx(0.8)


@pytest.mark.parametrize("change, message", [
    (lambda p, t, s: (p[:, :5], t, s), "label order"),
    (lambda p, t, s: (p, t[:-1], s), "one entry per clip"),
    (lambda p, t, s: (np.full_like(p, np.nan), t, s), "no clip of the set was answered"),
    (lambda p, t, s: (p, np.where(t == "sad", "bored", t), s), "does not know"),
])
def test_bad_input_says_what_is_wrong(change, message):
    probabilities, truth, who = collapsed_corpus()
    probabilities, truth, who = change(probabilities, truth, who)
    with pytest.raises(ValueError, match=message):
        clip_set_scores(probabilities, truth=truth, speakers=who, labels=LABELS, answer_space=EMOTIONS,
                        threshold=0.5)
    with pytest.raises(ValueError, match="answer_space"):
        restrict(collapsed_corpus()[0], labels=LABELS, answer_space=["bored"])


def test_calibration_leaves_out_references_and_speakers_without_one():
    probabilities, truth, who = collapsed_corpus(2)
    probabilities = np.nan_to_num(probabilities, nan=1 / len(LABELS))  # references must be answered
    reference = np.zeros(len(truth), dtype=bool)
    for speaker in ("s0", "s1", "s2", "s3", "s4", "s5"):
        reference[np.flatnonzero((who == speaker) & (truth == "neutral"))[:2]] = True
    adaptations = {speaker: SpeakerAdaptation(neutral=0, bias=1.5 if speaker != "s3" else 0.0, reference_neutral=0.1,
                                              reference_seconds=5.0, segments=2) for speaker in ("s0", "s1", "s2",
                                                                                                   "s3", "s4")}
    adaptations["s5"] = None
    adapted = adapted_probabilities(probabilities, who, adaptations)
    assert np.isnan(adapted[who == "s5"]).all() and not np.isnan(adapted[who != "s5"]).any()
    compared = calibrated_comparison(probabilities, adapted, truth=truth, speakers=who, reference=reference,
                                     adaptations={k: v.to_dict() if v else None for k, v in adaptations.items()},
                                     labels=LABELS, emotions=EMOTIONS, threshold=0.465)
    scored = (who != "s5") & ~reference
    assert compared.speakers == 5 and compared.speakers_without_reference == 1
    assert compared.reference_clips == (reference & (who != "s5")).sum() and compared.references_lifted == 4
    assert compared.unadapted.app.clips == compared.adapted.app.clips == scored.sum()
    # the neutral floor only moves answers towards neutral
    assert compared.adapted.app.recall["neutral"] >= compared.unadapted.app.recall["neutral"]
    assert compared.adapted.app.answer_share["neutral"] >= compared.unadapted.app.answer_share["neutral"]
    with pytest.raises(ValueError, match="no speaker"):
        calibrated_comparison(probabilities, adapted, truth=truth, speakers=who, reference=reference,
                              adaptations={}, labels=LABELS, emotions=EMOTIONS, threshold=0.465)


def test_synthetic_sentences_share_called_neutral():
    probabilities = np.tile(np.eye(len(LABELS))[[0, 5, 5, 2]] * 0.8 + 0.025, (2, 1))
    probabilities[0] = np.nan
    check = synthetic_check(probabilities, labels=LABELS, threshold=0.5, voices=["en-us", "en-gb"], sentences=4)
    assert (check.clips, check.refused) == (8, 1)
    assert check.neutral_share == pytest.approx(1 / 7) and check.sure_share == 1.0
    assert sum(check.answer_share.values()) == pytest.approx(1.0)


def corpus_check_fixture(*, synthetic: bool = True) -> CorpusCheckResults:
    """A complete corpus_check.json made from synthetic probabilities by the real summaries."""
    probabilities, truth, who = collapsed_corpus(3)
    probabilities = np.nan_to_num(probabilities, nan=1 / len(LABELS))
    probabilities[5] = np.nan
    reference = np.zeros(len(truth), dtype=bool)
    for speaker in ("s0", "s1", "s2", "s3", "s4"):
        reference[np.flatnonzero((who == speaker) & (truth == "neutral"))[:2]] = True
    adaptations = {f"s{k}": SpeakerAdaptation(neutral=0, bias=1.0, reference_neutral=0.05, reference_seconds=4.0,
                                              segments=2) for k in range(5)}
    adapted = adapted_probabilities(probabilities, who, adaptations)
    common = np.arange(len(truth)) % 3 == 0
    shared = {"labels": LABELS, "emotions": EMOTIONS, "threshold": 0.465}
    calibrated = [calibrated_comparison(probabilities[subset], adapted[subset], truth=truth[subset],
                                        speakers=who[subset], reference=reference[subset],
                                        adaptations={k: v.to_dict() for k, v in adaptations.items()}, **shared)
                  for subset in (np.ones(len(truth), dtype=bool), common)]
    return CorpusCheckResults(
        schema=r.SCHEMAS[CorpusCheckResults], model_sha256=SHA, measured="2030-01-02 03:04 UTC",
        command=r.CORPUS_CHECK_COMMAND, versions={"python": "3.11"}, corpus="ASED", language="Amharic",
        protocol="every clip (fixture)", labels=LABELS, emotions=EMOTIONS, confidence_threshold=0.465,
        clips=len(truth), speakers=6,
        all_sentences=corpus_comparison(probabilities, truth=truth, speakers=who, **shared),
        common_sentences=corpus_comparison(probabilities[common], truth=truth[common], speakers=who[common], **shared),
        calibrated=calibrated[0], calibrated_common=calibrated[1],
        synthetic=synthetic_check(probabilities[:10], labels=LABELS, threshold=0.465, voices=["en-us"], sentences=10)
        if synthetic else None,
    )


def test_the_result_file_round_trips_and_refuses_another_format(tmp_path):
    path = tmp_path / "corpus_check.json"
    check = corpus_check_fixture()
    write_results(path, check)
    assert r.load_corpus_check(path) == check
    data = read_json(path)
    write_json(path, data | {"schema": "corpus-check/0"})
    with pytest.raises(ResultsError, match=re.escape(r.CORPUS_CHECK_COMMAND)):
        r.load_corpus_check(path)
    del data["calibrated"]["adapted"]
    write_json(path, data)
    with pytest.raises(ResultsError, match=r"missing key.*adapted.*" + re.escape(r.CORPUS_CHECK_COMMAND)):
        r.load_corpus_check(path)
    with pytest.raises(ResultsError, match=r"missing; `python -m ser corpus-check"):
        r.load_corpus_check(tmp_path / "absent.json")


def test_a_missing_or_stale_file_is_left_out_of_the_card(bundle_folder):  # noqa: F811
    assert load_model_results(bundle_folder, bench=None).corpus_check is None
    assert "Voices it was not trained on" not in render(load_model_results(bundle_folder, bench=None))
    write_results(bundle_folder / "corpus_check.json", dataclasses.replace(corpus_check_fixture(),
                                                                          model_sha256="0" * 64))
    results = load_model_results(bundle_folder, bench=None)
    assert results.corpus_check is None
    assert any("corpus_check.json was measured on another model.keras" in note for note in results.notes)


def test_the_card_shows_the_corpus_its_licence_and_its_numbers(bundle_folder):  # noqa: F811
    check = corpus_check_fixture()
    write_results(bundle_folder / "corpus_check.json", check)
    card = render(load_model_results(bundle_folder, bench=None))
    assert "## Voices it was not trained on: ASED (Amharic)" in card
    assert "Retta EA" in card and "research-only" in card
    restricted = check.all_sentences.restricted
    assert f"| all sentences | {restricted.answered} | {percent(restricted.accuracy)} |" in card
    assert f"right {percent(restricted.accuracy)} of the time among their 5 emotions" in card
    assert f"| ASED, as the app answers | {check.all_sentences.app.ece_15_bins:.3f} |" in card
    assert f"called neutral {percent(check.synthetic.neutral_share)}" in card
    write_results(bundle_folder / "corpus_check.json", corpus_check_fixture(synthetic=False))
    assert "Synthetic English" not in render(load_model_results(bundle_folder, bench=None))


def test_the_plain_words_read_every_number_from_the_file(bundle_folder):  # noqa: F811
    check = corpus_check_fixture()
    summary = corpus_summary(check, training=training_fixture())
    app, restricted = check.all_sentences.app, check.all_sentences.restricted
    assert f"**{percent(restricted.accuracy)}**" in summary.right and "Amharic speakers of ASED" in summary.right
    assert f"neutral speech is called neutral {percent(app.recall['neutral'])}" in summary.answers
    assert "“fearful”" in summary.answers and "“calm”" in summary.answers  # the collapse and the absent emotions
    assert percent(check.calibrated.adapted.restricted.accuracy) in summary.calibrated
    assert percent(1 - training_fixture().cross_validation.calibration.accuracy_above_threshold) in summary.confidence
    for _, text in summary.items():
        assert all(re.fullmatch(r"\d+\.\d%", figure) for figure in re.findall(r"\d+(?:\.\d+)?%", text)), text
        assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b", text), text
    assert [lead for lead, _ in corpus_summary(corpus_check_fixture(synthetic=False)).items()][-1] == "Voices"
    write_results(bundle_folder / "corpus_check.json", check)
    assert plain_summary(load_model_results(bundle_folder, bench=None)).other_language == summary.right


def test_the_cache_keeps_every_entry_and_a_rerun_reads_it(tmp_path):
    cache = ScoreCache(tmp_path, corpus="ased", sha="f" * 64)
    cache.put("clip", "01Neutral/a.flac", probabilities=[0.5] * 2, problem="")
    cache.put("clip", "01Neutral/b.flac", probabilities=None, problem="no speech detected")
    again = ScoreCache(tmp_path, corpus="ased", sha="f" * 64)
    assert again.get("clip", "01Neutral/b.flac")["problem"] == "no speech detected"
    assert again.get("clip", "01Neutral/a.flac")["probabilities"] == [0.5, 0.5]
    assert ScoreCache(tmp_path, corpus="ased", sha="e" * 64).get("clip", "01Neutral/a.flac") is None
