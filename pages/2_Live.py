"""Live page: stream the microphone over WebRTC; a level meter and an emotion meter follow it.

streamlit-webrtc delivers 20 ms frames on its own thread into a per-session
``ser.serving.live.LiveBuffer``. While the stream plays, one fragment redraws twice a
second: the level meter (dBFS of the last 100 ms, clipping, "too quiet" and "no signal"
warnings, the seconds of audio received) and the emotion meter, which scores the newest
``window_seconds`` of audio every half second until it hears speech, then every second. After Stop the readings
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
import app_ui
from ser.errors import SERError
from ser.reporting import plots
from ser.serving import live
from ser.serving.analysis import waveform_to_wav
from ser.serving.bundle import Bundle
from ser.serving.level import CLIP_MEMORY_SECONDS, QUIET_WINDOW_SECONDS, TOO_QUIET_DBFS
from ser.serving.speaker import SpeakerAdaptation

#: Longest take kept for "Analyse this take" (seconds): bounds memory per session.
TAKE_SECONDS = 120.0
#: The meters redraw this often (seconds). Not faster: every redraw is Python work on the
#: server, and the WebRTC thread that receives the audio waits behind it for the interpreter
#: (one thread at a time); on a busy 2-core machine the audio then arrives late and in bursts.
REFRESH_SECONDS = 0.5
#: While the last reading heard no speech, score again once this much new audio arrived, so
#: the first reading comes soon after speech starts: the detector needs about 0.3-0.8 s of
#: voice, one model call is ~0.15 s on two cores. Pauses cost little: the detector refuses
#: them before the model runs.
ONSET_EVERY = 0.5
#: While speech is heard, score again once this much new audio arrived: a reading covers
#: the last window (3 s), so once a second follows the voice at half the model work.
READING_EVERY = 1.0
#: Readings kept for the history chart: a whole take.
HISTORY = int(TAKE_SECONDS / ONSET_EVERY)
#: What the browser captures: no automatic gain, noise suppression or echo cancellation, so
#: the level meter and its warnings describe the microphone itself, and the model hears the
#: loudness the speaker used (a cue it relies on), as it does in an upload. Nothing is played
#: back on this page, so there is no echo to cancel.
AUDIO_CONSTRAINTS = {"autoGainControl": False, "noiseSuppression": False, "echoCancellation": False}

app_ui.page_setup("Live")
st.title("Live emotion meter")
bundle = app_ui.bundle_or_stop()
window = bundle.config.window_seconds


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
    f"arrives; about a second after you start speaking, the emotion meter scores the last {window:g} s, then "
    "once a second. "
    "**Stop** keeps the readings on screen, and you can then analyse the whole take like an upload."
)
app_calibration.panel(bundle=bundle, key="live")
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
    the unadapted answer under it), how much sound it scored, and its probabilities."""
    prediction = adapted(reading, bundle=bundle, adaptation=adaptation).prediction
    if prediction is None:
        return
    label = prediction.emotion if prediction.sure else f"not sure (maybe {prediction.emotion})"
    agreement = live.early_agreement(prediction.speech_seconds)
    when = "Now" if now else f"Last reading (at {reading.end_seconds:.1f} s)"
    if agreement is not None:
        when += ", first impression"
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
    if reading.audio_seconds < window - 0.01:
        scored = (f"Scored on the {reading.audio_seconds:.1f} s received so far ({prediction.speech_seconds:.1f} s "
                  f"of sound), less than the model's {window:g} s window: scored on what there is, the sound "
                  "repeated to fill the window as for short training clips.")
    else:
        scored = f"Scored on the last {window:g} s ({prediction.speech_seconds:.1f} s of sound in it)."
    if agreement is not None:
        scored += (f" A reading on so little sound named the emotion of the whole sentence only about "
                   f"{agreement:.0%} of the time (measured on two corpora); it firms up from "
                   f"{live.FIRM_SOUND_SECONDS:g} s of sound, so keep speaking.")
    st.caption(scored)
    app_ui.chart(probability_chart(reading, bundle=bundle, adaptation=adaptation), key="live-meter")


def adapted(reading: live.Reading, *, bundle: Bundle, adaptation: SpeakerAdaptation | None) -> live.Reading:
    """A kept (unadapted) reading as it is shown: adapted to the session's calibration, if any."""
    return live.adapt_reading(reading, adaptation=adaptation, confidence_threshold=bundle.confidence_threshold)


def emotion_meter() -> None:
    """Score the newest audio when enough arrived; show the latest reading and the take's history."""
    readings = take_readings()
    if playing and buffer.streaming:
        last_end = readings[-1].end_seconds if readings else 0.0
        speaking = bool(readings) and readings[-1].prediction is not None
        if buffer.seconds - last_end >= (READING_EVERY if speaking else ONSET_EVERY):
            try:
                readings.append(live.read_latest(buffer, bundle=bundle, seconds=window))
            except SERError as error:  # e.g. a broken capture device sending absurd sample values
                st.error(f"The live audio cannot be scored: {error}")
                return
            del readings[:-HISTORY]
    voiced = [reading for reading in readings if reading.prediction is not None]
    if not voiced:
        if playing and buffer.streaming:
            st.caption("No reading yet: the first one comes about a second after you start speaking.")
        elif readings:
            st.caption("No speech was heard in this take.")
        return
    latest = readings[-1]
    if playing and latest.prediction is None:
        st.info(f"No speech in the last {window:g} s. The last reading is shown below.")
    adaptation = app_ui.speaker_adaptation(bundle)
    show_reading(voiced[-1], bundle=bundle, now=playing and latest is voiced[-1], adaptation=adaptation)
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
    """The take's readings over time (adapted when calibrated); readings without speech are gaps,
    not lines across the pause."""
    def build() -> Any:
        shown = [adapted(reading, bundle=bundle, adaptation=adaptation) for reading in readings]
        return plots.timeline_figure(
            starts=np.array([reading.start_seconds for reading in shown]),
            ends=np.array([reading.end_seconds for reading in shown]),
            probabilities=np.array([[reading.prediction.probabilities[e] if reading.prediction else np.nan
                                     for e in bundle.emotions] for reading in shown]),
            emotions=bundle.emotions,
        )

    return cached_figure("history", readings=readings, adaptation=adaptation, build=build)


def meters() -> None:
    level_meter()
    emotion_meter()


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
