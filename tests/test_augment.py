import numpy as np
import pytest

from ser.training.augment import NOISE_COLOURS, active_power, add_noise, coloured_noise, reverberate, room_copy
from tests.conftest import synthetic_voice

RATE = 16000


def _with_silence(voice: np.ndarray) -> np.ndarray:
    gap = np.zeros(voice.size, dtype=np.float32)
    return np.concatenate([gap, voice, gap])


def test_active_power_ignores_the_pauses_around_speech():
    voice = synthetic_voice(seconds=1.0)
    assert active_power(_with_silence(voice)) == pytest.approx(active_power(voice), rel=0.05)
    assert active_power(np.zeros(10, dtype=np.float32)) == 0.0


@pytest.mark.parametrize("snr_db", [5.0, 20.0])
@pytest.mark.parametrize("colour", sorted(NOISE_COLOURS))
def test_add_noise_hits_the_requested_snr_against_the_speech_not_the_silence(snr_db, colour):
    clip = _with_silence(0.3 * synthetic_voice(seconds=1.0))
    noisy = add_noise(clip, snr_db=snr_db, colour=colour, rng=np.random.default_rng(0))
    assert noisy.shape == clip.shape and noisy.dtype == np.float32
    noise = noisy.astype(np.float64) - clip
    measured = 10 * np.log10(active_power(clip) / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.3)


def test_noise_colours_tilt_the_spectrum_the_right_way():
    def low_to_high(colour):
        spectrum = np.abs(np.fft.rfft(coloured_noise(RATE, colour=colour, rng=np.random.default_rng(1)))) ** 2
        return spectrum[1:800].mean() / spectrum[4000:8000].mean()

    white, pink, brown = (low_to_high(colour) for colour in ("white", "pink", "brown"))
    assert 0.7 < white < 1.4
    assert pink > 5 * white and brown > 5 * pink


def test_corruptions_are_seeded_and_bounded():
    clip = synthetic_voice(seconds=1.5)
    first = room_copy(clip, sample_rate=RATE, rng=np.random.default_rng(3))
    again = room_copy(clip, sample_rate=RATE, rng=np.random.default_rng(3))
    other = room_copy(clip, sample_rate=RATE, rng=np.random.default_rng(4))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert first.shape == clip.shape and np.all(np.abs(first) <= 1.0)
    loud = add_noise(np.ones(RATE, dtype=np.float32), snr_db=0.0, colour="white", rng=np.random.default_rng(0))
    assert np.all(np.abs(loud) <= 1.0)


def test_reverberation_keeps_length_and_power_and_smears_in_time():
    click = np.zeros(RATE, dtype=np.float32)
    click[100] = 0.5
    wet = reverberate(click, rt60=0.5, sample_rate=RATE, rng=np.random.default_rng(0))
    assert wet.shape == click.shape
    assert np.mean(wet.astype(np.float64) ** 2) == pytest.approx(np.mean(click.astype(np.float64) ** 2), rel=1e-3)
    tail = np.abs(wet[100 + RATE // 20 : 100 + RATE // 5])  # 50-200 ms after the click
    assert tail.max() > 1e-3  # a dry click has nothing there


def test_bad_arguments_say_what_to_use():
    with pytest.raises(ValueError, match="colour must be one of"):
        coloured_noise(10, colour="blue", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="rt60 must be a positive"):
        reverberate(np.zeros(100, dtype=np.float32), rt60=0.0, sample_rate=RATE, rng=np.random.default_rng(0))
