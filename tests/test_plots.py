"""ser.reporting.plots and report_plots: pure figure builders (no Streamlit) and the fixed emotion colours."""

from __future__ import annotations

import numpy as np
import pytest

from ser.config import FeatureConfig
from ser.reporting import plots, report_plots
from ser.serving.bundle import ClipPrediction, Timeline
from ser.training.data import EMOTIONS

CONFIG = FeatureConfig()


def test_every_emotion_has_its_own_colour():
    assert set(plots.EMOTION_COLORS) == set(EMOTIONS)
    assert len(set(plots.EMOTION_COLORS.values())) == len(EMOTIONS)
    assert plots.emotion_color("unknown") == plots.FALLBACK_COLOR


def test_probability_bars_use_the_fixed_colours_in_label_order():
    probabilities = dict(zip(EMOTIONS, np.linspace(0.05, 0.2, 8), strict=True))
    figure = plots.probability_figure(probabilities=probabilities, threshold=0.3)
    bar = figure.data[0]
    assert list(bar.x) == list(EMOTIONS)
    assert list(bar.marker.color) == [plots.EMOTION_COLORS[label] for label in EMOTIONS]
    assert [shape.y0 for shape in figure.layout.shapes] == [0.3]  # the not-sure line


@pytest.mark.parametrize("winner", ["neutral", "surprised"])  # the first and the last bar
def test_the_not_sure_label_is_beside_the_plot_where_no_percentage_reaches(winner):
    """Issue 24 point 5: the winning bar's percentage was drawn over the "not-sure threshold" label."""
    probabilities = {label: (0.44 if label == winner else 0.08) for label in EMOTIONS}
    for unadapted in (None, dict(zip(EMOTIONS, np.full(8, 0.125), strict=True))):
        figure = plots.probability_figure(probabilities=probabilities, threshold=0.465, unadapted=unadapted)
        [label] = figure.layout.annotations
        assert "not sure" in label.text and label.y == 0.465
        assert (label.xref, label.x, label.xanchor) == ("paper", 1, "left")  # right of the plot area
        assert figure.layout.margin.r >= plots.THRESHOLD_MARGIN
        # a 100% bar's percentage fits under the top of the axis, below the legend
        assert figure.layout.yaxis.range[1] >= 1.12 and figure.data[0].textposition == "outside"
        assert figure.layout.uniformtext.mode == "hide"  # too narrow for their text: hidden, not piled up


def test_long_waveform_is_decimated_but_keeps_its_peaks():
    rng = np.random.default_rng(0)
    waveform = (0.1 * rng.standard_normal(16000 * 600)).astype(np.float32)  # 10 minutes
    waveform[1234567] = 0.99
    waveform[7654321] = -0.97
    times, values = plots.decimate_waveform(waveform, sample_rate=16000, max_points=4000)
    assert values.size <= 4000
    assert values.max() == pytest.approx(0.99) and values.min() == pytest.approx(-0.97)
    assert times[0] == 0 and times[-1] == pytest.approx(600, abs=0.2)
    assert np.all(np.diff(times) >= 0)
    short = np.arange(100, dtype=np.float32)
    np.testing.assert_array_equal(plots.decimate_waveform(short, sample_rate=16000)[1], short)


def test_spectrogram_axes_are_seconds_and_hertz_and_long_ones_are_pooled():
    seconds = 900.0
    frames = int(seconds * CONFIG.frames_per_second) + 1
    log_mel = np.random.default_rng(0).standard_normal((frames, CONFIG.n_mels)).astype(np.float32)
    heatmap = plots.spectrogram_figure(log_mel=log_mel, config=CONFIG, max_columns=1200).data[0]
    assert len(heatmap.x) <= 1200
    assert heatmap.x[-1] == pytest.approx(seconds, rel=0.01)
    assert CONFIG.fmin < heatmap.y[0] < heatmap.y[-1] < CONFIG.fmax
    assert len(heatmap.y) == CONFIG.n_mels
    z = np.asarray(heatmap.z)
    assert z.shape == (CONFIG.n_mels, len(heatmap.x))
    assert heatmap.zmin <= z.min() and z.max() <= heatmap.zmax  # clipped: no out-of-range colours
    short = plots.spectrogram_figure(log_mel=log_mel[:301], config=CONFIG).data[0]
    assert len(short.x) == 301 and short.x[1] == pytest.approx(CONFIG.hop_length / CONFIG.sample_rate)


def test_timeline_is_drawn_under_the_waveform_on_a_shared_time_axis():
    starts = np.array([0.0, 1.0, 2.0])
    probabilities = np.full((3, 8), 1 / 8)
    probabilities[1] = np.nan  # an unvoiced window stays a gap
    overall = ClipPrediction(emotion="calm", confidence=0.2, probabilities=dict.fromkeys(EMOTIONS, 1 / 8), sure=False)
    timeline = Timeline(starts=starts, ends=starts + 3, probabilities=probabilities,
                        voiced=np.array([True, False, True]), overall=overall)
    figure = plots.waveform_figure(waveform=np.zeros(16000 * 5, np.float32), sample_rate=16000, timeline=timeline,
                                   emotions=list(EMOTIONS))
    assert len(figure.data) == 1 + len(EMOTIONS)
    assert figure.layout.xaxis.matches == "x2"  # zooming the waveform zooms the timeline
    line = figure.data[1 + EMOTIONS.index("calm")]
    assert line.line.color == plots.EMOTION_COLORS["calm"]
    np.testing.assert_allclose(line.x, [1.5, 2.5, 3.5])  # window centres in seconds
    assert np.isnan(line.y[1]) and line.connectgaps is False


def test_confusion_matrix_counts_and_row_normalised():
    counts = [[8, 2], [1, 3]]
    raw = report_plots.confusion_matrix_figure(labels=["a", "b"], counts=counts).data[0]
    np.testing.assert_array_equal(raw.z, counts)
    assert raw.text[0][0] == "8"
    normalised = report_plots.confusion_matrix_figure(labels=["a", "b"], counts=counts, normalize=True).data[0]
    np.testing.assert_allclose(np.asarray(normalised.z).sum(axis=1), 1.0)
    assert normalised.text[1][1] == "75%"
    empty_row = report_plots.confusion_matrix_figure(labels=["a", "b"], counts=[[0, 0], [1, 1]], normalize=True).data[0]
    assert np.all(np.isfinite(empty_row.z))  # a class without clips does not divide by zero


def test_learning_curves_have_train_and_validation_per_fold():
    curves = [{"fold": f, "loss": [2.0, 1.5, 1.2], "val_loss": [2.1, 1.9, 1.8]} for f in range(3)]
    figure = report_plots.learning_curves_figure(curves=curves, metric="loss")
    assert len(figure.data) == 6
    assert {trace.name for trace in figure.data} >= {"fold 0", "fold 2 validation"}
    assert [trace.line.dash for trace in figure.data[:2]] == ["solid", "dash"]
    assert [trace.name for trace in figure.data if trace.showlegend] == ["fold 0", "fold 1", "fold 2"]


def test_per_actor_bars_mark_gender():
    per_actor = [{"actor": a, "gender": "male" if a % 2 else "female", "n": 60, "accuracy": a / 30}
                 for a in (3, 1, 2, 4)]
    figure = report_plots.per_actor_figure(per_actor=per_actor, chance=0.125)
    by_gender = {trace.name: trace for trace in figure.data}
    assert set(by_gender) == {"male", "female"}
    assert list(by_gender["male"].x) == ["1", "3"]
    assert list(figure.layout.xaxis.categoryarray) == ["1", "2", "3", "4"]
    assert by_gender["female"].marker.color == plots.GENDER_COLORS["female"]


def test_class_distribution_and_spectrogram_grid():
    counts = {"speech": {"neutral": 80, "calm": 160}, "song": {"neutral": 76, "calm": 151}}
    figure = report_plots.class_distribution_figure(counts=counts)
    assert [list(trace.y) for trace in figure.data] == [[80, 160], [76, 151]]
    grid = plots.spectrogram_grid_figure(
        spectrograms={("angry", "male"): np.zeros((50, CONFIG.n_mels)),
                      ("angry", "female"): np.ones((40, CONFIG.n_mels))},
        rows=["angry", "sad"], columns=["male", "female"], config=CONFIG,
    )
    assert len(grid.data) == 2  # missing cells stay empty
    assert grid.data[0].zmax == grid.data[1].zmax  # one colour scale for the whole grid


def test_recording_figure_puts_waveform_band_and_spectrogram_on_one_time_axis():
    config = FeatureConfig()
    waveform = np.zeros(16000 * 5, np.float32)
    log_mel = np.zeros((1 + waveform.size // config.hop_length, config.n_mels), np.float32)
    figure = plots.recording_figure(waveform=waveform, sample_rate=16000, log_mel=log_mel, config=config,
                                    segment_starts=[0.0, 2.5], segment_ends=[2.5, 5.0],
                                    segment_answers=["calm", "not sure"], segment_details=["", ""])
    layout = figure.layout
    ranges = [tuple(axis.range) for axis in (layout.xaxis, layout.xaxis2, layout.xaxis3)]
    assert ranges == [(0, 5.0)] * 3
    assert layout.xaxis.domain == layout.xaxis2.domain == layout.xaxis3.domain  # same plot width
    band = [trace for trace in figure.data if trace.type == "bar"]
    assert [trace.marker.color for trace in band] == [plots.emotion_color("calm"), plots.UNSURE_COLOR]
    assert band[1].marker.pattern.shape == "/"  # "not sure" is hatched grey
    assert not any(trace.showscale for trace in figure.data if trace.type == "heatmap")  # no colour bar narrowing it


def test_report_figures_keep_the_top_margin_for_the_toolbar_and_read_in_percent():
    """On a phone the chart toolbar shows on every tap, at the top right: nothing of the report's figures is there."""
    curve = {"fold": 0, "emotion_accuracy": [0.2, 0.4], "val_emotion_accuracy": [0.2, 0.3]}
    reliability = {"confidence": [0.2, 0.6], "accuracy": [0.3, 0.5], "count": [4, 6]}
    figures = [
        report_plots.confusion_matrix_figure(labels=["a", "b"], counts=[[8, 2], [1, 3]], normalize=True),
        report_plots.learning_curves_figure(curves=[curve], metric="emotion_accuracy"),
        report_plots.per_actor_figure(per_actor=[{"actor": 1, "gender": "male", "n": 60, "accuracy": 0.5}],
                                      chance=0.125),
        report_plots.class_distribution_figure(counts={"speech": {"calm": 160}, "song": {"calm": 151}}),
        report_plots.reliability_figure(before=reliability, after=reliability),
        report_plots.emotion_shares_figure(series={"true": {"sad": 0.5}, "answers": {"sad": 0.2}},
                                           emotions=["sad"], axis_title="share"),
    ]
    for figure in figures:
        assert figure.layout.title.text is None
        assert figure.layout.margin.t >= 30
        if any(trace.showlegend is not False for trace in figure.data) and len(figure.data) > 1:
            assert figure.layout.legend.orientation == "h" and figure.layout.legend.y < 0  # under the plot
    assert figures[1].layout.yaxis.tickformat == ".0%"
    assert figures[4].layout.xaxis.tickformat == ".0%" and figures[4].layout.yaxis.tickformat == ".0%"


def test_emotion_shares_are_grouped_bars_per_series_and_leave_unmeasured_emotions_blank():
    series = {"true emotions": {"neutral": 0.5, "sad": 0.5}, "its answers": {"neutral": 0.1, "sad": 0.2,
                                                                              "fearful": 0.7}}
    figure = report_plots.emotion_shares_figure(series=series, emotions=["neutral", "sad", "fearful"],
                                                axis_title="share of answers")
    assert [trace.name for trace in figure.data] == ["true emotions", "its answers"]
    assert list(figure.data[0].y) == [0.5, 0.5, None]  # no bar, not a zero: the corpus has no fearful clips
    assert list(figure.data[1].y) == [0.1, 0.2, 0.7]
    assert figure.data[0].marker.color != figure.data[1].marker.color
    assert figure.layout.barmode == "group" and tuple(figure.layout.yaxis.range) == (0, 1)
    assert figure.layout.yaxis.tickformat == ".0%"
