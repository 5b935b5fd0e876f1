"""Every kind of bad (or merely unusual) input, with the outcome it must get.

One table lists the inputs of issue 5. Each row goes through the two ways audio enters the
project: the app's one analysis function (``ser.serving.analysis.analyze_audio``, which the upload
and record pages both call) and the CLI's path (``decode_audio`` then ``predict_clip``).
A row expects either a prediction (a valid emotion from the shipped bundle) or one of the
project's errors with a message that says what is wrong; never another exception, a hang
or an emotion for garbage.
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import soundfile

from ser.errors import AudioDecodeError, NoSpeechError, SERError
from ser.serving.audio import decode_audio, resample
from tests.conftest import EXAMPLES, ROOT

SR = 16000
CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"  # angry, actor 12, 3.6 s


@cache
def voice() -> np.ndarray:
    return decode_audio(CLIP, sample_rate=SR)


def wav(waveform: np.ndarray, *, rate: int = SR, subtype: str = "PCM_16", format: str = "WAV") -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def noise(color: str, *, seconds: float = 3.0, level: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(5)
    white = rng.standard_normal(int(seconds * SR))
    if color == "white":
        signal = white
    else:
        spectrum = np.fft.rfft(white)
        k = np.maximum(np.arange(spectrum.size), 1)
        signal = np.fft.irfft(spectrum / (np.sqrt(k) if color == "pink" else k), white.size)
    return (level * signal / np.sqrt(np.mean(signal**2))).astype(np.float32)


def hum(*, f0: float = 50.0, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.2 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8))).astype(np.float32)


def png() -> bytes:
    """A valid 2x2 grey PNG image."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x80\x80\x00\x80\x80")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def with_rate_field(data: bytes, rate: int) -> bytes:
    return data[:24] + struct.pack("<I", rate) + data[28:]


def float_wav_with(value: float) -> bytes:
    samples = voice().copy()
    samples[1000:1010] = value
    return wav(samples, subtype="FLOAT")


@dataclasses.dataclass(frozen=True)
class Case:
    """One input and what must happen to it.

    ``error`` is None when a prediction is expected, else the error type, and ``message`` a
    regular expression its text must match. ``same_as_clean`` asks the prediction to agree
    with the clean clip's (for changes that do not alter the voice: DC, channels, rate).
    """

    id: str
    data: Callable[[], bytes]
    name: str = "clip.wav"
    error: type[SERError] | None = None
    message: str = ""
    same_as_clean: bool = False


CASES = [
    # Not audio at all.
    Case("empty file", lambda: b"", error=AudioDecodeError, message="empty.*0 bytes"),
    Case("text file", lambda: b"Kids are talking by the door.\n" * 40, error=AudioDecodeError,
         message="not a readable audio file.*text file.*upload WAV"),
    Case("png image", lambda: png(), name="photo.wav", error=AudioDecodeError, message="PNG image"),
    Case("random bytes", lambda: np.random.default_rng(0).bytes(20000), error=AudioDecodeError,
         message="not a readable audio file"),
    Case("ffconcat playlist naming a file on disk",
         lambda: f"ffconcat version 1.0\nfile '{CLIP}'\n".encode(), name="list.webm",
         error=AudioDecodeError, message="not a readable audio file"),
    # Broken WAV files.
    Case("truncated wav header", lambda: wav(voice())[:40], error=AudioDecodeError,
         message="starts like a WAV file.*truncated or corrupt"),
    Case("corrupt wav header (channels 0)", lambda: (lambda d: d[:22] + b"\x00\x00" + d[24:])(wav(voice())),
         error=AudioDecodeError, message="truncated or corrupt"),
    Case("corrupt wav header (rate 1 Hz)", lambda: with_rate_field(wav(voice()), 1), error=AudioDecodeError,
         message="sample rate is 1 Hz.*corrupt"),
    Case("zero-length audio", lambda: wav(np.zeros(0, np.float32)), error=AudioDecodeError,
         message="no audio samples"),
    Case("NaN samples in float wav", lambda: float_wav_with(np.nan), error=AudioDecodeError,
         message="NaN or infinite.*re-export"),
    Case("Inf samples in float wav", lambda: float_wav_with(np.inf), error=AudioDecodeError,
         message="NaN or infinite"),
    # Audio, but nothing to score.
    Case("shorter than the 0.5 s minimum", lambda: wav(voice()[int(1.6 * SR) : int(1.9 * SR)]),
         error=NoSpeechError, message="too short.*0.30 s.*0.5 s"),
    Case("digital silence", lambda: wav(np.zeros(3 * SR, np.float32)), error=NoSpeechError,
         message="no speech detected"),
    Case("white noise", lambda: wav(noise("white")), error=NoSpeechError, message="no speech detected"),
    Case("pink noise", lambda: wav(noise("pink")), error=NoSpeechError, message="no speech detected"),
    Case("brown noise", lambda: wav(noise("brown")), error=NoSpeechError, message="no speech detected"),
    Case("50 Hz mains hum", lambda: wav(hum(f0=50)), error=NoSpeechError, message="no speech detected"),
    Case("120 Hz hum (in the voice range)", lambda: wav(hum(f0=120)), error=NoSpeechError,
         message="no speech detected.*steady tone"),
    # Unusual but valid speech: a prediction.
    Case("clean clip", lambda: wav(voice())),
    Case("wrong extension (flac named .mp3)", lambda: CLIP.read_bytes(), name="clip.mp3", same_as_clean=True),
    Case("clipping (x20, hard-limited)", lambda: wav(np.clip(voice() * 20, -1, 1))),
    Case("DC offset +0.3", lambda: wav(voice() + np.float32(0.3), subtype="FLOAT"), same_as_clean=True),
    Case("8 kHz telephone audio", lambda: wav(resample(voice(), orig_sample_rate=SR, target_sample_rate=8000),
                                            rate=8000)),
    Case("96 kHz 24-bit audio", lambda: wav(resample(voice(), orig_sample_rate=SR, target_sample_rate=96000),
                                          rate=96000, subtype="PCM_24"), same_as_clean=True),
    Case("stereo", lambda: wav(np.stack([voice(), voice()], axis=1)), same_as_clean=True),
    Case("6 channels", lambda: wav(np.repeat(voice()[:, None], 6, axis=1)), same_as_clean=True),
    Case("speech with white noise at 10 dB SNR",
         lambda: wav(voice() + noise("white", seconds=voice().size / SR, level=0.1 * np.sqrt(np.mean(voice() ** 2))))),
    # File names are labels only: never paths, never interpreted.
    Case("unicode file name", lambda: wav(voice()), name="Émotion 😀 日本語.wav", same_as_clean=True),
    Case("path-like file name", lambda: wav(voice()), name="../../etc/passwd", same_as_clean=True),
    Case("absolute path of a real file as name", lambda: wav(voice()), name=str(EXAMPLES / "missing.flac"),
         same_as_clean=True),
    Case("garbage with a path-like name", lambda: b"not audio\n" * 30, name="/etc/passwd.wav",
         error=AudioDecodeError, message="^/etc/passwd.wav: not a readable audio file"),
]


@pytest.fixture(scope="module")
def bundle():
    from ser.serving.bundle import load_bundle

    return load_bundle(ROOT / "models")


def app_path(data: bytes, *, name: str, bundle):
    from ser.serving.analysis import analyze_audio

    return analyze_audio(data, name=name, bundle=bundle).prediction


def cli_path(data: bytes, *, name: str, bundle):
    waveform = decode_audio(data, sample_rate=bundle.config.sample_rate, name=name)
    return bundle.predict_clip(waveform, sample_rate=bundle.config.sample_rate)


PATHS = {"app": app_path, "cli": cli_path}


@pytest.fixture(scope="module")
def clean(bundle):
    return {label: run(wav(voice()), name="clean.wav", bundle=bundle) for label, run in PATHS.items()}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_input_gets_its_expected_outcome(case: Case, path: str, bundle, clean):
    run = PATHS[path]
    data = case.data()
    if case.error is not None:
        with pytest.raises(case.error, match=case.message) as caught:
            run(data, name=case.name, bundle=bundle)
        message = str(caught.value)
        assert "\n" not in message.strip() and "Traceback" not in message  # one readable line
        assert len(message) < 400
        return
    prediction = run(data, name=case.name, bundle=bundle)
    assert prediction.emotion in bundle.emotions
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert 0.0 < prediction.confidence <= 1.0
    if case.same_as_clean:
        reference = clean[path]
        assert prediction.emotion == reference.emotion
        for label, value in reference.probabilities.items():
            assert prediction.probabilities[label] == pytest.approx(value, abs=0.05)


def test_errors_name_the_file_for_the_user(bundle):
    with pytest.raises(AudioDecodeError, match="^voice memo 😀.m4a: the file is empty"):
        decode_audio(b"", sample_rate=SR, name="voice memo 😀.m4a")


# ----------------------------------------------------------------------------- limits


@pytest.fixture(scope="module")
def one_hour_flac() -> bytes:
    """One hour of quiet 8 kHz audio as FLAC (compresses to a few hundred KB)."""
    buffer = io.BytesIO()
    with soundfile.SoundFile(buffer, mode="w", samplerate=8000, channels=1, format="FLAC", subtype="PCM_16") as out:
        block = (0.001 * np.sin(np.arange(8000 * 60) / 7)).astype(np.float32)
        for _ in range(60):
            out.write(block)
    return buffer.getvalue()


def test_one_hour_recording_is_refused_above_the_limit(one_hour_flac, bundle):
    import time

    from ser.serving.analysis import analyze_audio

    started = time.perf_counter()
    with pytest.raises(AudioDecodeError, match=r"60\.0 min long, over the 15\.0 min limit.*SER_MAX_AUDIO_SECONDS"):
        analyze_audio(one_hour_flac, name="meeting.flac", bundle=bundle)
    assert time.perf_counter() - started < 2.0  # refused from the header, before decoding


def test_duration_limit_is_configurable(monkeypatch):
    data = wav(voice())
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "2")
    with pytest.raises(AudioDecodeError, match=r"3.6 s long, over the 2.0 s limit"):
        decode_audio(data, sample_rate=SR, name="clip.wav")
    monkeypatch.setenv("SER_MAX_AUDIO_SECONDS", "ten")
    with pytest.raises(AudioDecodeError, match="SER_MAX_AUDIO_SECONDS='ten' is not a number"):
        decode_audio(data, sample_rate=SR, name="clip.wav")
    monkeypatch.delenv("SER_MAX_AUDIO_SECONDS")
    assert decode_audio(data, sample_rate=SR, max_seconds=10).size == voice().size


def test_long_recording_without_header_length_is_cut_while_decoding(monkeypatch):
    """MP3 does not state its length up front: decoding stops at the limit, not at the end."""
    data = wav(np.tile(voice(), 3), format="MP3", subtype="MPEG_LAYER_III")
    with pytest.raises(AudioDecodeError, match="over the"):
        decode_audio(data, sample_rate=SR, name="long.mp3", max_seconds=5)


def test_file_size_limit_is_refused_before_reading(tmp_path, monkeypatch):
    big = tmp_path / "big.wav"
    big.write_bytes(wav(np.tile(voice(), 4)))  # about 0.5 MB
    monkeypatch.setenv("SER_MAX_AUDIO_MB", "0.2")
    for source in (big, big.read_bytes()):
        with pytest.raises(AudioDecodeError, match=r"MB, over the 0.2 MB limit.*SER_MAX_AUDIO_MB"):
            decode_audio(source, sample_rate=SR, name="big.wav")
    with open(big, "rb") as handle, pytest.raises(AudioDecodeError, match="over the 0.2 MB limit"):
        decode_audio(handle, sample_rate=SR, name="big.wav")
    monkeypatch.setenv("SER_MAX_AUDIO_MB", "")
    assert decode_audio(big, sample_rate=SR).size == 4 * voice().size


@pytest.mark.slow
def test_long_recording_timeline_stays_within_a_memory_budget(bundle):
    """Two minutes of speech: the timeline covers it all and the speech detector works in
    bounded chunks (its peak working memory does not grow with the recording)."""
    import tracemalloc

    from ser.serving.speech import detect_speech

    recording = np.tile(voice(), 34)  # ~2 min
    short = voice()
    tracemalloc.start()
    detect_speech(short, sample_rate=SR)
    _, peak_short = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    detect_speech(recording, sample_rate=SR)
    _, peak_long = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    extra_input = recording.nbytes * 2.5  # the 8 kHz copy and its padded float32 buffer
    assert peak_long < peak_short + extra_input + 16e6
    timeline = bundle.timeline(recording, sample_rate=SR)
    assert timeline.ends[-1] == pytest.approx(recording.size / SR, abs=0.05)
    assert timeline.voiced.mean() > 0.8


# ------------------------------------------------------------------- the speech detector


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.flac")), ids=lambda path: path.stem)
def test_speech_detector_hears_every_example_clip(path):
    from ser.serving.speech import detect_speech

    waveform = decode_audio(path, sample_rate=SR)
    activity = detect_speech(waveform, sample_rate=SR)
    assert activity.is_speech, activity.reason
    assert 0.4 < activity.voiced_seconds < waveform.size / SR
    pitch = activity.pitch_hz[activity.voiced]
    assert 70 <= np.median(pitch) <= 600  # a voice's pitch
    # The voiced frames lie inside the spoken part, not in the leading/trailing silence.
    assert not activity.voiced[: int(0.3 / activity.frame_seconds)].any()


@pytest.mark.parametrize(
    "label,make,reason",
    [
        ("silence", lambda: np.zeros(3 * SR, np.float32), "silent"),
        ("white noise", lambda: noise("white"), "sounds like a voice"),
        ("pink noise", lambda: noise("pink"), "sounds like a voice"),
        ("brown noise", lambda: noise("brown"), "sounds like a voice"),
        ("loud white noise", lambda: np.clip(noise("white", level=0.9), -1, 1), "sounds like a voice"),
        ("50 Hz hum", lambda: hum(f0=50), "sounds like a voice"),
        ("60 Hz hum", lambda: hum(f0=60), "sounds like a voice"),
        ("100 Hz hum", lambda: hum(f0=100), "steady tone"),
        ("120 Hz hum", lambda: hum(f0=120), "steady tone"),
        ("440 Hz tone", lambda: (0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)).astype(np.float32),
         "steady tone"),
        ("clicks", lambda: np.where(np.arange(3 * SR) % 4000 == 0, 0.9, 0.0).astype(np.float32), "sounds like a voice"),
    ],
)
def test_speech_detector_refuses_noise_hum_tones_and_silence(label, make, reason):
    from ser.serving.speech import detect_speech

    activity = detect_speech(make(), sample_rate=SR)
    assert not activity.is_speech
    assert activity.reason.startswith("no speech detected") and reason in activity.reason


@pytest.mark.parametrize("color", ["white", "pink"])
@pytest.mark.parametrize("snr_db", [20, 10, 5])
def test_speech_detector_hears_speech_in_noise(color, snr_db):
    from ser.serving.speech import detect_speech

    clean = voice()
    level = np.sqrt(np.mean(clean**2)) * 10 ** (-snr_db / 20)
    noisy = clean + noise(color, seconds=clean.size / SR, level=level)
    assert detect_speech(noisy, sample_rate=SR).is_speech


# ------------------------------------------------------------------------- in the app


#: A sample of the table's error rows, one per kind of message (each AppTest run costs seconds).
APP_CASE_IDS = {
    "text file", "png image", "truncated wav header", "NaN samples in float wav",
    "shorter than the 0.5 s minimum", "white noise", "garbage with a path-like name",
}
ERROR_CASES = [case for case in CASES if case.id in APP_CASE_IDS]


@pytest.mark.slow
@pytest.mark.parametrize("case", ERROR_CASES, ids=[case.id for case in ERROR_CASES])
def test_app_shows_the_message_for_each_bad_upload(case: Case):
    """The Analyze page (under AppTest) shows the library's message as an error box, no
    traceback and no emotion, for every bad input of the table."""
    import re

    from streamlit.testing.v1 import AppTest

    data = case.data()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("pages/1_Analyze.py")
    at.run()
    at.file_uploader(key="uploads").set_value((case.name, data, "audio/wav")).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [re.sub(r"\\(.)", r"\1", box.value) for box in at.error]  # undo the Markdown escaping
    assert any(re.search(case.message, text) for text in shown), shown
    assert not [box for box in [*at.success, *at.warning] if "Predicted emotion" in box.value]
