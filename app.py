"""The Streamlit entry point: the navigation, and the Home page (what the app does, how to use
it, one-click examples, the headline result on unseen speakers and which voices the model knows).

Run with ``streamlit run app.py``; the other pages are the scripts in ``pages/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import app_ui
from ser.reporting import plots
from ser.reporting.results import TrainingResults, load_training
from ser.reporting.schema import ResultsError
from ser.reporting.summary import percent, voices_sentence


@st.cache_data(show_spinner=False)
def _read_training(path: str, modified: int) -> TrainingResults | str:
    try:
        return load_training(Path(path))  # ``modified`` is only part of the cache key: a new file is re-read
    except ResultsError as error:
        return f"The evaluation result cannot be shown: {error}"


def _training(path: Path) -> TrainingResults | str:
    """The bundle's ``metrics.json``, or why there is no result to show."""
    if not path.is_file():
        return "This model bundle has no metrics.json, so no evaluation result can be shown."
    return _read_training(str(path), path.stat().st_mtime_ns)


def home() -> None:
    """The Home page."""
    app_ui.page_setup("Home")
    st.title("Speech emotion recognition")
    st.markdown(
        "Listen to a voice and say which of eight emotions it expresses. Upload a file or record in "
        "the browser on **Analyze**, stream your microphone on **Live**, and see how well the model does on "
        "voices it never heard on **Model**."
    )

    bundle = app_ui.bundle_or_stop()
    chips = " ".join(
        f"<span style='background:{plots.emotion_color(label)};color:white;padding:2px 10px;"
        f"border-radius:10px;margin-right:4px'>{label}</span>"
        for label in bundle.emotions
    )
    # unsafe_allow_html for the coloured chips: the labels come from the bundle, not from users.
    st.markdown(f"**The {len(bundle.emotions)} emotions:** {chips}", unsafe_allow_html=True)

    training = _training(app_ui.model_dir() / "metrics.json")
    if isinstance(training, TrainingResults):
        headline = training.headline
        st.subheader("Result on speakers the model never heard")
        columns = st.columns(3)
        columns[0].metric("accuracy", percent(headline.accuracy), help="The share of clips whose emotion it names "
                          "right, each clip scored by a model that never heard its speaker.")
        columns[1].metric("unweighted average recall", percent(headline.uar),
                          help="Each emotion's share of clips recognised, averaged: every emotion counts the same.")
        columns[2].metric("chance", percent(1 / len(training.labels)),
                          help=f"Guessing among {len(training.labels)} emotions.")
        st.markdown(voices_sentence(training))
        st.caption(f"Protocol: {headline.protocol}. Details on the Model page.")
    else:
        st.info(training)

    st.subheader("How to use it")
    st.markdown(
        f"""
    1. **Analyze** — upload one or several files (WAV, FLAC, OGG, MP3, M4A, WebM) or record a sentence.
       You get the waveform, the log-mel spectrogram, the probability of every emotion, the answer of each
       segment of a long recording, and why: the cues the model hears (pitch, loudness, speaking rate, voice
       quality) in words. Results download as JSON, CSV or a one-file report to share.
    2. **Live** — stream the microphone; a meter shows the emotion of the last few seconds, about once a second.
    3. **Model** — how well it works, in plain words first: which emotions it mixes up, each emotion and
       voice, noisy and phone audio, then the detail for specialists.
    4. **Dataset** — what the training data looks like and sounds like.
    5. **Compare** — any two analyses of this session side by side.

    The answer is "not sure" when the model's calibrated confidence is below
    {percent(bundle.confidence_threshold)}. Speak one sentence, close to the microphone; acted emotions
    (as in the training data) are easier than everyday speech. If it hears your ordinary voice as afraid or
    sad, open **Calibrate to your voice** on Analyze or Live and record a few seconds of your normal speech once:
    every answer in your session is then read relative to it (kept only in the session, never saved).
    """
    )

    st.subheader("Try an example")
    st.caption(
        "RAVDESS clips of the sentence “Kids are talking by the door” by actor 03 (male) and actor 12 (female). "
        "These actors were in the training data, so the examples show how the app works, not how well it "
        "generalises. Livingstone & Russo (2018), The Ryerson Audio-Visual Database of Emotional Speech and Song "
        "(RAVDESS), PLoS ONE 13(5): e0196391, CC BY-NC-SA 4.0."
    )
    clips = app_ui.example_clips()
    columns = st.columns(4)
    tapped = False
    for index, (path, label) in enumerate(clips):
        if columns[index % 4].button(label, key=f"example-{path.stem}", width="stretch"):
            st.session_state["home_example"] = str(path)
            tapped = True
    chosen = st.session_state.get("home_example")
    if chosen:
        path = next((p for p, _ in clips if str(p) == chosen), None)
        if path is not None:
            # On a phone the 16 buttons stack, so the result lands far below the tapped one: the page
            # scrolls to it as soon as the tap's run starts, where the progress bar then shows, and
            # again once the result is drawn (the first scroll stops where the page then ended).
            with st.container(key=app_ui.HOME_RESULT):
                if tapped:
                    app_ui.scroll_into_view(app_ui.HOME_RESULT)
                app_ui.analyze_and_show(path.read_bytes(), name=path.name, key="home")
                if tapped:
                    app_ui.scroll_into_view(app_ui.HOME_RESULT)


#: The app's own favicon. Set before the navigation: with no favicon of its own, Streamlit makes the
#: page's Material icon the tab's favicon and fetches it from Google's servers, and the app must
#: need no outside host.
FAVICON = Path(__file__).resolve().parent / "assets" / "favicon.png"
st.set_page_config(page_icon=FAVICON)

# Material Symbols icons: Streamlit serves their font itself (static/media), so they draw offline and
# on machines without an emoji font, where emoji icons drew as empty boxes.
navigation = st.navigation(
    [
        st.Page(home, title="Home", icon=":material/home:", default=True),
        st.Page("pages/1_Analyze.py", title="Analyze", icon=":material/search:", url_path="Analyze"),
        st.Page("pages/2_Live.py", title="Live", icon=":material/mic:", url_path="Live"),
        st.Page("pages/3_Model.py", title="Model", icon=":material/bar_chart:", url_path="Model"),
        st.Page("pages/4_Dataset.py", title="Dataset", icon=":material/library_music:", url_path="Dataset"),
        st.Page("pages/5_Compare.py", title="Compare", icon=":material/compare_arrows:", url_path="Compare"),
    ]
)
navigation.run()
