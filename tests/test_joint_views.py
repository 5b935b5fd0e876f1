"""The joint views (ser.serving.joint_views): inputs the unfamiliarity detector finds unlike the training
data are answered by the second model, everything else exactly as before, and every output says who answered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser.errors import BundleError
from ser.serving.calibration import apply_temperature
from ser.serving.functionals import n_functionals
from ser.serving.joint_views import (
    BOTH_CORPORA,
    JOINT_MODEL_FILE,
    JOINT_SETTINGS_FILE,
    ROUTED_NOTE,
    STUDIO,
    joint_files_present,
    load_joint_views,
    read_joint_settings,
)
from ser.serving.unfamiliarity import CHECKS, Unfamiliarity, UnfamiliarityDetector, save_unfamiliarity
from tests.conftest import synthetic_voice

RATE = 16000
TEMPERATURE = 1.7
#: Thresholds that make every check fire, or none (directions: not_speech and the domain logit fire above).
ALWAYS = np.array([-1e30, 1e30, 1e30, -1e30])
NEVER = np.array([1e30, -1e30, -1e30, 1e30])
SETTINGS = {"schema": 1, "temperature": TEMPERATURE, "corpora": ["ravdess", "ased"], "route": "unfamiliar_voice",
            "command": "python -m ser joint-views --data ../shared/data --out models/",
            "measured": "2026-12-02T00:00:00Z"}


def joint_model(size: int, *, n_emotions: int = 8, as_dict: bool = True, favourite: int = 3):
    """A linear softmax on standardised functionals (as the joint views are), leaning towards one emotion."""
    import keras

    from ser.serving.layers import Standardize

    inputs = keras.Input(shape=(size,), name="functionals")
    standard = Standardize(name="standardize")(inputs)
    emotion = keras.layers.Dense(n_emotions, activation="softmax", name="emotion")(standard)
    model = keras.Model(inputs, {"emotion": emotion} if as_dict else emotion)
    rng = np.random.default_rng(1)
    bias = np.zeros(n_emotions, dtype=np.float32)
    bias[favourite] = 2.0
    model.get_layer("emotion").set_weights([0.02 * rng.standard_normal((size, n_emotions)).astype(np.float32), bias])
    return model


def detector(size: int, thresholds: np.ndarray) -> UnfamiliarityDetector:
    return UnfamiliarityDetector(
        mean=np.zeros(size), scale=np.ones(size), limit=8.0, centre=np.zeros(size), components=np.eye(size)[:1],
        variances=np.ones(1), residual_scale=1.0, domain_weights=np.zeros(size), domain_bias=0.0, band_column=0,
        steadiness_column=1, thresholds=np.asarray(thresholds, dtype=np.float64),
    )


def write_joint(folder: Path, *, size: int, settings: dict | None = None, **model_options) -> None:
    joint_model(size, **model_options).save(folder / JOINT_MODEL_FILE)
    (folder / JOINT_SETTINGS_FILE).write_text(json.dumps(SETTINGS if settings is None else settings))


class Stub:
    """A detector whose windows alternate (even rows: the ``check`` fires) and whose clips always fire it."""

    def __init__(self, check: str = "unfamiliar_voice") -> None:
        self.check = check

    def statistics(self, functionals):
        return np.asarray(functionals)

    def flags(self, statistics):
        fired = np.zeros((len(statistics), len(CHECKS)), dtype=bool)
        fired[::2, CHECKS.index(self.check)] = True
        return fired

    def assess(self, functionals):
        return Unfamiliarity(reasons=(self.check,))


@pytest.fixture(scope="module")
def size(tiny_bundle) -> int:
    from ser.config import FeatureConfig, read_json

    return n_functionals(FeatureConfig.from_dict(read_json(tiny_bundle / "config.json")["features"]))


@pytest.fixture(scope="module")
def plain(tiny_bundle):
    """Today's bundle: no joint views, no detector."""
    from ser.serving.bundle import load_bundle

    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def joint_folder(tiny_bundle, size, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("joint") / "bundle"
    shutil.copytree(tiny_bundle, folder)
    write_joint(folder, size=size)
    return folder


@pytest.fixture(scope="module")
def joint(joint_folder):
    """The tiny bundle with joint views; each test gives it the detector it needs."""
    from ser.serving.bundle import load_bundle

    return load_bundle(joint_folder)


def with_detector(bundle, monkeypatch, value) -> None:
    monkeypatch.setitem(bundle.__dict__, "unfamiliarity_detector", value)


def clip(seed: int = 0, seconds: float = 0.9) -> np.ndarray:
    return synthetic_voice(seconds=seconds, seed=seed, pitch=110 + 30 * seed)


def test_a_bundle_without_the_files_answers_as_today_from_the_studio_model(plain, joint, size, monkeypatch):
    assert not plain.has_joint_views and plain.joint_views is None and not plain.routes_unfamiliar
    with_detector(plain, monkeypatch, detector(size, ALWAYS))  # a detector alone routes nothing
    with_detector(joint, monkeypatch, detector(size, NEVER))  # joint views that never fire change nothing
    for seed in range(2):
        before = plain.predict_clip(clip(seed), sample_rate=RATE)
        assert before.answered_by == STUDIO
        assert joint.predict_clip(clip(seed), sample_rate=RATE) == before


def test_an_unfamiliar_clip_gets_the_joint_views_tempered_emotion_and_the_main_models_other_heads(
        plain, joint, size, monkeypatch):
    with_detector(joint, monkeypatch, detector(size, ALWAYS))
    recording = joint.recording(clip(), sample_rate=RATE)
    routed = joint.predict_recording(recording)
    expected = apply_temperature(joint.joint_views.probabilities(recording.functionals), temperature=TEMPERATURE)
    assert routed.answered_by == BOTH_CORPORA
    np.testing.assert_allclose([routed.probabilities[e] for e in joint.emotions], expected, atol=1e-6)
    assert routed.emotion == joint.emotions[int(np.argmax(expected))]
    assert routed.sure == (routed.confidence >= joint.confidence_threshold)
    studio = plain.predict_clip(clip(), sample_rate=RATE)
    assert routed.gender == pytest.approx(studio.gender) and routed.intensity == pytest.approx(studio.intensity)
    verdict = joint.unfamiliarity_of(recording)
    assert not verdict.familiar and joint.unfamiliarity_of(recording) is verdict  # assessed once, kept


def test_only_the_routes_check_routes_a_channel_check_does_not(plain, joint, size, monkeypatch):
    """The joint views know more voices, not more channels: a phone line alone keeps the main model's answer."""
    assert joint.joint_route == "unfamiliar_voice"
    studio = plain.predict_clip(clip(), sample_rate=RATE)
    for check in CHECKS:
        with_detector(joint, monkeypatch, Stub(check))
        answer = joint.predict_clip(clip(), sample_rate=RATE)
        assert answer.answered_by == (BOTH_CORPORA if check == "unfamiliar_voice" else STUDIO)
        if check != "unfamiliar_voice":
            assert answer.probabilities == pytest.approx(studio.probabilities)
        timeline = joint.timeline(synthetic_voice(seconds=3.0, seed=4), sample_rate=RATE)
        assert timeline.routed.any() == (check == "unfamiliar_voice")


def test_the_joint_model_may_answer_with_a_plain_tensor(joint_folder, size, tmp_path):
    folder = tmp_path / "plain_output"
    folder.mkdir()
    write_joint(folder, size=size, as_dict=False)
    dict_model = load_joint_views(joint_folder, n_features=size, n_emotions=8)
    tensor_model = load_joint_views(folder, n_features=size, n_emotions=8)
    values = np.random.default_rng(0).standard_normal((3, size)).astype(np.float32)
    np.testing.assert_allclose(tensor_model.probabilities(values), dict_model.probabilities(values), atol=1e-6)
    assert tensor_model.probabilities(values[0]).shape == (8,)


def test_the_compiled_joint_model_answers_as_the_eager_keras_call_for_any_batch(joint_folder, size):
    joint_views = load_joint_views(joint_folder, n_features=size, n_emotions=8)
    values = np.random.default_rng(1).normal(0, 3, (5, size)).astype(np.float32)
    eager = np.asarray(joint_views.model(values, training=False)["emotion"])
    for rows in (values[:1], values[:3], values):  # one trace serves every batch size
        np.testing.assert_allclose(joint_views.probabilities(rows), eager[: len(rows)], atol=1e-6)
    assert joint_views._compiled.experimental_get_tracing_count() == 1


def test_timeline_windows_are_routed_each_on_its_own_verdict(plain, joint, size, monkeypatch):
    voice = synthetic_voice(seconds=3.0, seed=4)
    with_detector(joint, monkeypatch, detector(size, NEVER))
    studio = joint.timeline(voice, sample_rate=RATE)
    assert not studio.routed.any() and studio.overall.answered_by == STUDIO
    np.testing.assert_allclose(studio.probabilities, plain.timeline(voice, sample_rate=RATE).probabilities)
    with_detector(joint, monkeypatch, detector(size, ALWAYS))
    routed = joint.timeline(voice, sample_rate=RATE)
    assert (routed.routed == routed.voiced).all() and routed.overall.answered_by == BOTH_CORPORA
    with_detector(joint, monkeypatch, Stub())  # every other voiced window unfamiliar
    mixed = joint.timeline(voice, sample_rate=RATE)
    voiced = np.flatnonzero(mixed.voiced)
    assert len(voiced) >= 3 and (mixed.routed[voiced] == (np.arange(len(voiced)) % 2 == 0)).all()
    for window in voiced:
        source = routed if mixed.routed[window] else studio
        np.testing.assert_allclose(mixed.probabilities[window], source.probabilities[window], atol=1e-6)
    assert mixed.overall.answered_by == BOTH_CORPORA  # the routed windows are at least half of the voiced ones
    assert mixed.overall.probabilities == pytest.approx(routed.overall.probabilities)


def test_segments_of_a_recording_combine_who_answered_by_their_speech(joint, size, monkeypatch):
    from ser.serving.analysis import analyze_audio, segments_table, waveform_to_wav
    from ser.serving.words import ANSWERED_BY_WORDS, results_table

    with_detector(joint, monkeypatch, detector(size, ALWAYS))
    gap = np.zeros(RATE, dtype=np.float32)
    audio = np.concatenate([clip(0, 1.2), gap, clip(1, 1.2)])
    analysis = analyze_audio(waveform_to_wav(audio, sample_rate=RATE), name="two.wav", bundle=joint)
    assert len(analysis.segments) == 2
    assert all(segment.prediction.answered_by == BOTH_CORPORA for segment in analysis.segments)
    assert analysis.prediction.answered_by == BOTH_CORPORA and analysis.to_dict()["answered_by"] == BOTH_CORPORA
    assert set(segments_table([analysis])["answered_by"]) == {BOTH_CORPORA}
    assert list(results_table([analysis])["answered by"]) == [ANSWERED_BY_WORDS[BOTH_CORPORA]]  # in words on screen


def test_a_routed_answer_can_be_calibrated_to_the_speaker(joint, size, monkeypatch):
    from ser.serving.analysis import waveform_to_wav
    from ser.serving.speaker import adapt_prediction, calibrate_bundle

    with_detector(joint, monkeypatch, detector(size, ALWAYS))
    reference = waveform_to_wav(synthetic_voice(seconds=3.0, seed=7), sample_rate=RATE)
    adaptation = calibrate_bundle(joint, references=[reference])
    assert adaptation.bias > 0  # the joint views lean to another emotion than neutral: raised
    routed = joint.predict_clip(clip(2), sample_rate=RATE)
    adapted = adapt_prediction(routed, adaptation=adaptation, confidence_threshold=joint.confidence_threshold)
    assert adapted.answered_by == BOTH_CORPORA
    assert adapted.probabilities["neutral"] > routed.probabilities["neutral"]
    assert sum(adapted.probabilities.values()) == pytest.approx(1.0)


def test_predict_json_and_text_say_who_answered(joint_folder, size, tmp_path, capsys):
    from ser.__main__ import main
    from ser.serving.analysis import waveform_to_wav

    audio = tmp_path / "voice.wav"
    audio.write_bytes(waveform_to_wav(clip(3, 1.5), sample_rate=RATE))
    folder = tmp_path / "bundle"
    shutil.copytree(joint_folder, folder)
    save_unfamiliarity(detector(size, ALWAYS), folder / "unfamiliarity.npz", header={})
    assert main(["predict", "--model", str(folder), "--json", str(audio)]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["answered_by"] == BOTH_CORPORA and record["unfamiliar"]
    assert main(["predict", "--model", str(folder), str(audio)]) == 0
    assert "trained on several corpora" in capsys.readouterr().out.splitlines()[0]


def test_batch_workers_get_the_joint_views_with_the_bundle_bytes_and_rows_say_who_answered(
        joint_folder, size, tmp_path):
    from ser.batch.results import Layout
    from ser.batch.scorer import Scorer, read_bundle_files
    from ser.serving.analysis import waveform_to_wav

    folder = tmp_path / "bundle"
    shutil.copytree(joint_folder, folder)
    save_unfamiliarity(detector(size, ALWAYS), folder / "unfamiliarity.npz", header={})
    audio = tmp_path / "voice.wav"
    audio.write_bytes(waveform_to_wav(clip(5, 1.5), sample_rate=RATE))
    files = read_bundle_files(folder)
    assert {JOINT_MODEL_FILE, JOINT_SETTINGS_FILE, "unfamiliarity.npz"} <= set(files)
    scorer = Scorer(bundle=files, timeline=False)  # as a Ray worker: from bytes, the folder removed
    row = scorer.layout.row(scorer.score([str(audio)])[0])
    assert row["answered_by"] == BOTH_CORPORA and row["error"] is None
    assert Layout.from_labels(scorer.bundle.labels).column_types()["answered_by"] == "string"
    (folder / "unfamiliarity.npz").unlink()
    studio = Scorer(bundle=read_bundle_files(folder), timeline=False)  # no detector: nothing routed
    assert studio.layout.row(studio.score([str(audio)])[0])["answered_by"] == STUDIO


def test_half_a_pair_a_bad_temperature_or_other_widths_are_refused_with_how_to_rebuild(
        tiny_bundle, joint_folder, size, tmp_path):
    from ser.serving.bundle import load_bundle

    folder = tmp_path / "half"
    shutil.copytree(tiny_bundle, folder)
    (folder / JOINT_SETTINGS_FILE).write_text(json.dumps(SETTINGS))
    with pytest.raises(BundleError, match=JOINT_MODEL_FILE):
        load_bundle(folder)
    (folder / JOINT_SETTINGS_FILE).unlink()
    shutil.copy(joint_folder / JOINT_MODEL_FILE, folder / JOINT_MODEL_FILE)
    with pytest.raises(BundleError, match=JOINT_SETTINGS_FILE):
        joint_files_present(folder)
    for temperature in (0, -1.0, "warm"):
        (folder / JOINT_SETTINGS_FILE).write_text(json.dumps(SETTINGS | {"temperature": temperature}))
        with pytest.raises(BundleError, match="ser joint-views"):
            read_joint_settings(folder)
    (folder / JOINT_SETTINGS_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="rebuild"):
        read_joint_settings(folder)
    (folder / JOINT_SETTINGS_FILE).write_text(json.dumps(SETTINGS))
    with pytest.raises(BundleError, match=f"reads {size + 1} functionals"):
        load_joint_views(folder, n_features=size + 1, n_emotions=8)
    with pytest.raises(BundleError, match="predicts 8 emotions but labels.json names 5"):
        load_joint_views(folder, n_features=size, n_emotions=5)


def test_the_app_says_under_the_warning_when_the_joint_views_answered():
    from streamlit.testing.v1 import AppTest

    def page():  # runs as its own script: imports inside
        import app_ui
        from ser.serving.bundle import ClipPrediction
        from ser.serving.joint_views import BOTH_CORPORA
        from ser.serving.unfamiliarity import Unfamiliarity

        routed = ClipPrediction(emotion="sad", confidence=0.6, probabilities={"sad": 0.6, "neutral": 0.4}, sure=True,
                                answered_by=BOTH_CORPORA)
        app_ui.show_unfamiliarity(Unfamiliarity(reasons=("unfamiliar_voice",)), prediction=routed, calibrated=False)
        app_ui.show_unfamiliarity(Unfamiliarity(reasons=("unfamiliar_voice",)), calibrated=False,
                                  prediction=ClipPrediction(emotion="sad", confidence=0.6, probabilities={}, sure=True))

    at = AppTest.from_function(page, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [box.value for box in at.warning]
    assert len(warnings) == 2 and not any(ROUTED_NOTE in warning for warning in warnings)  # the warning stays short
    # said once, for the routed answer only, in sight: not hidden in the warning's details
    assert [caption.value for caption in at.caption] == [ROUTED_NOTE]
    assert all(ROUTED_NOTE not in markdown.value for expander in at.expander for markdown in expander.markdown)


def test_leave_one_corpus_out_scores_the_bundle_as_shipped_and_each_model_alone(plain, joint, size, monkeypatch,
                                                                               tmp_path):
    """ser loco's bundle rows: the routed answer is ``ser predict``'s, the main model's alone the plain bundle's."""
    import soundfile

    from ser.training.loco_bundle import JOINT, MAIN, ROUTED, SHIPPED, bundle_answers

    with_detector(joint, monkeypatch, detector(size, ALWAYS))
    paths = []
    for seed in range(2):
        paths.append(str(tmp_path / f"{seed}.wav"))
        soundfile.write(paths[-1], clip(seed, seconds=1.5), RATE)
    soundfile.write(tmp_path / "silent.wav", np.zeros(RATE, np.float32), RATE)
    answers = bundle_answers(joint, [*paths, str(tmp_path / "silent.wav")], cut=False)
    routed = answers.pop(ROUTED)
    assert routed.tolist() == [True, True, False]  # always routed here; a refused clip is answered by none
    assert set(answers) == {SHIPPED, MAIN, JOINT} and all(values.shape == (3, 8) for values in answers.values())
    assert all(np.isnan(values[2]).all() for values in answers.values())  # refused: no answer from any
    for row, path in enumerate(paths):
        from ser.serving.audio import decode_audio

        waveform = decode_audio(path, sample_rate=RATE)
        routed = joint.predict_clip(waveform, sample_rate=RATE)
        np.testing.assert_allclose(answers[SHIPPED][row], [routed.probabilities[e] for e in joint.emotions], atol=1e-6)
        np.testing.assert_allclose(answers[JOINT][row], answers[SHIPPED][row], atol=1e-6)  # always routed here
        studio = plain.predict_clip(waveform, sample_rate=RATE)
        np.testing.assert_allclose(answers[MAIN][row], [studio.probabilities[e] for e in plain.emotions], atol=1e-6)
    cuts = bundle_answers(plain, paths, cut=True)
    assert not cuts.pop(ROUTED).any()
    assert set(cuts) == {SHIPPED, MAIN} and np.allclose(cuts[SHIPPED], cuts[MAIN])  # nothing to route to
