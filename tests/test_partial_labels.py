"""`python -m ser train` with speechocean's ordinary voices: the partial label "neutral or calm" in the
CNN's masked loss, the linear views, validation accuracy and the per-corpus summary."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser.testing import ROOT, synthetic_voice
from ser.training.corpora import NEUTRAL_OR_CALM
from ser.training.data import EMOTIONS
from tests.test_multi_corpus import tiny_settings  # noqa: F401 (a fixture the slow test uses)

ASED_EMOTIONS = ("neutral", "happy", "sad", "angry", "fearful")
NEUTRAL, CALM, ANGRY = (EMOTIONS.index(name) for name in ("neutral", "calm", "angry"))


def _clip_set(table: pd.DataFrame, *, functionals: int = 0, seed: int = 0):
    """A ClipSet of a corpus table, labelled as build_corpus_clip_set labels it (no audio, optional
    random functionals that separate the single labels)."""
    from ser.training.clips import ClipSet
    from ser.training.corpora import emotion_mask, target_mask
    from ser.training.data import GENDERS
    from ser.training.target_sets import single_labels

    speakers = tuple(dict.fromkeys(table["speaker"]))
    targets = target_mask(table)
    emotion = single_labels(targets)
    values = None
    if functionals:
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((len(EMOTIONS), functionals)) * 2
        centre = np.where(emotion[:, None] >= 0, centres[np.maximum(emotion, 0)], centres[[NEUTRAL, CALM]].mean(0))
        rows = (centre + rng.standard_normal((len(table), functionals))).astype(np.float32)
        values = {speed: rows for speed in (1.0, 0.9, 1.1)}
    return ClipSet(
        variants={1.0: [None] * len(table)}, emotion=emotion,
        gender=table["gender"].map(lambda g: GENDERS.index(g) if g in GENDERS else -1).to_numpy(),
        intensity=np.full(len(table), -1), actor=table["speaker"].map(lambda s: speakers.index(s) + 1).to_numpy(),
        corpus=table["corpus"].to_numpy(str), class_mask=emotion_mask(table), speakers=speakers,
        target_mask=targets, functionals=values,
    )


def _table(corpora: dict[str, tuple[str, ...]], *, speakers: int = 3, repeats: int = 1) -> pd.DataFrame:
    rows = [{"corpus": corpus, "speaker": f"{corpus}-{who}", "emotion": label, "gender": ("male", "female")[who % 2]}
            for corpus, labels in corpora.items() for who in range(speakers) for label in labels * repeats]
    return pd.DataFrame(rows)


# --- the CNN's masked loss -------------------------------------------------------------------------


def test_a_target_set_loss_rewards_the_summed_probability_over_all_eight():
    from ser.training.masked_cnn import encode_targets, masked_emotion_loss

    probabilities = np.array([[0.2, 0.3, 0.1, 0.05, 0.15, 0.05, 0.1, 0.05]], dtype=np.float32)
    targets = np.isin(EMOTIONS, ("neutral", "calm"))[None]
    encoded = encode_targets(None, np.ones((1, 8), dtype=bool), target_mask=targets)
    assert encoded.tolist() == [[2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    loss = float(np.asarray(masked_emotion_loss(encoded, probabilities))[0])
    assert loss == pytest.approx(-np.log(0.2 + 0.3) + np.log(probabilities.sum()), abs=1e-6)
    assert loss == pytest.approx(np.log(2.0), abs=1e-6)  # half of the mass on neutral or calm
    # Narrowed to five emotions (ASED's): only those five are in the denominator.
    five = np.isin(EMOTIONS, ASED_EMOTIONS)[None]
    narrowed = encode_targets(None, five, target_mask=np.isin(EMOTIONS, ("neutral",))[None])
    expected = -np.log(0.2) + np.log(probabilities[0, five[0]].sum())
    assert float(np.asarray(masked_emotion_loss(narrowed, probabilities))[0]) == pytest.approx(expected, abs=1e-6)


def test_single_labels_as_target_sets_give_the_same_targets_and_loss_bit_for_bit():
    from keras import ops

    from ser.training.masked_cnn import PROBABILITY_FLOOR, encode_targets, masked_emotion_loss
    from ser.training.target_sets import one_hot_targets

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(8), 6).astype(np.float32)
    labels = np.array([0, 2, 3, 4, 5, 7])
    mask = np.ones((6, 8), dtype=bool)
    mask[:3, [1, 6, 7]] = False
    by_label = encode_targets(labels, mask)
    by_set = encode_targets(None, mask, target_mask=one_hot_targets(labels, n_classes=8))
    assert by_label.dtype == by_set.dtype and np.array_equal(by_label, by_set)
    loss = np.asarray(masked_emotion_loss(by_set, probabilities))
    # The loss before target sets existed, operation for operation.
    clipped = ops.clip(probabilities, PROBABILITY_FLOOR, 1.0)
    before = -ops.log(ops.sum(ops.cast(by_label == 2.0, "float32") * clipped, axis=-1)) + ops.log(
        ops.sum(ops.cast(by_label > 0.0, "float32") * clipped, axis=-1))
    assert np.array_equal(loss, np.asarray(before))


def test_target_sets_are_checked_with_a_reason():
    from ser.training.masked_cnn import encode_targets

    mask = np.ones((1, 8), dtype=bool)
    with pytest.raises(ValueError, match="exactly one"):
        encode_targets(np.array([0]), mask, target_mask=mask)
    with pytest.raises(ValueError, match="empty target set"):
        encode_targets(None, mask, target_mask=np.zeros((1, 8), dtype=bool))
    with pytest.raises(ValueError, match="not among its corpus's emotions"):
        encode_targets(None, np.isin(EMOTIONS, ASED_EMOTIONS)[None], target_mask=np.isin(EMOTIONS, ("calm",))[None])


def test_the_keras_accuracy_counts_an_answer_in_the_target_set_right():
    from ser.training.masked_cnn import encode_targets, masked_accuracy

    targets = np.zeros((3, 8), dtype=bool)
    targets[:2, [NEUTRAL, CALM]] = True
    targets[2, ANGRY] = True
    encoded = encode_targets(None, np.ones((3, 8), dtype=bool), target_mask=targets)
    probabilities = np.full((3, 8), 0.05, dtype=np.float32)
    probabilities[0, CALM] = probabilities[1, ANGRY] = probabilities[2, ANGRY] = 0.65
    assert np.asarray(masked_accuracy(encoded, probabilities)).tolist() == [1.0, 0.0, 1.0]


def test_clip_targets_drop_a_class_no_single_label_teaches_in_training_and_validation():
    from ser.training.masked_cnn import clip_targets, masked_targets
    from ser.training.target_sets import taught_classes

    clips = _clip_set(_table({"ased": ASED_EMOTIONS, "speechocean": (NEUTRAL_OR_CALM,)}))
    partial = clips.emotion < 0
    encoded = clip_targets(clips)
    five = np.isin(EMOTIONS, ASED_EMOTIONS)
    # Calm: named only inside "neutral or calm", taught against by nobody: it leaves the label.
    assert np.all(encoded[partial] == np.where(np.arange(8) == NEUTRAL, 2.0, five.astype(np.float32)))
    assert np.array_equal(encoded[~partial], clip_targets(clips.subset(~partial)))
    # Validation clips are narrowed by what the training clips teach, not by their own labels.
    everything = np.ones(8, dtype=bool)
    validation, _ = masked_targets(clips.subset(partial), taught=everything)
    assert np.all(validation["emotion"] == np.where(np.isin(np.arange(8), [NEUTRAL, CALM]), 2.0, 1.0))
    narrowed, _ = masked_targets(clips.subset(partial), taught=taught_classes(clips.emotion, clips.class_mask))
    assert np.array_equal(narrowed["emotion"], encoded[partial])
    # With RAVDESS's eight single labels nothing is narrowed.
    three = _clip_set(_table({"ravdess": EMOTIONS, "ased": ASED_EMOTIONS, "speechocean": (NEUTRAL_OR_CALM,)}))
    assert np.array_equal(clip_targets(three)[three.emotion < 0] == 2.0, three.target_mask[three.emotion < 0])


# --- accuracy, the linear views and the per-corpus summary ----------------------------------------


def test_accuracy_counts_a_partial_label_right_anywhere_in_its_target_set():
    from ser.training.cross_validation import _accuracy
    from ser.training.masked_views import corpus_mean_accuracy

    clips = _clip_set(_table({"ravdess": ("happy",), "speechocean": (NEUTRAL_OR_CALM,)}, speakers=3))
    probabilities = np.full((len(clips), 8), 0.01)
    probabilities[:, EMOTIONS.index("happy")] = 0.5
    speechocean = clips.corpus == "speechocean"
    probabilities[np.flatnonzero(speechocean)[0], CALM] = 0.9  # right
    probabilities[np.flatnonzero(speechocean)[1], NEUTRAL] = 0.9  # right; the third answers happy: wrong
    assert _accuracy(probabilities, clips.emotion, clips.class_mask, targets=clips.targets()) == pytest.approx(5 / 6)
    assert corpus_mean_accuracy(probabilities, clips) == pytest.approx((1.0 + 2 / 3) / 2)
    # Single labels: the targets default to the label, as before.
    single = ~speechocean
    assert _accuracy(probabilities[single], clips.emotion[single], clips.class_mask[single]) == 1.0


def test_the_linear_views_pass_target_sets_narrowed_as_the_study_does(monkeypatch):
    import ser.training.masked_views as masked_views
    from ser.training.masked_linear import fit_masked_logistic

    seen = []

    def spy(rows, labels, **kwargs):
        seen.append((labels, kwargs.get("target_mask"), kwargs["class_mask"]))
        return fit_masked_logistic(rows, labels, **kwargs)

    monkeypatch.setattr(masked_views, "fit_masked_logistic", spy)
    clips = _clip_set(_table({"ased": ASED_EMOTIONS, "speechocean": (NEUTRAL_OR_CALM,)}, repeats=2), functionals=6)
    c, scores, probabilities = masked_views.choose_masked_c(clips, clips, grid=(0.1,))
    labels, targets, class_mask = seen[-1]
    partial = np.tile(clips.emotion, 3) < 0
    assert labels is None and targets is not None
    assert np.all(targets[partial] == (np.arange(8) == NEUTRAL)) and np.all(class_mask[partial][:, CALM] == 0)
    assert 0.0 <= scores["0.1"] <= 1.0 and probabilities.shape == (len(clips), 8)
    model = masked_views.fit_masked_member(clips, c=c)
    assert model.get_layer("emotion").get_weights()[0].shape == (6, 8)
    # Single labels only: the labels path, the same fit whether or not the clips carry target sets.
    single = clips.subset(clips.emotion >= 0)
    seen.clear()
    with_sets = masked_views.choose_masked_c(single, single, grid=(0.1,))[2]
    without = masked_views.choose_masked_c(dataclasses.replace(single, target_mask=None), single, grid=(0.1,))[2]
    assert all(labels is not None and targets is None for labels, targets, _ in seen)
    assert np.array_equal(with_sets, without)


def test_the_speechocean_summary_reports_its_shares_and_no_fake_recall():
    from ser.training.corpus_summary import _corpus_scores, partial_labels

    clips = _clip_set(_table({"ravdess": EMOTIONS, "speechocean": (NEUTRAL_OR_CALM,) * 4}, speakers=2))
    positions = np.arange(len(clips))
    probabilities = np.full((len(clips), 8), 0.01)
    probabilities[np.arange(len(clips)), np.maximum(clips.emotion, 0)] = 0.9  # RAVDESS right, speechocean neutral
    ocean = np.flatnonzero(clips.corpus == "speechocean")
    probabilities[ocean[:2]] = 0.01
    probabilities[ocean[0], ANGRY] = probabilities[ocean[1], EMOTIONS.index("surprised")] = 0.9
    probabilities[ocean[2], CALM] = 0.95
    partial = partial_labels(clips)
    assert partial == {"speechocean": NEUTRAL_OR_CALM}
    scores = _corpus_scores(clips, positions, probabilities, "speechocean", partial=partial)
    assert scores.partial_label == NEUTRAL_OR_CALM and scores.n_clips == 8 and scores.n_speakers == 2
    assert scores.recall == {} and scores.uar is None and scores.app_uar is None
    assert scores.target_share == scores.accuracy == scores.app_accuracy == 6 / 8
    assert scores.false_alarms == ["angry", "fearful", "disgust"] and scores.false_alarm_share == 1 / 8
    assert sum(scores.answer_share.values()) == pytest.approx(1.0) and scores.answer_share["surprised"] == 1 / 8
    for value in (scores.target_share, scores.false_alarm_share, scores.per_speaker_spread.min):
        assert 0.0 <= value <= 1.0
    ravdess = _corpus_scores(clips, positions, probabilities, "ravdess", partial=partial)
    assert ravdess.partial_label is None and ravdess.accuracy == 1.0 and set(ravdess.recall) == set(EMOTIONS)


def test_corpus_scores_with_partial_fields_round_trip_and_old_files_still_load(tmp_path):
    from ser.reporting.multi_corpus import CorpusScores, SpeakerSpread
    from ser.reporting.results import load_training
    from ser.reporting.schema import read_results, to_json, write_results

    shipped = load_training(ROOT / "models" / "metrics.json")  # written before target sets existed
    assert shipped.data.speech_per_partial_label is None
    plain = CorpusScores(corpus="ased", emotions=list(ASED_EMOTIONS), n_clips=5, n_speakers=1, accuracy=0.4, uar=0.4,
                         recall={"neutral": 1.0}, app_accuracy=0.2, app_uar=0.2, per_speaker=[],
                         per_speaker_spread=SpeakerSpread(min=0.4, median=0.4, max=0.4, std=0.0))
    assert "partial_label" not in to_json(plain)  # a corpus of single labels writes what it always wrote
    ocean = dataclasses.replace(plain, corpus="speechocean", uar=None, app_uar=None, recall={},
                                partial_label=NEUTRAL_OR_CALM, target_share=0.7, false_alarms=["angry"],
                                false_alarm_share=0.1, answer_share={"neutral": 0.7, "angry": 0.1, "sad": 0.2})
    for scores in (plain, ocean):
        write_results(tmp_path / "scores.json", scores)
        assert read_results(tmp_path / "scores.json", CorpusScores, command="python -m ser train") == scores


# --- end to end --------------------------------------------------------------------------------------


def _write_three(root: Path) -> tuple[Path, Path, Path]:
    """Six RAVDESS actors (eight emotions), five ASED speakers (five emotions) and five speechocean speakers
    (two FLAC clips each and speakers.csv), all short seeded synthetic voices."""
    ravdess, ased, ocean = root / "ravdess", root / "ased", root / "speechocean"
    for folder in (ravdess, ased, ocean):
        folder.mkdir()
    for actor in range(1, 7):
        for emotion in range(1, 9):
            voice = synthetic_voice(seconds=1.0, pitch=100 + 15 * emotion + 3 * actor, seed=actor * 10 + emotion)
            soundfile.write(ravdess / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav", voice, 16000)
    for speaker in range(1, 6):
        for number, (letter, pitch) in enumerate((("n1", 115), ("h3", 160), ("s4", 105), ("a5", 190), ("f2", 175))):
            voice = synthetic_voice(seconds=1.0, pitch=pitch + 4 * speaker, seed=200 + 10 * speaker + number)
            soundfile.write(ased / f"{letter}-01-01-{1 + speaker % 2:02d}-{speaker:02d}.wav", voice, 16000)
    lines = ["file,speaker,gender,age,text"]
    for speaker in range(1, 6):
        for number in range(2):
            name = f"{speaker:04d}_{speaker:04d}{number:04d}.flac"
            voice = synthetic_voice(seconds=1.2, pitch=120 + 6 * speaker, seed=300 + 10 * speaker + number)
            soundfile.write(ocean / name, voice, 16000, format="FLAC")
            lines.append(f"{name},{speaker:04d},{'mf'[speaker % 2]},{6 + 5 * speaker},WE CALL IT BEAR")
    (ocean / "speakers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ravdess, ased, ocean


def test_speechocean_alone_is_refused_before_any_feature_is_computed(tmp_path, capsys):
    from ser.__main__ import main

    ocean = _write_three(tmp_path)[2]
    assert main(["train", "--data", str(ocean), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "partial label" in errors[0] and "--data" in errors[0]
    assert not (tmp_path / "c").exists() and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_three_corpora_with_ordinary_voices_train_into_a_bundle(tmp_path, tiny_settings, capsys):  # noqa: F811
    from ser.__main__ import main
    from ser.reporting.results import load_training

    ravdess, ased, ocean = _write_three(tmp_path)
    out = tmp_path / "bundle"
    code = main(["train", "--data", str(ravdess), "--data", str(ased), "--data", str(ocean), "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--epochs", "1", "--folds", "1",
                 "--save-fold-answers", str(tmp_path / "answers.npz")])
    assert code == 0, capsys.readouterr().err
    assert "answered neutral or calm" in capsys.readouterr().err
    results = load_training(out / "metrics.json")
    by_name = {corpus.corpus: corpus for corpus in results.corpora.corpora}
    assert set(by_name) == {"ravdess", "ased", "speechocean"} and results.corpora.headline_corpus == "ravdess"
    assert results.cross_validation.n == by_name["ravdess"].n_clips  # the headline: RAVDESS only
    assert "partial label 'neutral or calm'" in results.corpora.protocol
    assert results.data.speech_per_partial_label == {NEUTRAL_OR_CALM: 10} and results.data.speech_clips == 83
    ocean_scores = by_name["speechocean"]
    assert ocean_scores.emotions == list(EMOTIONS) and ocean_scores.recall == {} and ocean_scores.uar is None
    assert ocean_scores.partial_label == NEUTRAL_OR_CALM
    assert ocean_scores.false_alarms == ["angry", "fearful", "disgust"]
    assert 0.0 <= ocean_scores.target_share <= 1.0 and 0.0 <= ocean_scores.false_alarm_share <= 1.0
    assert ocean_scores.target_share + ocean_scores.false_alarm_share <= 1.0 + 1e-9
    assert ocean_scores.target_share == pytest.approx(ocean_scores.accuracy)
    assert sum(ocean_scores.answer_share.values()) == pytest.approx(1.0)
    for name in ("ravdess", "ased"):
        assert by_name[name].partial_label is None and 0.0 <= by_name[name].uar <= 1.0

    # The per-view answers a fusion study reads: every fold's validation and test speakers, apart.
    with np.load(tmp_path / "answers.npz", allow_pickle=False) as saved:
        answers = dict(saved)
    from ser.training.fold_answers import view_names

    n_clips = len(answers["file_name"])
    assert answers["targets"].shape == answers["allowed"].shape == (n_clips, len(EMOTIONS))
    assert set(answers["corpus"]) == {"ravdess", "ased", "speechocean"}
    speakers = {part: set(answers["speaker"][answers[f"fold0/{part}/positions"]]) for part in ("validation", "test")}
    assert speakers["validation"] and speakers["test"] and not speakers["validation"] & speakers["test"]
    for part in ("validation", "test"):
        assert view_names(answers, part=part) == ["functionals", "log_mel_cnn", "voicing"]
        n = len(answers[f"fold0/{part}/positions"])
        for view in view_names(answers, part=part):
            probabilities = answers[f"fold0/{part}/{view}"]
            assert probabilities.shape == (n, len(EMOTIONS))
            assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
        owners = answers[f"fold0/{part}/window_owners"]
        assert answers[f"fold0/{part}/cnn_windows"].shape == (len(owners), len(EMOTIONS))
        assert set(owners) == set(range(n))  # every clip has windows
