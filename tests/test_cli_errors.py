"""The CLI on a mix of good and bad files: one stderr line per bad file, the good ones
still scored on stdout, a non-zero exit code, and never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from tests.conftest import EXAMPLES, ROOT

GOOD = [EXAMPLES / "03-01-05-02-01-01-12.flac", EXAMPLES / "03-01-03-02-01-01-03.flac"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ser", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, env=environment
    )


def wav_bytes(waveform: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format="WAV", subtype="FLOAT")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, tuple[str, str]]:
    """name -> (path, a phrase its error line must contain)."""
    folder = tmp_path_factory.mktemp("bad")
    rng = np.random.default_rng(0)
    voice = soundfile.read(GOOD[0], dtype="float32")[0]
    nan_voice = voice.copy()
    nan_voice[100] = np.nan
    contents = {
        "empty.wav": (b"", "empty"),
        "notes.wav": (b"shopping list: eggs, milk\n" * 20, "text file"),
        "random.mp3": (rng.bytes(4096), "not a readable audio file"),
        "truncated.wav": (wav_bytes(voice)[:30], "truncated or corrupt"),
        "silence.wav": (wav_bytes(np.zeros(48000, np.float32)), "no speech detected"),
        "noise.wav": (wav_bytes((0.1 * rng.standard_normal(48000)).astype(np.float32)), "no speech detected"),
        "short.wav": (wav_bytes(voice[24000:28000]), "too short"),
        "nan.wav": (wav_bytes(nan_voice), "NaN"),
        "line\nbreak.wav": (b"", "empty"),
    }
    files = {}
    for name, (data, phrase) in contents.items():
        path = folder / name
        path.write_bytes(data)
        files[name] = (str(path), phrase)
    files["missing.wav"] = (str(folder / "missing.wav"), "no such file")
    files["a folder"] = (str(folder), "is a folder")
    return files


@pytest.mark.slow
def test_bad_files_get_one_line_each_and_good_ones_are_still_scored(bad_files):
    paths = [str(GOOD[0]), *(path for path, _ in bad_files.values()), str(GOOD[1])]
    result = run_cli("predict", "--json", *paths)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(bad_files), result.stderr
    for name, (path, phrase) in bad_files.items():
        printed = path.replace("\n", "\\n")
        matching = [line for line in errors if line.startswith(f"error: {printed}: ")]
        assert len(matching) == 1, (name, errors)
        assert phrase in matching[0], (name, matching[0])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["path"] for record in records] == [str(GOOD[0]), str(GOOD[1])]
    for record in records:
        assert abs(sum(record["probabilities"].values()) - 1) < 1e-4
        assert record["emotion"] in record["probabilities"]


def test_all_good_exits_zero_and_a_broken_bundle_is_one_line(tmp_path, capsys):
    """In-process (the subprocess run above covers the real entry point)."""
    from ser.__main__ import main

    assert main(["predict", str(GOOD[0])]) == 0
    out, err = capsys.readouterr()
    assert out.count("\n") == 1 and out.startswith(f"{GOOD[0]}\t")
    assert "error" not in err
    assert main(["predict", "--model", str(tmp_path), str(GOOD[0])]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing" in lines[0]


def test_limits_from_the_environment_apply_to_the_cli(monkeypatch, capsys):
    from ser.__main__ import main

    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "1")
    assert main(["predict", str(GOOD[0]), str(GOOD[1])]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 2 and all("over the 1.0 s limit" in line for line in lines)
