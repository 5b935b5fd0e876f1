"""Calibrate to your voice: the panel on the Analyze and Live pages (UI only; the work is
:func:`ser.serving.speaker.calibrate_bundle`).

A person records or uploads a few seconds of their ordinary, calm speech once. The library turns
it into a :class:`~ser.serving.speaker.SpeakerAdaptation` (how neutral the model heard that voice,
and how much neutral is raised in every later answer), which is kept ONLY in ``st.session_state``
under ``app_ui.VOICE``: this browser session and this model. Nothing is written to disk and
nothing goes through ``st.cache_data`` (which every session shares); the reference audio itself
is not kept either, only a hash of the one last used, so re-running a page does not calibrate
again. Both pages show the same calibration, every answer of the session is adapted to it as it
is shown (``app_ui.for_speaker``, ``ser.serving.live.adapt_reading``) and **Forget my voice**
drops it and empties the recorder.

Used by the pages as ``adaptation = app_calibration.panel(bundle=bundle, key="analyze")``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

import app_ui
from ser.errors import NoSpeechError, SERError
from ser.serving.analysis import analyze_audio
from ser.serving.bundle import Bundle
from ser.serving.profile import VoiceProfile
from ser.serving.speaker import MIN_REFERENCE_SECONDS, NEUTRAL_FLOOR, SpeakerAdaptation, calibrate_bundle

#: Session keys: the hash of the reference each widget last gave (calibrated once, not on every
#: re-run), the last failed reference's hash and message, and a counter in the widgets' keys
#: (a new counter gives empty widgets after "Forget my voice").
USED = "voice-calibration-used"
PROBLEM = "voice-calibration-problem"
GENERATION = "voice-calibration-generation"
#: How much ordinary speech to ask for: the library needs at least MIN_REFERENCE_SECONDS of it.
ASK_SECONDS = "5 to 10"


def status(adaptation: SpeakerAdaptation) -> str:
    """The calibration in plain words: how much speech, how neutral it read, what changes."""
    text = (f"Calibrated to your voice: {adaptation.reference_seconds:.1f} s of speech; your ordinary voice read "
            f"{adaptation.reference_neutral:.0%} neutral before calibration")
    if adaptation.bias > 0:
        return text + (f". Every answer in this session now counts from it: neutral is raised until your ordinary "
                       f"voice reads {NEUTRAL_FLOOR:.0%} neutral, and the other emotions keep their order.")
    return text + ", neutral enough already: the answers do not change."


def reference_caveat(adaptation: SpeakerAdaptation) -> str | None:
    """What is wrong with the reference the session is calibrated to (short, or not an ordinary voice;
    :class:`ser.serving.reference.ReferenceVerdict`), with what to do; None when nothing is."""
    verdict = adaptation.verdict
    if verdict is None or verdict.fine:
        return None
    return f"Calibrated, but check your reference. {verdict.message} Record or upload another one to replace it."


def problem_in_words(error: SERError) -> str:
    """Why a reference cannot calibrate, and what to do about it."""
    message = str(error).rstrip(".")
    if isinstance(error, NoSpeechError):
        return (f"Not calibrated: {message}. Record {ASK_SECONDS} seconds of your ordinary voice (at least "
                f"{MIN_REFERENCE_SECONDS:g} s of speech): say a few sentences as you normally talk, close to the "
                "microphone.")
    return f"Not calibrated: {message}. Record again, or upload a recording in another format."


def calibrate(data: bytes, *, name: str, bundle: Bundle) -> str | None:
    """Calibrate this session to ``data``, a recording of the speaker's ordinary voice.

    Returns
    -------
    str or None
        Why it could not (an earlier calibration is then kept); None when calibrated.
    """
    try:
        with st.spinner("Listening to your ordinary voice…"):
            adaptation = calibrate_bundle(bundle, references=[data], names=[name])
            # Its cues (pitch, loudness, rate, voice quality) become what "why" compares with.
            cues = analyze_audio(data, name=name, bundle=bundle).cues
    except SERError as error:
        return problem_in_words(error)
    st.session_state.setdefault(app_ui.VOICE, {})[str(bundle.path)] = adaptation
    if cues is not None:
        st.session_state.setdefault(app_ui.VOICE_CUES, {})[str(bundle.path)] = cues
    else:
        st.session_state.get(app_ui.VOICE_CUES, {}).pop(str(bundle.path), None)
    return None


def forget(bundle_path: str) -> None:
    """Drop the session's calibration for the bundle and empty the panels' widgets (a button callback)."""
    st.session_state.get(app_ui.VOICE, {}).pop(bundle_path, None)
    st.session_state.get(app_ui.VOICE_CUES, {}).pop(bundle_path, None)
    for key in (USED, PROBLEM):
        st.session_state.pop(key, None)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1


def _use(widget: str, value: Any, *, name: str, bundle: Bundle) -> None:
    """Calibrate to a widget's recording the first time it holds it; show why it failed while it does."""
    data = value.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    used = st.session_state.setdefault(USED, {})
    if used.get(widget) != digest:
        used[widget] = digest
        problem = calibrate(data, name=name, bundle=bundle)
        if problem is None:
            st.session_state.pop(PROBLEM, None)
        else:
            st.session_state[PROBLEM] = (digest, problem)
    failed = st.session_state.get(PROBLEM)
    if failed is not None and failed[0] == digest:
        st.error(failed[1] + (" Your earlier calibration is kept." if app_ui.speaker_adaptation(bundle) else ""))


def panel(*, bundle: Bundle, key: str) -> SpeakerAdaptation | None:
    """The "Calibrate to your voice" panel and, when calibrated, its status and "Forget my voice".

    Parameters
    ----------
    bundle : Bundle
        The model the calibration is for.
    key : str
        Unique per page (widget keys).

    Returns
    -------
    SpeakerAdaptation or None
        The session's calibration after this run, as ``app_ui.speaker_adaptation`` gives it.
    """
    generation = st.session_state.get(GENERATION, 0)
    with st.expander("Calibrate to your voice"):
        st.markdown(
            "The model learnt from actors in a studio, and may hear an ordinary voice as afraid or sad. "
            f"Record or upload {ASK_SECONDS} seconds of **your ordinary, calm speech**, a few sentences said as "
            "you normally talk, and every answer in this browser session is read relative to it. It is kept "
            "only in this session, never saved, and forgotten when you close the tab or click **Forget my voice**."
        )
        # Not "Record": the page's own tab and button are found by that name (tests/e2e).
        record, upload = st.tabs(["Microphone", "Upload a file"])
        with record:
            recording = st.audio_input("Your ordinary voice", key=f"{key}-voice-recorder-{generation}")
        with upload:
            file = st.file_uploader("A recording of your ordinary voice", type=app_ui.UPLOAD_TYPES,
                                    key=f"{key}-voice-upload-{generation}")
        for widget, value, name in ((f"{key}-recorder", recording, "your recording"),
                                    (f"{key}-upload", file, "the uploaded file")):
            if value is not None:
                _use(widget, value, name=name, bundle=bundle)
    adaptation = app_ui.speaker_adaptation(bundle)
    if adaptation is not None and not isinstance(adaptation, VoiceProfile):  # a profile's own panel shows it
        words, button = st.columns([5, 1], vertical_alignment="center")
        words.success(status(adaptation))
        button.button("Forget my voice", key=f"{key}-forget-voice", on_click=forget, args=(str(bundle.path),))
        if (caveat := reference_caveat(adaptation)) is not None:
            st.warning(caveat)
    return adaptation
