"""The functional view: openSMILE extraction, the logistic models copied into Keras, fusion."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.config import FeatureConfig, write_json
from ser.errors import BundleError
from ser.serving.functionals import acoustic_functionals, n_functionals
from ser.testing import synthetic_voice

from .conftest import ROOT

CONFIG = FeatureConfig()


def test_shape_finite_and_deterministic():
    voice = synthetic_voice(seconds=2.0, seed=1)
    first = acoustic_functionals(voice, config=CONFIG)
    assert first.shape == (n_functionals(CONFIG),) == (6373,)
    assert first.dtype == np.float32 and np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, acoustic_functionals(voice, config=CONFIG))
    other = acoustic_functionals(synthetic_voice(seconds=2.0, pitch=220.0, seed=1), config=CONFIG)
    assert np.mean(first != other) > 0.5  # a different voice changes most functionals


def test_full_scale_peak_does_not_wrap_around():
    voice = synthetic_voice(seconds=1.5, seed=2)
    loud = voice / np.max(np.abs(voice))  # peak exactly 1.0: int16 would wrap to -32768
    values = acoustic_functionals(loud, config=CONFIG)
    assert np.all(np.isfinite(values))
    scaled = acoustic_functionals(loud * np.float32(0.999), config=CONFIG)
    relative = np.abs(values - scaled) / (np.abs(values) + np.abs(scaled) + 1e-3)
    assert np.median(relative) < 0.01 and np.mean(relative > 0.1) < 0.05


def test_very_short_or_silent_audio_gives_finite_values():
    for waveform in (np.zeros(800, dtype=np.float32), synthetic_voice(seconds=0.05)):
        values = acoustic_functionals(waveform, config=CONFIG)
        assert values.shape == (6373,) and np.all(np.isfinite(values))


def test_bad_input_and_log_mel_only_config_are_refused():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        acoustic_functionals(np.zeros((10, 2), dtype=np.float32), config=CONFIG)
    with pytest.raises(ValueError, match="uses no functionals"):
        acoustic_functionals(synthetic_voice(), config=dataclasses.replace(CONFIG, functionals=""))


def test_engines_built_ahead_give_the_wrappers_bytes(example_clip, monkeypatch):
    """Each extraction runs on a spare engine built in the background: the same bytes as openSMILE's
    own ``Smile._extract``, which builds a fresh engine inside every call."""
    from ser.serving import functionals
    from ser.serving.audio import decode_audio

    clips = [decode_audio(example_clip, sample_rate=16000), synthetic_voice(seconds=3.0, seed=7),
             synthetic_voice(seconds=0.05), np.zeros(400, dtype=np.float32)]
    ours = []
    for clip in clips * 2:
        functionals._ENGINES._builder.submit(lambda: None).result()  # the spare of the previous call is ready
        ours.append(acoustic_functionals(clip, config=CONFIG))
    functionals._ENGINES._builder.submit(lambda: None).result()
    assert len(functionals._ENGINES._spare[(CONFIG.functionals, CONFIG.sample_rate)]) == functionals.SPARE_ENGINES

    def wrapper(signal, *, name, sample_rate):
        _, _, values = functionals._extractor(name)._extract(signal[None, :], sample_rate)
        return np.asarray(values, dtype=np.float64)[0]

    monkeypatch.setattr(functionals, "_run_engine", wrapper)
    for value, clip in zip(ours, clips * 2, strict=True):
        np.testing.assert_array_equal(value, acoustic_functionals(clip, config=CONFIG))


@pytest.mark.slow
@pytest.mark.parametrize("tensorflow_first", [False, True])
def test_same_values_with_and_without_tensorflow_loaded(example_clip, tensorflow_first):
    """openSMILE crashed (malloc) when loaded after TensorFlow; preloaded with RTLD_DEEPBIND
    it works in either order and gives the same bytes as a process that never imports
    TensorFlow (where the training cache may have been computed). Each order runs in a
    fresh process, whatever this test process imported before."""
    here = _functionals_in_subprocess(example_clip, tensorflow_first=tensorflow_first)
    code = (
        "import sys, json, numpy as np\n"
        "from ser.config import FeatureConfig\n"
        "from ser.serving.audio import decode_audio\n"
        "from ser.serving.features import prepare_waveform\n"
        "from ser.serving.functionals import acoustic_functionals\n"
        "c = FeatureConfig()\n"
        f"w = decode_audio({str(example_clip)!r}, sample_rate=16000)\n"
        "v = acoustic_functionals(prepare_waveform(w, config=c), config=c)\n"
        "assert 'tensorflow' not in sys.modules\n"
        "print(json.dumps(v.tolist()))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    np.testing.assert_array_equal(here, np.asarray(json.loads(output.stdout), dtype=np.float32))


def test_concurrent_extractions_equal_sequential_ones():
    """The timeline extracts its windows on parallel threads (no lock around openSMILE):
    every result must be the bytes a one-at-a-time extraction gives."""
    import concurrent.futures
    import warnings

    clips = [synthetic_voice(seconds=0.4 + 0.3 * k, pitch=110.0 + 15 * k, seed=k) for k in range(12)]
    clips.append(np.zeros(400, dtype=np.float32))  # "segment too short": openSMILE warns
    sequential = [acoustic_functionals(clip, config=CONFIG) for clip in clips]
    filters = list(warnings.filters)
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(2):
            concurrent_values = list(pool.map(lambda clip: acoustic_functionals(clip, config=CONFIG), clips))
            for expected, value in zip(sequential, concurrent_values, strict=True):
                np.testing.assert_array_equal(value, expected)
    # Per-call warning filters raced under threads and left "ignore everything" installed.
    assert warnings.filters == filters


@pytest.mark.slow
def test_scoring_a_clip_imports_neither_librosa_nor_scikit_learn(example_clip):
    """They cost the app and the CLI about 3 s of cold start and serve only training."""
    code = (
        "import sys\n"
        "from ser.serving.audio import decode_audio\n"
        "from ser.serving.bundle import load_bundle\n"
        f"bundle = load_bundle({str(ROOT / 'models')!r})\n"
        f"bundle.predict_clip(decode_audio({str(example_clip)!r}, sample_rate=16000), sample_rate=16000)\n"
        "print(sorted(m for m in ('librosa', 'sklearn', 'numba') if m in sys.modules))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert output.stdout.strip().splitlines()[-1] == "[]"


def _functionals_in_subprocess(path, *, tensorflow_first: bool) -> np.ndarray:
    code = (
        "import json\n"
        + ("from ser import import_tensorflow_quietly\nimport_tensorflow_quietly()\nimport tensorflow as tf\n"
           "tf.constant(1.0) + 1.0\n" if tensorflow_first else "")
        + "from ser.config import FeatureConfig\n"
        "from ser.serving.audio import decode_audio\n"
        "from ser.serving.features import prepare_waveform\n"
        "from ser.serving.functionals import acoustic_functionals\n"
        "c = FeatureConfig()\n"
        f"w = decode_audio({str(path)!r}, sample_rate=16000)\n"
        "print(json.dumps(acoustic_functionals(prepare_waveform(w, config=c), config=c).tolist()))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return np.asarray(json.loads(output.stdout.strip().splitlines()[-1]), dtype=np.float32)


@pytest.mark.slow
def test_keras_functional_model_equals_the_fitted_logistic_regressions():
    from sklearn.linear_model import LogisticRegression

    from ser.training.clips import ClipSet
    from ser.training.views import _standardize, fit_functional_member

    rng = np.random.default_rng(3)
    n = 48
    emotion = np.arange(n) % 8
    features = rng.standard_normal((n, 6373)).astype(np.float32) + emotion[:, None] * 0.05
    clips = ClipSet(
        variants={1.0: []},
        emotion=emotion,
        gender=np.arange(n) % 2,
        intensity=(np.arange(n) // 2) % 2,
        actor=np.arange(n),
        functionals={1.0: features, 0.9: 0.5 * features + rng.standard_normal(features.shape).astype(np.float32)},
        room_functionals=features + 2 * rng.standard_normal(features.shape).astype(np.float32),
    )
    model = fit_functional_member(clips, c=0.05)
    copies = clips.functional_copies()
    assert len(copies) == 3 and copies[2] is clips.room_functionals  # sorted speeds, then the room copy
    rows, _, _ = _standardize(copies)
    original = rows[n : 2 * n]  # 0.9 first, then 1.0, then the room copy
    outputs = model.predict(features, verbose=0)
    for head, balanced in (("emotion", True), ("gender", False), ("intensity", False)):
        labels = np.tile(getattr(clips, head), 3)
        reference = LogisticRegression(C=0.05, max_iter=3000, class_weight="balanced" if balanced else None)
        reference.fit(rows, labels)
        expected = reference.predict_proba(original)
        np.testing.assert_allclose(outputs[head], expected, atol=1e-4)  # float32 in Keras, float64 here
        np.testing.assert_array_equal(outputs[head].argmax(axis=1), expected.argmax(axis=1))
        np.testing.assert_allclose(outputs[head].sum(axis=1), 1.0, atol=1e-5)


def test_functional_member_needs_every_class():
    from ser.training.clips import ClipSet
    from ser.training.views import fit_functional_member

    clips = ClipSet(
        variants={1.0: []},
        emotion=np.arange(6) % 4,  # only 4 of the 8 emotions
        gender=np.arange(6) % 2,
        intensity=np.arange(6) % 2,
        actor=np.arange(6),
        functionals={1.0: np.random.default_rng(0).standard_normal((6, 6373)).astype(np.float32)},
    )
    with pytest.raises(ValueError, match="not all 8"):
        fit_functional_member(clips, c=0.1)


def test_fused_bundle_uses_the_clip_functionals(tiny_bundle):
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    assert bundle.uses_functionals
    voice = synthetic_voice(seconds=2.0, seed=4)
    prediction = bundle.predict_clip(voice, sample_rate=16000)
    assert abs(sum(prediction.probabilities.values()) - 1) < 1e-5
    windows = np.zeros((3, bundle.config.window_frames, bundle.config.n_mels), dtype=np.float32)
    with pytest.raises(ValueError, match="functionals must have shape"):
        bundle.score_windows(windows, functionals=np.zeros((2, 6373), dtype=np.float32))
    # The functional view matters: other functionals, other answer for the same windows.
    first = bundle.score_windows(windows, functionals=np.zeros(6373, dtype=np.float32))["emotion"]
    second = bundle.score_windows(windows, functionals=np.full(6373, 3.0, dtype=np.float32))["emotion"]
    assert not np.allclose(first, second)


def test_saved_fused_model_computes_what_training_evaluates(tiny_bundle):
    """Training scores folds with fuse_views (numpy); the shipped file uses LogLinearFusion.
    They must agree, window by window, after a save and a safe_mode load."""
    from ser.serving.bundle import load_bundle
    from ser.serving.layers import fuse_views

    bundle = load_bundle(tiny_bundle)
    rng = np.random.default_rng(5)
    windows = rng.standard_normal((4, bundle.config.window_frames, bundle.config.n_mels)).astype(np.float32)
    functionals = rng.standard_normal((4, 6373)).astype(np.float32)
    fused = bundle.model.predict({"log_mel": windows, "functionals": functionals}, verbose=0)
    cnn = bundle.model.get_layer("member_0").predict(windows, verbose=0)
    linear = bundle.model.get_layer("functional_0").predict(functionals, verbose=0)
    for head in ("emotion", "gender", "intensity"):
        np.testing.assert_allclose(fused[head], fuse_views(cnn[head], linear[head]), atol=1e-5)
    # A geometric mean: a class one view rules out stays unlikely, unlike an average.
    sure, unsure = np.array([[0.98, 0.01, 0.01]]), np.array([[0.01, 0.5, 0.49]])
    assert fuse_views(sure, unsure)[0, 0] > 0.3 and fuse_views(sure, unsure).sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fuse_views(sure, sure), sure, atol=1e-9)


def test_bundle_whose_config_disagrees_with_the_model_is_refused(tiny_bundle, tmp_path):
    import shutil

    from ser.serving.bundle import load_bundle

    for name in ("model.keras", "labels.json"):
        shutil.copy(tiny_bundle / name, tmp_path / name)
    settings = json.loads((tiny_bundle / "config.json").read_text())
    settings["features"]["functionals"] = ""
    write_json(tmp_path / "config.json", settings)
    with pytest.raises(BundleError, match="different trainings"):
        load_bundle(tmp_path)


def test_app_and_training_compute_the_same_functionals(tiny_bundle, example_clip, tmp_path, monkeypatch):
    """No train/serve skew: what predict_clip feeds the model equals the training cache row."""
    from ser.serving.audio import decode_audio
    from ser.serving.bundle import load_bundle
    from ser.training.cache import load_functionals
    from ser.training.data import index_dataset

    bundle = load_bundle(tiny_bundle)
    fed = {}
    calls = bundle.calls
    original = calls.finish

    def spy(started, *, functionals, batch_windows):
        fed["functionals"] = functionals[0]  # one row, shared by the clip's windows
        return original(started, functionals=functionals, batch_windows=batch_windows)

    monkeypatch.setattr(calls, "finish", spy)
    bundle.predict_clip(decode_audio(example_clip, sample_rate=16000), sample_rate=16000)
    assert len(fed["functionals"]) == 6373
    index = index_dataset(example_clip.parent)
    index = index[index["path"].map(lambda path: Path(path).name) == example_clip.name].reset_index(drop=True)
    cached = load_functionals(index, config=bundle.config, cache_dir=tmp_path, speeds=(1.0,))[1.0][0]
    np.testing.assert_array_equal(fed["functionals"], cached)


def test_recording_level_does_not_change_the_functionals():
    """Clips are scaled to config.functionals_rms first: a quieter microphone, same numbers."""
    voice = synthetic_voice(seconds=2.0, seed=6)
    loud = acoustic_functionals(voice, config=CONFIG)
    quiet = acoustic_functionals(0.1 * voice, config=CONFIG)
    relative = np.abs(loud - quiet) / (np.abs(loud) + np.abs(quiet) + 1e-3)
    assert np.median(relative) < 1e-3 and np.mean(relative > 0.01) < 0.01
    as_recorded = dataclasses.replace(CONFIG, functionals_rms=0.0)
    assert not np.allclose(
        acoustic_functionals(voice, config=as_recorded), acoustic_functionals(0.1 * voice, config=as_recorded),
        rtol=0.01,
    )


def test_real_names_give_the_voicing_subset_and_a_member_uses_only_it():
    """ComParE's own names: 473 voice-source functionals; a member fitted on those columns
    predicts what a logistic regression on those columns alone predicts."""
    from sklearn.linear_model import LogisticRegression

    from ser.serving.functionals import functional_names, voicing_columns
    from ser.training.clips import ClipSet
    from ser.training.views import _standardize, fit_functional_member

    names = functional_names(CONFIG)
    columns = voicing_columns(names)
    assert len(names) == 6373 and len(columns) == 473
    rng = np.random.default_rng(11)
    clips = 24
    values = rng.standard_normal((clips, 6373)).astype(np.float32)
    synthetic = ClipSet(variants={1.0: []}, emotion=np.arange(clips) % 8, gender=np.arange(clips) % 2,
                        intensity=(np.arange(clips) // 2) % 2, actor=np.arange(clips) + 1,
                        functionals={1.0: values}, functional_names=names)
    member = fit_functional_member(synthetic, c=0.05, columns=columns)
    rows, _, _ = _standardize([values], columns)
    reference = LogisticRegression(C=0.05, max_iter=3000, class_weight="balanced").fit(rows, synthetic.emotion)
    np.testing.assert_allclose(
        member.predict(values, verbose=0)["emotion"], reference.predict_proba(rows), atol=1e-4
    )


def test_room_copies_are_cached_seeded_by_file_name_and_speech_only(example_clip, tmp_path):
    """The functional views' noisy training copy: what room_copy + prepare + functionals give,
    the same for a clip wherever it sits in the index, cached, and NaN for song rows."""
    import zlib

    from ser.serving.audio import decode_audio
    from ser.serving.features import prepare_waveform
    from ser.training.augment import room_copy
    from ser.training.cache import ROOM_COPY_SEED, load_functionals, load_room_functionals
    from ser.training.data import index_dataset

    index = index_dataset(example_clip.parent).iloc[:3].reset_index(drop=True)
    index.loc[0, "vocal_channel"] = "song"  # pretend: a song row gets no copy
    values = load_room_functionals(index, config=CONFIG, cache_dir=tmp_path)
    assert values.shape == (3, 6373) and values.dtype == np.float32
    assert np.isnan(values[0]).all() and np.isfinite(values[1:]).all()
    path = index.loc[2, "path"]
    rng = np.random.default_rng([ROOM_COPY_SEED, zlib.crc32(Path(path).name.encode())])
    copy = room_copy(decode_audio(path, sample_rate=16000), sample_rate=16000, rng=rng)
    np.testing.assert_array_equal(values[2], acoustic_functionals(prepare_waveform(copy, config=CONFIG), config=CONFIG))
    reordered = load_room_functionals(index.iloc[::-1].reset_index(drop=True), config=CONFIG, cache_dir=tmp_path)
    np.testing.assert_array_equal(reordered[0], values[2])
    assert len(list(tmp_path.glob("functionals-room-*.npz"))) == 2  # one file per index
    again = load_room_functionals(index, config=CONFIG, cache_dir=tmp_path)
    np.testing.assert_array_equal(again, values)
    clean = load_functionals(index, config=CONFIG, cache_dir=tmp_path, speeds=(1.0,))[1.0]
    assert not np.allclose(clean[1:], values[1:])  # the copy differs from the studio clip


@pytest.mark.slow
def test_views_learn_from_room_copies_and_speech_clips_only():
    """fit_views, which every protocol (cross-validation, leaky split) calls, trains the linear
    views on the room copies when loaded, and never on song clips (which have no room copy)."""
    import dataclasses as dc

    from ser.training.clips import ClipSet
    from ser.training.settings import TrainSettings
    from ser.training.views import fit_views

    rng = np.random.default_rng(5)
    n, songs = 64, 8
    emotion = np.arange(n) % 8
    values = rng.standard_normal((n, 6373)).astype(np.float32) + emotion[:, None] * 0.05
    base = ClipSet(variants={1.0: [np.zeros((1, 1), np.float32)] * n}, emotion=emotion, gender=np.arange(n) % 2,
                   intensity=(np.arange(n) // 2) % 2, actor=np.arange(n) // 8, functionals={1.0: values})
    with_room = dc.replace(base, room_functionals=values + 3 * rng.standard_normal(values.shape).astype(np.float32))
    settings = TrainSettings(functional_c_grid=(0.05,))

    def kernel(clips: ClipSet, speech: np.ndarray) -> np.ndarray:
        actor = clips.actor
        (view,) = fit_views(clips, train_mask=actor < 5, validation_mask=(actor == 5) | (actor == 6),
                            test_mask=actor == 7, speech_mask=speech, settings=settings)
        assert view.name == "functionals" and view.test_probabilities["emotion"].shape == (8, 8)
        return view.model.get_layer("emotion").get_weights()[0]

    speech = np.ones(n, dtype=bool)
    assert not np.allclose(kernel(with_room, speech), kernel(base, speech))
    # Song clips of a training actor, with junk functionals and NaN room copies: left out.
    junk = np.full((songs, 6373), 50.0, np.float32)
    with_song = ClipSet(
        variants={1.0: [np.zeros((1, 1), np.float32)] * (n + songs)},
        emotion=np.concatenate([emotion, np.arange(songs) % 8]),
        gender=np.concatenate([base.gender, np.zeros(songs, int)]),
        intensity=np.concatenate([base.intensity, np.zeros(songs, int)]),
        actor=np.concatenate([base.actor, np.zeros(songs, int)]),
        functionals={1.0: np.concatenate([values, junk])},
        room_functionals=np.concatenate([with_room.room_functionals, np.full_like(junk, np.nan)]),
    )
    np.testing.assert_array_equal(kernel(with_song, np.arange(n + songs) < n), kernel(with_room, speech))
    with pytest.raises(ValueError, match="overlap"):
        fit_views(base, train_mask=base.actor < 5, validation_mask=base.actor == 5, test_mask=base.actor == 4,
                  speech_mask=speech, settings=settings)


def test_word_cuts_are_cached_seeded_by_file_name_and_speech_only(example_clip, tmp_path):
    """The linear views' word copy: the functionals of the cut ser loco and the word studies score
    (ser.training.loco.word_cut), the same for a clip wherever it sits in the index, NaN for song rows."""
    from ser.serving.audio import decode_audio
    from ser.serving.features import prepare_waveform
    from ser.training.cache import load_word_functionals
    from ser.training.data import index_dataset
    from ser.training.loco import word_cut

    index = index_dataset(example_clip.parent).iloc[:3].reset_index(drop=True)
    index.loc[0, "vocal_channel"] = "song"
    values = load_word_functionals(index, config=CONFIG, cache_dir=tmp_path)
    assert values.shape == (3, 6373) and np.isnan(values[0]).all() and np.isfinite(values[1:]).all()
    path = index.loc[2, "path"]
    cut = word_cut(decode_audio(path, sample_rate=16000), name=Path(path).name, config=CONFIG)
    assert 0.5 * 16000 <= cut.size <= 1.2 * 16000
    np.testing.assert_array_equal(values[2], acoustic_functionals(prepare_waveform(cut, config=CONFIG), config=CONFIG))
    reordered = load_word_functionals(index.iloc[::-1].reset_index(drop=True), config=CONFIG, cache_dir=tmp_path)
    np.testing.assert_array_equal(reordered[0], values[2])
