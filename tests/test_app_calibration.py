""""Calibrate to your voice" in the app, under AppTest: the panel on Analyze and Live, every answer
of the session adapted with the unadapted one beside it, "Forget my voice", plain errors, and
nothing scored again when the calibration changes.

The tiny test bundle (tests/conftest.py) answers at random, so the real neutral example reads as
little neutral to it and the calibration visibly moves the answers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import streamlit_webrtc
from streamlit.testing.v1 import AppTest

import app_ui
from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from tests.conftest import EXAMPLES, ROOT
from tests.test_app import CLIP, FakeWebrtc, charts, meter_readings, shown, values

TIMEOUT = 120
NEUTRAL_CLIP = EXAMPLES / "03-01-01-01-01-01-12.flac"  # actor 12's ordinary (neutral) voice
STATUS = "Calibrated to your voice:"
WITHOUT = "Calibrated to your voice. Without calibration: "


@pytest.fixture(autouse=True)
def tiny_model(tiny_bundle, monkeypatch):
    monkeypatch.setenv("SER_MODEL_DIR", str(tiny_bundle))


def open_page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.switch_page(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wav(path) -> bytes:
    return waveform_to_wav(decode_audio(path, sample_rate=16000), sample_rate=16000)


def calibrate(at: AppTest, *, page: str, data: bytes, generation: int = 0) -> AppTest:
    at.audio_input(key=f"{page}-voice-recorder-{generation}").set_value(("voice.wav", data, "audio/wav")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def status(at: AppTest) -> list[str]:
    return [box.value for box in at.success if box.value.startswith(STATUS)]


def unadapted_lines(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption if caption.value.startswith(WITHOUT)]


def compared_with(at: AppTest) -> list[str]:
    """Whom the "why" section compares the voice with (its caption)."""
    return [caption.value.removeprefix("Compared with ").split(". ")[0] for caption in at.caption
            if caption.value.startswith("Compared with ")]


def probability_bars(at: AppTest) -> list[dict]:
    return [spec for spec in charts(at) if spec["data"][0]["type"] == "bar" and spec["data"][0]["x"][0] == "neutral"]


@pytest.fixture
def scored(monkeypatch) -> list[str]:
    """Names of the clips the app scores from now on (app_ui.analyze_audio counted)."""
    names: list[str] = []
    original = app_ui.analyze_audio

    def counting(data, *, name, **kwargs):
        names.append(name)
        return original(data, name=name, **kwargs)

    monkeypatch.setattr(app_ui, "analyze_audio", counting)
    return names


def test_calibrating_adapts_the_answer_without_scoring_again_and_forget_undoes_it(scored):
    at = open_page("pages/1_Analyze.py")
    at.file_uploader(key="uploads").set_value((CLIP.name, CLIP.read_bytes(), "audio/flac")).run()
    assert not at.exception and scored == [CLIP.name]
    assert not status(at) and not unadapted_lines(at)
    plain = probability_bars(at)
    assert len(plain) == 1 and len(plain[0]["data"]) == 1
    before = values(plain[0]["data"][0]["y"])

    calibrate(at, page="analyze", data=wav(NEUTRAL_CLIP))
    assert scored == [CLIP.name]  # the kept analysis is adapted, not scored again
    [words] = status(at)
    assert "s of speech; your ordinary voice read" in words and "neutral before calibration" in words
    assert not at.error
    [line] = unadapted_lines(at)  # the unadapted answer, one line under the adapted one
    bars = probability_bars(at)[0]["data"]
    assert [trace["name"] for trace in bars] == ["calibrated to your voice", "without calibration"]
    adapted, unadapted = values(bars[0]["y"]), values(bars[1]["y"])
    np.testing.assert_allclose(unadapted, before)
    assert adapted.sum() == pytest.approx(1.0, abs=1e-4) and adapted[0] >= before[0] - 1e-9  # neutral never lower
    best = int(np.argmax(unadapted))
    assert bars[0]["x"][best] in line and f"{unadapted[best]:.0%}" in line
    assert compared_with(at) == ["your calibration recording"]  # "why" compares with the speaker's own voice

    at.button(key="analyze-forget-voice").click().run()
    assert not at.exception and scored == [CLIP.name]
    assert not status(at) and not unadapted_lines(at)
    [whom] = compared_with(at)
    assert whom.startswith(("the ", "all the ")) and "actors of the training data" in whom  # not "your ..."
    [bars] = probability_bars(at)
    assert len(bars["data"]) == 1
    np.testing.assert_allclose(values(bars["data"][0]["y"]), before)
    assert at.audio_input(key="analyze-voice-recorder-1").value is None  # the recorder is emptied too


def test_a_batch_table_says_the_answer_without_calibration():
    at = open_page("pages/1_Analyze.py")
    calibrate(at, page="analyze", data=wav(NEUTRAL_CLIP))
    files = [(path.name, path.read_bytes(), "audio/flac") for path in sorted(EXAMPLES.glob("*-12.flac"))[:2]]
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns)[-1] == "without calibration"
    emotions = "|".join(app_ui.get_bundle().emotions)
    answer = rf"(not sure: perhaps )?({emotions}) \(\d+%\)"  # in words, as the detail view's caption
    assert all(re.fullmatch(answer, cell) for cell in table["without calibration"])
    assert unadapted_lines(at)  # the detail view of the first file


@pytest.mark.parametrize(("audio", "words"), [
    (np.zeros(3 * 16000, np.float32), "no speech"),
    (0.02 * np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32), "no speech"),
    (decode_audio(NEUTRAL_CLIP, sample_rate=16000)[24000:38000], "at least 1.5 s"),  # under a second of it
])
def test_a_reference_without_enough_speech_is_explained_and_changes_nothing(audio, words):
    at = open_page("pages/1_Analyze.py")
    calibrate(at, page="analyze", data=waveform_to_wav(audio, sample_rate=16000))
    [error] = [box.value for box in at.error]
    assert error.startswith("Not calibrated:") and words in error and "Record 5 to 10 seconds" in error
    assert not status(at)
    at.run()  # a re-run neither calibrates again nor loses the message
    assert [box.value for box in at.error] == [error]


def test_a_failed_recording_keeps_the_earlier_calibration():
    at = open_page("pages/1_Analyze.py")
    calibrate(at, page="analyze", data=wav(NEUTRAL_CLIP))
    [words] = status(at)
    at.audio_input(key="analyze-voice-recorder-0").set_value(
        ("voice.wav", waveform_to_wav(np.zeros(32000, np.float32), sample_rate=16000), "audio/wav")).run()
    assert any("Your earlier calibration is kept" in box.value for box in at.error)
    assert status(at) == [words]


@pytest.fixture
def fake_webrtc(monkeypatch) -> FakeWebrtc:
    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "create_audio_sink_track", fake.create_audio_sink_track)
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake.webrtc_streamer)
    monkeypatch.delenv("SER_ICE_SERVERS", raising=False)
    return fake


def test_the_live_page_shares_the_calibration_and_adapts_its_readings(fake_webrtc):
    at = open_page("pages/1_Analyze.py")
    calibrate(at, page="analyze", data=wav(NEUTRAL_CLIP))
    [words] = status(at)
    at.switch_page("pages/2_Live.py").run()
    assert not at.exception
    assert status(at) == [words]  # one calibration for the session, shown on both pages
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send(decode_audio(CLIP, sample_rate=48000))  # a whole sentence and the pause after it: read
    at.run()
    assert not at.exception
    assert meter_readings(at) and shown(at, WITHOUT)
    bars = probability_bars(at)[0]["data"]
    assert [trace["name"] for trace in bars] == ["calibrated to your voice", "without calibration"]
    assert values(bars[0]["y"])[0] >= values(bars[1]["y"])[0] - 1e-9

    at.button(key="live-forget-voice").click().run()  # forgotten on Live: the kept reading, unadapted
    assert not at.exception and not status(at) and not shown(at, WITHOUT) and meter_readings(at)
    assert len(probability_bars(at)[0]["data"]) == 1
    at.switch_page("pages/1_Analyze.py").run()
    assert not status(at)


def test_the_live_page_offers_the_panel_before_any_calibration(fake_webrtc):
    at = open_page("pages/2_Live.py")
    assert "Calibrate to your voice" in [expander.label for expander in at.expander]
    assert not status(at)
    calibrate(at, page="live", data=wav(NEUTRAL_CLIP))
    assert status(at)
