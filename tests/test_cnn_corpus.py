"""`--cnn-corpus`: the log-mel CNN learns from some corpora only, the linear views from all of them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

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


def _two_corpora(ravdess_speakers: int = 10, ased_speakers: int = 10) -> pd.DataFrame:
    rows = [{"corpus": "ravdess", "speaker": f"ravdess-{speaker:02d}", "emotion": emotion,
             "gender": ("female", "male")[speaker % 2]} for speaker in range(ravdess_speakers) for emotion in EMOTIONS]
    rows += [{"corpus": "ased", "speaker": f"ased-{speaker:02d}", "emotion": emotion, "gender": None}
             for speaker in range(ased_speakers) for emotion in ("neutral", "happy", "sad", "angry", "fearful")]
    return pd.DataFrame(rows)


def test_settings_with_cnn_corpora_round_trip_through_json():
    settings = TrainSettings(cnn_corpora=("ravdess",), corpus_weights=(("ravdess", 2.0),))
    again = TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict())))
    assert again == settings and hash(again) == hash(settings)
    assert TrainSettings().cnn_corpora == ()


def test_the_cnn_corpus_mask_keeps_the_named_corpora_and_everything_by_default():
    from ser.training.cross_validation import cnn_corpus_mask

    clips = _clip_set(_two_corpora())
    assert cnn_corpus_mask(clips, corpora=()).all()
    only = cnn_corpus_mask(clips, corpora=("ravdess",))
    assert only.shape == (len(clips),) and only.any()
    np.testing.assert_array_equal(only, clips.corpus == "ravdess")
    assert cnn_corpus_mask(clips, corpora=("ased", "ravdess")).all()


def test_the_cnn_corpus_mask_refuses_an_unknown_corpus_and_a_single_folder():
    from ser.training.clips import ClipSet
    from ser.training.cross_validation import cnn_corpus_mask

    with pytest.raises(ValueError, match=r"\['crema'\] are not among the clips' corpora \['ased', 'ravdess'\]"):
        cnn_corpus_mask(_clip_set(_two_corpora()), corpora=("crema",))
    one_folder = ClipSet(variants={1.0: [None] * 2}, emotion=np.array([0, 1]), gender=np.array([0, 1]),
                         intensity=np.array([0, 0]), actor=np.array([1, 2]))
    with pytest.raises(ValueError, match="one RAVDESS folder"):
        cnn_corpus_mask(one_folder, corpora=("ravdess",))
    assert cnn_corpus_mask(one_folder, corpora=()).all()


@pytest.mark.parametrize(("options", "masked", "message"), [
    (["ravdess"], False, "give several corpora"),
    (["crema"], True, "no corpus 'crema' among --data; the corpora are \\['ased', 'ravdess'\\]"),
    (["ravdess", "Ravdess"], True, "no corpus 'Ravdess'"),
])
def test_bad_cnn_corpus_options_are_refused_with_what_to_write(options, masked, message):
    from ser.__main__ import _cnn_corpora

    with pytest.raises(SERError, match=message):
        _cnn_corpora(options, index=_two_corpora(), masked=masked)


def test_cnn_corpus_options_become_sorted_names_and_the_command_records_them():
    from ser.__main__ import _cnn_corpora, _command

    assert _cnn_corpora([], index=_two_corpora(), masked=False) == ()
    assert _cnn_corpora(["ravdess", "ased", "ravdess"], index=_two_corpora(), masked=True) == ("ased", "ravdess")
    args = argparse.Namespace(data=[Path("a"), Path("b")], seed=0, epochs=100, folds=1, corpus_weight=["ravdess=2"],
                              cnn_corpus=["ravdess"])
    command = _command("python -m ser train --data ../shared/data/ravdess --out models/", args, masked=True)
    assert command.endswith("--folds 1 --corpus-weight ravdess=2 --cnn-corpus ravdess")
    args.cnn_corpus = []
    assert "--cnn-corpus" not in _command("python -m ser train --data x --out models/", args, masked=True)


def test_the_protocol_says_which_corpora_the_cnn_learns_from_only_when_it_is_not_all():
    from ser.training.corpus_summary import corpora_protocol

    everyone = corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess")
    assert "The CNN and the linear views learn with a masked loss" in everyone
    for cnn_corpora in ((), ("ased", "ravdess")):
        assert corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess", cnn_corpora=cnn_corpora) == everyone
    hybrid = corpora_protocol(["ravdess", "ased"], n_folds=5, headline="ravdess", cnn_corpora=("ravdess",))
    assert "The CNN learns from ravdess clips only" in hybrid
    assert "the linear views from every corpus" in hybrid and "all eight emotions" in hybrid


def _stub_cnn(monkeypatch) -> list[dict[str, object]]:
    """Replace the CNN's fitting and scoring in cross_validate by stubs that record what they were given."""
    import ser.training.cross_validation as cross_validation

    calls: list[dict[str, object]] = []

    def fit_cnn(train, validation, *, refit_on, config, settings, seed, verbose=0):
        calls.append({"train": train, "validation": validation, "refit_on": refit_on})
        return "early-stopped", "shipped", {"loss": [1.0]}, 1

    def predict_windows(model, clips, *, config):  # one uniform window per clip, every head
        n = len(clips)
        outputs = {"emotion": np.full((n, len(EMOTIONS)), 1 / len(EMOTIONS)), "gender": np.full((n, 2), 0.5),
                   "intensity": np.full((n, 2), 0.5)}
        return outputs, np.arange(n)

    monkeypatch.setattr(cross_validation, "fit_cnn", fit_cnn)
    monkeypatch.setattr(cross_validation, "predict_windows", predict_windows)
    monkeypatch.setattr(cross_validation, "fit_views", lambda clips, **_: ())
    return calls


def test_the_cnn_trains_and_early_stops_on_its_corpora_only_yet_scores_every_clip(monkeypatch):
    from ser.training.cross_validation import cross_validate

    calls = _stub_cnn(monkeypatch)
    clips = _clip_set(_two_corpora())
    speech = np.ones(len(clips), dtype=bool)
    settings = TrainSettings(cnn_corpora=("ravdess",))
    run = cross_validate(clips, speech_mask=speech, config=None, settings=settings, folds=[0, 1], log=lambda _: None)
    assert len(calls) == 2
    for call, fold in zip(calls, run.folds, strict=True):
        for part in ("train", "validation", "refit_on"):
            assert set(call[part].corpus.tolist()) == {"ravdess"}, part
        assert set(call["validation"].actor.tolist()) <= set(fold.validation_actors)
        assert set(call["train"].actor.tolist()) <= set(fold.train_actors)
        assert set(call["refit_on"].actor.tolist()) == set(call["train"].actor.tolist()) | set(
            call["validation"].actor.tolist())
        # the fusion still gets every test and validation clip of both corpora, in all eight emotions
        assert set(clips.corpus[fold.test_positions].tolist()) == {"ravdess", "ased"}
        assert set(clips.corpus[fold.validation_positions].tolist()) == {"ravdess", "ased"}
        assert fold.test_probabilities["emotion"].shape == (len(fold.test_positions), len(EMOTIONS))
        assert fold.view_probabilities["log_mel_cnn"].shape == (len(fold.test_positions), len(EMOTIONS))
        assert fold.validation_probabilities["emotion"].shape == (len(fold.validation_positions), len(EMOTIONS))

    calls.clear()
    cross_validate(clips, speech_mask=speech, config=None, settings=TrainSettings(), folds=[0], log=lambda _: None)
    assert set(calls[0]["train"].corpus.tolist()) == {"ravdess", "ased"}  # the default: every corpus


def test_a_fold_without_validation_speakers_of_the_cnn_corpus_is_refused(monkeypatch):
    from ser.training.cross_validation import cross_validate

    _stub_cnn(monkeypatch)
    clips = _clip_set(_two_corpora(ravdess_speakers=2))  # two speakers dealt into five folds
    with pytest.raises(ValueError, match="no validation speakers of \\['ravdess'\\] to early-stop the CNN"):
        cross_validate(clips, speech_mask=np.ones(len(clips), dtype=bool), config=None,
                       settings=TrainSettings(cnn_corpora=("ravdess",)), log=lambda _: None)


@pytest.mark.slow
def test_a_hybrid_run_records_its_cnn_corpus_and_answers_every_corpus_in_eight_emotions(
    tmp_path, tiny_settings, capsys, monkeypatch  # noqa: F811
):
    import ser.training.cross_validation as cross_validation
    from ser.__main__ import main
    from ser.reporting.results import load_training
    from ser.serving.bundle import load_bundle

    seen: list[set[str]] = []
    real_fit_cnn = cross_validation.fit_cnn

    def recording_fit_cnn(train, validation, *, refit_on, **options):
        seen.append({*train.corpus.tolist(), *validation.corpus.tolist(), *refit_on.corpus.tolist()})
        return real_fit_cnn(train, validation, refit_on=refit_on, **options)

    monkeypatch.setattr(cross_validation, "fit_cnn", recording_fit_cnn)
    ravdess, manifest = _write_corpora(tmp_path)
    out = tmp_path / "bundle"
    code = main(["train", "--data", str(ravdess), "--data", str(manifest), "--out", str(out), "--cache",
                 str(tmp_path / "cache"), "--epochs", "2", "--folds", "1", "--cnn-corpus", "ravdess"])
    assert code == 0, capsys.readouterr().err
    assert seen == [{"ravdess"}]
    results = load_training(out / "metrics.json")
    assert TrainSettings.from_dict(results.training.settings).cnn_corpora == ("ravdess",)
    assert results.command.endswith("--folds 1 --cnn-corpus ravdess")
    assert "The CNN learns from ravdess clips only" in results.corpora.protocol
    assert {corpus.corpus for corpus in results.corpora.corpora} == {"ravdess", "mine"}
    assert all(0 <= corpus.accuracy <= 1 for corpus in results.corpora.corpora)
    assert set(results.cross_validation.views) >= {"log_mel_cnn", "functionals", "fused"}
    assert load_bundle(out).labels["emotion"] == list(EMOTIONS)
