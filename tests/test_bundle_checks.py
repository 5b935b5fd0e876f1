"""The checks of a trained bundle as ``python -m ser`` commands (``make train`` runs them after training):
bad input refused with exit code 2 before any model loads, and each command writing its file from a tiny
bundle and a few synthetic clips."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ser.__main__ import main
from ser.config import FeatureConfig

CHECKS = ("robustness", "level-check", "seed-check", "corpus-check", "profile-check", "familiarity", "unfamiliarity")


@pytest.mark.parametrize("command", CHECKS)
def test_a_missing_data_folder_is_refused_with_exit_code_2(tmp_path, capsys, command):
    code = main([command, "--data", str(tmp_path / "absent"), "--out", str(tmp_path)])
    assert code == 2
    assert f"--data {tmp_path / 'absent'}: no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", CHECKS)
def test_a_bundle_folder_without_a_model_is_refused_with_exit_code_2(tmp_path, capsys, command):
    code = main([command, "--data", str(tmp_path), "--out", str(tmp_path / "empty")])
    assert code == 2
    assert "holds no model.keras; run `python -m ser train" in capsys.readouterr().err


def test_bad_options_are_refused_with_exit_code_2(tmp_path, capsys, tiny_bundle):
    assert main(["level-check", "--data", str(tmp_path), "--out", str(tiny_bundle), "--gain", "0"]) == 2
    assert "--gain must be positive" in capsys.readouterr().err
    assert main(["level-check", "--data", str(tmp_path), "--out", str(tiny_bundle), "--every", "0"]) == 2
    assert "--every must be at least 1" in capsys.readouterr().err
    assert main(["robustness", "--data", str(tmp_path), "--out", str(tiny_bundle)]) == 2  # no metrics.json
    assert "holds no metrics.json" in capsys.readouterr().err
    assert main(["unfamiliarity", "--out", str(tiny_bundle), "--false-positive-target", "0.7"]) == 2
    assert "--false-positive-target must be in (0, 0.5)" in capsys.readouterr().err
    assert main(["unfamiliarity", "--out", str(tiny_bundle), "--cache", str(tmp_path / "nothing")]) == 2
    assert "pass --data ../shared/data to compute them" in capsys.readouterr().err


def _voice(path: Path, seed: int) -> None:
    from ser.testing import synthetic_voice

    rate = FeatureConfig().sample_rate
    path.parent.mkdir(parents=True, exist_ok=True)
    voice = synthetic_voice(seconds=1.6, pitch=110 + 15 * (seed % 7), seed=seed)
    soundfile.write(path, np.pad(voice, rate // 4), rate)


def _ravdess(root: Path, *, actors: int = 5, emotions: tuple[int, ...] = (1, 5), suffix: str = "wav") -> Path:
    """RAVDESS-named speech clips below ``root/speech``: each actor, each emotion (1 neutral, 5 angry)."""
    for actor in range(1, actors + 1):
        for number, emotion in enumerate(emotions):
            _voice(root / "speech" / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.{suffix}",
                   10 * actor + number)
    return root


def _bundle_with_folds(tiny_bundle: Path, folder: Path, *, actors: int = 5) -> Path:
    """The tiny bundle (one fold's members: member_0, functional_0) with a metrics.json whose fold 0 tests every
    actor."""
    from ser.reporting import results as r
    from ser.reporting.provenance import model_sha256
    from ser.reporting.schema import write_results
    from tests.test_results import training_fixture

    shutil.copytree(tiny_bundle, folder)
    training = training_fixture()
    fold = dataclasses.replace(training.cross_validation.per_fold[0], train=[], validation=[],
                               test=list(range(1, actors + 1)))
    cv = dataclasses.replace(training.cross_validation, per_fold=[fold], curves=training.cross_validation.curves[:1])
    training = dataclasses.replace(training, cross_validation=cv, model_sha256=model_sha256(folder / "model.keras"))
    write_results(folder / r.FILES[r.TrainingResults][0], training)
    return folder


@pytest.mark.slow
def test_level_check_writes_its_file_with_the_options_that_differ(tmp_path, tiny_bundle):
    from ser.reporting.results import load_level_check

    data = _ravdess(tmp_path / "ravdess")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    assert main(["level-check", "--data", str(data), "--out", str(bundle), "--every", "1", "--gain", "6"]) == 0
    level = load_level_check(bundle / "level_check.json")
    assert level.command == "python -m ser level-check --data ../shared/data/ravdess --out models/ --every 1 --gain 6"
    assert level.clips == 10 and level.gain_db == 6.0 and level.every == 1
    assert level.refused_quieter + level.refused_louder + level.compared == 2 * level.answered
    assert 0 <= level.changed <= level.compared


@pytest.mark.slow
def test_robustness_scores_each_clip_in_every_condition_by_its_fold(tmp_path, tiny_bundle):
    from ser.reporting.results import load_robustness
    from ser.training.robustness import CONDITIONS, SEEN_IN_TRAINING

    data = _ravdess(tmp_path / "ravdess", emotions=(5,))
    bundle = _bundle_with_folds(tiny_bundle, tmp_path / "bundle")
    assert main(["robustness", "--data", str(data), "--out", str(bundle)]) == 0
    robustness = load_robustness(bundle / "robustness.json")
    assert robustness.clips == 5 and list(robustness.conditions) == list(CONDITIONS)
    assert robustness.command == "python -m ser robustness --data ../shared/data/ravdess --out models/"
    for name, scores in robustness.conditions.items():
        assert 0 <= scores.accuracy <= 1 and 0 <= scores.refused <= 5
        assert scores.seen_in_training == (name in SEEN_IN_TRAINING)
    assert (bundle / "MODEL_CARD.md").is_file()


def test_fold_bundles_refuse_a_model_without_the_folds_members(tiny_bundle):
    from ser.errors import BundleError
    from ser.reporting.results import FoldScore
    from ser.serving.bundle import load_bundle
    from ser.training.robustness import fold_bundles

    fold = FoldScore(fold=3, train=[1], validation=[2], test=[3], accuracy=0.5, uar=0.5, epochs=1, refit_epochs=1,
                     seconds=1.0)
    with pytest.raises(BundleError, match="no member_3/functional_3"):
        fold_bundles(load_bundle(tiny_bundle), [fold])


def _ased(root: Path, *, speakers: int = 5) -> Path:
    """ASED-named clips: per speaker three neutral sentences, two angry and one happy."""
    folders = {"n": "01Neutral", "a": "05Angry", "h": "03Happy"}
    takes = [("n", 1, 1), ("n", 1, 2), ("n", 1, 3), ("a", 5, 1), ("a", 5, 2), ("h", 3, 1)]
    for speaker in range(1, speakers + 1):
        for number, (code, emotion, sentence) in enumerate(takes):
            name = f"{code}{emotion}-{sentence:02d}-01-{speaker % 2 + 1:02d}-{speaker:02d}.wav"
            _voice(root / "ased" / folders[code] / name, 100 + 10 * speaker + number)
    return root


@pytest.mark.slow
def test_corpus_check_writes_its_file_and_a_second_run_reads_the_cache(tmp_path, tiny_bundle):
    from ser.reporting.results import load_corpus_check

    data = _ased(tmp_path / "data")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    arguments = ["corpus-check", "--data", str(data), "--out", str(bundle), "--cache", str(tmp_path / "cache"),
                 "--no-synthetic"]
    assert main(arguments) == 0
    check = load_corpus_check(bundle / "corpus_check.json")
    assert check.clips == 30 and check.speakers == 5 and check.synthetic is None
    assert check.command == "python -m ser corpus-check --data ../shared/data --out models/ --no-synthetic"
    assert check.all_sentences.app.clips == 30
    cached = sorted((tmp_path / "cache").glob("ased-*.jsonl"))
    assert len(cached) == 1 and len(cached[0].read_text().splitlines()) >= 30
    lines = len(cached[0].read_text().splitlines())
    assert main(arguments) == 0 and len(cached[0].read_text().splitlines()) == lines  # nothing scored again
    assert load_corpus_check(bundle / "corpus_check.json").all_sentences == check.all_sentences


def _cached_sets(folder: Path, *, ravdess_actors: list[int], ravdess_emotions: list[int], seed: int = 0) -> None:
    """Scored sets as :func:`ser.training.familiarity_sets.compute_sets` caches them, with synthetic functionals."""
    from ser.serving.functionals import n_functionals
    from ser.training.familiarity_sets import SETS

    rng = np.random.default_rng(seed)
    size = n_functionals(FeatureConfig())
    base = rng.normal(0.0, 1.0, size)

    def scored(n: int, shift: float = 0.0) -> dict[str, np.ndarray]:
        probabilities = rng.dirichlet(np.ones(8), n).astype(np.float32)
        functionals = (base + shift + rng.normal(0.0, 1.0, (n, size))).astype(np.float32)
        return {"functionals": functionals, "probabilities": probabilities}

    n = len(ravdess_actors)
    ased_speakers = np.repeat(np.arange(1, 11), 3)
    sets = {
        "ravdess": {**scored(n), "actor": np.array(ravdess_actors), "emotion": np.array(ravdess_emotions)},
        "ased": {**scored(len(ased_speakers), 0.5), "speaker": ased_speakers,
                 "emotion": rng.choice([0, 2, 3, 4, 5], len(ased_speakers))},
        "synthetic": scored(6, 1.0), "music": scored(6, 3.0),
        "phone_8k": {**scored(10, 0.3), "actor": np.resize(np.unique(ravdess_actors), 10)},
        "laptop_mic": {**scored(10, 0.2), "actor": np.resize(np.unique(ravdess_actors), 10)},
    }
    folder.mkdir(parents=True)
    for name in SETS:
        np.savez(folder / f"{name}.npz", **sets[name])


@pytest.mark.slow
def test_familiarity_then_unfamiliarity_write_the_detector_files_from_the_cached_sets(tmp_path, tiny_bundle):
    """Both commands read the sets cached for the bundle's model (no espeak-ng, no scoring here)."""
    from ser.config import read_json
    from ser.serving.unfamiliarity import CHECKS, PRODUCER, load_unfamiliarity
    from ser.training.familiarity_sets import cache_folder

    data = tmp_path / "data"
    _ravdess(data / "ravdess", actors=10, emotions=(1, 5, 4), suffix="flac")  # 30 clips, neutral among them
    files = sorted((data / "ravdess" / "speech").glob("Actor_*/*.flac"))
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    cache = tmp_path / "cache"
    _cached_sets(cache_folder(cache, bundle), ravdess_actors=[int(path.stem.split("-")[6]) for path in files],
                 ravdess_emotions=[int(path.stem.split("-")[2]) - 1 for path in files])

    assert main(["familiarity", "--data", str(data), "--out", str(bundle), "--cache", str(cache)]) == 0
    familiarity = read_json(bundle / "familiarity.json")
    assert familiarity["command"] == "python -m ser familiarity --data ../shared/data --out models/"
    assert familiarity["measured"]["ravdess_held_out"]["clips"] == 30 and familiarity["n_components"] == 5
    cues = read_json(bundle / "cues.json")
    assert set(cues["genders"]) == {"male", "female"} and cues["genders"]["male"]["speakers"] == 5

    assert main(["unfamiliarity", "--out", str(bundle), "--cache", str(cache)]) == 0  # no --data: all cached
    detector = load_unfamiliarity(bundle / "unfamiliarity.npz")
    assert detector.thresholds.shape == (len(CHECKS),)
    assert detector.measured["ravdess"]["clips"] == 30 and "music" in detector.measured
    assert "99.5th/0.5th percentile" in detector.measured["protocol"]
    assert PRODUCER == "python -m ser unfamiliarity --data ../shared/data --out models/"


def _two_fold_bundle(tiny_bundle: Path, folder: Path) -> Path:
    """The tiny bundle's CNN and functional model as the members of two folds (fold 0 tests actors 1-2, fold 1
    actors 3-4), with a metrics.json saying so; its settings train a small CNN for two epochs."""
    from ser.reporting import results as r
    from ser.reporting.provenance import model_sha256
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle, save_bundle
    from ser.training.networks import build_fused
    from tests.test_results import training_fixture

    tiny = load_bundle(tiny_bundle)
    cnn, functional = tiny.model.get_layer("member_0"), tiny.model.get_layer("functional_0")
    save_bundle(model=build_fused([cnn, cnn], [functional, functional]), path=folder, config=tiny.config,
                labels=tiny.labels, calibration={"temperature": tiny.temperature,
                                                 "confidence_threshold": tiny.confidence_threshold})
    training = training_fixture()
    cv = training.cross_validation
    folds = [dataclasses.replace(cv.per_fold[0], fold=0, train=[3], validation=[4], test=[1, 2]),
             dataclasses.replace(cv.per_fold[0], fold=1, train=[1], validation=[2], test=[3, 4])]
    history = {"loss": [2.0, 1.5], "val_loss": [2.1, 1.9], "val_emotion_loss": [2.0, 1.8],
               "learning_rate": [0.002, 0.002]}
    curves = [r.LearningCurve(fold=k, history=history) for k in range(2)]
    settings = {"n_folds": 2, "seed": 0, "width": 8, "batch_size": 8, "epochs": 2}
    training = dataclasses.replace(
        training, model_sha256=model_sha256(folder / "model.keras"),
        cross_validation=dataclasses.replace(cv, per_fold=folds, curves=curves),
        training=dataclasses.replace(training.training, settings=settings))
    write_results(folder / r.FILES[r.TrainingResults][0], training)
    return folder


@pytest.mark.slow
def test_profile_check_answers_every_protocol_with_and_without_a_profile(tmp_path, tiny_bundle):
    from ser.reporting.results import load_profile

    data = tmp_path / "data"
    for actor in range(1, 5):  # RAVDESS: four emotions, both statements
        for number, (emotion, statement) in enumerate((e, s) for e in (1, 5, 3, 4) for s in (1, 2)):
            name = f"03-01-{emotion:02d}-01-{statement:02d}-01-{actor:02d}.wav"
            _voice(data / "ravdess" / f"Actor_{actor:02d}" / name, 10 * actor + number)
    folders = {"n": "01Neutral", "a": "05Angry"}
    for speaker in range(1, 5):  # ASED: neutral and angry, both common sentences and one of their own
        for number, (code, sentence) in enumerate((c, s) for c in "na" for s in (1, 2, 3)):
            name = f"{code}{1 if code == 'n' else 5}-{sentence:02d}-01-{speaker % 2 + 1:02d}-{speaker:02d}.wav"
            _voice(data / "ased" / folders[code] / name, 100 + 10 * speaker + number)
    bundle = _two_fold_bundle(tiny_bundle, tmp_path / "bundle")
    arguments = ["profile-check", "--data", str(data), "--out", str(bundle), "--cache", str(tmp_path / "cache")]
    assert main(arguments) == 0
    profile = load_profile(bundle / "voice_profile.json")
    assert profile.command == "python -m ser profile-check --data ../shared/data --out models/"
    assert "ser.training.voice_profile_scores" in profile.protocol and set(profile.chosen_per_fold) == {"0", "1"}
    assert {(row.corpus, row.k) for row in profile.rows} == {("RAVDESS", 1), ("RAVDESS", 2), ("RAVDESS", 4),
                                                             ("ASED", 1), ("ASED", 2)}
    for row in profile.rows:
        assert 0 <= row.generic_accuracy <= 1 and 0 <= row.profile_accuracy <= 1 and row.clips > 0
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2  # both corpora's scores, kept for the next run


@pytest.mark.slow
def test_seed_check_retrains_each_folds_cnn_and_keeps_the_linear_views(tmp_path, tiny_bundle):
    from ser.reporting.results import load_seed_check

    data = _ravdess(tmp_path / "ravdess", actors=4)
    bundle = _two_fold_bundle(tiny_bundle, tmp_path / "bundle")
    arguments = ["seed-check", "--data", str(data), "--out", str(bundle), "--cache", str(tmp_path / "cache"),
                 "--offset", "7"]
    assert main(arguments) == 0
    seed = load_seed_check(bundle / "seed_check.json")
    assert seed.command == "python -m ser seed-check --data ../shared/data/ravdess --out models/ --offset 7"
    assert seed.offset == 7 and "seed fold + 7" in seed.what
    assert 0 <= seed.cnn_accuracy <= 1 and 0 <= seed.fused_accuracy <= 1 and 0 <= seed.fused_uar <= 1
