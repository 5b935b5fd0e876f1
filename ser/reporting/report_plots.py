"""Plotly figure builders for the model's report (the Model page): pure functions from result files to figures.

The analysis figures (waveform, spectrogram, probabilities, timeline) and the shared colours are
in :mod:`ser.reporting.plots`; these draw what :mod:`ser.reporting.results` holds: the confusion
matrix, learning curves, accuracy per held-out actor, the class counts, the reliability diagram and
shares per emotion on a corpus the model never heard.

Example
-------
>>> from ser.reporting.report_plots import confusion_matrix_figure
>>> confusion_matrix_figure(labels=["calm", "sad"], counts=[[8, 2], [1, 3]]).data[0].type
'heatmap'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ser.reporting.plots import FALLBACK_COLOR, GENDER_COLORS, emotion_color

#: Nothing is drawn in the top margin: the chart toolbar lives there (on a phone it shows on every tap),
#: so legends go under the plot, where they also leave a narrow screen's plot its full width.
_LAYOUT = {"margin": {"l": 55, "r": 10, "t": 40, "b": 40}, "template": "plotly_white"}
_LEGEND_BELOW = {"orientation": "h", "xanchor": "left", "x": 0, "yanchor": "top", "y": -0.22}


def confusion_matrix_figure(*, labels: Sequence[str], counts: Sequence[Sequence[float]],
                            normalize: bool = False) -> go.Figure:
    """Confusion matrix heatmap: true class down, predicted class across.

    Parameters
    ----------
    labels : sequence of str, length n
    counts : array-like, shape (n, n)
        ``counts[i][j]`` clips of true class ``i`` predicted as ``j``.
    normalize : bool
        Divide each row by its total (so the diagonal is per-class recall).
    """
    matrix = np.asarray(counts, dtype=np.float64)
    if normalize:
        totals = matrix.sum(axis=1, keepdims=True)
        matrix = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        text = [[f"{value:.0%}" for value in row] for row in matrix]
    else:
        text = [[f"{int(value)}" for value in row] for row in matrix]
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(labels),
            y=list(labels),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 11},  # 8 x 8 cells of "100%" fit a phone's width
            colorscale="Blues",
            zmin=0,
            zmax=1 if normalize else None,
            showscale=False,  # every cell is labelled; without the colour bar the cells get a phone's width
            customdata=np.asarray(counts, dtype=np.int64),
            hovertemplate=("true %{y}, predicted %{x}: %{customdata} clips"
                           + (" (%{z:.1%} of the true class)" if normalize else "") + "<extra></extra>"),
        )
    )
    figure.update_layout(height=500, xaxis_title="predicted", yaxis_title="true emotion", **_LAYOUT)
    figure.update_yaxes(autorange="reversed")  # first class on top, as in a printed matrix
    return figure


def learning_curves_figure(*, curves: Sequence[Mapping[str, Any]], metric: str = "emotion_accuracy") -> go.Figure:
    """Train vs validation curve of one metric for every fold.

    Parameters
    ----------
    curves : sequence of mappings
        One per fold: ``fold`` and the per-epoch lists of its
        :class:`ser.reporting.results.LearningCurve` history, such as ``emotion_accuracy`` and
        ``val_emotion_accuracy``.
    metric : str
        Key of the training series; the validation series is ``"val_" + metric``.
    """
    figure = go.Figure()
    palette = ["#1F77B4", "#FF7F0E", "#2CA02C", "#D62728", "#9467BD", "#8C564B", "#E377C2", "#7F7F7F"]
    for index, curve in enumerate(curves):
        color = palette[index % len(palette)]
        fold = curve.get("fold", index)
        # One legend entry per fold (its training line), so a phone's legend stays two rows long.
        lines = ((metric, "solid", f"fold {fold}"), ("val_" + metric, "dash", f"fold {fold} validation"))
        for key, dash, name in lines:
            series = curve.get(key)
            if not series:
                continue
            figure.add_trace(
                go.Scatter(
                    x=np.arange(1, len(series) + 1),
                    y=series,
                    mode="lines",
                    name=name,
                    line={"color": color, "dash": dash},
                    legendgroup=f"fold {fold}",
                    showlegend=dash == "solid",
                )
            )
    is_accuracy = "accuracy" in metric
    figure.update_layout(height=380, xaxis_title="epoch", yaxis={"title": metric.replace("_", " "),
                                                                 "tickformat": ".0%" if is_accuracy else ""},
                         legend=_LEGEND_BELOW, **_LAYOUT)
    return figure


def per_actor_figure(*, per_actor: Sequence[Mapping[str, Any]], chance: float | None = None) -> go.Figure:
    """Accuracy of every held-out actor, coloured by gender.

    Parameters
    ----------
    per_actor : sequence of mappings with ``actor``, ``gender``, ``n``, ``accuracy``
    chance : float, optional
        Drawn as a dotted line (1 / number of classes).
    """
    figure = go.Figure()
    rows = sorted(per_actor, key=lambda row: int(row["actor"]))
    for gender in sorted({str(row["gender"]) for row in rows}):
        subset = [row for row in rows if row["gender"] == gender]
        figure.add_trace(
            go.Bar(
                x=[str(int(row["actor"])) for row in subset],
                y=[float(row["accuracy"]) for row in subset],
                name=gender,
                marker_color=GENDER_COLORS.get(gender, FALLBACK_COLOR),
                customdata=[int(row["n"]) for row in subset],
                hovertemplate="actor %{x} (" + gender + "): %{y:.1%} of %{customdata} clips<extra></extra>",
            )
        )
    if chance is not None:
        figure.add_hline(y=chance, line_dash="dot", line_color="#555", annotation_text="chance",
                         annotation_position="bottom right")
    figure.update_layout(height=360, yaxis={"range": [0, 1], "tickformat": ".0%", "title": "accuracy"},
                         xaxis={"categoryorder": "array", "categoryarray": [str(int(row["actor"])) for row in rows],
                                "title": "actor", "tickfont": {"size": 11}},
                         legend=_LEGEND_BELOW | {"y": -0.3}, **_LAYOUT)
    return figure


def class_distribution_figure(*, counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Clips per emotion, one bar group per source (e.g. speech, song).

    Parameters
    ----------
    counts : mapping source -> (mapping emotion -> clips)
    """
    figure = go.Figure()
    for source, per_emotion in counts.items():
        labels = list(per_emotion)
        figure.add_trace(
            go.Bar(
                x=labels,
                y=[int(per_emotion[label]) for label in labels],
                name=source,
                marker_color=[emotion_color(label) for label in labels],
                marker_pattern_shape="" if source == next(iter(counts)) else "/",
                hovertemplate=f"{source}, %{{x}}: %{{y}} clips<extra></extra>",
            )
        )
    figure.update_layout(height=340, barmode="group", yaxis_title="clips", legend=_LEGEND_BELOW, **_LAYOUT)
    return figure


def reliability_figure(*, before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]]) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin, before and after calibration."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                                line={"color": "#999", "dash": "dot"}))
    for name, curve, color in (("before", before, "#D55E00"), ("after", after, "#0072B2")):
        mask = np.asarray(curve.get("count", []), dtype=float) > 0
        figure.add_trace(
            go.Scatter(
                x=np.asarray(curve.get("confidence", []), dtype=float)[mask],
                y=np.asarray(curve.get("accuracy", []), dtype=float)[mask],
                mode="lines+markers",
                name=f"{name} calibration",
                line={"color": color},
                hovertemplate=f"{name} calibration: " + "right on %{y:.1%} at %{x:.1%} confidence<extra></extra>",
            )
        )
    figure.update_layout(height=380, xaxis={"range": [0, 1], "title": "confidence", "tickformat": ".0%"},
                         yaxis={"range": [0, 1], "title": "accuracy", "tickformat": ".0%"}, legend=_LEGEND_BELOW,
                         **_LAYOUT)
    return figure


#: Colours of the series of :func:`emotion_shares_figure`, in order (colour-blind safe, as the reliability diagram).
_SERIES_COLORS = ("#999999", "#D55E00", "#0072B2", "#009E73")


def emotion_shares_figure(*, series: Mapping[str, Mapping[str, float]], emotions: Sequence[str],
                          axis_title: str) -> go.Figure:
    """Grouped bars of a share per emotion for a few series, e.g. the share of each answer against the
    share of each true emotion (a model that answers one emotion for everything shows as one tall bar).

    Parameters
    ----------
    series : mapping name -> (mapping emotion -> fraction in [0, 1])
        An emotion missing from a series is drawn as no bar (not 0), so "not measured" stays visible.
    emotions : sequence of str
        The x axis, in order.
    axis_title : str
        What the fractions are ("share of answers", "recall").
    """
    figure = go.Figure()
    for index, (name, values) in enumerate(series.items()):
        figure.add_trace(
            go.Bar(
                x=list(emotions),
                y=[values.get(emotion) for emotion in emotions],
                name=name,
                marker_color=_SERIES_COLORS[index % len(_SERIES_COLORS)],
                hovertemplate=f"{name}, %{{x}}: %{{y:.1%}}<extra></extra>",
            )
        )
    figure.update_layout(height=360, barmode="group", yaxis={"range": [0, 1], "tickformat": ".0%",
                                                             "title": axis_title},
                         legend=_LEGEND_BELOW, **_LAYOUT)
    return figure
