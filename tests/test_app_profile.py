""""Teach it your voice" in the app, under AppTest: the guided takes with their level check, the
profile built, every later answer read with it (the generic answer one glance away), download and
upload, a profile for another model refused, "Forget my voice", and the same panel on Live.

The tiny test bundle (tests/conftest.py) reads functionals like the shipped one, so the profile is
fitted for real; its answers are near random, so the tests check the flow, not the accuracy (that is
``python -m ser profile-check``'s job).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import streamlit_webrtc

import app_profile
import app_ui
from ser.serving.analysis import waveform_to_wav
from ser.serving.profile import VoiceProfile
from tests.conftest import EXAMPLES
from tests.test_app import CLIP, FakeWebrtc
from tests.test_app_calibration import open_page, wav

STATUS = "Answers use your voice profile:"
GENERIC = "Read with your voice profile. Generic answer: "
TAKES = {"neutral": EXAMPLES / "03-01-01-01-01-01-12.flac", "angry": EXAMPLES / "03-01-05-02-01-01-12.flac",
         "sad": EXAMPLES / "03-01-04-02-01-01-12.flac"}


@pytest.fixture(autouse=True)
def tiny_model(tiny_bundle, monkeypatch):
    monkeypatch.setenv("SER_MODEL_DIR", str(tiny_bundle))


def record(at, *, page: str, emotion: str, data: bytes, generation: int = 0):
    at.audio_input(key=f"{page}-profile-{emotion}-{generation}").set_value((f"{emotion}.wav", data, "audio/wav")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def build(at, *, page: str, takes: dict[str, bytes]):
    for emotion, data in takes.items():
        record(at, page=page, emotion=emotion, data=data)
    at.button(key=f"{page}-profile-build").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def status(at) -> list[str]:
    return [box.value for box in at.success if box.value.startswith(STATUS)]


def session_profile(at) -> VoiceProfile | None:
    kept = at.session_state[app_ui.VOICE] if app_ui.VOICE in at.session_state else {}
    profiles = [value for value in kept.values() if isinstance(value, VoiceProfile)]
    return profiles[0] if profiles else None


def test_the_guided_takes_build_a_profile_that_reads_every_later_answer():
    at = open_page("pages/1_Analyze.py")
    assert any(app_profile.SENTENCE in block.value for block in at.markdown)  # the sentence to say
    build_button = at.button(key="analyze-profile-build")
    assert build_button.disabled  # neutral first
    record(at, page="analyze", emotion="angry", data=wav(TAKES["angry"]))
    assert at.button(key="analyze-profile-build").disabled
    assert any(caption.value.startswith("Angry: ") and "level fine" in caption.value for caption in at.caption)
    build(at, page="analyze", takes={emotion: wav(path) for emotion, path in TAKES.items()})
    [words] = status(at)
    assert "neutral, sad, angry" in words and "read from your own voice" in words
    profile = session_profile(at)
    assert profile is not None and profile.enrolled_emotions == ["neutral", "sad", "angry"]
    assert at.audio_input(key="analyze-profile-neutral-1").value is None  # recorders emptied for a next time

    at.file_uploader(key="uploads").set_value((CLIP.name, CLIP.read_bytes(), "audio/flac")).run()
    assert not at.exception
    [line] = [caption.value for caption in at.caption if caption.value.startswith(GENERIC)]
    assert "%" in line  # the generic answer, one glance away
    download = next(button for button in at.get("download_button") if button.proto.label == "Download my profile")
    assert download is not None

    at.button(key="analyze-forget-profile").click().run()
    assert not at.exception and not status(at) and session_profile(at) is None
    assert not [caption for caption in at.caption if caption.value.startswith(GENERIC)]


def test_a_bad_take_is_explained_and_left_out():
    at = open_page("pages/1_Analyze.py")
    silence = waveform_to_wav(np.zeros(3 * 16000, np.float32), sample_rate=16000)
    record(at, page="analyze", emotion="neutral", data=silence)
    assert any(box.value.startswith("Neutral: ") for box in at.warning)
    assert at.button(key="analyze-profile-build").disabled  # the silent neutral take does not count
    clipped = np.clip(4 * np.sin(np.arange(48000) / 8), -1, 1).astype(np.float32)
    record(at, page="analyze", emotion="angry", data=waveform_to_wav(clipped, sample_rate=16000))
    assert any("clipped" in box.value for box in at.warning)


def test_a_downloaded_profile_loads_again_and_one_for_another_model_is_refused():
    at = open_page("pages/1_Analyze.py")
    build(at, page="analyze", takes={emotion: wav(path) for emotion, path in TAKES.items()})
    text = session_profile(at).to_json()

    fresh = open_page("pages/1_Analyze.py")
    fresh.file_uploader(key="analyze-profile-0-upload").set_value(("voice-profile.json", text.encode(),
                                                                   "application/json")).run()
    assert not fresh.exception and len(status(fresh)) == 1
    assert session_profile(fresh).enrolled_emotions == ["neutral", "sad", "angry"]

    other = json.loads(text) | {"bundle_version": "000000000000"}
    refused = open_page("pages/1_Analyze.py")
    refused.file_uploader(key="analyze-profile-0-upload").set_value(("old.json", json.dumps(other).encode(),
                                                                     "application/json")).run()
    assert not refused.exception and not status(refused)
    assert any("made for another model" in box.value for box in refused.error)
    refused.file_uploader(key="analyze-profile-0-upload").set_value(("notes.json", b"[1, 2]",
                                                                     "application/json")).run()
    assert any("not a voice profile" in box.value for box in refused.error)


def test_the_live_page_offers_the_same_panel_and_shares_the_profile(monkeypatch):
    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake.webrtc_streamer)
    monkeypatch.setattr(streamlit_webrtc, "create_audio_sink_track", fake.create_audio_sink_track, raising=False)
    at = open_page("pages/1_Analyze.py")
    build(at, page="analyze", takes={emotion: wav(path) for emotion, path in TAKES.items()})
    at.switch_page("pages/2_Live.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.audio_input(key="live-profile-neutral-1") is not None
    assert len(status(at)) == 1  # the session's profile, shown on Live too
