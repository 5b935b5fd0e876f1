"""Analyze page: upload one or more files, or record one, and see what the model hears.

Uploads and recordings go through the same function (``ser.serving.analysis.analyze_audio`` via
``app_ui.analyze``) and the same view (``app_ui.show_analysis``).
"""

from __future__ import annotations

import streamlit as st

import app_ui
from ser.errors import SERError
from ser.serving.analysis import results_table

app_ui.page_setup("Analyze")
st.title("Analyze a recording")
bundle = app_ui.bundle_or_stop()

upload_tab, record_tab = st.tabs(["Upload files", "Record"])

with upload_tab:
    files = st.file_uploader(
        "Audio files (WAV, FLAC, OGG, MP3, M4A or WebM; several at once give a results table)",
        type=app_ui.UPLOAD_TYPES,
        accept_multiple_files=True,
        key="uploads",
    )
    if files and len(files) == 1:
        app_ui.analyze_and_show(files[0].getvalue(), name=files[0].name, key="upload")
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
        if analyses:
            table = results_table(analyses)
            st.dataframe(table, hide_index=True, key="results-table")
            st.download_button("Download the table (CSV)", table.to_csv(index=False), file_name="emotions.csv",
                               mime="text/csv", key="results-csv")
        if failures:
            st.error(f"{len(failures)} file(s) could not be analysed:")
            st.dataframe(failures, hide_index=True)
        if analyses:
            names = [analysis.name for analysis in analyses]
            chosen = st.selectbox("Show one file in detail", range(len(names)), format_func=lambda i: names[i])
            app_ui.show_analysis(analyses[chosen], bundle=bundle, key="detail")

with record_tab:
    st.caption("Click the microphone, say a sentence, click stop. The browser asks for microphone access once.")
    recording = st.audio_input("Record a sentence", key="recorder")
    if recording is not None:
        app_ui.analyze_and_show(recording.getvalue(), name="recording.wav", key="record")
