"""Dataset page: what RAVDESS looks like — one sentence in every emotion, male vs female, and the class counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

import app_ui
from ser.reporting import plots, report_plots
from ser.serving.audio import decode_audio
from ser.serving.features import log_mel_spectrogram
from ser.training.data import parse_ravdess_name

app_ui.page_setup("Dataset")
st.title("The data: RAVDESS")
st.markdown(
    "The Ryerson Audio-Visual Database of Emotional Speech and Song: 24 professional actors (12 male, 12 "
    "female) say two sentences in eight emotions, at normal and strong intensity. The model is trained and "
    "cross-validated on the actors listed on the Model page."
)
bundle = app_ui.bundle_or_stop()


def voice_key(path: Path) -> tuple[str, str]:
    """(emotion, "female · actor 12") of an example clip."""
    item = parse_ravdess_name(path)
    return item.emotion, f"{item.gender} · actor {item.actor:02d}"


@st.cache_data(show_spinner=False)
def example_spectrograms() -> dict[tuple[str, str], np.ndarray]:
    """Log-mel spectrogram of every example clip, keyed by :func:`voice_key`; each (frames, n_mels)."""
    return {
        voice_key(path): log_mel_spectrogram(decode_audio(path, sample_rate=bundle.config.sample_rate),
                                             config=bundle.config)
        for path, _ in app_ui.example_clips()
    }


st.header("One sentence, eight emotions")
st.caption("“Kids are talking by the door”, from the example clips (16 kHz, same log-mel features the model "
           "sees, in dB). Compare the pitch harmonics, loudness and tempo across emotions and between voices.")
spectrograms = example_spectrograms()
if spectrograms:
    voices = sorted({column for _, column in spectrograms})
    emotions = [label for label in bundle.emotions if any(row == label for row, _ in spectrograms)]
    chosen = st.multiselect("Emotions", emotions, default=emotions, key="dataset-emotions")
    if chosen:
        app_ui.chart(
            plots.spectrogram_grid_figure(spectrograms=spectrograms, rows=chosen, columns=voices,
                                          config=bundle.config),
            key="spectrogram-grid",
        )
    listen = st.selectbox("Listen to", sorted(spectrograms), format_func=lambda key: f"{key[0]} · {key[1]}",
                          key="dataset-listen")
    paths = {voice_key(path): path for path, _ in app_ui.example_clips()}
    st.audio(paths[listen].read_bytes(), format="audio/flac")
else:
    st.info("No example clips in assets/examples/.")

st.header("Class counts")
metrics = app_ui.get_metrics() or {}
data = metrics.get("data", {})
counts = {name: data[key] for name, key in (("speech", "speech_per_emotion"), ("song", "song_per_emotion"))
          if data.get(key)}
if counts:
    app_ui.chart(report_plots.class_distribution_figure(counts=counts), key="dataset-counts")
    st.caption("Clips the model was trained and cross-validated on. Neutral exists at normal intensity only, so "
               "it has half the clips; the sung clips have no disgust or surprised. Accuracy is therefore "
               "reported with unweighted average recall too.")
else:
    st.info("The bundle's metrics.json has no data counts.")
st.caption("Licence: CC BY-NC-SA 4.0. Livingstone SR, Russo FA (2018), PLoS ONE 13(5): e0196391. "
           "https://doi.org/10.1371/journal.pone.0196391")
