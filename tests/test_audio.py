import io

import numpy as np
import pytest
import soundfile

from ser.errors import AudioDecodeError
from ser.serving.audio import decode_audio
from tests.audio_files import ALL_FORMATS, encode
from tests.conftest import synthetic_voice


@pytest.mark.parametrize("label", ALL_FORMATS)
@pytest.mark.parametrize("source_rate", [16000, 48000])
def test_every_format_decodes_to_mono_float32_at_model_rate(label, source_rate):
    original = synthetic_voice(seconds=1.0, sample_rate=source_rate)
    data = encode(label, original, sample_rate=source_rate)
    waveform = decode_audio(data, sample_rate=16000, name=f"x.{label}")
    assert waveform.dtype == np.float32
    assert waveform.ndim == 1
    # Lossy codecs pad a little; the length must still be about one second.
    assert abs(waveform.size - 16000) < 0.1 * 16000
    assert 0.2 < np.max(np.abs(waveform)) <= 1.05
    # Same sound: the loudness of the decoded audio is close to the original's.
    reference = synthetic_voice(seconds=1.0, sample_rate=16000)
    assert np.sqrt(np.mean(waveform**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.25)


def test_lossless_roundtrip_is_exact_at_same_rate():
    original = synthetic_voice(seconds=0.5)
    decoded = decode_audio(encode("wav-float", original, sample_rate=16000), sample_rate=16000)
    np.testing.assert_allclose(decoded, original, atol=1e-7)


def test_stereo_and_multichannel_are_averaged():
    left = synthetic_voice(seconds=0.5)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 16000, format="WAV", subtype="FLOAT")
    decoded = decode_audio(buffer.getvalue(), sample_rate=16000)
    np.testing.assert_allclose(decoded, left / 2, atol=1e-6)
    six = np.repeat(left[:, None], 6, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, six, 16000, format="WAV", subtype="FLOAT")
    np.testing.assert_allclose(decode_audio(buffer.getvalue(), sample_rate=16000), left, atol=1e-6)


def test_path_bytes_and_file_object_agree(example_clip):
    from_path = decode_audio(example_clip, sample_rate=16000)
    from_bytes = decode_audio(example_clip.read_bytes(), sample_rate=16000)
    with open(example_clip, "rb") as handle:
        from_file = decode_audio(handle, sample_rate=16000)
    np.testing.assert_array_equal(from_path, from_bytes)
    np.testing.assert_array_equal(from_path, from_file)


def test_resamples_to_requested_rate(example_clip):
    at_16k = decode_audio(example_clip, sample_rate=16000)
    at_8k = decode_audio(example_clip, sample_rate=8000)
    assert abs(at_8k.size * 2 - at_16k.size) <= 2


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"hello, this is a text file\n" * 20, "not a readable audio file"),
        (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a readable audio file"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),
    ],
)
def test_garbage_gets_a_clear_error(data, message):
    with pytest.raises(AudioDecodeError, match=message):
        decode_audio(data, sample_rate=16000, name="upload.wav")


def test_missing_path(tmp_path):
    with pytest.raises(AudioDecodeError, match="no such file"):
        decode_audio(tmp_path / "nope.wav", sample_rate=16000)


def test_nan_samples_are_refused():
    waveform = synthetic_voice(seconds=0.5)
    waveform[100] = np.nan
    data = encode("wav-float", waveform, sample_rate=16000)
    with pytest.raises(AudioDecodeError, match="NaN"):
        decode_audio(data, sample_rate=16000)


def test_too_long_is_refused_before_decoding():
    data = encode("wav-pcm16", np.zeros(16000 * 3, dtype=np.float32), sample_rate=16000)
    with pytest.raises(AudioDecodeError, match="limit"):
        decode_audio(data, sample_rate=16000, max_seconds=2.0)
