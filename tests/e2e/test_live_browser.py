"""End-to-end: the Live page in headless Chromium with a fake microphone that plays a file once.

Chromium's fake device plays ``silence + example clip + silence + clip`` once (``%noloop``)
from the moment the page asks for the microphone, then sends silence, as a real microphone
in a quiet room would. A probe polls the page every 50 ms and records what it shows: the
seconds of audio received, the microphone level and the first emotion reading. A hook on
``RTCPeerConnection`` (inside the component's iframe) reads how much audio the browser
sent. The test checks the page's states (before Start, listening, stopped with the readings
kept, the take analysed) and that the counter is the audio received; the timings it measures
(time to the first reading after speech reached the app, the counter against the audio
sent, and between the two clips' speech against the file) go to
``test-artifacts/live-timing.json`` and the test output, not into assertions.

Run: ``python -m pytest -q tests/e2e/test_live_browser.py -s``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ser.config import read_json
from ser.serving.audio import decode_audio
from tests.conftest import ROOT
from tests.e2e.conftest import (
    ARTIFACTS,
    BROWSER_ARGS,
    MIC_CLIP,
    TIMEOUT_MS,
    VIEWPORT,
    chromium_path,
    screenshot,
)

pytestmark = pytest.mark.e2e

EMOTIONS = read_json(ROOT / "models" / "labels.json")["emotion"]
#: Silence before the first clip: longer than the WebRTC set-up (2-7 s measured on this
#: machine under load), so the speech reaches the app after the stream is up.
LEAD_SECONDS = 8.0
#: Silence between the two clips (a second chance if the set-up took longer than the lead).
GAP_SECONDS = 6.0
#: A level at or above this is the clip's speech (its 100 ms blocks reach -38 dBFS within
#: 50 ms of its onset; the silence between is digital zero, about -90 dBFS after the codec).
SPEECH_DBFS = -45.0
#: How long the test waits for the history chart once the first reading is there.
HISTORY_TIMEOUT_MS = 40_000

PROBE = r"""
window.__probe = {samples: [], reading: null};
setInterval(() => {
  const text = document.body ? document.body.innerText : '';
  const now = performance.now();
  const counter = text.match(/([0-9.]+) s of audio received/);
  const level = text.match(/Microphone level: (-?[0-9]+) dBFS/);
  if (/Now[:,]|Last reading \(at/.test(text) && window.__probe.reading === null) window.__probe.reading = now;
  window.__probe.samples.push([now, counter ? parseFloat(counter[1]) : null, level ? parseFloat(level[1]) : null]);
}, 50);
"""
#: True once the meter has shown speech twice, more than a given counter span apart.
SECOND_ONSET_SEEN = """([speechDbfs, apart]) => {
  const loud = window.__probe.samples.filter(s => s[1] !== null && s[2] !== null && s[2] >= speechDbfs).map(s => s[1]);
  return loud.length > 0 && Math.max(...loud) - Math.min(...loud) > apart;
}"""
#: The (decimated) waveform of the analysed take, as plotly drew it.
TAKE_WAVEFORM = """() => {
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    for (const trace of (gd._fullData || [])) {
      if (trace.name === 'waveform') return {x: Array.from(trace.x), y: Array.from(trace.y)};
    }
  }
  return null;
}"""
#: Keeps the component's RTCPeerConnection reachable (this runs in every frame, the iframe too).
PEER_HOOK = """
(() => {
  const Native = window.RTCPeerConnection;
  if (!Native) return;
  window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__pc = pc; return pc; };
  window.RTCPeerConnection.prototype = Native.prototype;
})();
"""
SENT_STATS = """async () => {
  if (!window.__pc) return null;
  const out = {};
  (await window.__pc.getStats()).forEach(s => {
    if (s.type === 'outbound-rtp' && s.kind === 'audio') out.packetsSent = s.packetsSent;
    if (s.type === 'media-source' && s.kind === 'audio') out.capturedSeconds = s.totalSamplesDuration;
  });
  return out;
}"""


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return decode_audio(MIC_CLIP, sample_rate=48000)


@pytest.fixture(scope="module")
def once_mic_wav(tmp_path_factory, clip) -> Path:
    """silence + clip + silence + clip + silence as 48 kHz 16-bit WAV."""
    import soundfile

    silence = np.zeros(int(GAP_SECONDS * 48000), np.float32)
    signal = np.concatenate([np.zeros(int(LEAD_SECONDS * 48000), np.float32), clip, silence, clip, silence[:48000]])
    path = tmp_path_factory.mktemp("mic-once") / "mic-once.wav"
    soundfile.write(path, signal, 48000, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def once_browser(browser, once_mic_wav) -> Iterator[object]:
    """A second headless Chromium, whose fake microphone plays ``once_mic_wav`` once, then silence.

    Launched through the shared browser's Playwright (one sync Playwright per thread).
    """
    once = browser.browser_type.launch(
        executable_path=chromium_path(), headless=True,
        args=[*BROWSER_ARGS, f"--use-file-for-fake-audio-capture={once_mic_wav}%noloop"],
    )
    try:
        yield once
    finally:
        once.close()


def component_frame(page):
    """The streamlit-webrtc iframe (where the peer connection lives)."""
    return next(frame for frame in page.frames if "streamlit_webrtc" in (frame.url or ""))


def start_listening(page) -> float:
    """Click Start (again if the component was not ready for the first click); returns the click time (ms)."""
    widget = page.frame_locator('iframe[title*="webrtc"]')
    start = widget.get_by_role("button", name="Start listening")
    start.wait_for()
    page.wait_for_timeout(1000)
    for _ in range(3):
        clicked = page.evaluate("performance.now()")
        start.click()
        try:
            widget.get_by_role("button", name="Stop").wait_for(timeout=10_000)
            return clicked
        except Exception:  # the click fell on a component still loading: try again
            continue
    raise AssertionError("the WebRTC component never started")


def sound_starts(times: np.ndarray, values: np.ndarray, *, threshold: float = 0.1) -> list[float]:
    """Where each burst of sound louder than ``threshold`` starts (bursts more than 2 s apart)."""
    loud = times[np.abs(values) > threshold]
    return [float(t) for i, t in enumerate(loud) if i == 0 or t - loud[i - 1] > 2.0]


def onsets_apart(loud_counters: list[float]) -> float | None:
    """Counter seconds between the first loud reading of the first clip and of the second one."""
    for previous, current in zip(loud_counters, loud_counters[1:], strict=False):
        if current - previous > GAP_SECONDS / 2:  # the silence between the clips
            return round(current - loud_counters[0], 2)
    return None


def test_live_first_reading_level_meter_stop_and_true_counter(once_browser, warm_app, clip):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = once_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(PEER_HOOK)
    page = context.new_page()
    try:
        page.goto(f"{warm_app}/Live")
        # Before Start: the meter is there and says what it will do.
        page.get_by_text("Not listening yet").wait_for()
        page.get_by_text("Microphone level: – (not streaming)").wait_for()
        page.evaluate(PROBE)
        clicked = start_listening(page)

        page.get_by_text(re.compile(r"Microphone level: -?\d+ dBFS")).first.wait_for()  # live before any reading
        meter = page.get_by_text(re.compile(r"Now[:,]|Last reading \(at")).first
        meter.wait_for()
        assert any(label in meter.inner_text() for label in EMOTIONS)
        charts = page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot')
        charts.first.wait_for()
        try:  # two readings with speech draw the history chart (the second clip gives one at the latest)
            charts.nth(1).wait_for(timeout=HISTORY_TIMEOUT_MS)
        except PlaywrightTimeout:  # a loaded machine delivered a clip's audio in one burst: one reading
            pass
        page.wait_for_timeout(300)  # plotly's last paint
        screenshot(page, "live")
        try:  # stream on until the meter has shown the second clip's speech, then a little more
            page.wait_for_function(SECOND_ONSET_SEEN, arg=[SPEECH_DBFS, GAP_SECONDS / 2], timeout=HISTORY_TIMEOUT_MS)
        except PlaywrightTimeout:
            pass
        page.wait_for_timeout(1500)
        frame = component_frame(page)
        sent_before = frame.evaluate(SENT_STATS)
        charts_streaming = charts.count()

        stop_clicked = page.evaluate("performance.now()")
        page.frame_locator('iframe[title*="webrtc"]').get_by_role("button", name="Stop").click()
        stopped = page.get_by_text(re.compile(r"Stopped · [0-9.]+ s of audio received"))
        stopped.wait_for()
        try:
            sent_after = frame.evaluate(SENT_STATS)
        except Exception:  # the component may have closed the connection already
            sent_after = None
        received = float(re.search(r"([0-9.]+) s of audio received", stopped.inner_text()).group(1))
        probe = page.evaluate("window.__probe")

        # Stop keeps what the user was watching; "Listening" goes.
        page.get_by_text("Last reading (at").first.wait_for()
        assert page.get_by_text(re.compile(r"Listening")).count() == 0  # case-sensitive: not "Start listening"
        # The probabilities (and the history chart, when there was one) drawn again after the rerun.
        charts.nth(charts_streaming - 1).wait_for()

        # The whole take, analysed like an upload: its length is the counter's.
        page.get_by_role("button", name=re.compile("Analyse this take")).click()
        answer = page.get_by_text("Predicted emotion:").first
        answer.wait_for()
        assert any(label in answer.inner_text() for label in EMOTIONS)
        take = page.get_by_text(re.compile(r"live-take\.wav · [0-9.]+ s")).first.inner_text()
        take_seconds = float(re.search(r"· ([0-9.]+) s", take).group(1))
        assert take_seconds == pytest.approx(received, abs=0.11)
        page.locator(".js-plotly-plot .main-svg").last.wait_for()
        waveform = page.evaluate(TAKE_WAVEFORM)
        page.get_by_role("heading", name="The whole take").evaluate("e => e.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)
        screenshot(page, "live-stopped")
    except Exception:  # keep what the page showed, for the report
        screenshot(page, "live-failure")
        (ARTIFACTS / "live-failure-probe.json").write_text(json.dumps(page.evaluate("window.__probe || null")))
        raise
    finally:
        context.close()

    samples = [(t, counter, level) for t, counter, level in probe["samples"]]
    counters = [counter for _, counter, _ in samples if counter is not None]
    assert counters == sorted(counters), "the counter never runs backwards within a take"
    # The take keeps the file's timing: its two clips start as far apart as in the file (no
    # audio lost or doubled on the way: fake device, Opus, the server's receiver, the buffer).
    assert waveform is not None, "the take's waveform chart was not found"
    clip_starts = sound_starts(np.asarray(waveform["x"]), np.asarray(waveform["y"]))
    assert len(clip_starts) == 2, clip_starts
    # Nothing may be doubled (+50 ms at most); under CPU load the browser's WebRTC stack may drop
    # a few late packets before they reach the server (seen: 115 ms of 9.6 s at load ~8, with the
    # take exactly as long as what the server received), so up to 200 ms may be missing.
    spacing, expected = clip_starts[1] - clip_starts[0], clip.size / 48000 + GAP_SECONDS
    assert expected - 0.2 <= spacing <= expected + 0.05, (spacing, expected)
    # What the browser says it sent (20 ms Opus packets) is reported beside the counter, not
    # asserted: its statistics after Stop come from a closed connection and may be stale.
    sent_seconds = (sent_after or sent_before)["packetsSent"] * 0.020

    first_audio = next(t for t, counter, _ in samples if counter)
    speech = next((t for t, _, level in samples if level is not None and level >= SPEECH_DBFS), None)
    reading = probe["reading"]
    loud_counters = [counter for _, counter, level in samples if level is not None and level >= SPEECH_DBFS]
    timing = {
        "click_to_first_audio_s": round((first_audio - clicked) / 1000, 2),
        "click_to_first_reading_s": round((reading - clicked) / 1000, 2),
        "speech_on_meter_to_first_reading_s": None if speech is None else round((reading - speech) / 1000, 2),
        "received_at_stop_s": received,
        "sent_before_stop_s": round(sent_before["packetsSent"] * 0.020, 2),
        "sent_after_stop_s": round(sent_seconds, 2),
        "captured_by_browser_s": round((sent_after or sent_before).get("capturedSeconds", float("nan")), 2),
        "take_analysed_s": take_seconds,
        "charts_while_streaming": charts_streaming,
        # Between the onsets of the two clips' speech the file holds clip + gap seconds; the
        # counter should advance as much (the meter samples it twice a second: +-0.5 s).
        "counter_between_speech_onsets_s": onsets_apart(loud_counters),
        "file_between_speech_onsets_s": round(clip.size / 48000 + GAP_SECONDS, 2),
        "take_between_clip_starts_s": round(clip_starts[1] - clip_starts[0], 3),
    }
    # Lag of the counter behind the wall clock since it first showed audio, at the last sample
    # before Stop (the first audio shows up to one redraw late: +-0.5 s).
    last_t, last_counter = next((t, c) for t, c, _ in reversed(samples) if c is not None and t < stop_clicked)
    timing["counter_lag_behind_clock_s"] = round((last_t - first_audio) / 1000 - last_counter, 2)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "live-timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    print("\nlive timing:", json.dumps(timing))
    # The level meter shows the speech no later than the first reading (the same redraw at the latest).
    assert speech is not None and speech <= reading


#: The onset test's clip: neutral, actor 12, whose first 0.3-0.5 s of speech the meter used to read as
#: "surprised" at 80-85% (issue 24).
NEUTRAL_CLIP = MIC_CLIP.with_name("03-01-01-01-01-01-12.flac")
#: Silence after it: longer than a pause (``PAUSE_SECONDS``) and a reading interval, so the
#: sentence's final reading is made while the page is watched.
TAIL_SECONDS = 4.0
#: What the onset probe records every 50 ms: the waiting state, a reading and its speech
#: seconds and emotion, and the "No signal" warning, all from one look at the page.
ONSET_PROBE = r"""
window.__onset = [];
setInterval(() => {
  const text = document.body ? document.body.innerText : '';
  const reading = text.match(/(Now|Last reading \(at [0-9.]+ s\)): ● (not sure: perhaps [a-z]+|[a-z]+)/);
  const speech = text.match(/since your last pause: ([0-9.]+) s of speech (so far|in all)/);
  const listening = /Listening…/.test(text) && /need [0-9.]+ s of speech/.test(text);
  window.__onset.push({t: performance.now(), listening: listening,
                       reading: reading ? reading[0] : null, now: reading ? reading[1] === 'Now' : false,
                       speech: speech ? parseFloat(speech[1]) : null, whole: speech ? speech[2] === 'in all' : false,
                       noSignal: /No signal/.test(text)});
}, 50);
"""


@pytest.fixture(scope="module")
def onset_browser(browser, tmp_path_factory) -> Iterator[object]:
    """Headless Chromium whose fake microphone plays silence, the neutral clip and silence once."""
    import soundfile

    clip = decode_audio(NEUTRAL_CLIP, sample_rate=48000)
    signal = np.concatenate([np.zeros(int(LEAD_SECONDS * 48000), np.float32), clip,
                             np.zeros(int(TAIL_SECONDS * 48000), np.float32)])
    path = tmp_path_factory.mktemp("mic-onset") / "mic-onset.wav"
    soundfile.write(path, signal, 48000, subtype="PCM_16")
    once = browser.browser_type.launch(
        executable_path=chromium_path(), headless=True,
        args=[*BROWSER_ARGS, f"--use-file-for-fake-audio-capture={path}%noloop"],
    )
    try:
        yield once
    finally:
        once.close()


def test_live_waits_for_enough_speech_and_reads_no_onset_spike(onset_browser, warm_app):
    """Leading silence, then a neutral sentence: "Listening…" first, no reading on less than the
    minimum speech, never "No signal" beside a reading of now, and no "surprised" at the onset."""
    from ser.serving.live_reading import MIN_SENTENCE_SECONDS, MIN_SPEECH_SECONDS

    context = onset_browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{warm_app}/Live")
        page.get_by_text("Not listening yet").wait_for()
        page.evaluate(ONSET_PROBE)
        start_listening(page)
        page.get_by_text(re.compile(r"need [0-9.]+ s of speech")).first.wait_for()
        page.get_by_text(re.compile(r"Now:|Last reading \(at")).first.wait_for()
        # The sentence's final reading, once the pause after it is heard.
        page.get_by_text(re.compile(r"s of speech in all")).first.wait_for(timeout=HISTORY_TIMEOUT_MS)
        page.wait_for_timeout(1000)
        screenshot(page, "live-onset")
        samples = page.evaluate("window.__onset")
    except Exception:
        screenshot(page, "live-onset-failure")
        (ARTIFACTS / "live-onset-failure-probe.json").write_text(json.dumps(page.evaluate("window.__onset || null")))
        raise
    finally:
        context.close()

    first_reading = next(i for i, sample in enumerate(samples) if sample["reading"])
    assert any(sample["listening"] for sample in samples[:first_reading]), "no waiting state before the reading"
    readings = [sample for sample in samples if sample["reading"]]
    # Streamlit draws a rerun's elements one by one, so a 50 ms sample can catch a reading whose
    # caption ("... s of speech") is not drawn yet. A reading shown without it in every sample is
    # the defect; the ones caught mid-draw are judged by the caption drawn under them.
    captioned = [sample for sample in readings if sample["speech"] is not None]
    never_captioned = {sample["reading"] for sample in readings} - {sample["reading"] for sample in captioned}
    assert not never_captioned, f"readings shown without the speech they scored: {sorted(never_captioned)}"
    # Enough speech behind every reading: MIN_SPEECH_SECONDS of a sentence going on, or a whole
    # sentence (a pause after it) of MIN_SENTENCE_SECONDS.
    too_little = [(sample["reading"], sample["speech"]) for sample in captioned
                  if sample["speech"] < (MIN_SENTENCE_SECONDS if sample["whole"] else MIN_SPEECH_SECONDS)]
    assert not too_little, too_little
    assert not [sample for sample in samples if sample["now"] and sample["noSignal"]]
    emotions = sorted({sample["reading"] for sample in readings})
    print("\nlive onset readings:", emotions)
    assert not [emotion for emotion in emotions if "surprised" in emotion], emotions
