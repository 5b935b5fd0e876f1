"""Live page: stream the microphone over WebRTC; a level meter and an emotion meter follow it.

streamlit-webrtc delivers 20 ms frames on its own thread into a per-session
``ser.serving.live.LiveBuffer``. While the stream plays, one fragment redraws twice a
second: the level meter (dBFS of the last 100 ms, clipping, "too quiet" and "no signal"
warnings, the seconds of audio received) and the emotion meter (``ser.serving.live_reading``), which
scores what was said since the last pause as one utterance, once it holds ``MIN_SPEECH`` seconds of
speech or a pause ends a sentence of ``MIN_SENTENCE`` (until then it says it is listening), then
once a second while the speech goes on, and once more, whole, when it ends. The
reading is taken before the level is measured, so the level describes audio at least as new as
the reading's (no "No signal" beside a reading of speech just heard). After Stop the readings
stay on screen and the whole take (up to ``TAKE_SECONDS``) can be analysed like an upload.
Calibrated to the speaker's voice (``app_calibration``), readings are adapted as they are shown
(they are kept unadapted, so calibrating or forgetting never scores the audio again).

ICE servers default to none, which is what localhost and a LAN need and keeps the
component from contacting a public STUN server; a deployment behind NAT sets them in
``.streamlit/secrets.toml`` (``ice_servers``) or ``SER_ICE_SERVERS`` (see the README).
"""

from __future__ import annotations

import gc
import os
from typing import Any

import numpy as np
import streamlit as st
import streamlit_webrtc as webrtc

import app_calibration
import app_profile
import app_ui
from ser.errors import SERError
from ser.reporting import plots
from ser.serving import live, live_reading
from ser.serving.analysis import WORD_SECONDS, waveform_to_wav
from ser.serving.bundle import Bundle
from ser.serving.level import CLIP_MEMORY_SECONDS, QUIET_WINDOW_SECONDS, TOO_QUIET_DBFS
from ser.serving.speaker import SpeakerAdaptation
from ser.serving.words import answer_words

#: Longest take kept for "Analyse this take" (seconds): bounds memory per session.
TAKE_SECONDS = 120.0
#: The meters redraw this often (seconds). Not faster: every redraw is Python work on the
#: server, and the WebRTC thread that receives the audio waits behind it for the interpreter
#: (one thread at a time); on a busy 2-core machine the audio then arrives late and in bursts.
REFRESH_SECONDS = 0.5
#: Readings kept for the history chart: a whole take (the meter reads at most every ONSET_EVERY).
HISTORY = int(TAKE_SECONDS / live_reading.ONSET_EVERY)
#: A reading needs this much speech in the current utterance, or a pause after a sentence of
#: MIN_SENTENCE (``ser.serving.live_reading``, where they were measured).
MIN_SPEECH = live_reading.MIN_SPEECH_SECONDS
MIN_SENTENCE = live_reading.MIN_SENTENCE_SECONDS
#: What the browser captures: no automatic gain, noise suppression or echo cancellation, so
#: the level meter and its warnings describe the microphone itself, and the model hears the
#: loudness the speaker used (a cue it relies on), as it does in an upload. Nothing is played
#: back on this page, so there is no echo to cancel.
AUDIO_CONSTRAINTS = {"autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}

app_ui.page_setup("Live")
st.title("Live emotion meter")
bundle = app_ui.bundle_or_stop()


@st.cache_resource(show_spinner="Preparing the meter…")
def warmed_up(path: str) -> bool:
    """Once per process and bundle: the one-off work of a first reading, done before Start.

    And the garbage collector stops scanning what lives as long as the process. Streamlit
    collects garbage after every script run, fragment runs included, twice (its
    ``runner.postScriptGC`` and the ``keras.backend.clear_session()`` it calls when Keras is
    loaded): with TensorFlow and the model in memory (~400,000 objects) each pass took
    0.45-0.7 s holding the interpreter, which the WebRTC thread receiving the audio waited
    behind, twice per redraw. Frozen after a last collection, a pass takes under 1 ms.
    """
    live.warm_up(app_ui.get_bundle())
    gc.collect()
    gc.freeze()
    return True


def configured_ice_servers() -> list[dict[str, Any]]:
    """ICE servers from ``SER_ICE_SERVERS`` or ``secrets.toml``; none when unset."""
    try:
        secrets = st.secrets.to_dict() if "ice_servers" in st.secrets else None
    except Exception:  # no secrets.toml at all raises (type varies by version): that means "unset"
        secrets = None
    return live.ice_servers(secrets=secrets, environ=os.environ)


def start_stream(*, buffer: live.LiveBuffer, ice_servers: list[dict[str, Any]]) -> Any:
    """Show the WebRTC widget; frames go into ``buffer``. Returns the streamer context.

    The only streamlit-webrtc calls of the app, made through the module so tests can
    replace them (AppTest cannot run the component). The buffer starts a new take with the
    first frame after ``on_ended``, so a new stream keeps its first frames.
    """
    sink = webrtc.create_audio_sink_track(buffer.push_frame, key="live-microphone", on_ended=buffer.end_take)
    return webrtc.webrtc_streamer(
        key="live",
        mode=webrtc.WebRtcMode.SENDONLY,
        # Shorthand for both the browser and the server side; an explicit empty list stops
        # the component from filling in a public STUN server.
        rtc_configuration={"iceServers": ice_servers},
        media_stream_constraints={"audio": AUDIO_CONSTRAINTS, "video": False},
        sink_audio_track=sink,
        translations={"start": "Start listening", "stop": "Stop"},
    )


if "live_buffer" not in st.session_state:
    st.session_state["live_buffer"] = live.LiveBuffer(sample_rate=bundle.config.sample_rate, max_seconds=TAKE_SECONDS)
buffer: live.LiveBuffer = st.session_state["live_buffer"]
warmed_up(str(bundle.path))

st.markdown(
    "Click **Start listening** and speak. The level meter shows what the microphone hears as soon as the audio "
    f"arrives. Once you have spoken for {MIN_SPEECH:g} s (or paused after a sentence), the emotion meter scores "
    "what you said since your last pause as one sentence, as an upload is scored, then again once a second while "
    "you speak and once more when you pause. "
    "**Stop** keeps the readings on screen, and you can then analyse the whole take like an upload."
)
app_calibration.panel(bundle=bundle, key="live")
app_profile.panel(bundle=bundle, key="live")
try:
    ice_servers = configured_ice_servers()
    context = start_stream(buffer=buffer, ice_servers=ice_servers)
except Exception as error:  # anything from the WebRTC stack: explain instead of a traceback
    st.error(f"The live stream cannot start here: {app_ui.plain(str(error)) or type(error).__name__}.")
    st.page_link("pages/1_Analyze.py", label="Use the recorder on the Analyze page instead", icon=":material/mic:")
    st.stop()

st.caption(
    "If nothing happens after Start (the browser blocks the microphone, has no WebRTC, or a network between "
    "you and the server needs a TURN server), use the recorder instead. "
    + ("No ICE servers configured: works on this machine and on a LAN." if not ice_servers
       else f"{len(ice_servers)} ICE server(s) configured.")
)
st.page_link("pages/1_Analyze.py", label="Recorder on the Analyze page", icon=":material/mic:")

playing = bool(context.state.playing)


def take_readings() -> list[live.Reading]:
    """The readings of the current take; a new take (its first frame arrived) starts a new list.

    Checked on every fragment run: while streaming only the fragments re-run, and a new
    take can begin between two of them.
    """
    if st.session_state.get("live_readings_take") != buffer.take_number:
        st.session_state["live_readings_take"] = buffer.take_number
        st.session_state["live_readings"] = []
        st.session_state.pop("live_take_wav", None)
    return st.session_state["live_readings"]


def level_meter() -> None:
    """Stream state, seconds received and the microphone level, with its warnings."""
    received = buffer.seconds
    if playing and not buffer.streaming:
        st.info("Connecting… the level meter moves as soon as the microphone's audio arrives.")
    elif playing:
        st.markdown(f"**Listening** · {received:.1f} s of audio received")
    elif received > 0:
        st.markdown(f"**Stopped** · {received:.1f} s of audio received. The readings below are kept.")
    else:
        st.info("Not listening yet. After **Start listening** the level meter below shows whether the "
                "microphone works, before any emotion reading.")
    if not playing or not buffer.streaming:
        st.progress(0.0, text="Microphone level: – (not streaming)")
        return
    level = buffer.level()
    st.progress(level.fraction, text=f"Microphone level: {level.rms_dbfs:.0f} dBFS · peak {level.peak_dbfs:.0f} dBFS")
    if level.clipping:
        st.warning("**Clipping**: the microphone is overloaded (flat-topped peaks in the last "
                   f"{CLIP_MEMORY_SECONDS:g} s). Move back or turn the input volume down: distorted "
                   "audio changes the answer.")
    elif level.no_signal:
        st.warning(f"**No signal**: the last {QUIET_WINDOW_SECONDS:g} s are near digital silence "
                   f"({level.loudest_dbfs:.0f} dBFS at their loudest). Is the microphone muted, or another input "
                   "selected (**Select device** beside Stop)?")
    elif level.too_quiet:
        st.warning(f"**Too quiet**: the loudest moment of the last {QUIET_WINDOW_SECONDS:g} s is "
                   f"{level.loudest_dbfs:.0f} dBFS, quieter than almost all the speech the model learned from "
                   f"(below {TOO_QUIET_DBFS:g} dBFS). If you are speaking, move closer or turn the "
                   "microphone up.")


def show_reading(reading: live.Reading, *, bundle: Bundle, now: bool, adaptation: SpeakerAdaptation | None) -> None:
    """The answer of one voiced reading in words (adapted to the speaker's voice when calibrated,
    the unadapted answer under it), how much speech it scored, and its probabilities."""
    prediction = adapted(reading, bundle=bundle, adaptation=adaptation).prediction
    if prediction is None:
        return
    label = answer_words(prediction)  # "not sure: perhaps neutral", as the Analyze page says it
    when = "Now" if now else f"Last reading (at {reading.end_seconds:.1f} s)"
    # The emotion's colour on a dot, the word in the theme's text colour: some emotion colours
    # (happy's yellow) are unreadable as text on white, others (sad's blue) on the dark theme.
    st.markdown(
        f"<div style='font-size:1.6rem'>{when}: <span style='color:{plots.emotion_color(prediction.emotion)}'>"
        f"●</span> <b>{label}</b> · {prediction.confidence:.0%}</div>",
        unsafe_allow_html=True,  # the label comes from the bundle, not from the user
    )
    app_ui.show_unfamiliarity(reading.unfamiliarity, prediction=prediction)
    if adaptation is not None:
        st.caption(f"Calibrated to your voice. Without calibration: {app_ui.in_words(reading.prediction)}")
    so_far = "so far" if reading.ongoing else "in all"
    # The speech the reading waited for (the detector's, first to last voiced frame), as the
    # "Listening…" state counted it.
    if reading.audio_seconds >= live_reading.UTTERANCE_SECONDS - 0.01:
        scored = (f"Scored on the last {reading.audio_seconds:.0f} s of what you said since your last pause "
                  f"({reading.speech_seconds:.1f} s of speech {so_far}), as one sentence.")
    else:
        scored = (f"Scored on what you said since your last pause: {reading.speech_seconds:.1f} s of speech "
                  f"{so_far}, as one sentence (as an upload is scored).")
    st.caption(scored)
    if 0 < reading.speech_seconds <= WORD_SECONDS:  # a word said on its own: what such an answer is worth
        st.caption(app_ui.one_word_note(reading.speech_seconds))
    app_ui.chart(probability_chart(reading, bundle=bundle, adaptation=adaptation), key="live-meter")


def adapted(reading: live.Reading, *, bundle: Bundle, adaptation: SpeakerAdaptation | None) -> live.Reading:
    """A kept (unadapted) reading as it is shown: adapted to the session's calibration, if any."""
    return live.adapt_reading(reading, adaptation=adaptation, confidence_threshold=bundle.confidence_threshold)


def take_reading(readings: list[live.Reading]) -> bool:
    """Read the current utterance when the meter is due (``live.reading_due``); False if the
    audio cannot be scored (the error is shown)."""
    if playing and buffer.streaming:
        previous = readings[-1] if readings else None
        if live.reading_due(previous, received=buffer.seconds):
            try:
                readings.append(live.read_latest(buffer, bundle=bundle, previous=previous))
            except SERError as error:  # e.g. a broken capture device sending absurd sample values
                st.error(f"The live audio cannot be scored: {error}")
                return False
            del readings[:-HISTORY]
    return True


def emotion_meter(readings: list[live.Reading]) -> None:
    """The latest reading (or what the meter is waiting for) and the take's history."""
    voiced = [reading for reading in readings if reading.prediction is not None]
    latest = readings[-1] if readings else None
    streaming = playing and buffer.streaming
    if streaming and latest is not None and latest.listening:
        st.info(f"**Listening…** {latest.speech_seconds:.1f} s of speech so far (need {MIN_SPEECH:g} s of speech, "
                f"or a pause after at least {MIN_SENTENCE:g} s, a word: a reading scores what you say since your "
                "last pause as one utterance)."
                + (" The last reading is shown below." if voiced else ""))
    elif streaming and latest is not None and latest.prediction is None and 0 < latest.speech_seconds < MIN_SENTENCE:
        st.info(f"Too little speech for a reading: {latest.speech_seconds:.1f} s before the pause, a word "
                f"needs {MIN_SENTENCE:g} s. Say a word or a sentence."
                + (" The last reading is shown below." if voiced else ""))
    elif streaming and voiced and latest is not None and latest.prediction is None:
        st.info("No speech now. The last reading is shown below.")
    if not voiced:
        if streaming and (latest is None or latest.speech_seconds == 0):
            st.caption(f"No reading yet: the first one comes once you have spoken for {MIN_SPEECH:g} s, or paused "
                       f"after a sentence of at least {MIN_SENTENCE:g} s.")
        elif not streaming and readings:
            st.caption("No reading in this take: no utterance held enough speech." if any(
                reading.speech_seconds > 0 for reading in readings) else "No speech was heard in this take.")
        return
    adaptation = app_ui.speaker_adaptation(bundle)
    now = streaming and latest is voiced[-1] and latest.ongoing
    show_reading(voiced[-1], bundle=bundle, now=now, adaptation=adaptation)
    if len(voiced) >= 2:
        app_ui.chart(history_chart(readings, bundle=bundle, adaptation=adaptation), key="live-history")


def cached_figure(name: str, *, readings: list[live.Reading], build: Any,
                  adaptation: SpeakerAdaptation | None = None) -> Any:
    """``build()``, re-run only when ``readings`` gained a reading (or the calibration changed) since
    the last call for ``name``.

    The meter redraws twice a second; building a plotly figure is ~15-30 ms of Python, which
    on a busy server competes with the WebRTC thread for the interpreter.
    """
    cache = st.session_state.setdefault("live_figures", {})
    stamp = (id(readings[-1]), len(readings), adaptation)
    if name not in cache or cache[name][0] != stamp:
        cache[name] = (stamp, build())
    return cache[name][1]


def probability_chart(reading: live.Reading, *, bundle: Bundle, adaptation: SpeakerAdaptation | None) -> Any:
    shown = adapted(reading, bundle=bundle, adaptation=adaptation)
    return cached_figure("probabilities", readings=[reading], adaptation=adaptation,
                         build=lambda: plots.probability_figure(
                             probabilities=shown.prediction.probabilities, threshold=bundle.confidence_threshold,
                             height=260, unadapted=shown.unadapted.probabilities if shown.unadapted else None))


def history_chart(readings: list[live.Reading], *, bundle: Bundle, adaptation: SpeakerAdaptation | None) -> Any:
    """The take's readings over time (adapted when calibrated); readings without a prediction
    (pauses, "listening") are gaps, not lines across them."""
    def build() -> Any:
        shown = [adapted(reading, bundle=bundle, adaptation=adaptation) for reading in readings]
        # Each reading at the end of the speech it scored (a sentence's final reading comes after
        # the pause that ended it), so the line moves forward with the voice.
        at = np.array([reading.speech_end if reading.speech_seconds > 0 else reading.end_seconds
                       for reading in shown])
        return plots.timeline_figure(
            starts=at, ends=at,
            probabilities=np.array([[reading.prediction.probabilities[e] if reading.prediction else np.nan
                                     for e in bundle.emotions] for reading in shown]),
            emotions=bundle.emotions,
        )

    return cached_figure("history", readings=readings, adaptation=adaptation, build=build)


def meters() -> None:
    """The reading first, then the level: the level then describes audio at least as new as the
    reading's, so it never says "No signal" beside a reading of speech it has not seen yet."""
    readings = take_readings()
    if take_reading(readings):
        level_meter()
        emotion_meter(readings)
    else:
        level_meter()


st.fragment(run_every=REFRESH_SECONDS if playing else None)(meters)()

if not playing and buffer.seconds > 0:
    take_readings()  # forgets an analysis of an earlier take
    st.subheader("The whole take")
    kept = min(buffer.seconds, TAKE_SECONDS)
    label = f"Analyse this take ({kept:.0f} s)" if buffer.seconds <= TAKE_SECONDS else \
        f"Analyse this take (its last {TAKE_SECONDS:.0f} s)"
    if st.button(label, key="analyse-take"):
        st.session_state["live_take_wav"] = waveform_to_wav(buffer.take(), sample_rate=buffer.sample_rate)
    if "live_take_wav" in st.session_state:
        app_ui.analyze_and_show(st.session_state["live_take_wav"], name="live-take.wav", key="take")
