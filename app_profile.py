"""Teach it your voice: the guided voice-profile panel on the Analyze and Live pages (UI only; the work is
:func:`ser.serving.enrolment.enrol` and :mod:`ser.serving.profile`).

The person says one sentence several ways: neutrally, then angry, happy and sad (the other emotions
optional), each with the browser's recorder (record again to retake), and every take gets a level
check. **Build my profile** turns the takes into a :class:`~ser.serving.profile.VoiceProfile` kept ONLY
in ``st.session_state`` under ``app_ui.VOICE`` (where a plain calibration would be; one replaces the
other): nothing is written to the server's disk, the takes themselves are not kept, and every later
answer of the session is read relative to the profile, with the generic answer beside it. The profile
can be downloaded (a JSON file of numbers), uploaded again in a later session, and forgotten with the
calibration panel's **Forget my voice**.

Used by the pages as ``app_profile.panel(bundle=bundle, key="analyze")``.
"""

from __future__ import annotations

import hashlib

import streamlit as st

import app_calibration
import app_ui
from ser.errors import SERError
from ser.serving.audio import decode_audio
from ser.serving.bundle import Bundle
from ser.serving.enrolment import EnrolmentItem, TakeCheck, check_take, enrol, load_profile
from ser.serving.profile import VoiceProfile

#: The sentence every take repeats: ordinary words with no emotion of their own, so only the voice changes.
SENTENCE = "I looked at the clock, and it was already seven."
#: The guided steps: (emotion, how to say it). Neutral first: the profile needs it.
STEPS = (("neutral", "as you normally talk"), ("angry", "angrily, as if it made you furious"),
         ("happy", "happily, as if it were great news"), ("sad", "sadly, as if it were bad news"))
#: Offered under "More emotions".
OPTIONAL_STEPS = (("calm", "calmly, slowly and relaxed"), ("fearful", "fearfully, as if something were wrong"),
                  ("surprised", "surprised, as if you could not believe it"),
                  ("disgust", "with disgust, as if it were revolting"))
#: Session keys: a counter in the recorders' keys (a new one empties them) and the last upload's hash.
GENERATION = "voice-profile-generation"
UPLOADED = "voice-profile-uploaded"


def current(bundle: Bundle) -> VoiceProfile | None:
    """The session's voice profile for ``bundle``; None when it has none (or only a plain calibration)."""
    adaptation = app_ui.speaker_adaptation(bundle)
    return adaptation if isinstance(adaptation, VoiceProfile) else None


def status(profile: VoiceProfile) -> str:
    """The profile in plain words: which emotions, how much speech, what it changes."""
    counts = ", ".join(f"{emotion} ({entry.clips})" if entry.clips > 1 else emotion
                       for emotion, entry in profile.enrolled.items())
    what = ("the emotions you recorded are read from your own voice; the others from the model as it is"
            if profile.corrects else "only neutral was recorded, so it works as a calibration")
    return f"Answers use your voice profile: {counts}, {profile.seconds:.0f} s of speech; {what}."


def _take(emotion: str, how: str, *, key: str, bundle: Bundle) -> tuple[bytes, TakeCheck] | None:
    """One step: the recorder, and the take's level check under it."""
    recording = st.audio_input(f"{emotion.capitalize()}: say it {how}", key=key)
    if recording is None:
        return None
    data = recording.getvalue()
    try:
        waveform = decode_audio(data, sample_rate=bundle.config.sample_rate, name=f"the {emotion} take")
        check = check_take(waveform, sample_rate=bundle.config.sample_rate, bundle=bundle)
    except SERError as error:
        st.warning(f"{emotion.capitalize()}: {error}. Record it again.")
        return None
    if check.problem is not None:
        st.warning(f"{emotion.capitalize()}: {check.problem}.")
        return None
    st.caption(f"{emotion.capitalize()}: {check.speech_seconds:.1f} s of speech, level fine. "
               "Record again to retake it.")
    return data, check


def _build(takes: dict[str, bytes], *, bundle: Bundle) -> None:
    try:
        with st.spinner("Learning your voice…"):
            profile = enrol(bundle, [EnrolmentItem(emotion=emotion, source=data, name=f"your {emotion} take")
                                     for emotion, data in takes.items()])
    except SERError as error:
        st.error(f"No profile yet: {error}")
        return
    st.session_state.setdefault(app_ui.VOICE, {})[str(bundle.path)] = profile
    st.session_state.get(app_ui.VOICE_CUES, {}).pop(str(bundle.path), None)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1  # empty recorders for next time
    st.rerun()


def _upload(bundle: Bundle, *, key: str) -> None:
    file = st.file_uploader("Or load a profile you downloaded earlier (JSON)", type=["json"], key=f"{key}-upload")
    if file is None:
        return
    data = file.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    if st.session_state.get(UPLOADED) == digest:
        return
    try:
        profile = load_profile(bundle, data)
    except SERError as error:
        st.error(f"Not loaded: {error}")
        return
    st.session_state[UPLOADED] = digest
    st.session_state.setdefault(app_ui.VOICE, {})[str(bundle.path)] = profile
    st.rerun()


def _forget(bundle_path: str) -> None:
    """Drop the profile (and any calibration) and empty the recorders (a button callback)."""
    app_calibration.forget(bundle_path)
    st.session_state.pop(UPLOADED, None)
    st.session_state[GENERATION] = st.session_state.get(GENERATION, 0) + 1


def panel(*, bundle: Bundle, key: str) -> VoiceProfile | None:
    """The "Teach it your voice" panel; returns the session's profile after this run (None without one).

    Parameters
    ----------
    bundle : Bundle
        The model the profile is for.
    key : str
        Unique per page (widget keys).
    """
    generation = st.session_state.get(GENERATION, 0)
    profile = current(bundle)
    with st.expander("Teach it your voice (about 30 seconds)", expanded=False):
        st.markdown(
            "Say one sentence a few ways and the model learns how **you** sound: a voice it never heard is "
            "read far better once it has heard it neutral, angry, happy and sad. Record each take with the "
            "microphone (record again to retake it). The takes are used once and never stored; the profile "
            "is kept only in this browser session, and you can download it to bring back later.")
        st.markdown(f"> **{SENTENCE}**")
        takes: dict[str, bytes] = {}
        for emotion, how in STEPS:
            taken = _take(emotion, how, key=f"{key}-profile-{emotion}-{generation}", bundle=bundle)
            if taken is not None:
                takes[emotion] = taken[0]
        with st.popover("More emotions (optional)"):
            for emotion, how in OPTIONAL_STEPS:
                taken = _take(emotion, how, key=f"{key}-profile-{emotion}-{generation}", bundle=bundle)
                if taken is not None:
                    takes[emotion] = taken[0]
        ready = "neutral" in takes
        label = f"Build my profile from {len(takes)} take(s)" if takes else "Build my profile"
        if st.button(label, key=f"{key}-profile-build", disabled=not ready,
                     help=None if ready else "Record the neutral take first: the profile needs your ordinary voice"):
            _build(takes, bundle=bundle)
        _upload(bundle, key=f"{key}-profile-{generation}")
    if profile is not None:
        st.success(status(profile))
        download, forget, _ = st.columns([2, 2, 3])
        download.download_button("Download my profile", profile.to_json(), file_name="voice-profile.json",
                                 mime="application/json", key=f"{key}-profile-download")
        forget.button("Forget my voice", key=f"{key}-forget-profile", on_click=_forget, args=(str(bundle.path),))
        for warning in profile.warnings:
            st.warning(f"While learning your voice: {warning}.")
    return profile
