"""Every page of the Streamlit app under AppTest (no browser): it runs, and it shows the right things.

The Live page's WebRTC component cannot run under AppTest, so ``streamlit_webrtc``'s two
entry points are replaced by fakes that record their arguments and feed real audio frames.
"""

from __future__ import annotations

import base64
import json
import re
import types

import numpy as np
import pytest
import streamlit_webrtc
from streamlit.testing.v1 import AppTest

from ser.config import read_json
from ser.serving.analysis import waveform_to_wav
from ser.serving.audio import decode_audio
from tests.conftest import EXAMPLES, ROOT

TIMEOUT = 120  # seconds; the first run imports TensorFlow and loads the model
METRICS = read_json(ROOT / "models" / "metrics.json")
EMOTIONS = read_json(ROOT / "models" / "labels.json")["emotion"]
CLIP = EXAMPLES / "03-01-05-02-01-01-12.flac"


def run_page(name: str) -> AppTest:
    """Run ``app.py`` (the navigation) and open page ``name``, as a user following a link would."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    if name != "app.py":
        at.switch_page(name)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def answers(at: AppTest) -> list[str]:
    """Texts of the success/warning boxes that carry the prediction."""
    return [box.value for box in [*at.success, *at.warning] if "Predicted emotion" in box.value]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(element.proto.spec) for element in at.get("plotly_chart")]


def values(data) -> np.ndarray:
    """A plotly JSON array: plain lists, or the typed-array form {dtype, bdata, shape} numpy data takes."""
    if isinstance(data, dict) and "bdata" in data:
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        return array.reshape([int(n) for n in str(data.get("shape", array.size)).split(",")])
    return np.asarray(data)


def assert_one_emotion_shown(at: AppTest) -> None:
    texts = answers(at)
    assert len(texts) == 1, texts
    assert any(f"*{label}*" in texts[0] for label in EMOTIONS)


def test_home_shows_headline_and_analyses_an_example():
    at = run_page("app.py")
    assert at.metric[0].value == f"{METRICS['headline']['accuracy']:.1%}"
    assert any(METRICS["headline"]["protocol"] in caption.value for caption in at.caption)
    example = next(button for button in at.button if button.key == "example-03-01-05-02-01-01-12")
    example.click().run()
    assert not at.exception
    assert_one_emotion_shown(at)


def test_upload_one_file_gives_prediction_charts_and_downloads():
    at = run_page("pages/1_Analyze.py")
    at.file_uploader(key="uploads").set_value((CLIP.name, CLIP.read_bytes(), "audio/flac")).run()
    assert not at.exception
    assert_one_emotion_shown(at)
    kinds = [spec["data"][0]["type"] for spec in charts(at)]
    assert kinds.count("heatmap") == 1 and "bar" in kinds  # spectrogram and probabilities
    bars = next(spec for spec in charts(at) if spec["data"][0]["type"] == "bar")
    assert bars["data"][0]["x"] == EMOTIONS
    assert values(bars["data"][0]["y"]).sum() == pytest.approx(1.0, abs=1e-4)
    assert len(at.get("download_button")) == 2  # JSON and CSV


def test_several_uploads_give_a_table_and_bad_files_an_explanation():
    at = run_page("pages/1_Analyze.py")
    files = [(path.name, path.read_bytes(), "audio/flac") for path in sorted(EXAMPLES.glob("*-12.flac"))[:3]]
    files.append(("broken.wav", b"RIFF....not audio", "audio/wav"))
    at.file_uploader(key="uploads").set_value(files).run()
    assert not at.exception
    table = at.dataframe[0].value  # dataframe keys are not exposed by AppTest: by order
    assert list(table["file"]) == [name for name, *_ in files[:3]]
    assert set(table["emotion"]) <= set(EMOTIONS)
    assert any("broken.wav" in str(frame.value) for frame in at.dataframe)  # the failure, by name
    assert any("could not be analysed" in error.value for error in at.error)


def test_recording_goes_through_the_same_analysis():
    at = run_page("pages/1_Analyze.py")
    recording = waveform_to_wav(decode_audio(CLIP, sample_rate=16000), sample_rate=16000)
    at.audio_input(key="recorder").set_value(("recording.wav", recording, "audio/wav")).run()
    assert not at.exception
    assert_one_emotion_shown(at)


def test_silent_recording_is_explained_not_crashed():
    at = run_page("pages/1_Analyze.py")
    silence = waveform_to_wav(np.zeros(16000 * 2, np.float32), sample_rate=16000)
    at.audio_input(key="recorder").set_value(("recording.wav", silence, "audio/wav")).run()
    assert not at.exception
    assert not answers(at)
    assert any("no speech" in error.value.lower() for error in at.error)


def test_model_page_shows_confusion_matrix_with_toggle():
    at = run_page("pages/3_Model.py")
    matrix = METRICS["cross_validation"]["confusion_matrix"]
    heatmaps = [spec for spec in charts(at) if spec["data"][0]["type"] == "heatmap"]
    np.testing.assert_array_equal(values(heatmaps[0]["data"][0]["z"]), matrix["counts"])
    assert heatmaps[0]["data"][0]["x"] == matrix["labels"]
    at.segmented_control(key="cm-view").set_value("row-normalised").run()
    z = values([spec for spec in charts(at) if spec["data"][0]["type"] == "heatmap"][0]["data"][0]["z"])
    rows = np.array(matrix["counts"]).sum(axis=1) > 0
    np.testing.assert_allclose(z[rows].sum(axis=1), 1.0)
    report = at.dataframe[0].value
    assert list(report["emotion"]) == list(METRICS["cross_validation"]["per_class"])


@pytest.fixture
def model_dir_with(tmp_path, monkeypatch):
    """Point the app at a copy of the bundle whose metrics.json is replaced."""
    def make(metrics: dict) -> None:
        for name in ("model.keras", "labels.json", "config.json"):
            (tmp_path / name).symlink_to(ROOT / "models" / name)
        (tmp_path / "metrics.json").write_text(json.dumps(metrics))
        monkeypatch.setenv("SER_MODEL_DIR", str(tmp_path))
    return make


def test_model_page_shows_baselines_and_leaky_split_when_present(model_dir_with):
    metrics = json.loads(json.dumps(METRICS))
    metrics["leaky_random_split"] = {"leaky": True, "protocol": "random 80/20 clip split", "accuracy": 0.91,
                                     "uar": 0.9, "macro_f1": 0.9}
    metrics["baselines"] = [{"name": "MFCC + SVM", "description": "seed-style", "accuracy": 0.4, "uar": 0.38,
                             "leaky_accuracy": 0.8, "leaky_uar": 0.79}]
    model_dir_with(metrics)
    at = run_page("pages/3_Model.py")
    table = next(frame.value for frame in at.dataframe if "model" in frame.value.columns)
    assert list(table["model"])[1] == "MFCC + SVM"
    assert table["accuracy (leaky random split)"].tolist() == [0.91, 0.8]
    assert table["accuracy (unseen speakers)"].tolist()[1] == 0.4
    assert any("random 80/20 clip split" in caption.value for caption in at.caption)


def test_model_page_shows_each_view_of_the_fused_model(model_dir_with):
    metrics = json.loads(json.dumps(METRICS))
    metrics["cross_validation"]["views"] = {
        "log_mel_cnn": {"accuracy": 0.5, "uar": 0.49, "macro_f1": 0.48},
        "functionals": {"accuracy": 0.6, "uar": 0.61, "macro_f1": 0.6},
        "fused": {"accuracy": 0.62, "uar": 0.62, "macro_f1": 0.61},
        "averaged": {"accuracy": 0.61, "uar": 0.6, "macro_f1": 0.6},
    }
    model_dir_with(metrics)
    at = run_page("pages/3_Model.py")
    views = next(frame.value for frame in at.dataframe if "view" in frame.value.columns)
    assert views["view"].tolist() == [
        "log-mel CNN alone", "functionals alone", "all views, geometric mean (shipped)", "all views, plain average"
    ]
    assert views["accuracy"].tolist() == [0.5, 0.6, 0.62, 0.61]
    comparison = next(frame.value for frame in at.dataframe if "model" in frame.value.columns)
    assert comparison["model"].tolist()[0] == "this model (log-mel CNN + functionals)"


def test_model_page_shows_the_robustness_table(model_dir_with):
    metrics = json.loads(json.dumps(METRICS))
    metrics["robustness"] = {"clips": 1200, "command": "python experiments/robustness.py --data D", "conditions": {
        "clean": {"accuracy": 0.65, "uar": 0.66, "refused": 1, "same_answer_as_clean": 1199, "seen_in_training": False},
        "white_20db": {"accuracy": 0.58, "uar": 0.57, "refused": 3, "same_answer_as_clean": 900,
                       "seen_in_training": True},
    }}
    model_dir_with(metrics)
    at = run_page("pages/3_Model.py")
    table = next(frame.value for frame in at.dataframe if "condition" in frame.value.columns)
    assert table["condition"].tolist() == ["studio clip as recorded", "white noise, 20 dB below the speech"]
    assert table["accuracy"].tolist() == [0.65, 0.58] and table["seen in training"].tolist() == [False, True]
    assert table["same answer as clean"].tolist() == [1199 / 1200, 900 / 1200]
    assert any("experiments/robustness.py" in caption.value for caption in at.caption)


def test_model_page_survives_a_sparse_metrics_file(model_dir_with):
    model_dir_with({"labels": EMOTIONS, "headline": METRICS["headline"]})
    at = run_page("pages/3_Model.py")
    assert any("no confusion matrix" in info.value for info in at.info)
    assert any("No baselines" in info.value for info in at.info)


def test_dataset_page_draws_every_example():
    at = run_page("pages/4_Dataset.py")
    grid = next(spec for spec in charts(at) if len(spec["data"]) > 1 and spec["data"][0]["type"] == "heatmap")
    assert len(grid["data"]) == len(list(EXAMPLES.glob("*.flac")))
    counts = next(spec for spec in charts(at) if spec["data"][0]["type"] == "bar")
    np.testing.assert_array_equal(values(counts["data"][0]["y"]),
                                  list(METRICS["data"]["speech_per_emotion"].values()))


class FakeWebrtc:
    """Stands in for streamlit_webrtc: records the arguments, hands out the frame callback and
    ends the stream as the real sink does (``on_ended`` after the last frame)."""

    def __init__(self) -> None:
        self.playing = False
        self.callback = None
        self.on_ended = None
        self.kwargs: dict = {}

    def create_audio_sink_track(self, callback, key, on_ended=None, **_):
        self.callback = callback
        self.on_ended = on_ended
        return types.SimpleNamespace(key=key)

    def webrtc_streamer(self, **kwargs):
        self.kwargs = kwargs
        return types.SimpleNamespace(state=types.SimpleNamespace(playing=self.playing, signalling=False))

    def send(self, signal: np.ndarray) -> float:
        """Feed a 48 kHz mono signal as streamlit-webrtc would: packed s16 stereo, 20 ms frames.
        Returns the seconds sent."""
        import av

        pcm = np.round(np.clip(signal, -1, 1) * 32767).astype(np.int16)
        frames = 0
        for start in range(0, pcm.size - 959, 960):
            chunk = pcm[start : start + 960]
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk], 1).reshape(1, -1), format="s16",
                                               layout="stereo")
            frame.sample_rate = 48000
            self.callback(frame)
            frames += 1
        return frames * 960 / 48000

    def send_clip(self) -> float:
        """The example clip (angry, actor 12)."""
        return self.send(decode_audio(CLIP, sample_rate=48000))

    def stop(self) -> None:
        self.playing = False
        if self.on_ended is not None:
            self.on_ended()


@pytest.fixture
def fake_webrtc(monkeypatch) -> FakeWebrtc:
    fake = FakeWebrtc()
    monkeypatch.setattr(streamlit_webrtc, "create_audio_sink_track", fake.create_audio_sink_track)
    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", fake.webrtc_streamer)
    monkeypatch.delenv("SER_ICE_SERVERS", raising=False)
    return fake


def texts(at: AppTest) -> list[str]:
    """Every text the page shows in markdown, captions, boxes and progress bars."""
    boxes = [*at.markdown, *at.caption, *at.info, *at.warning, *at.error, *at.success, *at.text]
    return [element.value for element in boxes] + [element.proto.text for element in at.get("progress")]


def shown(at: AppTest, fragment: str) -> list[str]:
    return [text for text in texts(at) if fragment in text]


def meter_readings(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if re.search(r"Now[:,]|Last reading", m.value)]


def test_live_page_before_start_explains_the_meter(fake_webrtc):
    at = run_page("pages/2_Live.py")
    # No public STUN server unless configured: an explicit empty list for browser and server.
    assert fake_webrtc.kwargs["rtc_configuration"] == {"iceServers": []}
    assert fake_webrtc.kwargs["mode"] == streamlit_webrtc.WebRtcMode.SENDONLY
    # The microphone as it is: no browser gain control or noise suppression in front of the meter.
    assert fake_webrtc.kwargs["media_stream_constraints"]["audio"] == {
        "autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}
    assert shown(at, "Not listening yet") and shown(at, "Microphone level: – (not streaming)")
    assert not shown(at, "Listening") and not meter_readings(at)
    assert not [button for button in at.button if button.key == "analyse-take"]


def test_live_page_streams_stops_with_history_kept_and_analyses_the_take(fake_webrtc):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()  # connected, no audio yet
    assert shown(at, "Connecting")
    clip = decode_audio(CLIP, sample_rate=48000)
    sent = fake_webrtc.send(clip[: int(2.2 * 48000)])  # speech started 1.0 s in: less than a window so far
    at.run()
    assert not at.exception
    # The counter is the audio received, to the frame.
    assert shown(at, f"**Listening** · {sent:.1f} s of audio received")
    level = shown(at, "Microphone level:")[0]
    assert "dBFS" in level and "peak" in level
    meter = meter_readings(at)
    assert len(meter) == 1 and meter[0].startswith("<div style='font-size:1.6rem'>Now")
    assert any(f"<b>{label}</b>" in meter[0] or f"maybe {label})" in meter[0] for label in EMOTIONS)
    # An early reading scores what there is, and says so, and how far such a reading goes.
    assert shown(at, f"Scored on the {sent:.1f} s received so far") and shown(at, "less than the model's")
    assert "first impression" in meter[0] and shown(at, "of the time (measured on two corpora)")

    sent += fake_webrtc.send(clip[int(2.2 * 48000) :])
    sent += fake_webrtc.send_clip()
    at.run()
    assert shown(at, f"{sent:.1f} s of audio received")
    timelines = [spec for spec in charts(at) if spec["data"][0]["type"] == "scatter"]
    assert len(timelines) == 1  # the history: two readings so far
    history = charts(at)

    fake_webrtc.stop()
    at.run()  # stopped: what the user was watching stays, "Listening" goes
    assert not at.exception
    assert not shown(at, "Listening")
    assert shown(at, f"**Stopped** · {sent:.1f} s of audio received")
    assert meter_readings(at) and "Last reading (at" in meter_readings(at)[0]
    assert charts(at) == history  # the same probabilities and history chart
    at.button(key="analyse-take").click().run()
    assert not at.exception
    assert_one_emotion_shown(at)
    assert shown(at, f"live-take.wav · {sent:.1f} s")  # the whole take, analysed like an upload
    assert charts(at)[: len(history)] == history  # the readings are still there above it


def test_a_new_take_starts_a_new_history(fake_webrtc):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send_clip()
    at.run()
    fake_webrtc.stop()
    at.run()
    at.button(key="analyse-take").click().run()
    assert answers(at)
    fake_webrtc.playing = True
    at.run()  # started again: until audio arrives the old take is still on screen
    assert shown(at, "Connecting") and meter_readings(at)
    sent = fake_webrtc.send(np.zeros(48000, np.float32))  # a second of silence
    at.run()
    assert not at.exception
    assert shown(at, f"{sent:.1f} s of audio received")
    assert not meter_readings(at) and not answers(at)  # the earlier take's readings and analysis are gone
    assert shown(at, "No reading yet")


@pytest.mark.parametrize(("gain", "warning"), [(4.0, "Clipping"), (0.003, "Too quiet"), (0.0, "No signal")])
def test_live_page_warns_when_the_microphone_clips_or_is_too_quiet(fake_webrtc, gain, warning):
    at = run_page("pages/2_Live.py")
    fake_webrtc.playing = True
    at.run()
    fake_webrtc.send(gain * decode_audio(CLIP, sample_rate=48000))
    at.run()
    assert not at.exception
    warnings = [box.value for box in at.warning]
    assert any(warning in text for text in warnings), warnings
    others = {"Clipping", "Too quiet", "No signal"} - {warning}
    assert not any(other in text for text in warnings for other in others)


def test_live_page_explains_when_webrtc_cannot_start(fake_webrtc, monkeypatch):
    def broken(**_):
        raise RuntimeError("aiortc is not available")

    monkeypatch.setattr(streamlit_webrtc, "webrtc_streamer", broken)
    at = run_page("pages/2_Live.py")
    assert any("cannot start" in error.value and "aiortc is not available" in error.value for error in at.error)
    assert any("Analyze" in str(link.proto) for link in at.get("page_link"))


def test_live_page_uses_configured_ice_servers(fake_webrtc, monkeypatch):
    server = {"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}
    monkeypatch.setenv("SER_ICE_SERVERS", json.dumps([server]))
    run_page("pages/2_Live.py")
    assert fake_webrtc.kwargs["rtc_configuration"] == {
        "iceServers": [{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "p"}]
    }


def test_pages_are_ui_only():
    """Pages call ser/ for all the work: no model, feature or decoding code in them."""
    for path in [ROOT / "app.py", ROOT / "app_ui.py", *sorted((ROOT / "pages").glob("*.py"))]:
        source = path.read_text()
        for forbidden in ("import keras", "import tensorflow", "librosa", "soundfile", "np.fft"):
            assert forbidden not in source, f"{path.name} uses {forbidden}"


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#RRGGBB`` colours."""

    def luminance(color: str) -> float:
        channels = [int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted([luminance(first), luminance(second)], reverse=True)
    return (high + 0.05) / (low + 0.05)


#: Streamlit's dark theme background (its default for ``theme.dark.backgroundColor``).
STREAMLIT_DARK_BACKGROUND = "#171614"


def test_streamlit_config_sets_theme_upload_limit_and_no_statistics():
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["maxUploadSize"] > 0
    # No forced base: a light and a dark theme, and the system's setting picks one.
    assert "base" not in config["theme"]
    light, dark = config["theme"]["light"], config["theme"]["dark"]
    # Streamlit draws small text in the primary colour (active tabs, white labels on primary
    # buttons): WCAG AA's 4.5:1 wherever it is drawn, body text at AAA's 7:1.
    for background in (light["backgroundColor"], light["secondaryBackgroundColor"]):
        assert contrast(light["primaryColor"], background) >= 4.5
    assert contrast(light["primaryColor"], "#FFFFFF") >= 4.5
    assert contrast(light["textColor"], light["backgroundColor"]) >= 7.0
    assert contrast(dark["primaryColor"], dark.get("backgroundColor", STREAMLIT_DARK_BACKGROUND)) >= 4.5


def test_live_page_reads_ice_servers_from_secrets(fake_webrtc):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.secrets["ice_servers"] = [{"urls": ["stun:stun.example.org:3478"]}]
    at.switch_page("pages/2_Live.py").run()
    assert not at.exception
    assert fake_webrtc.kwargs["rtc_configuration"] == {"iceServers": [{"urls": ["stun:stun.example.org:3478"]}]}
