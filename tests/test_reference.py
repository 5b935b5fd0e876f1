"""The verdict on a calibration reference (ser.serving.reference): short, or not an ordinary voice,
from the library to ``predict --reference``."""

from __future__ import annotations

import numpy as np
import pytest

from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from ser.serving.reference import (
    ADVICE,
    ORDINARY_SHARE_FLOOR,
    SHORT_REFERENCE_SECONDS,
    ReferenceVerdict,
    check_reference,
    reference_answer,
)
from ser.training.data import EMOTIONS
from tests.conftest import EXAMPLES
from tests.test_cli import run_cli

ANGRY_CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"  # strong, acted, about 2.5 s of speech
ORDINARY_CLIPS = [EXAMPLES / "03-01-01-01-01-01-12.flac", EXAMPLES / "03-01-02-02-01-01-12.flac"]  # neutral, calm


def one_hot(label: str, share: float) -> np.ndarray:
    """Probabilities with ``share`` on ``label`` and the rest spread evenly."""
    values = np.full(len(EMOTIONS), (1 - share) / (len(EMOTIONS) - 1))
    values[EMOTIONS.index(label)] = share
    return values


def test_an_angry_short_reference_is_flagged_and_an_ordinary_long_one_is_not():
    angry = check_reference(np.stack([one_hot("angry", 0.999)]), labels=EMOTIONS, seconds=2.0)
    assert angry.short and angry.not_ordinary and not angry.fine
    assert angry.heard_as == "angry" and angry.heard_share == pytest.approx(0.999)
    assert len(angry.problems) == 2 and "short: 2.0 s" in angry.problems[0] and "angry (100%)" in angry.problems[1]
    assert angry.message.startswith(angry.problems[0]) and angry.message.endswith(ADVICE)
    long_angry = check_reference(np.stack([one_hot("angry", 0.999)]), labels=EMOTIONS, seconds=6.0)
    assert not long_angry.short and long_angry.problems == angry.problems[1:]
    calm = check_reference(np.stack([one_hot("calm", 0.6), one_hot("neutral", 0.5)]), labels=EMOTIONS,
                           seconds=SHORT_REFERENCE_SECONDS + 2)
    assert calm.fine and calm.problems == () and calm.message == "" and calm.ordinary_share > 0.4
    # The threshold is on the share, not the top answer: a fearful-sounding ordinary voice (the case
    # calibration is for) with some neutral and calm in its answer is not told it is not ordinary.
    fearful = check_reference(np.stack([one_hot("fearful", 0.95)]), labels=EMOTIONS, seconds=6.0)
    assert fearful.ordinary_share > ORDINARY_SHARE_FLOOR and fearful.fine


def test_the_answer_is_the_normalised_geometric_mean_of_the_pieces():
    pieces = np.stack([one_hot("happy", 0.8), one_hot("sad", 0.8)])
    answer = reference_answer(pieces)
    assert answer.sum() == pytest.approx(1.0)
    assert answer[EMOTIONS.index("happy")] == pytest.approx(answer[EMOTIONS.index("sad")])


@pytest.mark.parametrize(("probabilities", "labels", "seconds", "message"), [
    (np.zeros((0, 8)), EMOTIONS, 3.0, "non-empty"),
    (np.array([0.5, 0.5]), EMOTIONS, 3.0, "non-empty"),
    (np.full((1, 8), np.nan), EMOTIONS, 3.0, "finite"),
    (np.full((1, 8), 1 / 8), EMOTIONS[:5], 3.0, "labels"),
    (np.full((1, 8), 1 / 8), EMOTIONS, -1.0, "zero or more"),
])
def test_bad_input_is_refused_with_what_to_pass(probabilities, labels, seconds, message):
    with pytest.raises(ValueError, match=message):
        check_reference(probabilities, labels=labels, seconds=seconds)


@pytest.fixture(scope="module")
def shipped():
    from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle

    return load_bundle(DEFAULT_BUNDLE)


def joined(paths) -> bytes:
    gap = np.zeros(4800, np.float32)
    return waveform_to_wav(np.concatenate([part for path in paths for part in (decode_audio(path, sample_rate=16000),
                                                                                gap)]), sample_rate=16000)


def test_the_shipped_model_flags_an_angry_clip_and_not_an_ordinary_voice(shipped):
    from ser.serving.speaker import calibrate_bundle

    angry = calibrate_bundle(shipped, references=[ANGRY_CLIP.read_bytes()]).verdict
    assert isinstance(angry, ReferenceVerdict) and angry.short and angry.not_ordinary and angry.heard_as == "angry"
    ordinary = calibrate_bundle(shipped, references=[joined(ORDINARY_CLIPS)])
    assert ordinary.verdict.fine, ordinary.verdict
    assert "verdict" not in ordinary.to_dict()  # the downloads' reference block keeps its schema


@pytest.mark.slow
def test_predict_reference_warns_about_an_angry_reference_and_still_calibrates(tmp_path):
    reference = tmp_path / "angry.wav"
    reference.write_bytes(joined([ANGRY_CLIP]))
    result = run_cli("predict", "--reference", str(reference), str(ANGRY_CLIP))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("--reference: warning: ")]
    assert len(warnings) == 1 and "short" in warnings[0] and "does not sound like an ordinary" in warnings[0]
    assert "adapted to the speaker" in result.stdout
