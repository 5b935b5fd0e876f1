"""The voice profile: its maths, its file and its refusals, and ``predict``/``batch``/``profile`` with it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.serving.profile import (
    PROFILE_SCHEMA,
    Enrolment,
    ProfileError,
    build_profile,
    fit_personal,
    read_profile,
)
from ser.serving.speaker import adaptation_from_scores

ROOT = Path(__file__).resolve().parent.parent
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
EXAMPLES = ROOT / "assets" / "examples"
NEUTRAL_CLIP = EXAMPLES / "03-01-01-01-01-01-03.flac"
ANGRY_CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"
SAD_CLIP = EXAMPLES / "03-01-04-02-01-01-03.flac"
SIZE = 40  # features of the synthetic voices


def _answer(rng: np.random.Generator) -> np.ndarray:
    return rng.dirichlet(np.ones(8))


class Voice:
    """A synthetic person: each emotion a point in feature space, clips scattered around it."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.centres = {emotion: 2.0 * rng.standard_normal(SIZE) for emotion in EMOTIONS}

    def clip(self, emotion: str, *, generic: np.ndarray | None = None) -> Enrolment:
        features = self.centres[emotion] + 0.5 * self.rng.standard_normal(SIZE)
        probabilities = _answer(self.rng) if generic is None else generic
        return Enrolment(emotion=emotion, probabilities=probabilities, features=features, seconds=2.0, name=emotion)


@pytest.fixture
def voice() -> Voice:
    return Voice(np.random.default_rng(7))


def test_fit_personal_corrects_towards_the_labels_and_shrinks_with_the_prior(voice):
    clips = [voice.clip(emotion) for emotion in ("neutral", "angry", "sad") for _ in range(2)]
    features = np.stack([clip.features for clip in clips])
    logits = np.zeros((6, 3))
    labels = np.repeat([0, 1, 2], 2)
    weights, bias = fit_personal(features, logits, labels, strength=1.0)
    assert weights.shape == (SIZE, 3) and bias.shape == (3,)
    assert np.all(np.argmax(features @ weights + bias, axis=1) == labels)
    strong, _ = fit_personal(features, logits, labels, strength=1e4)
    assert np.abs(strong).max() < np.abs(weights).max() / 10
    with pytest.raises(ValueError, match="positive strength"):
        fit_personal(features, logits, labels, strength=0.0)


def test_a_profile_needs_neutral_known_emotions_and_clips(voice):
    with pytest.raises(ProfileError, match="neutral"):
        build_profile([voice.clip("angry")], emotions=EMOTIONS, bundle_version="v")
    bored = Enrolment(emotion="bored", probabilities=_answer(voice.rng), features=np.zeros(SIZE), seconds=1.0,
                      name="b.wav")
    with pytest.raises(ProfileError, match="unknown emotion bored"):
        build_profile([voice.clip("neutral"), bored], emotions=EMOTIONS, bundle_version="v")
    with pytest.raises(ProfileError, match="no enrolment clips"):
        build_profile([], emotions=EMOTIONS, bundle_version="v")


def test_applying_a_profile_gives_probabilities_and_leaves_unenrolled_emotions_relative(voice):
    enrolments = [voice.clip(emotion) for emotion in ("neutral", "neutral", "angry", "sad")]
    profile = build_profile(enrolments, emotions=EMOTIONS, bundle_version="v")
    assert profile.enrolled_emotions == ["neutral", "sad", "angry"]
    generic = np.stack([_answer(voice.rng) for _ in range(50)])
    features = np.stack([voice.clip(EMOTIONS[i % 8]).features for i in range(50)])
    answers = profile.apply(generic, features=features)
    assert answers.shape == generic.shape
    np.testing.assert_allclose(answers.sum(axis=1), 1.0)
    assert np.all(answers >= 0)
    calibrated = profile.apply(generic, features=None)  # the neutral calibration alone
    others = [EMOTIONS.index(emotion) for emotion in ("calm", "happy", "fearful", "disgust", "surprised")]
    # Emotions the person did not record keep their generic odds against each other.
    ratios = answers[:, others] / answers[:, others].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(ratios, calibrated[:, others] / calibrated[:, others].sum(axis=1, keepdims=True))
    np.testing.assert_allclose(profile.apply(generic[0], features=features[0]), answers[0])
    with pytest.raises(ProfileError, match="reads 40 functionals"):
        profile.apply(generic[0], features=np.zeros(7))


def test_the_persons_own_emotions_are_read_from_their_voice_where_the_generic_model_cannot_tell(voice):
    unsure = np.full(8, 1 / 8)
    enrolments = [voice.clip(emotion, generic=unsure) for emotion in ("neutral", "angry", "sad", "happy")
                  for _ in range(2)]
    profile = build_profile(enrolments, emotions=EMOTIONS, bundle_version="v")
    for emotion in ("neutral", "angry", "sad", "happy"):
        hits = [EMOTIONS[int(np.argmax(profile.apply(unsure, features=voice.clip(emotion).features)))] == emotion
                for _ in range(20)]
        assert np.mean(hits) >= 0.9, emotion


def test_a_neutral_only_profile_is_the_reference_calibration(voice):
    neutral = [voice.clip("neutral") for _ in range(2)]
    profile = build_profile(neutral, emotions=EMOTIONS, bundle_version="v")
    adaptation = adaptation_from_scores(np.stack([clip.probabilities for clip in neutral]), neutral=0)
    generic = np.stack([_answer(voice.rng) for _ in range(20)])
    features = np.stack([voice.clip("angry").features for _ in range(20)])
    np.testing.assert_allclose(profile.apply(generic, features=features), adaptation.apply(generic))
    assert profile.neutral_bias == pytest.approx(adaptation.bias)


def test_an_enrolment_clip_heard_as_another_emotion_is_flagged_not_refused(voice):
    sure_angry = np.full(8, 0.01)
    sure_angry[EMOTIONS.index("angry")] = 0.93
    clip = Enrolment(emotion="sad", probabilities=sure_angry, features=np.zeros(SIZE), seconds=2.0, name="s1.wav")
    profile = build_profile([voice.clip("neutral"), clip], emotions=EMOTIONS, bundle_version="v",
                            confidence_threshold=0.5)
    assert "sad" in profile.enrolled
    assert len(profile.warnings) == 1 and "s1.wav (meant sad) sounded angry" in profile.warnings[0]


def test_the_profile_file_holds_numbers_only_and_round_trips(voice):
    profile = build_profile([voice.clip("neutral"), voice.clip("happy")], emotions=EMOTIONS,
                            bundle_version="abc123")
    document = json.loads(profile.to_json())
    assert document["schema"] == PROFILE_SCHEMA
    assert set(document) == {"schema", "bundle_version", "emotions", "enrolled", "neutral_bias", "reference_neutral",
                             "weights", "bias", "prior_strength", "warnings", "created"}
    assert document["enrolled"]["happy"] == {"clips": 1, "seconds": 2.0}
    assert document["weights"]["shape"] == [SIZE, 2]
    again = read_profile(profile.to_json().encode(), bundle_version="abc123", emotions=EMOTIONS)
    assert again.enrolled_emotions == ["neutral", "happy"]
    generic, features = _answer(voice.rng), voice.clip("happy").features
    np.testing.assert_allclose(again.apply(generic, features=features), profile.apply(generic, features=features),
                               atol=1e-5)


@pytest.mark.parametrize(("text", "message"), [
    (b"\x00\x01 not json", "not JSON"),
    (b'{"schema": "something/else"}', "not a voice profile"),
    (b'{"schema": "ser.voice_profile/1", "bundle_version": "abc123"}', "damaged"),
])
def test_bad_profile_files_are_refused_with_what_to_do(text, message):
    with pytest.raises(ProfileError, match=message):
        read_profile(text)


def test_a_profile_for_another_model_or_other_emotions_or_damaged_is_refused(voice):
    profile = build_profile([voice.clip("neutral"), voice.clip("sad")], emotions=EMOTIONS, bundle_version="abc123")
    text = profile.to_json().encode()
    with pytest.raises(ProfileError, match="made for another model .*abc123"):
        read_profile(text, bundle_version="def456")
    with pytest.raises(ProfileError, match="other emotions"):
        read_profile(text, bundle_version="abc123", emotions=EMOTIONS[:5])
    for damage in ({"bias": [1.0]}, {"weights": {"shape": [SIZE, 2], "float32_base64": "!!"}},
                   {"enrolled": {"sad": {"clips": 1, "seconds": 1.0}}}):
        with pytest.raises(ProfileError, match="damaged"):
            read_profile(json.dumps({**json.loads(text), **damage}).encode())


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def profile_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("profile") / "me.json"
    result = run_cli("profile", "--out", str(out), f"neutral={NEUTRAL_CLIP}", f"angry={ANGRY_CLIP}",
                     f"sad={SAD_CLIP}")
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}: neutral 1, sad 1, angry 1 clip(s)" in result.stderr
    return out


@pytest.mark.slow
def test_profile_command_writes_a_profile_for_the_shipped_model(profile_file):
    from ser.serving.bundle import load_bundle

    bundle = load_bundle()
    profile = read_profile(profile_file, bundle_version=bundle.version, emotions=bundle.emotions)
    assert profile.enrolled_emotions == ["neutral", "sad", "angry"]
    assert len(profile.to_json()) < 200_000  # one correction per emotion (6373 numbers each), no audio


@pytest.mark.slow
def test_predict_with_a_profile_says_so_and_keeps_the_generic_answer(profile_file, capsys):
    result = run_cli("predict", "--profile", str(profile_file), "--json", str(ANGRY_CLIP), str(SAD_CLIP))
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2
    for record in records:
        assert record["profile"] is True and record["adapted"] is False
        assert set(record["unprofiled"]) == {"emotion", "confidence", "probabilities", "sure"}
        assert record["voice_profile"]["enrolled"] == ["neutral", "sad", "angry"]
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    # The person's own angry and sad clips, answered with their profile: their own emotions.
    assert [record["emotion"] for record in records] == ["angry", "sad"]
    from ser.__main__ import main

    assert main(["predict", str(ANGRY_CLIP), "--profile", str(profile_file)]) == 0
    assert "adapted to your voice profile; without: " in capsys.readouterr().out


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    """``python -m ser ARGS`` in this process (TensorFlow already loaded): exit status, stdout, stderr."""
    from ser.__main__ import main

    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.slow
def test_a_neutral_only_profile_answers_as_the_reference_calibration(tmp_path, capsys):
    # A calm take as the "ordinary voice": the model hears it as little neutral, so the calibration moves answers.
    reference = EXAMPLES / "03-01-02-02-01-01-03.flac"
    out = tmp_path / "neutral.json"
    assert run_main(capsys, "profile", "--out", str(out), f"neutral={reference}")[0] == 0
    assert json.loads(out.read_text())["neutral_bias"] > 0
    clips = [str(ANGRY_CLIP), str(SAD_CLIP), str(NEUTRAL_CLIP)]
    status, profiled, err = run_main(capsys, "predict", "--profile", str(out), "--json", *clips)
    assert status == 0, err
    status, referenced, err = run_main(capsys, "predict", "--reference", str(reference), "--json", *clips)
    assert status == 0, err
    for one, other in zip(profiled.splitlines(), referenced.splitlines(), strict=True):
        a, b = json.loads(one), json.loads(other)
        assert a["emotion"] == b["emotion"]
        for emotion in EMOTIONS:
            assert a["probabilities"][emotion] == pytest.approx(b["probabilities"][emotion], abs=1e-6)


@pytest.mark.slow
def test_profile_command_refuses_bad_enrolments(tmp_path, capsys):
    silence = tmp_path / "silence.wav"
    import soundfile

    soundfile.write(silence, np.zeros(32000, dtype=np.float32), 16000)
    cases = [
        ((f"angry={ANGRY_CLIP}",), "needs at least one neutral clip"),
        ((f"neutral={NEUTRAL_CLIP}", f"bored={ANGRY_CLIP}"), "unknown emotion bored"),
        ((f"neutral={silence}",), f"{silence} (neutral)"),
        (("neutral",), "write each clip as EMOTION=FILE"),
    ]
    for arguments, message in cases:
        status, _, err = run_main(capsys, "profile", "--out", str(tmp_path / "p.json"), *arguments)
        assert status == 2, (arguments, err)
        assert message in err and err.startswith("error: ")
        assert not (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_predict_refuses_a_profile_for_another_model_and_both_calibrations(profile_file, tmp_path, capsys):
    document = json.loads(profile_file.read_text())
    document["bundle_version"] = "000000000000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    status, out, err = run_main(capsys, "predict", "--profile", str(other), str(ANGRY_CLIP))
    assert status == 2 and "made for another model" in err and out == ""
    status, _, err = run_main(capsys, "predict", "--profile", str(profile_file), "--reference", str(NEUTRAL_CLIP),
                              str(ANGRY_CLIP))
    assert status == 2 and "give one of them" in err


@pytest.mark.slow
def test_batch_with_a_profile_writes_the_generic_answer_beside(profile_file, tmp_path):
    import pandas as pd

    out = tmp_path / "results.csv"
    result = run_cli("batch", str(ANGRY_CLIP), str(SAD_CLIP), "--out", str(out), "--engine", "process",
                     "--no-progress", "--profile", str(profile_file))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out)
    assert {"unprofiled_emotion", "unprofiled_confidence"} <= set(table.columns)
    assert "unadapted_emotion" not in table.columns
    assert table["unprofiled_emotion"].notna().all()
    assert list(table.sort_values("path")["emotion"]) == ["sad", "angry"]  # 03-01-04 (sad) sorts first


@pytest.mark.slow
def test_profile_command_names_a_take_that_sounded_unlike_its_label_and_keeps_it(tmp_path, capsys):
    out = tmp_path / "me.json"
    status, _, err = run_main(capsys, "profile", "--out", str(out), f"neutral={NEUTRAL_CLIP}", f"sad={ANGRY_CLIP}")
    assert status == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and f"{ANGRY_CLIP} (meant sad) sounded angry" in warnings[0]
    assert json.loads(out.read_text())["enrolled"]["sad"]["clips"] == 1
