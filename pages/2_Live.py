"""Live page: stream the microphone over WebRTC; a meter shows the emotion of the last few seconds.

streamlit-webrtc delivers 20 ms frames on its own thread into a per-session
``ser.serving.live.LiveBuffer``; a fragment re-runs about once a second, scores the newest
``window_seconds`` of audio and redraws the meter. When the stream stops, the whole take
(up to ``TAKE_SECONDS``) can be analysed like an upload.

ICE servers default to none, which is what localhost and a LAN need and keeps the
component from contacting a public STUN server; a deployment behind NAT sets them in
``.streamlit/secrets.toml`` (``ice_servers``) or ``SER_ICE_SERVERS`` (see the README).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import streamlit as st
import streamlit_webrtc as webrtc

import app_ui
from ser.errors import NoSpeechError, SERError
from ser.reporting import plots
from ser.serving import live
from ser.serving.analysis import waveform_to_wav

#: Longest take kept for "analyse the whole take" (seconds): bounds memory per session.
TAKE_SECONDS = 120.0
#: Meter readings kept for the history chart.
HISTORY = 60

app_ui.page_setup("Live")
st.title("Live emotion meter")
bundle = app_ui.bundle_or_stop()
window = bundle.config.window_seconds


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
    replace them (AppTest cannot run the component).
    """
    sink = webrtc.create_audio_sink_track(buffer.push_frame, key="live-microphone")
    return webrtc.webrtc_streamer(
        key="live",
        mode=webrtc.WebRtcMode.SENDONLY,
        # Shorthand for both the browser and the server side; an explicit empty list stops
        # the component from filling in a public STUN server.
        rtc_configuration={"iceServers": ice_servers},
        media_stream_constraints={"audio": True, "video": False},
        sink_audio_track=sink,
        translations={"start": "Start listening", "stop": "Stop"},
    )


if "live_buffer" not in st.session_state:
    st.session_state["live_buffer"] = live.LiveBuffer(sample_rate=bundle.config.sample_rate, max_seconds=TAKE_SECONDS)
    st.session_state["live_history"] = []
buffer: live.LiveBuffer = st.session_state["live_buffer"]
history: list[tuple[float, dict[str, float] | None]] = st.session_state["live_history"]

st.markdown(
    f"Click **Start listening** and speak. Every second the meter scores the last {window:g} s of audio. "
    "Stop to analyse the whole take."
)
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
if playing and not st.session_state.get("live_was_playing"):
    buffer.clear()  # a new take starts
    history.clear()
    st.session_state.pop("live_take", None)
st.session_state["live_was_playing"] = playing


def meter() -> None:
    """Score the newest window and draw the meter (re-run every second while streaming)."""
    audio = buffer.latest(seconds=window)
    if audio.size < bundle.config.min_speech_seconds * bundle.config.sample_rate:
        st.info("Listening… waiting for audio." if playing else "Not streaming.")
        return
    try:
        prediction = bundle.predict_clip(audio, sample_rate=bundle.config.sample_rate)
    except NoSpeechError:
        st.info(f"Listening… no speech in the last {window:g} s.")
        if playing:
            history.append((buffer.seconds, None))
        return
    except SERError as error:  # e.g. a broken capture device sending absurd sample values
        st.error(f"The live audio cannot be scored: {error}")
        return
    if playing:
        history.append((buffer.seconds, prediction.probabilities))
        del history[:-HISTORY]
    label = prediction.emotion if prediction.sure else f"not sure (maybe {prediction.emotion})"
    st.markdown(
        f"<div style='font-size:1.6rem'>Now: <b style='color:{plots.emotion_color(prediction.emotion)}'>"
        f"{label}</b> · {prediction.confidence:.0%}</div>",
        unsafe_allow_html=True,  # the label comes from the bundle, not from the user
    )
    app_ui.chart(plots.probability_figure(probabilities=prediction.probabilities,
                                             threshold=bundle.confidence_threshold, height=260), key="live-meter")
    voiced = [(t, p) for t, p in history if p is not None]
    if len(voiced) >= 2:
        times = np.array([t for t, _ in voiced])
        app_ui.chart(
            plots.timeline_figure(starts=times - window, ends=times,
                                  probabilities=np.array([[p[e] for e in bundle.emotions] for _, p in voiced]),
                                  emotions=bundle.emotions),
            key="live-history",
        )
    st.caption(f"{buffer.seconds:.0f} s streamed · updated {time.strftime('%H:%M:%S')}")


st.fragment(run_every=1.0 if playing else None)(meter)()

if not playing and buffer.seconds > 0:
    st.subheader("The whole take")
    if st.button(f"Analyse the whole take ({min(buffer.seconds, TAKE_SECONDS):.0f} s)", key="analyse-take"):
        st.session_state["live_take"] = waveform_to_wav(buffer.take(), sample_rate=buffer.sample_rate)
    if "live_take" in st.session_state:
        app_ui.analyze_and_show(st.session_state["live_take"], name="live-take.wav", key="take")
