"""ser.serving.live: the ring buffer fed by WebRTC frames, its counters and takes, the level
meter's maths (dBFS, clipping, too quiet), the meter's readings (``ser.serving.live_reading``:
no reading before enough speech, the utterance so far scored as one clip), and the ICE settings."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ser.errors import SERError
from ser.serving import level as levels
from ser.serving import live, live_reading
from ser.serving.audio import decode_audio
from ser.serving.level import measure_level
from ser.serving.live import LiveBuffer, ice_servers, to_mono
from ser.testing import synthetic_voice
from tests.conftest import EXAMPLES, ROOT

RATE_IN = 48000
FRAME = 960  # 20 ms at 48 kHz, what streamlit-webrtc delivers


def stereo_frames(signal: np.ndarray) -> list[np.ndarray]:
    """Cut a mono float signal into packed 16-bit stereo frames shaped like av's to_ndarray()."""
    pcm = np.round(np.clip(signal, -1, 1) * 32767).astype(np.int16)
    frames = []
    for start in range(0, pcm.size - FRAME + 1, FRAME):
        chunk = pcm[start : start + FRAME]
        frames.append(np.stack([chunk, chunk], axis=1).reshape(1, -1))  # interleaved L R L R
    return frames


def tone(seconds: float, frequency: float = 440.0, rate: int = RATE_IN) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def test_frames_become_mono_at_model_rate_without_clicks():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=5.0)
    for frame in stereo_frames(tone(2.0)):
        buffer.push(frame, sample_rate=RATE_IN, channels=2)
    audio = buffer.latest(seconds=1.0)
    assert audio.dtype == np.float32 and audio.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    assert np.argmax(spectrum) * 16000 / audio.size == pytest.approx(440, abs=2)
    # Streaming resampling leaves no discontinuity at the 20 ms frame edges: everything
    # but the tone is far below it (a per-frame resampler would smear energy everywhere).
    peak = np.argmax(spectrum)
    leakage = np.delete(spectrum, np.arange(peak - 20, peak + 21))
    assert leakage.max() < spectrum[peak] * 1e-3
    assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=0.02)


def test_ring_keeps_only_the_newest_audio_in_order():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=1.0)
    ramp = np.linspace(-0.9, 0.9, 3 * RATE_IN).astype(np.float32)  # 3 s rising: order is visible
    for frame in stereo_frames(ramp):
        buffer.push(frame, sample_rate=RATE_IN, channels=2)
    kept = buffer.take()
    assert kept.shape == (16000,)
    assert buffer.seconds == pytest.approx(3.0, abs=0.05)  # received, although only 1 s is kept
    assert kept[0] > 0.25  # starts in the last third of the ramp (oldest samples dropped)
    assert np.all(np.diff(kept[100:-100]) > 0)  # oldest first, across the ring's wrap point
    assert buffer.latest(seconds=0.25).shape == (4000,)
    np.testing.assert_array_equal(buffer.latest(seconds=0.25), kept[-4000:])


def test_clear_forgets_the_audio():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=2.0)
    for frame in stereo_frames(tone(0.5)):
        buffer.push(frame, sample_rate=RATE_IN, channels=2)
    assert buffer.seconds > 0
    buffer.clear()
    assert buffer.seconds == 0 and buffer.take().size == 0


def push_all(buffer: LiveBuffer, signal: np.ndarray) -> None:
    for frame in stereo_frames(signal):
        buffer.push(frame, sample_rate=RATE_IN, channels=2)


@pytest.mark.parametrize("frame_size", [960, 441, 1920])  # 20 ms, an odd size, 40 ms
def test_counter_equals_the_audio_received_frame_by_frame(frame_size):
    """The "seconds received" counter is exact after every frame (no lag, no rounding drift),
    also past the ring's capacity."""
    buffer = LiveBuffer(sample_rate=16000, max_seconds=1.0)
    pcm = np.zeros(frame_size * 2, dtype=np.int16).reshape(1, -1)
    for count in range(1, 201):
        buffer.push(pcm, sample_rate=RATE_IN, channels=2)
        assert buffer.seconds == pytest.approx(count * frame_size / RATE_IN, abs=1e-9)
    # What is kept is the ring; what is counted is everything received.
    assert buffer.take().size == pytest.approx(min(1.0, 200 * frame_size / RATE_IN) * 16000, abs=16)


def test_a_new_take_starts_with_its_first_frame_and_the_stopped_take_stays_readable():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=5.0)
    assert buffer.take_number == 0 and not buffer.streaming
    push_all(buffer, tone(1.0))
    assert buffer.take_number == 1 and buffer.streaming
    buffer.end_take()  # the stream ended (streamlit-webrtc's on_ended)
    # Stopped: nothing is wiped, the page can still show and analyse the take, which is as
    # long as the audio received (the resampler's last samples flushed).
    assert not buffer.streaming and buffer.take_number == 1
    assert buffer.take().size / 16000 == pytest.approx(buffer.seconds, abs=1 / 16000)
    buffer.end_take()  # twice is harmless
    assert buffer.take().size / 16000 == pytest.approx(buffer.seconds, abs=1 / 16000)
    push_all(buffer, tone(0.5, frequency=220))  # a new stream: its very first frame counts
    assert buffer.take_number == 2 and buffer.streaming
    assert buffer.seconds == pytest.approx(0.5, abs=0.03)
    assert buffer.take().size == pytest.approx(8000, abs=200)  # only the new take's audio


def test_snapshot_reads_audio_and_its_end_together():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=5.0)
    push_all(buffer, tone(2.0))
    audio, end = buffer.snapshot(seconds=3.0)
    assert audio.size == pytest.approx(32000, abs=200)  # less than asked: all there is
    assert end == pytest.approx(audio.size / 16000)


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.1, 0.01])
def test_meter_reads_a_sine_at_its_dbfs(amplitude):
    rate = 16000
    t = np.arange(rate) / rate
    sine = (amplitude * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    level = measure_level(sine, sample_rate=rate)
    # RMS re full scale: a sine's RMS is its amplitude / sqrt(2), i.e. 3.01 dB below its peak.
    assert level.rms_dbfs == pytest.approx(20 * np.log10(amplitude) - 3.01, abs=0.05)
    assert level.peak_dbfs == pytest.approx(20 * np.log10(amplitude), abs=0.05)
    assert level.loudest_dbfs == pytest.approx(level.rms_dbfs, abs=0.05)
    assert 0.0 <= level.fraction <= 1.0


def test_meter_shows_the_newest_100_ms_and_silence_at_the_floor():
    rate = 16000
    audio = np.concatenate([0.5 * np.ones(rate, np.float32), np.zeros(rate // 5, np.float32)])
    level = measure_level(audio, sample_rate=rate)
    assert level.rms_dbfs == levels.SILENCE_DBFS and level.peak_dbfs == levels.SILENCE_DBFS
    assert level.fraction == 0.0
    assert level.loudest_dbfs == pytest.approx(20 * np.log10(0.5), abs=0.01)  # the loud second before
    empty = measure_level(np.zeros(0, np.float32), sample_rate=rate)
    assert empty.rms_dbfs == levels.SILENCE_DBFS and empty.seconds == 0.0 and not empty.too_quiet


@pytest.mark.parametrize(("peak_dbfs", "too_quiet", "no_signal"),
                         [(-90, True, True), (-70, True, False), (-55, True, False), (-45, False, False),
                          (-20, False, False)])
def test_too_quiet_when_the_loudest_moment_is_below_the_threshold(peak_dbfs, too_quiet, no_signal):
    voice = synthetic_voice(seconds=2.0, sample_rate=16000, seed=3)
    voice = voice / np.sqrt(np.mean(voice.reshape(-1, 1600) ** 2, axis=1)).max() * 10 ** (peak_dbfs / 20)
    level = measure_level(voice.astype(np.float32), sample_rate=16000)
    assert level.loudest_dbfs == pytest.approx(peak_dbfs, abs=0.5)
    assert level.too_quiet is too_quiet and level.no_signal is no_signal


def test_too_quiet_is_not_judged_on_the_first_moments_of_a_stream():
    level = measure_level(np.zeros(8000, np.float32), sample_rate=16000)  # 0.5 s of start-up silence
    assert level.loudest_dbfs == levels.SILENCE_DBFS and not level.too_quiet


def test_full_scale_runs():
    assert levels.longest_full_scale_run(np.zeros(10)) == 0
    assert levels.longest_full_scale_run(np.array([0, 1.0, 0, -1.0, -1.0, 0.2])) == 2
    assert levels.longest_full_scale_run(np.array([0.9, 1.0, 1.0, 1.0, 1.0, 0.3, 1.0])) == 4


def test_clipped_input_is_flagged_and_forgotten_after_a_while():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
    loud = 3.0 * tone(0.5)  # a 1.5 sine: stereo_frames clips it to 16-bit full scale, flat tops
    push_all(buffer, tone(1.0))
    assert not buffer.level().clipping  # 0.5 amplitude: fine
    push_all(buffer, loud)
    assert buffer.level().clipping
    push_all(buffer, tone(levels.CLIP_MEMORY_SECONDS - 0.5))
    assert buffer.level().clipping  # still shown for a while, so it can be read
    push_all(buffer, tone(1.0))
    assert not buffer.level().clipping


def test_a_peak_that_touches_full_scale_once_is_not_clipping():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=2.0)
    signal = 0.3 * tone(0.2)
    signal[1000] = 1.0  # one sample at full scale (a plosive can do that)
    push_all(buffer, signal)
    assert not buffer.level().clipping
    assert buffer.level().peak_dbfs < 0  # the newest 100 ms do not hold it


def test_clipping_in_one_channel_is_found():
    pcm = np.round(0.3 * tone(0.1) * 32767).astype(np.int16)
    left, right = pcm.copy(), pcm.copy()
    right[100:110] = 32767  # only the right channel is overloaded
    buffer = LiveBuffer(sample_rate=16000, max_seconds=1.0)
    buffer.push(np.stack([left, right], axis=1).reshape(1, -1), sample_rate=RATE_IN, channels=2)
    assert buffer.level().clipping


def test_read_latest_waits_for_enough_speech_then_scores_the_utterance(tiny_bundle):
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
    silent = live.read_latest(buffer, bundle=bundle)
    assert silent.prediction is None and silent.audio_seconds == 0 and silent.message  # says why
    voice = synthetic_voice(seconds=2.4, sample_rate=RATE_IN, seed=1)
    push_all(buffer, np.zeros(RATE_IN, np.float32))
    push_all(buffer, voice[: int(0.8 * RATE_IN)])
    early = live.read_latest(buffer, bundle=bundle)
    assert early.prediction is None and early.listening and early.ongoing  # speech, not enough yet
    assert 0.5 < early.speech_seconds < live_reading.MIN_SPEECH_SECONDS and "listening" in early.message
    push_all(buffer, voice[int(0.8 * RATE_IN) :])
    reading = live.read_latest(buffer, bundle=bundle, previous=early)
    assert reading.prediction is not None, reading.message
    assert reading.ongoing and not reading.listening and reading.speech_seconds >= live_reading.MIN_SPEECH_SECONDS
    # The utterance so far, not the silence before it: from LEAD_SECONDS before its onset to now.
    assert reading.end_seconds == pytest.approx(buffer.snapshot(seconds=0.0)[1], abs=1e-6)
    assert reading.start_seconds == pytest.approx(1.0 - live_reading.LEAD_SECONDS, abs=0.1)
    assert 0 < reading.prediction.speech_seconds <= reading.audio_seconds
    assert sum(reading.prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    # A pause ends the utterance: read once more to its end, then not again.
    push_all(buffer, np.zeros(int(1.2 * RATE_IN), np.float32))
    final = live.read_latest(buffer, bundle=bundle, previous=reading)
    assert not final.ongoing and final.prediction is None and "no speech" in final.message  # nothing new
    live.warm_up(bundle)  # runs without a model call's side effects


def test_an_utterance_too_short_to_read_says_so_once(tiny_bundle):
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
    push_all(buffer, np.concatenate([np.zeros(RATE_IN // 2, np.float32),
                                     synthetic_voice(seconds=0.3, sample_rate=RATE_IN, seed=2),
                                     np.zeros(RATE_IN, np.float32)]))
    short = live.read_latest(buffer, bundle=bundle)
    assert short.prediction is None and not short.listening and not short.ongoing
    assert "too little speech" in short.message and short.speech_seconds < live_reading.MIN_SENTENCE_SECONDS
    after = live.read_latest(buffer, bundle=bundle, previous=short)
    assert after.prediction is None and after.speech_seconds == 0 and "no speech" in after.message


def test_a_single_word_after_a_pause_is_answered_whole(tiny_bundle):
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(tiny_bundle)
    buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
    word = synthetic_voice(seconds=0.7, sample_rate=RATE_IN, seed=2)
    push_all(buffer, np.concatenate([np.zeros(RATE_IN // 2, np.float32), word, np.zeros(RATE_IN, np.float32)]))
    reading = live.read_latest(buffer, bundle=bundle)
    assert reading.prediction is not None and not reading.ongoing
    assert live_reading.MIN_SENTENCE_SECONDS <= reading.speech_seconds < live_reading.MIN_SPEECH_SECONDS
    # The word's reading is the answer an upload of the same word gets.
    upload = bundle.predict_clip(word, sample_rate=RATE_IN)
    assert reading.prediction.emotion == upload.emotion


@pytest.mark.parametrize(("voiced", "expected"), [
    ([], None),
    ([(10, 40)], (10, 40, False)),
    ([(10, 40), (50, 70)], (10, 70, False)),  # a 0.2 s gap inside a sentence
    ([(10, 40), (90, 120)], (90, 120, True)),  # a 1 s pause: a new utterance, then 1.6 s of silence
])
def test_current_utterance_starts_after_the_last_pause(voiced, expected):
    flags = np.zeros(200, bool)
    for first, last in voiced:
        flags[first:last] = True
    flags = flags[: max([last for _, last in voiced], default=0) + (80 if expected and expected[2] else 0)]
    found = live_reading.current_utterance(flags, frame_seconds=0.02, pause_seconds=0.8)
    assert (found and (found.first_frame, found.last_frame, found.ended)) == expected


@pytest.fixture(scope="module")
def shipped_bundle():
    from ser.serving.bundle import load_bundle

    return load_bundle(ROOT / "models")


def stream_clip(clip: np.ndarray, *, bundle, lead: float = 1.0, tail: float = 2.0) -> tuple[list, LiveBuffer]:
    """Play a 16 kHz clip into a buffer as the Live page would (silence around it), reading when due."""
    signal = np.concatenate([np.zeros(int(lead * 16000), np.float32), clip, np.zeros(int(tail * 16000), np.float32)])
    buffer = LiveBuffer(sample_rate=16000, max_seconds=30.0)
    readings = []
    for start in range(0, signal.size, 1600):  # 0.1 s at a time
        buffer.push(signal[start : start + 1600].reshape(1, -1), sample_rate=16000, channels=1)
        previous = readings[-1] if readings else None
        if live.reading_due(previous, received=buffer.seconds):
            readings.append(live.read_latest(buffer, bundle=bundle, previous=previous))
    return readings, buffer


@pytest.mark.parametrize("name", ["03-01-01-01-01-01-12", "03-01-05-02-01-01-12"])  # neutral, angry
def test_the_first_reading_of_a_real_sentence_agrees_with_the_whole_clip(shipped_bundle, name):
    clip = decode_audio(EXAMPLES / f"{name}.flac", sample_rate=16000)
    whole = shipped_bundle.predict_clip(clip, sample_rate=16000)
    readings, buffer = stream_clip(clip, bundle=shipped_bundle)
    voiced = [reading for reading in readings if reading.prediction is not None]
    assert voiced, [reading.message for reading in readings]
    first = readings.index(voiced[0])
    # Before it: silence, then "listening" while the speech so far is too short: never a reading.
    assert any(reading.listening for reading in readings[:first])
    assert all(reading.speech_seconds < live_reading.MIN_SPEECH_SECONDS for reading in readings[:first])
    # Enough speech: MIN_SPEECH_SECONDS of a sentence going on, or a whole sentence of MIN_SENTENCE_SECONDS.
    least = live_reading.MIN_SPEECH_SECONDS if voiced[0].ongoing else live_reading.MIN_SENTENCE_SECONDS
    assert voiced[0].speech_seconds >= least
    assert voiced[0].prediction.emotion == whole.emotion != "surprised"
    # After the sentence, the last reading is the whole sentence's answer, and the pause is not read again.
    assert voiced[-1].prediction.emotion == whole.emotion and not voiced[-1].ongoing
    assert voiced[-1].prediction.probabilities == pytest.approx(whole.probabilities, abs=0.05)
    again = live.read_latest(buffer, bundle=shipped_bundle, previous=voiced[-1])
    assert again.prediction is None and again.speech_seconds == 0


def test_no_reading_on_silence(shipped_bundle):
    readings, buffer = stream_clip(np.zeros(3 * 16000, np.float32), bundle=shipped_bundle)
    assert readings and all(reading.prediction is None and reading.speech_seconds == 0 for reading in readings)
    assert buffer.level().no_signal  # the level meter agrees: nothing was heard


def test_push_frame_reads_av_frames():
    av = pytest.importorskip("av")
    pcm = stereo_frames(tone(0.1))[0]
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
    frame.sample_rate = RATE_IN
    buffer = LiveBuffer(sample_rate=16000, max_seconds=1.0)
    for _ in range(50):
        buffer.push_frame(frame)
    assert buffer.seconds == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("layout", ["packed", "planar"])
def test_to_mono_averages_channels(layout):
    left = np.array([1000, 2000, -3000], dtype=np.int16)
    right = np.array([-1000, 0, -1000], dtype=np.int16)
    samples = np.stack([left, right], axis=1).reshape(1, -1) if layout == "packed" else np.stack([left, right])
    mono = to_mono(samples, channels=2)
    np.testing.assert_allclose(mono, np.array([0, 1000, -2000]) / 32768, atol=1e-7)


def test_concurrent_pushes_and_reads_are_consistent():
    buffer = LiveBuffer(sample_rate=16000, max_seconds=0.5)
    frames = stereo_frames(tone(2.0))
    errors = []

    def reader():
        try:
            for _ in range(300):
                assert buffer.latest(seconds=0.3).size <= 4800
        except Exception as error:  # surfaced below: an assertion in a thread would be lost
            errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    for frame in frames:
        buffer.push(frame, sample_rate=RATE_IN, channels=2)
    thread.join()
    assert not errors
    assert buffer.take().size == 8000


def test_ice_servers_default_to_none_and_read_settings():
    assert ice_servers(secrets=None, environ={}) == []
    from_env = ice_servers(environ={"SER_ICE_SERVERS": '[{"urls": ["turn:t.example:3478"], "username": "u", '
                                                       '"credential": "c"}]'})
    assert from_env == [{"urls": ["turn:t.example:3478"], "username": "u", "credential": "c"}]
    from_secrets = ice_servers(secrets={"ice_servers": [{"urls": "stun:s.example:3478"}]}, environ={})
    assert from_secrets == [{"urls": "stun:s.example:3478"}]


@pytest.mark.parametrize("value", ["not json", '{"urls": "stun:x"}', '[{"url": "stun:x"}]', '[{"urls": 5}]'])
def test_malformed_ice_setting_says_what_is_wrong(value):
    with pytest.raises(SERError, match="SER_ICE_SERVERS"):
        ice_servers(environ={"SER_ICE_SERVERS": value})


def test_pauses_and_noise_are_not_scored_by_the_model(tiny_bundle):
    from ser.serving.bundle import load_bundle

    class Counting:
        """The bundle, counting model calls."""

        def __init__(self, bundle):
            self.bundle, self.calls = bundle, 0
            self.speech_settings = bundle.speech_settings

        def recording(self, audio, *, sample_rate):
            return self.bundle.recording(audio, sample_rate=sample_rate)

        def predict_recording(self, recording):
            self.calls += 1
            return self.bundle.predict_recording(recording)

        def unfamiliarity_of(self, recording):
            return self.bundle.unfamiliarity_of(recording)

    counting = Counting(load_bundle(tiny_bundle))
    buffer = LiveBuffer(sample_rate=16000, max_seconds=10.0)
    push_all(buffer, 10 ** (-80 / 20) * tone(2.0))  # a faint hum, under the detector's floor
    reading = live.read_latest(buffer, bundle=counting)
    assert reading.prediction is None and "no speech" in reading.message and counting.calls == 0
    rng = np.random.default_rng(0)
    push_all(buffer, (0.1 * rng.standard_normal(2 * RATE_IN)).astype(np.float32))  # loud noise, no voice
    assert live.read_latest(buffer, bundle=counting).prediction is None and counting.calls == 0
    push_all(buffer, synthetic_voice(seconds=1.0, sample_rate=RATE_IN))  # speech, but not enough for a reading
    assert live.read_latest(buffer, bundle=counting).listening and counting.calls == 0
    push_all(buffer, synthetic_voice(seconds=1.0, sample_rate=RATE_IN, seed=3))
    assert live.read_latest(buffer, bundle=counting).prediction is not None and counting.calls == 1
