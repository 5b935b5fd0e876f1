"""`--corpus-weight`: a corpus's share of the masked emotion loss, from the option to the weights."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ser.errors import SERError
from ser.training.data import EMOTIONS
from ser.training.settings import TrainSettings
from tests.test_multi_corpus import (
    _clip_set,
    _write_corpora,
    tiny_settings,  # noqa: F401 (a fixture the slow test uses)
)


def _two_corpora() -> pd.DataFrame:
    rows = [{"corpus": "ravdess", "speaker": f"ravdess-{k % 2}", "emotion": EMOTIONS[k % 8], "gender": "male"}
            for k in range(16)]
    rows += [{"corpus": "ased", "speaker": f"ased-{k % 3}", "emotion": ("neutral", "sad")[k % 2], "gender": None}
             for k in range(30)]
    return pd.DataFrame(rows)


def test_settings_with_corpus_weights_round_trip_through_json():
    settings = TrainSettings(corpus_weights=(("ased", 1.0), ("ravdess", 2.0)))
    again = TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and hash(again) == hash(settings)
    assert again.corpus_weight_map() == {"ased": 1.0, "ravdess": 2.0}
    assert TrainSettings().corpus_weight_map() == {}


def test_emotion_weights_give_each_corpus_its_share_in_training_and_validation():
    from ser.training.masked_cnn import emotion_weights, masked_targets

    clips = _clip_set(_two_corpora())
    equal = emotion_weights(clips)
    weighted = emotion_weights(clips, corpus_weights={"ravdess": 2.0})
    ravdess = clips.corpus == "ravdess"
    assert np.isclose(equal[ravdess].sum() / equal.sum(), 0.5)
    assert np.isclose(weighted[ravdess].sum() / weighted.sum(), 2 / 3)
    assert np.isclose(weighted.mean(), 1.0)
    _, validation = masked_targets(clips, corpus_weights={"ravdess": 2.0})
    np.testing.assert_allclose(validation["emotion"], weighted)


def test_the_validation_score_weighs_corpora_as_the_loss_does():
    from ser.training.masked_views import corpus_mean_accuracy

    clips = _clip_set(_two_corpora())
    probabilities = np.eye(len(EMOTIONS))[clips.emotion]
    ased = clips.corpus == "ased"
    swapped = np.where(clips.emotion[ased] == EMOTIONS.index("sad"), EMOTIONS.index("neutral"), EMOTIONS.index("sad"))
    probabilities[ased] = np.eye(len(EMOTIONS))[swapped]  # every ased clip answered with its other emotion
    assert corpus_mean_accuracy(probabilities, clips) == pytest.approx(0.5)
    assert corpus_mean_accuracy(probabilities, clips, corpus_weights={"ravdess": 3.0}) == pytest.approx(0.75)


def test_the_protocol_names_the_weights_only_when_they_differ():
    from ser.training.corpus_summary import corpora_protocol

    assert "the corpora weigh the same" in corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess")
    same = corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess", corpus_weights={"ravdess": 1.0})
    assert "the corpora weigh the same" in same
    weighted = corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess", corpus_weights={"ravdess": 2.0})
    assert "the corpora weigh ravdess 2, ased 1 in the emotion loss" in weighted


@pytest.mark.parametrize(("options", "masked", "message"), [
    (["ravdess=2"], False, "give several corpora"),
    (["ravdess"], True, "CORPUS=WEIGHT"),
    (["ravdess=two"], True, "positive number"),
    (["ravdess=0"], True, "positive number"),
    (["ravdess=inf"], True, "positive number"),
    (["crema=2"], True, "no corpus 'crema'"),
])
def test_bad_corpus_weights_are_refused_with_what_to_write(options, masked, message):
    from ser.__main__ import _corpus_weights

    with pytest.raises(SERError, match=message):
        _corpus_weights(options, index=_two_corpora(), masked=masked)


def test_corpus_weight_options_become_sorted_pairs_and_the_command_records_them():
    import argparse
    from pathlib import Path

    from ser.__main__ import _command, _corpus_weights

    assert _corpus_weights([], index=_two_corpora(), masked=False) == ()
    assert _corpus_weights(["ravdess=2", "ased=0.5"], index=_two_corpora(), masked=True) == (
        ("ased", 0.5), ("ravdess", 2.0))
    args = argparse.Namespace(data=[Path("a"), Path("b")], seed=0, epochs=100, folds=1, corpus_weight=["ravdess=2"])
    command = _command("python -m ser train --data ../shared/data/ravdess --out models/", args, masked=True)
    assert command.endswith("--folds 1 --corpus-weight ravdess=2")


@pytest.mark.slow
def test_a_weighted_run_records_its_weights_in_the_settings_command_and_protocol(tmp_path, tiny_settings, capsys):  # noqa: F811
    from ser.__main__ import main
    from ser.reporting.results import load_training

    ravdess, manifest = _write_corpora(tmp_path)
    out = tmp_path / "bundle"
    code = main(["train", "--data", str(ravdess), "--data", str(manifest), "--out", str(out), "--cache",
                 str(tmp_path / "cache"), "--epochs", "2", "--folds", "1", "--corpus-weight", "ravdess=2"])
    assert code == 0, capsys.readouterr().err
    results = load_training(out / "metrics.json")
    assert TrainSettings.from_dict(results.training.settings).corpus_weight_map() == {"ravdess": 2.0}
    assert results.command.endswith("--corpus-weight ravdess=2")
    assert "the corpora weigh ravdess 2, mine 1" in results.corpora.protocol
    assert all(0 <= corpus.accuracy <= 1 for corpus in results.corpora.corpora)
