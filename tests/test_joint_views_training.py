"""``python -m ser joint-views`` and ``python -m ser routing``: the joint views' cross-validation never trains
on a speaker it answers, the command writes a bundle part the app loads, and the out-of-fold files are placed
clip by clip."""

import numpy as np
import pytest

import ser.training.joint_views as joint_views
from ser.errors import SERError
from ser.training.fold_answers import OutOfFold
from ser.training.linear_views import FunctionalClips
from ser.training.routing import place_answers
from tests.test_loco import SMALL, _three_corpora, _write_corpora


def _two_corpora() -> FunctionalClips:
    clips = _three_corpora(seed=3)
    keep = clips.corpus != "speechocean"
    two = FunctionalClips(table=clips.table[keep].reset_index(drop=True),
                          speeds={speed: values[keep] for speed, values in clips.speeds.items()}, room=clips.room[keep])
    two.names = clips.names
    return two


def test_every_clip_is_answered_once_by_views_that_never_heard_its_speaker(monkeypatch):
    clips = _two_corpora()
    heard: list[set[str]] = []
    fit = joint_views.fit_views

    def spy(clips_, rows, **kwargs):
        heard.append(set(clips_.speaker[rows]))
        return fit(clips_, rows, **kwargs)

    monkeypatch.setattr(joint_views, "fit_views", spy)
    folds = joint_views.cross_validate_joint(clips, SMALL)
    assert sorted(folds.rows.tolist()) == list(range(len(clips)))  # each clip once
    np.testing.assert_allclose(folds.fused.sum(axis=1), 1.0, atol=1e-6)
    # SMALL: per fold one fit of the functionals' two C values, its refit, and one voicing fit (one C)
    calls = len(heard) // joint_views.N_FOLDS
    assert calls * joint_views.N_FOLDS == len(heard) == 3 * joint_views.N_FOLDS
    start, tested = 0, []
    for fold in range(joint_views.N_FOLDS):  # rows come fold by fold
        fold_heard = set().union(*heard[fold * calls: (fold + 1) * calls])
        test = set(clips.speaker) - fold_heard
        count = int(np.isin(clips.speaker, sorted(test)).sum())
        assert set(clips.speaker[folds.rows[start: start + count]]) == test
        start += count
        tested.append(test)
    assert sorted(speaker for test in tested for speaker in test) == sorted(set(clips.speaker))


def test_ordinary_voices_join_the_cross_validation_with_their_partial_label():
    clips = _three_corpora(seed=3)
    corpora = (*joint_views.CORPORA, joint_views.ORDINARY)
    folds = joint_views.cross_validate_joint(clips, SMALL, corpora=corpora)
    assert sorted(folds.rows.tolist()) == list(range(len(clips)))  # each clip once, ordinary voices included
    ordinary = clips.corpus[folds.rows] == "speechocean"
    assert ordinary.any() and np.isfinite(folds.fused).all()
    assert joint_views.CORPORA == ("ravdess", "ased")
    for choice in folds.choices:
        assert all(0.0 <= value <= 1.0 for value in choice["functionals"]["validation_accuracy"].values())


def test_a_partial_label_is_right_when_the_answer_is_in_its_target_set(monkeypatch):
    """The L2 choice scores an ordinary voice answered calm (or neutral) as right, as the loss rewards it."""
    from ser.training.data import EMOTIONS

    clips = _three_corpora(seed=3)
    ordinary = clips.corpus == "speechocean"
    calm = EMOTIONS.index("calm")

    class Calm:  # a view that answers calm for everything, whatever its L2 strength
        def probabilities(self, values):
            out = np.full((len(values), len(EMOTIONS)), 0.01)
            out[:, calm] = 1.0
            return out / out.sum(axis=1, keepdims=True)

    monkeypatch.setattr(joint_views, "fit_views", lambda clips_, rows, *, c_values, **_: [Calm() for _ in c_values])
    _, choice = joint_views.fit_fold(clips, ~ordinary, ordinary, SMALL, log=lambda message: None, label="test")
    assert set(choice["functionals"]["validation_accuracy"].values()) == {1.0}  # single labels would score 0


def test_training_needs_both_corpora():
    clips = _two_corpora()
    only = clips.corpus == "ravdess"
    ravdess = FunctionalClips(table=clips.table[only].reset_index(drop=True),
                              speeds={speed: values[only] for speed, values in clips.speeds.items()},
                              room=clips.room[only])
    ravdess.names = clips.names
    with pytest.raises(ValueError, match="lack.*ased"):
        joint_views.train_joint_views(ravdess, recipe=SMALL)
    with pytest.raises(ValueError, match="lacks the clips of .*ased"):  # ordinary voices cannot stand in for ASED
        joint_views.train_joint_views(_three_corpora(seed=3), recipe=SMALL, corpora=("ravdess", "speechocean"))


def test_answers_are_placed_by_corpus_speaker_and_file_and_strangers_are_refused():
    keys = [("ravdess", "ravdess-01", "a.wav"), ("ased", "ased-01", "a.wav"), ("ased", "ased-02", "b.wav")]
    answers = OutOfFold(file_name=np.array(["a.wav", "b.wav"]), corpus=np.array(["ased", "ased"]),
                        speaker=np.array(["ased-01", "ased-02"]), raw=np.eye(2), probabilities=np.eye(2),
                        temperature=1.0)
    placed = place_answers(answers, keys, what="test")
    assert np.isnan(placed[0]).all()
    np.testing.assert_array_equal(placed[1:], np.eye(2))
    stranger = OutOfFold(**{**answers.__dict__, "speaker": np.array(["ased-01", "ased-09"])})
    with pytest.raises(SERError, match="ased-09"):
        place_answers(stranger, keys, what="test")


def test_the_commands_refuse_missing_data_or_bundle_parts(tmp_path, tiny_bundle, capsys):
    from ser.__main__ import main

    assert main(["joint-views", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "data").mkdir()
    assert main(["routing", "--data", str(tmp_path / "data"), "--out", str(tiny_bundle)]) == 2
    assert "joint_views.keras" in capsys.readouterr().err
    assert main(["joint-views", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "out")]) == 2
    assert "--no-ordinary" in capsys.readouterr().err  # no speechocean/: say how to train without it


@pytest.mark.slow
def test_the_joint_views_command_writes_a_part_the_bundle_loads_and_its_out_of_fold_answers(
        tmp_path, tiny_bundle, monkeypatch):
    import json
    import shutil

    import ser.joint_views_cli
    from ser.__main__ import main
    from ser.config import FeatureConfig
    from ser.serving.bundle import load_bundle
    from ser.training.fold_answers import read_out_of_fold

    _write_corpora(tmp_path / "data", config=FeatureConfig())
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    monkeypatch.setattr(joint_views, "LinearRecipe", lambda: SMALL)
    monkeypatch.setattr(ser.joint_views_cli, "_log", lambda message: None)
    assert main(["joint-views", "--data", str(tmp_path / "data"), "--out", str(bundle),
                 "--cache", str(tmp_path / "cache")]) == 0
    settings = json.loads((bundle / "joint_views.json").read_text())  # by default the ordinary voices too
    assert settings["corpora"] == ["ravdess", "ased", "speechocean"]
    assert settings["clips"] == 30 and settings["speakers"] == 15
    assert settings["command"] == "python -m ser joint-views --data ../shared/data --out models/"
    answers = read_out_of_fold(bundle, name=joint_views.JOINT_OUT_OF_FOLD_FILE)
    assert len(answers.file_name) == 30 and set(answers.corpus) == {"ravdess", "ased", "speechocean"}
    assert answers.temperature == settings["temperature"] > 0
    np.testing.assert_allclose(answers.probabilities.sum(axis=1), 1.0, atol=1e-6)
    loaded = load_bundle(bundle)  # the app loads the pair with safe_mode
    assert loaded.has_joint_views and loaded.joint_views.settings.temperature == answers.temperature
    width = loaded.joint_views.model.inputs[0].shape[-1]
    rows = np.random.default_rng(5).normal(0, 1, (3, width)).astype(np.float32)
    np.testing.assert_allclose(loaded.joint_views.probabilities(rows).sum(axis=1), 1.0, atol=1e-5)


def test_a_bundle_without_kept_answers_is_scored_by_the_fold_that_never_heard_each_actor(tmp_path, tiny_bundle,
                                                                                           monkeypatch):
    """``ser routing`` on a bundle trained before ``ser train`` kept its answers: each RAVDESS clip is answered
    by the members of the one fold whose test actors include its actor, cached per fold and model."""
    import pandas as pd

    import ser.training.corpus_check as corpus_check
    import ser.training.robustness as robustness
    from ser.reporting.results import FoldScore
    from ser.serving.bundle import load_bundle
    from ser.training.routing import fold_member_answers

    bundle = load_bundle(tiny_bundle)
    tested = {0: {1, 3}, 1: {2}}  # actor 4 is in no fold: no answer
    monkeypatch.setattr(robustness, "fold_bundles",
                        lambda shipped, folds: {fold: (f"fold-{fold}", actors) for fold, actors in tested.items()})
    monkeypatch.setattr(corpus_check, "score_clips", lambda fold_bundle, table, **_: np.array(
        [[int(fold_bundle[-1]) + 1.0] * 8 for _ in range(len(table))]))
    monkeypatch.setattr("ser.reporting.results.load_training", lambda path: type("T", (), {
        "cross_validation": type("C", (), {"per_fold": [FoldScore]})()})())
    table = pd.DataFrame({"speaker": [f"ravdess-0{actor}" for actor in (1, 2, 3, 2)],
                          "path": [str(tmp_path / f"{k}.wav") for k in range(4)]})
    shared = {"root": tmp_path, "metrics": tmp_path / "metrics.json", "score_cache": tmp_path / "cache",
              "log": lambda message: None}
    answers = fold_member_answers(bundle, table, **shared)
    assert answers.shape == (4, len(bundle.emotions))
    np.testing.assert_array_equal(answers[:, 0], [1.0, 2.0, 1.0, 2.0])  # fold 0 -> 1.0, fold 1 -> 2.0
    stranger = pd.DataFrame({"speaker": ["ravdess-04"], "path": [str(tmp_path / "4.wav")]})
    with pytest.raises(SERError, match=r"tested actors \[4\]"):  # in no fold: refused, not scored as refused
        fold_member_answers(bundle, stranger, **shared)


def test_a_bundle_without_a_voice_check_never_learnt_the_ordinary_voices(tmp_path, tiny_bundle):
    from ser.training.routing import learnt_ordinary

    assert not learnt_ordinary(tmp_path)  # no unfamiliarity.npz at all: loco and routing treat it as not learnt
    assert not learnt_ordinary(tiny_bundle)
