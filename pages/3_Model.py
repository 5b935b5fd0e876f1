"""Model page: the report card, read from ``models/metrics.json`` only (nothing is recomputed here).

Keys that a bundle may lack (``leaky_random_split``, ``baselines``, curves, calibration)
are shown when present and explained when absent, so an older or newer bundle still renders.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import app_ui
from ser.reporting import plots
from ser.reporting.model_card import CONDITION_NAMES, VIEW_NAMES

app_ui.page_setup("Model")
st.title("The model's report card")

metrics = app_ui.get_metrics()
if not metrics:
    st.error(f"No metrics.json in {app_ui.model_dir()}; run `python -m ser evaluate` to write it.")
    st.stop()

headline = metrics.get("headline", {})
cv = metrics.get("cross_validation", {})
labels = metrics.get("labels") or cv.get("confusion_matrix", {}).get("labels", [])
chance = 1 / len(labels) if labels else None

if headline:
    columns = st.columns(4)
    columns[0].metric("accuracy", f"{headline['accuracy']:.1%}")
    columns[1].metric("unweighted average recall", f"{headline['uar']:.1%}")
    columns[2].metric("macro F1", f"{headline['macro_f1']:.1%}")
    if chance:
        columns[3].metric("chance", f"{chance:.1%}", help=f"{len(labels)} classes")
    st.markdown(f"**Protocol.** {cv.get('protocol') or headline.get('protocol', '')}")
    if headline.get("command"):
        st.caption(f"Reproduce with `{headline['command']}`.")

st.header("Confusion matrix")
matrix = cv.get("confusion_matrix")
if matrix:
    view = st.segmented_control("Show", ["counts", "row-normalised"], default="counts", key="cm-view")
    app_ui.chart(
        plots.confusion_matrix_figure(labels=matrix["labels"], counts=matrix["counts"],
                                      normalize=view == "row-normalised"),
        key="confusion-matrix",
    )
    st.caption("Rows are the true emotion, columns the prediction; every clip is scored by the fold model "
               "that never heard its speaker. Row-normalised, the diagonal is each class's recall.")
else:
    st.info("metrics.json has no confusion matrix.")

st.header("Classification report")
per_class = cv.get("per_class")
if per_class:
    report = pd.DataFrame(per_class).T.reset_index(names="emotion")
    report["support"] = report["support"].astype(int)
    st.dataframe(report, hide_index=True, key="report",
                 column_config={name: st.column_config.NumberColumn(format="%.2f")
                                for name in ("precision", "recall", "f1")})
    extra = []
    if "gender_accuracy" in cv:
        extra.append(f"gender accuracy {cv['gender_accuracy']:.1%}")
    if "intensity_accuracy" in cv:
        extra.append(f"intensity accuracy {cv['intensity_accuracy']:.1%}")
    if extra:
        st.caption("Auxiliary heads on the same unseen speakers: " + ", ".join(extra) + ".")

views = cv.get("views")
if views:
    st.header("Several views of the voice")
    st.markdown(
        "The model hears each clip through several views: a **CNN over the log-mel spectrogram** (what you "
        "see on the Analyze page), a **linear model over 6373 openSMILE acoustic functionals** (pitch, "
        "loudness, voice quality and spectral statistics of the whole clip)"
        + (", and a **second linear model on only their voice-source part** (pitch, jitter, shimmer, "
           "harmonics-to-noise ratio)" if "voicing" in views else "")
        + ". Their probabilities are fused as a normalised geometric mean (a class one view confidently "
        "rules out stays unlikely). Each view alone, and all fused, on the same unseen speakers:"
    )
    names = VIEW_NAMES
    st.dataframe(
        pd.DataFrame([{"view": names.get(view, view), **row} for view, row in views.items()]),
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
rows = []
if headline:
    leaky = metrics.get("leaky_random_split") or {}
    name = "this model (log-mel CNN + functionals)" if views else "this model (CNN on log-mel)"
    rows.append({"model": name, "accuracy (unseen speakers)": headline.get("accuracy"),
                 "UAR (unseen speakers)": headline.get("uar"), "accuracy (leaky random split)": leaky.get("accuracy"),
                 "UAR (leaky random split)": leaky.get("uar"), "description": "the shipped model"})
for baseline in metrics.get("baselines") or []:
    rows.append({"model": baseline.get("name"), "accuracy (unseen speakers)": baseline.get("accuracy"),
                 "UAR (unseen speakers)": baseline.get("uar"),
                 "accuracy (leaky random split)": baseline.get("leaky_accuracy"),
                 "UAR (leaky random split)": baseline.get("leaky_uar"),
                 "description": baseline.get("description", "")})
percent = st.column_config.NumberColumn(format="percent")
figures = [name for name in (rows[0] if rows else {}) if name not in ("model", "description")]
st.dataframe(pd.DataFrame(rows), hide_index=True, key="comparison", column_config=dict.fromkeys(figures, percent))
if not metrics.get("baselines"):
    st.info("No baselines in this metrics.json yet; `python -m ser evaluate --baselines` adds them.")
if metrics.get("leaky_random_split"):
    st.caption(f"Leaky protocol: {metrics['leaky_random_split'].get('protocol', 'random clip-level split')}.")

st.header("Learning curves")
curves = cv.get("curves") or []
if curves:
    choices = {"emotion accuracy": "emotion_accuracy", "emotion loss": "emotion_loss", "total loss": "loss"}
    available = [name for name, key in choices.items() if any(key in curve for curve in curves)]
    metric = st.segmented_control("Metric", available, default=available[0], key="curve-metric") or available[0]
    app_ui.chart(plots.learning_curves_figure(curves=curves, metric=choices[metric]), key="curves")
    st.caption("Solid: training batches (augmented); dashed: the fold's validation speakers.")
    folds = cv.get("per_fold")
    if folds:
        st.dataframe(pd.DataFrame(folds), hide_index=True, key="folds")
else:
    st.info("metrics.json has no learning curves.")

st.header("Accuracy per actor")
per_actor = cv.get("per_actor")
if per_actor:
    app_ui.chart(plots.per_actor_figure(per_actor=per_actor, chance=chance), key="per-actor")
    spread = cv.get("per_actor_spread")
    if spread:
        st.caption(f"Each actor's clips scored by the model that never heard them. Range "
                   f"{spread['min']:.0%}–{spread['max']:.0%}, standard deviation {spread['std']:.1%}.")

robustness = metrics.get("robustness")
if robustness:
    st.header("Off the studio")
    st.markdown(
        "RAVDESS was recorded in a studio; your microphone is not. Every clip corrupted (noise, a reverberant "
        "room, a telephone line, codecs, a thin laptop microphone), then scored the way this app scores an "
        "upload, each by the fold models that never heard that speaker. *Seen in training*: the linear views "
        "learn from noisy, sometimes reverberant copies of each clip; the other conditions were never trained for."
    )
    st.dataframe(
        pd.DataFrame([{"condition": CONDITION_NAMES.get(name, name), "seen in training": row["seen_in_training"],
                       "accuracy": row["accuracy"], "UAR": row["uar"], "refused (no speech)": row["refused"],
                       "same answer as clean": row["same_answer_as_clean"] / robustness["clips"]}
                      for name, row in robustness["conditions"].items()]),
        hide_index=True,
        key="robustness",
        column_config=dict.fromkeys(("accuracy", "UAR", "same answer as clean"),
                                    st.column_config.NumberColumn(format="percent")),
    )
    st.caption(f"{robustness['clips']} clips; refusals count as errors. Reproduce: `{robustness['command']}`.")

calibration = cv.get("calibration")
if calibration:
    st.header("Calibration")
    left, right = st.columns([3, 2])
    if "reliability_before" in calibration and "reliability_after" in calibration:
        with left:
            app_ui.chart(plots.reliability_figure(before=calibration["reliability_before"],
                                                  after=calibration["reliability_after"]), key="reliability")
    right.markdown(
        f"Temperature **{calibration.get('temperature', 1.0):.2f}**, fitted on validation speakers.  \n"
        f"Expected calibration error (15 bins): {calibration.get('ece_15_bins_before', float('nan')):.3f} before, "
        f"{calibration.get('ece_15_bins_after', float('nan')):.3f} after.  \n"
        f"The app says *not sure* below **{calibration.get('confidence_threshold', 0):.0%}** confidence"
        + (f" ({calibration['threshold_rule']})." if calibration.get("threshold_rule") else ".")
    )

st.header("Training data")
data = metrics.get("data", {})
counts = {name: data[key] for name, key in (("speech", "speech_per_emotion"), ("song", "song_per_emotion"))
          if data.get(key)}
if counts:
    app_ui.chart(plots.class_distribution_figure(counts=counts), key="class-distribution")
    st.caption(f"{data.get('speech_clips', '?')} speech and {data.get('song_clips', '?')} song clips from "
               f"{len(data.get('actors', []))} actors. Neutral is recorded at one intensity only (half as many "
               "clips), and RAVDESS songs have no disgust or surprised.")
training = metrics.get("training")
if training:
    with st.expander("Training settings and versions"):
        st.json({"training": training, "versions": metrics.get("versions", {})}, expanded=False)
