"""Model page: the report card, read from the bundle's result files (nothing is recomputed here).

``ser.reporting.model_results.load_model_results`` reads ``metrics.json`` (train), and
``evaluation.json``, ``robustness.json``, ``seed_check.json`` when present and measured on this
``model.keras``; a section whose file is absent is explained instead.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

import app_ui
from ser.reporting import report_plots
from ser.reporting.model_card import CONDITION_NAMES, VIEW_NAMES
from ser.reporting.model_results import ModelResults, load_model_results
from ser.reporting.schema import ResultsError


@st.cache_data(show_spinner=False)
def _load(folder: str, stamps: tuple[tuple[str, int], ...]) -> ModelResults:
    return load_model_results(folder, bench=None)  # ``stamps`` is only part of the cache key


def _results(folder: Path) -> ModelResults:
    """The bundle's results, read again when any file of the folder changes."""
    stamps = tuple((path.name, path.stat().st_mtime_ns) for path in sorted(folder.iterdir()) if path.is_file())
    return _load(str(folder), stamps)


app_ui.page_setup("Model")
st.title("The model's report card")

folder = app_ui.model_dir()
if not (folder / "metrics.json").is_file():
    st.error(f"No metrics.json in {folder}; run `python -m ser train` to write it.")
    st.stop()
try:
    results = _results(folder)
except ResultsError as error:
    st.error(str(error))
    st.stop()
training = results.training
headline = training.headline
cv = training.cross_validation
labels = training.labels
chance = 1 / len(labels) if labels else None
for note in results.notes:
    st.info(note)

columns = st.columns(4)
columns[0].metric("accuracy", f"{headline.accuracy:.1%}")
columns[1].metric("unweighted average recall", f"{headline.uar:.1%}")
columns[2].metric("macro F1", f"{headline.macro_f1:.1%}")
if chance:
    columns[3].metric("chance", f"{chance:.1%}", help=f"{len(labels)} classes")
st.markdown(f"**Protocol.** {cv.protocol}")
st.caption(f"Reproduce with `{training.command}`.")

st.header("Confusion matrix")
matrix = cv.confusion_matrix
view = st.segmented_control("Show", ["counts", "row-normalised"], default="counts", key="cm-view")
app_ui.chart(
    report_plots.confusion_matrix_figure(labels=matrix.labels, counts=matrix.counts,
                                         normalize=view == "row-normalised"),
    key="confusion-matrix",
)
st.caption("Rows are the true emotion, columns the prediction; every clip is scored by the fold model "
           "that never heard its speaker. Row-normalised, the diagonal is each class's recall.")

st.header("Classification report")
report = pd.DataFrame({name: dataclasses.asdict(row) for name, row in cv.per_class.items()}).T
report = report.reset_index(names="emotion")
report["support"] = report["support"].astype(int)
st.dataframe(report, hide_index=True, key="report",
             column_config=dict.fromkeys(("precision", "recall", "f1"), st.column_config.NumberColumn(format="%.2f")))
st.caption(f"Auxiliary heads on the same unseen speakers: gender accuracy {cv.gender_accuracy:.1%}, "
           f"intensity accuracy {cv.intensity_accuracy:.1%}.")

views = cv.views
if views:
    st.header("Several views of the voice")
    st.markdown(
        "The model hears each clip through several views: a **CNN over the log-mel spectrogram** (what you "
        f"see on the Analyze page), a **linear model over {training.training.recipe.n_functionals} openSMILE "
        "acoustic functionals** (pitch, loudness, voice quality and spectral statistics of the whole clip)"
        + (", and a **second linear model on only their voice-source part** (pitch, jitter, shimmer, "
           "harmonics-to-noise ratio)" if "voicing" in views else "")
        + ". Their probabilities are fused as a normalised geometric mean (a class one view confidently "
        "rules out stays unlikely). Each view alone, and all fused, on the same unseen speakers:"
    )
    st.dataframe(
        pd.DataFrame([{"view": VIEW_NAMES.get(name, name), **dataclasses.asdict(row)} for name, row in views.items()]),
        hide_index=True,
        key="views",
        column_config=dict.fromkeys(("accuracy", "uar", "macro_f1"), st.column_config.NumberColumn(format="percent")),
    )

st.header("Comparison with baselines")
st.markdown(
    "A **random split** puts clips of the same actor in both training and test data, so a model can "
    "recognise the *voice* instead of the emotion and looks better than it is. The figures the app reports "
    "are **grouped by actor** (test speakers never heard). The leaky figures are shown only to make that "
    "gap visible."
)
evaluation = results.evaluation
leaky = evaluation.leaky_random_split if evaluation else None
rows = [{"model": "this model (log-mel CNN + functionals)" if views else "this model (CNN on log-mel)",
         "accuracy (unseen speakers)": headline.accuracy, "UAR (unseen speakers)": headline.uar,
         "accuracy (leaky random split)": leaky.accuracy if leaky else None,
         "UAR (leaky random split)": leaky.uar if leaky else None, "description": "the shipped model"}]
for baseline in evaluation.baselines if evaluation else []:
    rows.append({"model": baseline.name, "accuracy (unseen speakers)": baseline.accuracy,
                 "UAR (unseen speakers)": baseline.uar, "accuracy (leaky random split)": baseline.leaky_accuracy,
                 "UAR (leaky random split)": baseline.leaky_uar, "description": baseline.description})
percent = st.column_config.NumberColumn(format="percent")
figures = [name for name in rows[0] if name not in ("model", "description")]
st.dataframe(pd.DataFrame(rows), hide_index=True, key="comparison", column_config=dict.fromkeys(figures, percent))
if not (evaluation and evaluation.baselines):
    st.info("No baselines for this model yet; `python -m ser evaluate --baselines` writes them to evaluation.json.")
if leaky:
    st.caption(f"Leaky protocol: {leaky.protocol}.")

st.header("Learning curves")
curves = [{"fold": curve.fold, **curve.history} for curve in cv.curves]
if curves:
    choices = {"emotion accuracy": "emotion_accuracy", "emotion loss": "emotion_loss", "total loss": "loss"}
    available = [name for name, key in choices.items() if any(key in curve for curve in curves)]
    metric = st.segmented_control("Metric", available, default=available[0], key="curve-metric") or available[0]
    app_ui.chart(report_plots.learning_curves_figure(curves=curves, metric=choices[metric]), key="curves")
    st.caption("Solid: training batches (augmented); dashed: the fold's validation speakers.")
    st.dataframe(pd.DataFrame([dataclasses.asdict(fold) for fold in cv.per_fold]), hide_index=True, key="folds")
else:
    st.info("metrics.json has no learning curves.")

st.header("Accuracy per actor")
app_ui.chart(report_plots.per_actor_figure(per_actor=[dataclasses.asdict(row) for row in cv.per_actor], chance=chance),
             key="per-actor")
spread = cv.per_actor_spread
st.caption(f"Each actor's clips scored by the model that never heard them. Range "
           f"{spread.min:.0%}–{spread.max:.0%}, standard deviation {spread.std:.1%}.")

robustness = results.robustness
if robustness:
    st.header("Off the studio")
    st.markdown(
        "RAVDESS was recorded in a studio; your microphone is not. Every clip corrupted (noise, a reverberant "
        "room, a telephone line, codecs, a thin laptop microphone), then scored the way this app scores an "
        "upload, each by the fold models that never heard that speaker. *Seen in training*: the linear views "
        "learn from noisy, sometimes reverberant copies of each clip; the other conditions were never trained for."
    )
    st.dataframe(
        pd.DataFrame([{"condition": CONDITION_NAMES.get(name, name), "seen in training": row.seen_in_training,
                       "accuracy": row.accuracy, "UAR": row.uar, "refused (no speech)": row.refused,
                       "same answer as clean": row.same_answer_as_clean / robustness.clips}
                      for name, row in robustness.conditions.items()]),
        hide_index=True,
        key="robustness",
        column_config=dict.fromkeys(("accuracy", "UAR", "same answer as clean"),
                                    st.column_config.NumberColumn(format="percent")),
    )
    st.caption(f"{robustness.clips} clips; refusals count as errors. Reproduce: `{robustness.command}`.")

calibration = cv.calibration
st.header("Calibration")
left, right = st.columns([3, 2])
with left:
    app_ui.chart(report_plots.reliability_figure(before=dataclasses.asdict(calibration.reliability_before),
                                          after=dataclasses.asdict(calibration.reliability_after)), key="reliability")
right.markdown(
    f"Temperature **{calibration.temperature:.2f}**, fitted on validation speakers.  \n"
    f"Expected calibration error ({len(calibration.reliability_before.confidence)} bins): "
    f"{calibration.ece_15_bins_before:.3f} before, {calibration.ece_15_bins_after:.3f} after.  \n"
    f"The app says *not sure* below **{calibration.confidence_threshold:.0%}** confidence "
    f"({calibration.threshold_rule})."
)

st.header("Training data")
data = training.data
counts = {name: per_emotion for name, per_emotion in (("speech", data.speech_per_emotion),
                                                      ("song", data.song_per_emotion)) if per_emotion}
app_ui.chart(report_plots.class_distribution_figure(counts=counts), key="class-distribution")
st.caption(f"{data.speech_clips} speech and {data.song_clips} song clips from {len(data.actors)} actors. Neutral is "
           "recorded at one intensity only (half as many clips), and RAVDESS songs have no disgust or surprised.")
with st.expander("Training settings and versions"):
    st.json({"training": dataclasses.asdict(training.training), "versions": training.versions}, expanded=False)
