"""Property-based tests: random and mutated bytes, and arbitrary sample values, fed to the
decoder, the speech detector, the feature path and the model. Whatever the input, the only
exception that may escape is the project's own :class:`ser.errors.SERError`; anything that
comes out instead is a well-formed answer (finite probabilities that sum to one).

Bounded: a few hundred examples in total, no deadline (the machine is shared), derandomised
so a failure reproduces; ``SER_FUZZ_EXAMPLES`` raises the count for a longer hunt.
"""

from __future__ import annotations

import io
import os
import warnings
from functools import cache

import numpy as np
import pytest
import soundfile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ser.config import FeatureConfig
from ser.errors import SERError
from ser.serving.audio import decode_audio
from ser.serving.features import log_mel_spectrogram, prepare_waveform, window_features
from ser.serving.speech import detect_speech
from tests.audio_files import encode
from tests.conftest import ROOT, synthetic_voice

EXAMPLES = int(os.environ.get("SER_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
CONFIG = FeatureConfig()
FORMATS = ["wav-pcm16", "wav-float", "wav-pcm8", "flac", "ogg-vorbis", "mp3", "webm-opus", "m4a-aac"]


@cache
def seed_file(label: str) -> bytes:
    """A valid 0.6 s file in format ``label``: the starting point of the mutations."""
    return encode(label, synthetic_voice(seconds=0.6, seed=1), sample_rate=16000)


@pytest.fixture(scope="module")
def bundle():
    from ser.serving.bundle import load_bundle

    return load_bundle(ROOT / "models")


def check_decode_and_features(data: bytes) -> None:
    """Decode, detect speech and compute features; only SERError may escape, and no
    overflow or invalid-value warning may be raised on the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _decode_and_features(data)


def _decode_and_features(data: bytes) -> None:
    try:
        waveform = decode_audio(data, sample_rate=CONFIG.sample_rate, name="fuzz.bin", max_seconds=30)
    except SERError:
        return
    assert waveform.dtype == np.float32 and waveform.ndim == 1 and waveform.size > 0
    assert np.all(np.isfinite(waveform))
    check_waveform(waveform)


def check_waveform(waveform: np.ndarray) -> None:
    try:
        activity = detect_speech(waveform, sample_rate=CONFIG.sample_rate)
        assert activity.voiced.shape == activity.level_db.shape
        prepared = prepare_waveform(waveform, config=CONFIG)
        features = log_mel_spectrogram(prepared, config=CONFIG)
        windows, starts = window_features(features, config=CONFIG)
    except SERError:
        return
    assert np.all(np.isfinite(features))
    assert windows.shape[1:] == (CONFIG.window_frames, CONFIG.n_mels) and len(starts) == len(windows)


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("zero"), st.integers(0, 10**6), st.integers(1, 512)),
)


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    buffer = bytearray(data)
    for kind, where, value in mutations:
        if not buffer:
            break
        position = where % len(buffer)
        if kind == "flip":
            buffer[position] ^= value
        elif kind == "truncate":
            del buffer[position:]
        elif kind == "insert":
            buffer[position:position] = value
        else:
            buffer[position : position + value] = bytes(len(buffer[position : position + value]))
    return bytes(buffer)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes_only_raise_ser_errors(data):
    check_decode_and_features(data)


@FUZZ
@given(data=st.binary(min_size=12, max_size=2048), magic=st.sampled_from(
    [b"RIFF\x00\x00\x00\x00WAVE", b"fLaC", b"OggS", b"ID3", b"\xff\xfb", b"\x1aE\xdf\xa3", b"\x00\x00\x00\x18ftyp"]))
def test_random_bytes_behind_a_real_magic_number(data, magic):
    check_decode_and_features(magic + data)


@FUZZ
@given(label=st.sampled_from(FORMATS), mutations=st.lists(mutation, min_size=1, max_size=6))
def test_mutated_files_only_raise_ser_errors(label, mutations):
    check_decode_and_features(mutate(seed_file(label), mutations))


@FUZZ
@given(
    samples=hnp.arrays(
        np.float32,
        st.integers(0, 24000),
        elements=st.floats(width=32),  # any float32, NaN and infinities included
    ),
    rate=st.sampled_from([8000, 16000, 44100, 96000]),
)
def test_float_wav_with_any_values_is_decoded_or_refused(samples, rate):
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    check_decode_and_features(buffer.getvalue())


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(
    samples=hnp.arrays(
        np.float32,
        st.integers(0, 40000),
        elements=st.floats(-1e6, 1e6, allow_nan=False, width=32),
    ),
    rate=st.sampled_from([8000, 16000, 48000]),
)
def test_model_answers_are_well_formed_or_refused(bundle, samples, rate):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow or NaN on the way either
        try:
            prediction = bundle.predict_clip(samples, sample_rate=rate)
        except SERError:
            return
    values = np.array(list(prediction.probabilities.values()))
    assert np.all(np.isfinite(values)) and abs(values.sum() - 1) < 1e-4
    assert prediction.emotion == max(prediction.probabilities, key=prediction.probabilities.get)


@cache
def real_voice() -> np.ndarray:
    return decode_audio(ROOT / "assets" / "examples" / "03-01-05-02-01-01-12.flac", sample_rate=16000)


@settings(FUZZ, max_examples=max(10, EXAMPLES // 3))
@given(
    gain_db=st.floats(-140, 140),
    dc=st.floats(-1e3, 1e3),
    clip=st.booleans(),
    start=st.floats(0, 0.9),
    length=st.floats(0, 1),
)
def test_real_speech_at_any_level_offset_or_length(bundle, gain_db, dc, clip, start, length):
    """The real clip made quiet, loud, offset, clipped or cut short: an answer or an SERError."""
    voice = real_voice()
    first = int(start * voice.size)
    piece = voice[first : first + int(length * voice.size)].astype(np.float64) * 10 ** (gain_db / 20) + dc
    if clip:
        piece = np.clip(piece, -1, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            prediction = bundle.predict_clip(piece.astype(np.float32), sample_rate=16000)
        except SERError:
            return
    values = np.array(list(prediction.probabilities.values()))
    assert np.all(np.isfinite(values)) and abs(values.sum() - 1) < 1e-4
