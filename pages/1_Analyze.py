"""Analyze page: upload one or more files, or record one, and see what the model hears.

Uploads and recordings go through the same function (``ser.serving.analysis.analyze_audio`` via
``app_ui.analyze``) and the same view (``app_ui.show_analysis``). Analyses are kept in the
session: choosing a file of a batch never re-scores, and the last result is still shown after
visiting another page (the uploader itself forgets its files then). The "Calibrate to your voice"
panel (``app_calibration``) adapts every answer of the session to the speaker's ordinary voice; "Teach it
your voice" (``app_profile``) learns how the speaker sounds in each emotion.
"""

from __future__ import annotations

import streamlit as st

import app_calibration
import app_profile
import app_ui
import app_why
from ser.errors import SERError
from ser.serving.analysis import segments_table
from ser.serving.words import results_table

app_ui.page_setup("Analyze")
st.title("Analyze a recording")
bundle = app_ui.bundle_or_stop()
if voices := app_why.known_voices():
    st.caption(voices)
app_calibration.panel(bundle=bundle, key="analyze")
app_profile.panel(bundle=bundle, key="analyze")
#: Keys (app_ui.analysis_key) of what this page showed last, so it is shown again after navigating.
LAST = "analyze-last"


def show_batch(analyses: list, failures: list[dict[str, str]]) -> None:
    if analyses:
        st.dataframe(results_table(analyses), hide_index=True, width="stretch", key="results-table")
        st.download_button("Download every segment (CSV)", segments_table(analyses).to_csv(index=False),
                           file_name="emotions.csv", mime="text/csv", key="results-csv")
    if failures:
        st.error(f"{len(failures)} file(s) could not be analysed:")
        st.dataframe(failures, hide_index=True, width="stretch")
    if analyses:
        names = [analysis.name for analysis in analyses]
        chosen = st.selectbox("Show one file in detail", range(len(names)), format_func=lambda i: names[i])
        app_ui.show_analysis(analyses[chosen], bundle=bundle, key="detail")


upload_tab, record_tab = st.tabs(["Upload files", "Record"])

with upload_tab:
    files = st.file_uploader(
        "Audio files (WAV, FLAC, OGG, MP3, M4A or WebM; several at once give a results table)",
        type=app_ui.UPLOAD_TYPES,
        accept_multiple_files=True,
        key="uploads",
    )
    if files and len(files) == 1:
        data, name = files[0].getvalue(), files[0].name
        # Remembered before the view is drawn, so leaving the page mid-draw still keeps it.
        app_ui.analyze_and_show(data, name=name, key="upload", on_analysed=lambda _: st.session_state.update(
            {LAST: [app_ui.analysis_key(data, name)]}))
    elif files:
        analyses, failures = [], []
        progress = st.progress(0.0, text="Analysing…")
        for index, file in enumerate(files, start=1):
            try:
                analyses.append(app_ui.analyze(file.getvalue(), file.name))
            except SERError as error:
                failures.append({"file": file.name, "problem": str(error)})
            progress.progress(index / len(files), text=f"Analysed {index} of {len(files)}")
        progress.empty()
        st.session_state[LAST] = [app_ui.analysis_key(file.getvalue(), file.name) for file in files]
        show_batch(analyses, failures)
    elif kept := app_ui.kept_analyses(st.session_state.get(LAST, [])):
        st.caption("Your last analysis in this session (upload a file to analyse another):")
        if len(kept) == 1:
            app_ui.show_analysis(kept[0], bundle=bundle, key="upload")
        else:
            show_batch(kept, [])

with record_tab:
    st.caption("Click the microphone, say a sentence, click stop. The browser asks for microphone access once.")
    recording = st.audio_input("Record a sentence", key="recorder")
    if recording is not None:
        app_ui.analyze_and_show(recording.getvalue(), name="recording.wav", key="record")
