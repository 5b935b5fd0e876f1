import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.errors import BundleError, NoSpeechError
from ser.serving.audio import decode_audio
from ser.serving.features import (
    POWER_FLOOR,
    clip_features,
    log_mel_spectrogram,
    mfcc,
    prepare_waveform,
    window_features,
)
from tests.conftest import synthetic_voice

CONFIG = FeatureConfig()


@pytest.mark.parametrize("seconds", [0.25, 1.0, 3.7])
def test_log_mel_shape_dtype_and_range(seconds):
    waveform = synthetic_voice(seconds=seconds)
    features = log_mel_spectrogram(waveform, config=CONFIG)
    assert features.shape == (1 + waveform.size // CONFIG.hop_length, CONFIG.n_mels)
    assert features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert features.min() >= np.log(POWER_FLOOR) - 1e-4
    # A waveform in [-1, 1] cannot exceed the power of a full-scale sine in any band.
    assert features.max() < np.log(CONFIG.n_fft**2)


def test_louder_means_larger_and_silence_is_floor():
    quiet = log_mel_spectrogram(0.1 * synthetic_voice(), config=CONFIG)
    loud = log_mel_spectrogram(synthetic_voice(), config=CONFIG)
    assert np.mean(loud - quiet) == pytest.approx(2 * np.log(10), abs=0.05)
    silence = log_mel_spectrogram(np.zeros(1600, dtype=np.float32), config=CONFIG)
    assert np.allclose(silence, np.log(POWER_FLOOR))


def test_features_of_file_equal_features_of_its_array(example_clip):
    """Train/serve skew check: the path the app takes equals the path training takes."""
    import soundfile

    array, rate = soundfile.read(example_clip, dtype="float32")
    from_array = clip_features(array, config=CONFIG)
    from_file = clip_features(decode_audio(example_clip, sample_rate=CONFIG.sample_rate), config=CONFIG)
    assert rate == CONFIG.sample_rate
    np.testing.assert_array_equal(from_file, from_array)


def test_mfcc_shape():
    assert mfcc(synthetic_voice(seconds=1.0), config=CONFIG, n_mfcc=40).shape == (101, 40)


def test_prepare_trims_silence_and_removes_dc():
    voice = synthetic_voice(seconds=1.0)
    padded = np.concatenate([np.zeros(16000, np.float32), voice, np.zeros(16000, np.float32)]) + 0.2
    prepared = prepare_waveform(padded, config=CONFIG)
    assert prepared.size < 1.3 * voice.size
    assert abs(float(prepared.mean())) < 0.05


@pytest.mark.parametrize("waveform", [np.zeros(32000, np.float32), np.zeros(0, np.float32),
                                      synthetic_voice(seconds=0.1)])
def test_silence_or_too_short_is_no_speech(waveform):
    with pytest.raises(NoSpeechError, match="no speech"):
        prepare_waveform(waveform, config=CONFIG)


@pytest.mark.parametrize("frames", [1, 50, 301, 302, 777])
def test_windows_cover_the_clip(frames):
    features = np.random.default_rng(0).standard_normal((frames, CONFIG.n_mels)).astype(np.float32)
    windows, starts = window_features(features, config=CONFIG)
    assert windows.shape[1:] == (CONFIG.window_frames, CONFIG.n_mels)
    assert starts[0] == 0
    if frames >= CONFIG.window_frames:
        assert starts[-1] + CONFIG.window_frames == frames  # the end is covered
        np.testing.assert_array_equal(windows[-1], features[-CONFIG.window_frames :])
        assert np.all(np.diff(starts) <= CONFIG.window_hop_frames)
    else:
        np.testing.assert_array_equal(windows[0, :frames], features)  # wrapped, not zero-padded


def test_config_roundtrip_and_derived_sizes():
    config = FeatureConfig(window_seconds=2.0)
    assert FeatureConfig.from_dict(config.to_dict()) == config
    assert config.window_frames == 1 + 32000 // 160
    with pytest.raises(BundleError, match="unknown"):
        FeatureConfig.from_dict({**config.to_dict(), "surprise": 1})
    with pytest.raises(ValueError, match="Nyquist"):
        FeatureConfig(sample_rate=8000, fmax=8000.0)


def _librosa_reference(waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What ser.serving.features computed with librosa 0.11 before it was written out in numpy."""
    import librosa

    trimmed, _ = librosa.effects.trim(
        y=waveform, top_db=CONFIG.trim_top_db, frame_length=CONFIG.win_length, hop_length=CONFIG.hop_length
    )
    stft = librosa.stft(
        y=trimmed, n_fft=CONFIG.n_fft, hop_length=CONFIG.hop_length, win_length=CONFIG.win_length,
        window="hann", center=True, pad_mode="constant",
    )
    filters = librosa.filters.mel(
        sr=CONFIG.sample_rate, n_fft=CONFIG.n_fft, n_mels=CONFIG.n_mels, fmin=CONFIG.fmin, fmax=CONFIG.fmax
    ).astype(np.float32)
    log_mel = np.log(np.maximum(filters @ (np.abs(stft) ** 2), POWER_FLOOR)).T.astype(np.float32)
    return trimmed, log_mel


def _reference_inputs():
    from tests.conftest import EXAMPLES

    rng = np.random.default_rng(7)
    yield "noise burst in silence", np.concatenate(
        [np.zeros(3000), 0.3 * rng.standard_normal(9000), 1e-4 * rng.standard_normal(5000)]
    ).astype(np.float32)
    yield "synthetic voice", synthetic_voice(seconds=2.3, seed=3)
    for path in sorted(EXAMPLES.glob("*.flac")):
        yield path.name, decode_audio(path, sample_rate=CONFIG.sample_rate)


def test_numpy_transforms_equal_librosa():
    """The app no longer imports librosa (cold start); its features must not change for it:
    same samples trimmed, same log-mel bits, same filterbank as the cached training features."""
    import librosa

    filters = librosa.filters.mel(
        sr=CONFIG.sample_rate, n_fft=CONFIG.n_fft, n_mels=CONFIG.n_mels, fmin=CONFIG.fmin, fmax=CONFIG.fmax
    )
    from ser.serving.features import _mel_filterbank, mel_frequencies, trim_silence

    np.testing.assert_array_equal(_mel_filterbank(CONFIG), filters)
    np.testing.assert_allclose(
        mel_frequencies(n_mels=40, fmin=0.0, fmax=11025.0),
        librosa.mel_frequencies(n_mels=40, fmin=0.0, fmax=11025.0),
        rtol=1e-12,
    )
    # Longer than one STFT block (2048 frames), so the blocked transform is compared too.
    long_voice = np.tile(synthetic_voice(seconds=3.0, seed=9), 8)
    long_trimmed, long_reference = _librosa_reference(long_voice)
    assert long_reference.shape[0] > 2048
    np.testing.assert_array_equal(log_mel_spectrogram(long_trimmed, config=CONFIG), long_reference)
    checked = 0
    for name, waveform in _reference_inputs():
        waveform = waveform - np.float32(waveform.mean())
        trimmed, log_mel = _librosa_reference(waveform)
        np.testing.assert_array_equal(trim_silence(waveform, config=CONFIG), trimmed, err_msg=name)
        np.testing.assert_array_equal(log_mel_spectrogram(trimmed, config=CONFIG), log_mel, err_msg=name)
        checked += 1
    assert checked >= 4
