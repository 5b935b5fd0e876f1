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
    embedding,
    read_profile,
)
from ser.serving.speaker import adaptation_from_scores

ROOT = Path(__file__).resolve().parent.parent
EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
EXAMPLES = ROOT / "assets" / "examples"
NEUTRAL_CLIP = EXAMPLES / "03-01-01-01-01-01-03.flac"
ANGRY_CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"
SAD_CLIP = EXAMPLES / "03-01-04-02-01-01-03.flac"


def _random_answer(rng: np.random.Generator, size: int = 8) -> np.ndarray:
    values = rng.dirichlet(np.ones(size))
    return values


def _enrolment(rng: np.random.Generator, emotion: str, *, centre: np.ndarray | None = None) -> Enrolment:
    views = np.concatenate([_random_answer(rng) for _ in range(3)])
    if centre is not None:
        views = 0.2 * views + 0.8 * centre
    return Enrolment(emotion=emotion, probabilities=_random_answer(rng), views=views, seconds=2.0, name=emotion)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_embedding_centres_each_view_and_keeps_the_shape(rng):
    views = np.stack([np.concatenate([_random_answer(rng) for _ in range(3)]) for _ in range(5)])
    points = embedding(views, n_emotions=8)
    assert points.shape == (5, 24)
    np.testing.assert_allclose(points.reshape(5, 3, 8).mean(axis=-1), 0.0, atol=1e-12)
    with pytest.raises(ProfileError, match="multiple of 8"):
        embedding(np.ones(20), n_emotions=8)


def test_a_profile_needs_neutral_known_emotions_and_clips(rng):
    with pytest.raises(ProfileError, match="neutral"):
        build_profile([_enrolment(rng, "angry")], emotions=EMOTIONS, bundle_version="v")
    with pytest.raises(ProfileError, match="unknown emotion bored"):
        build_profile([_enrolment(rng, "neutral"), _enrolment(rng, "bored")], emotions=EMOTIONS, bundle_version="v")
    with pytest.raises(ProfileError, match="no enrolment clips"):
        build_profile([], emotions=EMOTIONS, bundle_version="v")


def test_applying_a_profile_gives_probabilities_and_keeps_unenrolled_emotions(rng):
    enrolments = [_enrolment(rng, emotion) for emotion in ("neutral", "neutral", "angry", "sad")]
    profile = build_profile(enrolments, emotions=EMOTIONS, bundle_version="v")
    generic = np.stack([_random_answer(rng) for _ in range(50)])
    views = np.stack([np.concatenate([_random_answer(rng) for _ in range(3)]) for _ in range(50)])
    answers = profile.apply(generic, views=views)
    assert answers.shape == generic.shape
    np.testing.assert_allclose(answers.sum(axis=1), 1.0)
    assert np.all(answers >= 0)
    calibrated = profile.apply(generic, views=None)  # the neutral calibration alone
    enrolled = [EMOTIONS.index(emotion) for emotion in ("neutral", "angry", "sad")]
    others = [index for index in range(8) if index not in enrolled]
    # Emotions the person did not record keep the (calibrated) generic answer; the enrolled share is kept too.
    np.testing.assert_allclose(answers[:, others], calibrated[:, others])
    np.testing.assert_allclose(answers[:, enrolled].sum(axis=1), calibrated[:, enrolled].sum(axis=1))
    one = profile.apply(generic[0], views=views[0])
    np.testing.assert_allclose(one, answers[0])


def test_a_clip_like_the_persons_angry_clips_reads_angrier_than_the_generic_answer(rng):
    angry_centre = np.concatenate([_random_answer(rng) for _ in range(3)])
    sad_centre = np.concatenate([_random_answer(rng) for _ in range(3)])
    enrolments = [_enrolment(rng, "neutral"), _enrolment(rng, "angry", centre=angry_centre),
                  _enrolment(rng, "angry", centre=angry_centre), _enrolment(rng, "sad", centre=sad_centre)]
    profile = build_profile(enrolments, emotions=EMOTIONS, bundle_version="v")
    generic = np.full(8, 1 / 8)
    angry = EMOTIONS.index("angry")
    answer = profile.apply(generic, views=angry_centre)
    assert answer[angry] > profile.apply(generic, views=None)[angry]
    assert int(np.argmax(answer)) == angry
    assert np.argmax(profile.apply(generic, views=sad_centre)) == EMOTIONS.index("sad")


def test_a_neutral_only_profile_is_the_reference_calibration(rng):
    neutral = [_enrolment(rng, "neutral") for _ in range(2)]
    profile = build_profile(neutral, emotions=EMOTIONS, bundle_version="v")
    adaptation = adaptation_from_scores(np.stack([clip.probabilities for clip in neutral]), neutral=0)
    generic = np.stack([_random_answer(rng) for _ in range(20)])
    views = np.stack([np.concatenate([_random_answer(rng) for _ in range(3)]) for _ in range(20)])
    np.testing.assert_allclose(profile.apply(generic, views=views), adaptation.apply(generic))
    assert profile.neutral_bias == pytest.approx(adaptation.bias)


def test_an_enrolment_clip_heard_as_another_emotion_is_flagged_not_refused(rng):
    sure_angry = np.full(8, 0.01)
    sure_angry[EMOTIONS.index("angry")] = 0.93
    clip = Enrolment(emotion="sad", probabilities=sure_angry, views=np.full(24, 1 / 8), seconds=2.0, name="s1.wav")
    profile = build_profile([_enrolment(rng, "neutral"), clip], emotions=EMOTIONS, bundle_version="v",
                            confidence_threshold=0.5)
    assert "sad" in profile.prototypes
    assert len(profile.warnings) == 1 and "s1.wav (meant sad) sounded angry" in profile.warnings[0]


def test_the_profile_file_holds_numbers_only_and_round_trips(rng):
    profile = build_profile([_enrolment(rng, "neutral"), _enrolment(rng, "happy")], emotions=EMOTIONS,
                            bundle_version="abc123")
    document = json.loads(profile.to_json())
    assert document["schema"] == PROFILE_SCHEMA
    assert set(document) == {"schema", "bundle_version", "emotions", "prototypes", "neutral_bias",
                             "reference_neutral", "personal_weight", "prototype_variance", "warnings", "created"}
    assert set(document["prototypes"]["happy"]) == {"mean", "clips", "seconds"}
    assert all(isinstance(value, float) for value in document["prototypes"]["happy"]["mean"])
    again = read_profile(profile.to_json().encode(), bundle_version="abc123", emotions=EMOTIONS)
    assert again.enrolled == ["neutral", "happy"]
    generic, views = _random_answer(rng), np.concatenate([_random_answer(rng) for _ in range(3)])
    np.testing.assert_allclose(again.apply(generic, views=views), profile.apply(generic, views=views), atol=1e-5)


@pytest.mark.parametrize(("text", "message"), [
    (b"\x00\x01 not json", "not JSON"),
    (b'{"schema": "something/else"}', "not a voice profile"),
    (b'{"schema": "ser.voice_profile/1", "bundle_version": "abc123"}', "damaged"),
])
def test_bad_profile_files_are_refused_with_what_to_do(text, message):
    with pytest.raises(ProfileError, match=message):
        read_profile(text)


def test_a_profile_for_another_model_or_other_emotions_is_refused(rng):
    text = build_profile([_enrolment(rng, "neutral")], emotions=EMOTIONS, bundle_version="abc123").to_json().encode()
    with pytest.raises(ProfileError, match="made for another model .*abc123"):
        read_profile(text, bundle_version="def456")
    with pytest.raises(ProfileError, match="other emotions"):
        read_profile(text, bundle_version="abc123", emotions=EMOTIONS[:5])
    damaged = json.loads(text)
    damaged["prototypes"]["neutral"]["mean"][0] = "NaN"
    with pytest.raises(ProfileError, match="damaged"):
        read_profile(json.dumps(damaged).encode())


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
    assert profile.enrolled == ["neutral", "sad", "angry"]
    assert len(profile.to_json()) < 5000  # a few numbers per emotion, no audio


@pytest.mark.slow
def test_predict_with_a_profile_says_so_and_keeps_the_generic_answer(profile_file):
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
    plain = run_cli("predict", str(ANGRY_CLIP), "--profile", str(profile_file))
    assert "adapted to your voice profile; without: " in plain.stdout


@pytest.mark.slow
def test_a_neutral_only_profile_answers_as_the_reference_calibration(tmp_path):
    out = tmp_path / "neutral.json"
    assert run_cli("profile", "--out", str(out), f"neutral={NEUTRAL_CLIP}").returncode == 0
    clips = [str(ANGRY_CLIP), str(SAD_CLIP), str(EXAMPLES / "03-01-02-02-01-01-03.flac")]
    with_profile = run_cli("predict", "--profile", str(out), "--json", *clips)
    with_reference = run_cli("predict", "--reference", str(NEUTRAL_CLIP), "--json", *clips)
    for profiled, referenced in zip(with_profile.stdout.splitlines(), with_reference.stdout.splitlines(), strict=True):
        a, b = json.loads(profiled), json.loads(referenced)
        assert a["emotion"] == b["emotion"]
        for emotion in EMOTIONS:
            assert a["probabilities"][emotion] == pytest.approx(b["probabilities"][emotion], abs=1e-6)


@pytest.mark.slow
def test_profile_command_refuses_bad_enrolments(tmp_path):
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
        result = run_cli("profile", "--out", str(tmp_path / "p.json"), *arguments)
        assert result.returncode == 2, (arguments, result.stderr)
        assert message in result.stderr and result.stderr.startswith("error: ")
        assert not (tmp_path / "p.json").exists()


@pytest.mark.slow
def test_predict_refuses_a_profile_for_another_model_and_both_calibrations(profile_file, tmp_path):
    document = json.loads(profile_file.read_text())
    document["bundle_version"] = "000000000000"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    result = run_cli("predict", "--profile", str(other), str(ANGRY_CLIP))
    assert result.returncode == 2 and "made for another model" in result.stderr and result.stdout == ""
    both = run_cli("predict", "--profile", str(profile_file), "--reference", str(NEUTRAL_CLIP), str(ANGRY_CLIP))
    assert both.returncode == 2 and "give one of them" in both.stderr


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
