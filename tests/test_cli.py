"""The command line, run as a user would: ``python -m ser ...`` in a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ser.training.data import EMOTIONS

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def two_clips() -> list[str]:
    return ["assets/examples/03-01-05-02-01-01-12.flac", "assets/examples/03-01-04-02-01-01-03.flac"]


@pytest.mark.slow
def test_predict_json_on_real_clips_with_shipped_model(two_clips):
    result = run_cli("predict", *two_clips, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line, path in zip(lines, two_clips, strict=True):
        record = json.loads(line)
        assert record["path"] == path
        assert record["emotion"] in EMOTIONS
        assert set(record["probabilities"]) == set(EMOTIONS)
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert record["confidence"] == pytest.approx(max(record["probabilities"].values()))
        assert record["emotion"] == max(record["probabilities"], key=record["probabilities"].get)
        assert set(record["gender"]) == {"male", "female"}
        assert record["unfamiliar"] == []  # studio speech of the training corpus: no warning
    assert result.stderr.strip() == ""


@pytest.mark.slow
def test_predict_keeps_going_after_a_bad_file(tmp_path, two_clips):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    result = run_cli("predict", two_clips[0], str(bad), "--json")
    assert result.returncode != 0
    assert len(result.stdout.strip().splitlines()) == 1  # the good file is still scored
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and str(bad) in errors[0] and "not a readable audio file" in errors[0]


@pytest.mark.slow
def test_train_with_a_missing_data_folder_is_one_clear_line(tmp_path):
    result = run_cli("train", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing'}: no such folder; "
                                                  "pass the folder that holds the RAVDESS audio"]


@pytest.mark.slow
def test_predict_with_a_reference_is_adapted_and_keeps_the_unadapted_answer(tmp_path, two_clips):
    reference = "assets/examples/03-01-01-01-01-01-12.flac"  # actor 12's ordinary (neutral) voice
    plain = [json.loads(line) for line in run_cli("predict", *two_clips, "--json").stdout.splitlines()]
    result = run_cli("predict", "--reference", reference, "--json", *two_clips)
    assert result.returncode == 0, result.stderr
    calibrated = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["adapted"] for record in plain] == [False, False]
    assert all("unadapted" not in record for record in plain)
    for before, after in zip(plain, calibrated, strict=True):
        assert after["adapted"] is True and after["path"] == before["path"]
        assert after["unadapted"]["probabilities"] == pytest.approx(before["probabilities"], abs=1e-6)
        assert after["unadapted"]["emotion"] == before["emotion"]
        assert sum(after["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        assert after["probabilities"]["neutral"] >= before["probabilities"]["neutral"] - 1e-9
        assert after["reference"]["bias"] >= 0 and after["reference"]["reference_seconds"] > 1
    assert "calibrated to the speaker" in result.stderr


@pytest.mark.slow
def test_a_reference_without_speech_stops_before_scoring(tmp_path, two_clips):
    import numpy as np
    import soundfile

    silence = tmp_path / "silence.wav"
    soundfile.write(silence, np.zeros(48000, dtype=np.float32), 16000)
    result = run_cli("predict", "--reference", str(silence), *two_clips)
    assert result.returncode == 2 and result.stdout == ""
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: --reference: ") and str(silence) in errors[0]
