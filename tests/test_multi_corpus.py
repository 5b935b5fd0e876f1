"""`python -m ser train` on several corpora: a RAVDESS-named folder and a researcher's manifest of
synthetic clips, trained with the masked recipe (tiny network, one fold, two epochs)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser.testing import synthetic_voice
from ser.training.data import EMOTIONS

MANIFEST_EMOTIONS = ("neutral", "happy", "angry")


def _write_corpora(root: Path) -> tuple[Path, Path]:
    """Six RAVDESS actors (all eight emotions, speech) and a manifest of five speakers, three emotions."""
    ravdess = root / "ravdess"
    ravdess.mkdir()
    for actor in range(1, 7):
        for emotion in range(1, 9):
            voice = synthetic_voice(seconds=1.0, pitch=100 + 15 * emotion + 3 * actor, seed=actor * 10 + emotion)
            soundfile.write(ravdess / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav", voice, 16000)
    clips = root / "mine" / "audio"
    clips.mkdir(parents=True)
    lines = ["path,emotion,speaker,gender"]
    for speaker in range(1, 6):
        for number, emotion in enumerate(MANIFEST_EMOTIONS * 2):
            name = f"p{speaker}_{number}.wav"
            pitch = 120 + 40 * MANIFEST_EMOTIONS.index(emotion) + 5 * speaker
            soundfile.write(clips / name, synthetic_voice(seconds=1.0, pitch=pitch, seed=100 + 7 * speaker + number),
                            16000)
            lines.append(f"audio/{name},{emotion},p{speaker},{'' if speaker == 5 else ('male', 'female')[speaker % 2]}")
    manifest = root / "mine" / "mine.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return ravdess, manifest


@pytest.fixture
def tiny_settings(monkeypatch):
    import ser.training.settings as settings_module

    tiny = settings_module.TrainSettings(width=8, batch_size=16, patience=1, functional_c_grid=(0.01,),
                                         voicing_c_grid=(0.01,))
    monkeypatch.setattr(settings_module, "TrainSettings", lambda: tiny)


@pytest.mark.slow
def test_two_corpora_train_into_a_bundle_that_answers_in_eight_emotions(tmp_path, tiny_settings, capsys):
    from ser.__main__ import main
    from ser.reporting.results import load_training

    ravdess, manifest = _write_corpora(tmp_path)
    out = tmp_path / "bundle"
    code = main(["train", "--data", str(ravdess), "--data", str(manifest), "--out", str(out),
                 "--cache", str(tmp_path / "cache"), "--epochs", "2", "--folds", "1"])
    assert code == 0, capsys.readouterr().err
    results = load_training(out / "metrics.json")
    corpora = results.corpora
    assert corpora is not None and corpora.headline_corpus == "ravdess"
    assert results.headline.protocol.endswith("RAVDESS speech, 8 emotions")
    assert "--data ravdess --data mine.csv" in results.command and str(tmp_path) not in results.command
    by_name = {corpus.corpus: corpus for corpus in corpora.corpora}
    assert set(by_name) == {"ravdess", "mine"}
    assert by_name["mine"].emotions == list(MANIFEST_EMOTIONS) and by_name["ravdess"].emotions == list(EMOTIONS)
    for corpus in corpora.corpora:
        assert 0 <= corpus.accuracy <= 1 and 0 <= corpus.uar <= 1 and 0 <= corpus.app_accuracy <= 1
        # Answering within fewer emotions can only turn wrong answers right, never the reverse.
        assert corpus.accuracy >= corpus.app_accuracy
        assert corpus.per_speaker_spread.min <= corpus.per_speaker_spread.median <= corpus.per_speaker_spread.max
        assert sum(row.n for row in corpus.per_speaker) == corpus.n_clips
    # The headline counts RAVDESS's test clips only, every one of its actors by number and name.
    cv = results.cross_validation
    assert cv.n == by_name["ravdess"].n_clips
    assert all(row.speaker.startswith("ravdess-") for row in cv.per_actor)
    assert cv.intensity_accuracy is not None and cv.gender_accuracy is not None
    (fold,) = corpora.folds
    parts = [set(fold.train), set(fold.validation), set(fold.test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set().union(*parts) == set(corpora.speakers) and len(corpora.speakers) == 11
    for part in parts:  # speakers dealt per corpus: every part holds both corpora
        assert {name.split("-")[0] for name in part} == {"ravdess", "mine"}
    assert sorted(corpora.speakers[code - 1] for code in cv.per_fold[0].test) == fold.test

    from ser.serving.bundle import load_bundle

    bundle = load_bundle(out)
    assert list(bundle.labels["emotion"]) == list(EMOTIONS)
    capsys.readouterr()
    clip = tmp_path / "mine" / "audio" / "p1_0.wav"
    assert main(["predict", "--model", str(out), "--json", str(clip)]) == 0
    answer = json.loads(capsys.readouterr().out.splitlines()[0])
    assert set(answer["probabilities"]) == set(EMOTIONS) and answer["emotion"] in EMOTIONS


def test_a_bad_manifest_row_is_one_error_line_naming_it(tmp_path, capsys):
    from ser.__main__ import main

    ravdess, manifest = _write_corpora(tmp_path)
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2].replace(",happy,", ",anger,")
    manifest.write_text("\n".join(lines) + "\n")
    assert main(["train", "--data", str(ravdess), "--data", str(manifest), "--out", str(tmp_path / "out")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: ")
    assert str(manifest) in errors[0] and "line 3: unknown emotion 'anger'" in errors[0] and "'angry'" in errors[0]
    assert not (tmp_path / "out").exists()


def test_one_ravdess_folder_keeps_the_shipped_path_and_others_take_the_masked_one(tmp_path):
    from ser.__main__ import _one_ravdess_folder

    ravdess, manifest = _write_corpora(tmp_path)
    assert _one_ravdess_folder([ravdess]) and _one_ravdess_folder([tmp_path / "missing"])
    assert not _one_ravdess_folder([manifest]) and not _one_ravdess_folder([ravdess, manifest])
    ased = tmp_path / "ased"
    ased.mkdir()
    soundfile.write(ased / "n1-01-01-01-01.wav", synthetic_voice(seconds=0.5), 16000)
    assert not _one_ravdess_folder([ased])


def _clip_set(table: pd.DataFrame):
    from ser.training.clips import ClipSet
    from ser.training.corpora import emotion_mask
    from ser.training.data import GENDERS

    speakers = tuple(dict.fromkeys(table["speaker"]))
    return ClipSet(
        variants={1.0: [None] * len(table)}, emotion=table["emotion"].map(EMOTIONS.index).to_numpy(),
        gender=table["gender"].map(lambda g: GENDERS.index(g) if g in GENDERS else -1).to_numpy(),
        intensity=np.full(len(table), -1), actor=table["speaker"].map(lambda s: speakers.index(s) + 1).to_numpy(),
        corpus=table["corpus"].to_numpy(str), class_mask=emotion_mask(table), speakers=speakers,
    )


def test_split_speakers_never_puts_a_speaker_in_two_parts_and_keeps_ravdess_headline_folds():
    from ser.training.cross_validation import split_speakers
    from ser.training.splits import train_validation_test

    rows = [{"corpus": "ravdess", "speaker": f"ravdess-{actor:02d}", "emotion": emotion,
             "gender": "male" if actor % 2 else "female"} for actor in range(1, 21) for emotion in EMOTIONS]
    rows += [{"corpus": "ased", "speaker": f"ased-{speaker:02d}", "emotion": emotion,
              "gender": None if speaker > 60 else ("female", "male")[speaker % 2]}
             for speaker in range(1, 66) for emotion in ("neutral", "happy", "sad", "angry", "fearful")]
    clips = _clip_set(pd.DataFrame(rows))
    seen_in_test = []
    for fold in range(5):
        train, validation, test = (set(part) for part in split_speakers(clips, n_folds=5, fold=fold, seed=0))
        assert not (train & validation or train & test or validation & test)
        assert train | validation | test == set(clips.actor.tolist())
        names = {part: {clips.speakers[code - 1] for code in codes}
                 for part, codes in (("train", train), ("validation", validation), ("test", test))}
        for part in names.values():
            assert {name.split("-")[0] for name in part} == {"ravdess", "ased"}
        ravdess_test = sorted(int(name.split("-")[1]) for name in names["test"] if name.startswith("ravdess"))
        assert ravdess_test == train_validation_test(list(range(1, 21)), n_folds=5, fold=fold, seed=0)[2]
        seen_in_test += sorted(test)
    assert sorted(seen_in_test) == sorted(set(clips.actor.tolist()))  # each speaker tested exactly once


def test_an_emotion_a_corpus_lacks_is_never_counted_wrong():
    from ser.training.cross_validation import _accuracy
    from ser.training.evaluate import restrict
    from ser.training.masked_views import corpus_mean_accuracy

    table = pd.DataFrame({"corpus": ["a", "a", "b", "b"], "speaker": ["a-1", "a-1", "b-1", "b-1"],
                          "emotion": ["neutral", "calm", "neutral", "happy"], "gender": None})
    clips = _clip_set(table)
    probabilities = np.full((4, len(EMOTIONS)), 0.01)
    probabilities[:, EMOTIONS.index("surprised")] = 0.5  # no corpus has it: the top answer everywhere
    probabilities[0, EMOTIONS.index("neutral")] = probabilities[1, EMOTIONS.index("calm")] = 0.3
    probabilities[2, EMOTIONS.index("neutral")] = probabilities[3, EMOTIONS.index("happy")] = 0.3
    probabilities[2, EMOTIONS.index("calm")] = 0.4  # corpus b has no calm: not its answer either
    assert _accuracy(probabilities, clips.emotion, clips.class_mask) == 1.0
    assert _accuracy(probabilities, clips.emotion, None) == 0.0  # as the app answers: all wrong
    assert corpus_mean_accuracy(probabilities, clips) == 1.0
    restricted = restrict(probabilities, clips.class_mask)
    np.testing.assert_allclose(restricted.sum(axis=1), 1.0)
    assert np.all(restricted[~clips.class_mask] == 0) and np.all(restricted.argmax(1) == clips.emotion)
    assert restrict(probabilities, None) is probabilities


def test_masked_views_fit_each_corpus_on_its_emotions_and_answer_in_eight():
    from ser.training.masked_views import choose_masked_c, fit_masked_member
    from ser.training.views import predict_functionals

    rng = np.random.default_rng(0)
    rows = [{"corpus": "ravdess", "speaker": f"ravdess-{k % 4}", "emotion": EMOTIONS[k % 8],
             "gender": ("male", "female")[k % 2]} for k in range(64)]
    rows += [{"corpus": "mine", "speaker": f"mine-{k % 3}", "emotion": MANIFEST_EMOTIONS[k % 3], "gender": None}
             for k in range(30)]
    clips = _clip_set(pd.DataFrame(rows))
    values = rng.standard_normal((len(rows), 12)).astype(np.float32) + clips.emotion[:, None] * 0.8
    clips = dataclasses.replace(clips, functionals={speed: values for speed in (1.0, 0.9, 1.1)},
                                intensity=np.where(clips.corpus == "ravdess", np.arange(len(rows)) % 2, -1))
    train, validation = clips.subset(np.arange(len(rows)) % 5 != 0), clips.subset(np.arange(len(rows)) % 5 == 0)
    c, scores, probabilities = choose_masked_c(train, validation, grid=(0.01, 1.0))
    assert c in (0.01, 1.0) and set(scores) == {"0.01", "1.0"} and probabilities.shape == (len(validation), 8)
    model = fit_masked_member(train, c=c, columns=np.arange(6))
    outputs = predict_functionals(model, validation)
    assert outputs["emotion"].shape == (len(validation), 8) and outputs["gender"].shape == (len(validation), 2)
    np.testing.assert_allclose(outputs["emotion"].sum(axis=1), 1.0, atol=1e-5)
    kernel = model.get_layer("emotion").get_weights()[0]
    assert np.all(kernel[6:] == 0) and np.any(kernel[:6] != 0)  # only its own columns count


def test_evaluate_refuses_the_ravdess_baselines_on_other_corpora(tmp_path, capsys):
    from ser.__main__ import main

    ravdess, manifest = _write_corpora(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.keras").write_bytes(b"")
    assert main(["evaluate", "--data", str(ravdess), "--data", str(manifest), "--out", str(tmp_path / "out"),
                 "--baselines"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 1 and "--baselines" in errors[0] and "one RAVDESS folder" in errors[0]


@pytest.mark.parametrize(("share", "several", "message"), [
    ("1.5", False, "--word-crops 1.5: give a share of the CNN's windows in \\[0, 1\\)"),
    ("-0.1", False, "in \\[0, 1\\)"),
    ("0.25", True, "--word-crops is part of the one-folder recipe"),
])
def test_bad_word_crop_options_are_refused_before_training(tmp_path, capsys, share, several, message):
    import re

    from ser.__main__ import main

    ravdess, manifest = _write_corpora(tmp_path)
    data = ["--data", str(ravdess)] + (["--data", str(manifest)] if several else [])
    assert main(["train", *data, "--word-crops", share, "--out", str(tmp_path / "out"),
                 "--cache", str(tmp_path / "cache")]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()
