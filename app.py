"""The Streamlit entry point: the navigation, and the Home page (what the app does, how to use
it, one-click examples, the headline result on unseen speakers).

Run with ``streamlit run app.py``; the other pages are the scripts in ``pages/``.
"""

from __future__ import annotations

import streamlit as st

import app_ui
from ser.reporting import plots


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

    metrics = app_ui.get_metrics()
    if metrics and "headline" in metrics:
        headline = metrics["headline"]
        st.subheader("Result on speakers the model never heard")
        columns = st.columns(3)
        columns[0].metric("accuracy", f"{headline['accuracy']:.1%}",
                          help=f"chance is {1 / len(bundle.emotions):.1%} ({len(bundle.emotions)} classes)")
        columns[1].metric("unweighted average recall", f"{headline['uar']:.1%}", help="mean of per-class recalls")
        columns[2].metric("macro F1", f"{headline['macro_f1']:.1%}")
        st.caption(f"Protocol: {headline['protocol']}. Details on the Model page.")
    else:
        st.info("This model bundle has no metrics.json, so no evaluation result can be shown.")

    st.subheader("How to use it")
    st.markdown(
        f"""
    1. **Analyze** — upload one or several files (WAV, FLAC, OGG, MP3, M4A, WebM) or record a sentence.
       You get the waveform, the log-mel spectrogram, the probability of every emotion and, for clips
       longer than {bundle.config.window_seconds:g} s, an emotion timeline. Results download as JSON or CSV.
    2. **Live** — stream the microphone; a meter shows the emotion of the last few seconds, about once a second.
    3. **Model** — the model's report card: confusion matrix, per-class scores, learning curves, accuracy
       per speaker and the comparison with simple baselines.
    4. **Dataset** — what the training data looks like and sounds like.

    The answer is "not sure" when the model's calibrated confidence is below
    {bundle.confidence_threshold:.0%}. Speak one sentence, close to the microphone; acted emotions
    (as in the training data) are easier than everyday speech.
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
    for index, (path, label) in enumerate(clips):
        if columns[index % 4].button(label, key=f"example-{path.stem}", width="stretch"):
            st.session_state["home_example"] = str(path)
    chosen = st.session_state.get("home_example")
    if chosen:
        path = next((p for p, _ in clips if str(p) == chosen), None)
        if path is not None:
            app_ui.analyze_and_show(path.read_bytes(), name=path.name, key="home")


navigation = st.navigation(
    [
        st.Page(home, title="Home", icon="🏠", default=True),
        st.Page("pages/1_Analyze.py", title="Analyze", icon="🔍", url_path="Analyze"),
        st.Page("pages/2_Live.py", title="Live", icon="🎙️", url_path="Live"),
        st.Page("pages/3_Model.py", title="Model", icon="📊", url_path="Model"),
        st.Page("pages/4_Dataset.py", title="Dataset", icon="📚", url_path="Dataset"),
    ]
)
navigation.run()
