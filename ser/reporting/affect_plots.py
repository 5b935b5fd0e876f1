"""Plotly figures of the arousal/valence view of an answer: pure functions from numbers to figures.

The points come from :func:`ser.serving.affect.affect_of` (Russell's circumplex, each emotion
weighted by the model's probability). :func:`circumplex_figure` draws the circle with the eight
emotions at their places, named outside it, and the answer on it (one point per segment for long
audio: numbered and joined in time order when few, shaded early to late when many);
:func:`affect_timeline_figure` draws arousal and valence against time, one step per segment, on
the recording's time axis.

Example
-------
>>> from ser.reporting.affect_plots import circumplex_figure
>>> figure = circumplex_figure(arousal=[0.96], valence=[-0.15])
>>> figure.layout.yaxis.scaleanchor
'x'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from ser.reporting.plots import emotion_color
from ser.serving.affect import CIRCUMPLEX_DEGREES

#: How the view is derived, for captions and the report (one sentence).
DERIVATION = ("Arousal (how activated the voice sounds) and valence (how pleasant) are read off the answer: "
              "each emotion sits at its place on Russell's (1980) circumplex, neutral at the centre, and the "
              "point is their average weighted by the model's probabilities, a restatement of the answer, "
              "not a second measurement.")
ANSWER_COLOR = "#222222"
#: Segments drawn with their number (inside the marker) at most; more read as a cluster of digits.
NUMBERED_POINTS = 9
#: Numbered points are at least this far apart (circle radii; a marker is about 0.17 on a phone).
NUMBER_ROOM = 0.2
#: Emotion names start this far from the centre: past the circle and the largest marker on it.
LABEL_RADIUS = 1.12
#: Both axes run from -LIMIT to LIMIT: room for the longest name ("surprised", "disgust") at a phone's width.
LIMIT = 1.55
#: Shades of the segments when they are not numbered, first to last.
EARLY_TO_LATE = [[0.0, "#C4C4C4"], [1.0, "#111111"]]
_LAYOUT = {"template": "plotly_white", "margin": {"l": 50, "r": 10, "t": 36, "b": 40}}


def _emotion_places(degrees: Mapping[str, float | None]) -> tuple[list[str], np.ndarray, np.ndarray]:
    names = list(degrees)
    angles = [degrees[name] for name in names]
    x = np.array([0.0 if angle is None else math.cos(math.radians(angle)) for angle in angles])
    y = np.array([0.0 if angle is None else math.sin(math.radians(angle)) for angle in angles])
    return names, x, y


def _anchor(x: float, y: float) -> tuple[str, str]:
    """How an emotion's label hangs off its place on the circle: away from the centre, so the
    label lies outside the circle, where no answer's point can be."""
    return ("left" if x > 0.3 else "right" if x < -0.3 else "center",
            "bottom" if y > 0.3 else "top" if y < -0.3 else "middle")


def numbered(valence: np.ndarray, arousal: np.ndarray) -> bool:
    """Whether the points can carry their segment's number: few enough to read, and no two so close
    that their numbers would touch (:data:`NUMBERED_POINTS`, :data:`NUMBER_ROOM`)."""
    if not 1 < valence.size <= NUMBERED_POINTS:
        return False
    points = np.stack([valence, arousal], axis=1)
    distances = np.hypot(*(points[:, None, :] - points[None, :, :]).transpose(2, 0, 1))
    return bool(distances[np.triu_indices(len(points), k=1)].min() >= NUMBER_ROOM)


def circumplex_figure(*, arousal: Sequence[float], valence: Sequence[float], labels: Sequence[str] = (),
                      overall: tuple[float, float] | None = None,
                      degrees: Mapping[str, float | None] = CIRCUMPLEX_DEGREES, height: int = 380) -> go.Figure:
    """The circumplex with the emotions at their places and the answer's point(s).

    Every text stays clear of every point: the emotions are named outside the circle (the answer's
    points are averages of places on it, so they stay inside), neutral, the centre, below it. Segments
    carry their number inside their marker only when :func:`numbered` allows; otherwise they are
    shaded from light (early) to dark (late), and hovering a point names its segment.

    Parameters
    ----------
    arousal, valence : sequence of float, length n_points, each in [-1, 1]
        One point per segment in time order (one point for a single utterance); NaN points
        (unscored segments) are left out.
    labels : sequence of str, length n_points, optional
        Hover text of each point ("1. 0.0-3.6 s: angry").
    overall : (arousal, valence), optional
        The whole recording's answer, drawn as a larger open diamond (with several points).
    degrees : mapping emotion -> degrees or None
        Places on the circle (:data:`ser.serving.affect.CIRCUMPLEX_DEGREES`; None is the centre).

    Returns
    -------
    plotly.graph_objects.Figure
        Equal axes from -:data:`LIMIT` to :data:`LIMIT`: valence across, arousal up.

    Raises
    ------
    ValueError
        If ``arousal`` and ``valence`` (and ``labels`` when given) differ in length.
    """
    arousal, valence = np.asarray(arousal, dtype=float), np.asarray(valence, dtype=float)
    if arousal.shape != valence.shape or (labels and len(labels) != arousal.size):
        raise ValueError("arousal, valence and labels need one value per point")
    figure = go.Figure()
    angle = np.linspace(0, 2 * np.pi, 121)
    figure.add_trace(go.Scatter(x=np.cos(angle), y=np.sin(angle), mode="lines", line={"color": "#CCCCCC"},
                                hoverinfo="skip", showlegend=False))
    names, x, y = _emotion_places(degrees)
    figure.add_trace(go.Scatter(
        x=x, y=y, mode="markers", customdata=names, marker={"size": 11, "color": [emotion_color(n) for n in names]},
        showlegend=False, hovertemplate="%{customdata}<extra>place on the circle</extra>",
    ))
    for name, u, v in zip(names, x, y, strict=True):
        at_centre = u == 0 and v == 0
        xanchor, yanchor = ("center", "top") if at_centre else _anchor(u, v)
        # Neutral is the centre, where the points gather: its name goes below the circle instead.
        place = (0.0, -LABEL_RADIUS) if at_centre else (LABEL_RADIUS * u, LABEL_RADIUS * v)
        figure.add_annotation(x=place[0], y=place[1], text=f"{name} (centre)" if at_centre else name,
                              xanchor=xanchor, yanchor=yanchor, showarrow=False,
                              font={"size": 12, "color": "#333333"}, name=name)
    shown = np.flatnonzero(np.isfinite(arousal) & np.isfinite(valence))
    texts = list(labels) if labels else [f"{index + 1}" for index in range(arousal.size)]
    several = arousal.size > 1
    hover = "%{hovertext}<br>valence %{x:+.2f}, arousal %{y:+.2f}<extra></extra>"
    if not several:
        figure.add_trace(go.Scatter(x=valence[shown], y=arousal[shown], mode="markers", name="the answer",
                                    hovertext=[texts[i] for i in shown], hovertemplate=hover, showlegend=False,
                                    marker={"size": 16, "color": ANSWER_COLOR, "symbol": "diamond"}))
    elif numbered(valence[shown], arousal[shown]):
        figure.add_trace(go.Scatter(
            x=valence[shown], y=arousal[shown], mode="lines+markers+text", name="segments in time order",
            text=[str(index + 1) for index in shown], textposition="middle center",
            textfont={"size": 10, "color": "#FFFFFF"}, hovertext=[texts[i] for i in shown], hovertemplate=hover,
            marker={"size": 17, "color": ANSWER_COLOR}, line={"color": ANSWER_COLOR, "width": 1, "dash": "dot"},
        ))
    else:  # many or crowded: no numbers and no joining line, only the shade says when
        figure.add_trace(go.Scatter(
            x=valence[shown], y=arousal[shown], mode="markers", name="segments (lighter = earlier)",
            hovertext=[texts[i] for i in shown], hovertemplate=hover,
            marker={"size": 9, "color": shown, "cmin": 0, "cmax": max(arousal.size - 1, 1),
                    "colorscale": EARLY_TO_LATE, "line": {"color": ANSWER_COLOR, "width": 0.5}},
        ))
    if overall is not None and several:
        # Open: a segment's number under it stays readable.
        figure.add_trace(go.Scatter(x=[overall[1]], y=[overall[0]], mode="markers", name="whole recording",
                                    marker={"size": 20, "color": ANSWER_COLOR, "symbol": "diamond-open",
                                            "line": {"width": 2.5}},
                                    hovertemplate="whole recording<br>valence %{x:+.2f}, arousal %{y:+.2f}"
                                                  "<extra></extra>"))
    limits = [-LIMIT, LIMIT]
    figure.update_xaxes(range=limits, zeroline=True, zerolinecolor="#BBBBBB", fixedrange=True,
                        title_text="valence: unpleasant ← → pleasant", tickvals=[-1, 0, 1])
    figure.update_yaxes(range=limits, zeroline=True, zerolinecolor="#BBBBBB", fixedrange=True, scaleanchor="x",
                        title_text="arousal: calm ← → excited", tickvals=[-1, 0, 1])
    # The legend above the plot: below it, it sat on the x-axis title.
    figure.update_layout(height=height, legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0},
                         **_LAYOUT)
    return figure


def affect_timeline_figure(*, starts: Sequence[float], ends: Sequence[float], arousal: Sequence[float],
                           valence: Sequence[float], duration: float, height: int = 240) -> go.Figure:
    """Arousal and valence over time, one flat step per segment (gaps where a segment is unscored).

    Parameters
    ----------
    starts, ends : sequence of float, length n_segments
        Segment bounds in seconds.
    arousal, valence : sequence of float, length n_segments
        NaN for an unscored segment.
    duration : float
        Length of the recording: the time axis is ``[0, duration]``, as the waveform's.
    """
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    figure = go.Figure()
    for name, values, color in (("arousal", arousal, "#D55E00"), ("valence", valence, "#0072B2")):
        values = np.asarray(values, dtype=float)
        # Each segment as a flat line from its start to its end; None between segments breaks the line.
        x = [point for start, end in zip(starts, ends, strict=True) for point in (start, end, None)]
        y = [point for value in values for point in (value, value, None)]
        y = [None if point is not None and not math.isfinite(point) else point for point in y]
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line={"color": color, "width": 3},
                                    hovertemplate=f"{name} %{{y:+.2f}} at %{{x:.1f}} s<extra></extra>"))
    figure.add_hline(y=0, line_color="#BBBBBB")
    figure.update_xaxes(range=[0, duration], title_text="time (s)")
    # Past +-1 by enough that the "-1" tick label clears the time axis's "0" in the corner.
    figure.update_yaxes(range=[-1.15, 1.15], fixedrange=True, tickvals=[-1, 0, 1])
    figure.update_layout(height=height, legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                         **_LAYOUT)
    return figure
