"""ser.reporting.summary: the results in plain words, every number read from the result files."""

from __future__ import annotations

import dataclasses
import re

import pytest

from ser.reporting.model_results import load_model_results
from ser.reporting.results import ConfusionMatrix
from ser.reporting.summary import percent, plain_summary, top_confusion, training_corpora, voices_sentence
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def results():
    return load_model_results(ROOT / "models", bench=None)


def with_protocol(training, protocol: str):
    """``training`` whose recorded protocols name other corpora."""
    cv = dataclasses.replace(training.cross_validation, protocol=protocol)
    return dataclasses.replace(training, headline=dataclasses.replace(training.headline, protocol=protocol),
                               cross_validation=cv)


def test_percent_is_one_format_with_one_decimal():
    assert percent(0.6658333) == "66.6%"
    assert percent(1.0) == "100.0%" and percent(0.0) == "0.0%"
    assert percent(None) == "n/a"


def test_voices_sentence_names_corpus_language_speakers_and_what_reads_worse(results):
    training = results.training
    text = voices_sentence(training)
    genders = [row.gender for row in training.cross_validation.per_actor]
    assert text.startswith(f"It knows the voices of {len(training.data.actors)} of the 24 North-American English "
                           f"actors of RAVDESS ({genders.count('female')} women, {genders.count('male')} men)")
    assert "professionals acting emotions in a studio" in text
    assert "other languages" in text and "unacted speech" in text and "phone calls" in text
    assert text.count(".") == 1 and text.endswith(".")


def test_voices_sentence_follows_the_corpus_the_protocol_names(results):
    amharic = with_protocol(results.training, "5-fold cross-validation grouped by speaker, ASED, 5 emotions")
    assert [corpus.name for corpus in training_corpora(amharic)] == ["ASED"]
    assert "Amharic speakers of ASED" in voices_sentence(amharic)
    unknown = with_protocol(results.training, "5-fold cross-validation grouped by speaker, my recordings")
    assert training_corpora(unknown) == ()
    text = voices_sentence(unknown)
    assert f"the {len(unknown.data.actors)} speakers it was trained on" in text
    assert "English" not in text and "studio" not in text


def test_plain_summary_reads_every_point_from_the_files(results):
    summary = plain_summary(results)
    cv = results.training.cross_validation
    leads = [lead for lead, _ in summary.items()]
    assert leads == ["Trained on", "On a voice it never heard", "Emotions", "Voices", "Off the studio",
                     "Another language", "When it is sure"]
    check = results.corpus_check.all_sentences.restricted
    assert f"**{percent(check.accuracy)}**" in summary.other_language and "Amharic" in summary.other_language
    weakest = min(cv.per_class, key=lambda name: cv.per_class[name].recall)
    assert f"{weakest} ({percent(cv.per_class[weakest].recall)})" in summary.emotions
    assert percent(cv.per_actor_spread.min) in summary.speakers
    assert percent(cv.calibration.confidence_threshold) in summary.confidence
    for _, text in summary.items():  # one number format, no raw field names
        assert all(re.fullmatch(r"\d+\.\d%", figure) for figure in re.findall(r"\d+(?:\.\d+)?%", text)), text
        assert not re.search(r"\b[a-z]+_[a-z0-9_]+\b", text), text


def test_plain_summary_leaves_out_what_was_not_measured(results):
    calibration = dataclasses.replace(results.training.cross_validation.calibration, accuracy_above_threshold=None)
    training = dataclasses.replace(
        results.training,
        cross_validation=dataclasses.replace(results.training.cross_validation, calibration=calibration),
    )
    summary = plain_summary(dataclasses.replace(results, training=training, robustness=None, corpus_check=None))
    assert summary.conditions is None and summary.other_language is None
    assert not {"Off the studio", "Another language"} & {lead for lead, _ in summary.items()}
    assert "right on" not in summary.confidence and summary.confidence.endswith(".")


def test_top_confusion_is_the_largest_share_of_a_row():
    matrix = ConfusionMatrix(labels=["calm", "sad", "angry"], counts=[[8, 2, 0], [3, 5, 2], [0, 0, 4]])
    assert top_confusion(matrix, "sad") == ("calm", 0.3)
    assert top_confusion(matrix, "angry") is None  # never confused
