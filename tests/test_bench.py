"""The benchmark's code paths in a quick mode: structure and sane values, never timings.

Timings on a shared two-core machine are noise; ``make bench`` reports them. These tests
only check that every measurement runs and returns positive, consistent numbers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from bench import common, library, report
from bench.reference import N_MFCC, ReferencePipeline, build_reference_model

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "models"

pytestmark = pytest.mark.skipif(not (BUNDLE / "model.keras").is_file(), reason="no model bundle in models/")


@pytest.fixture(scope="module")
def bundle():
    from ser.serving.bundle import load_bundle

    return load_bundle(BUNDLE)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bench-clips")
    sources = sorted(common.EXAMPLES.glob("*.flac"))
    return {
        "clip": common.make_clip(folder / "clip.flac", seconds=4.0, sources=sources),
        "recording": common.make_recording(folder / "recording.flac", seconds=12.0, sources=sources),
        "generated": common.generated_clips(folder / "generated", count=2),
    }


def test_summarize_and_measure():
    summary = common.summarize([0.001, 0.002, 0.003, 0.004])
    assert summary["median_ms"] == pytest.approx(2.5)
    assert summary["min_ms"] <= summary["median_ms"] <= summary["p95_ms"] <= summary["max_ms"]
    calls = []
    timing = common.measure(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and timing["n"] == 3 and timing["median_ms"] >= 0


def test_made_clips_have_the_asked_length(clips):
    import soundfile

    assert soundfile.info(clips["clip"]).duration == pytest.approx(4.0, abs=1e-3)
    assert soundfile.info(clips["recording"]).duration == pytest.approx(12.0, abs=1e-3)
    assert all(path.is_file() for path in clips["generated"])


def test_machine_description_names_the_packages():
    machine = common.machine()
    assert machine["cores"] >= 1
    assert "numpy" in machine["packages"] and "librosa" in machine["packages"]


def test_reference_model_is_the_seed_architecture():
    from keras import layers

    model = build_reference_model()
    convs = [layer for layer in model.layers if isinstance(layer, layers.Conv1D)]
    assert [layer.filters for layer in convs] == [256, 256, 128, 128, 128, 128, 64, 64]
    assert all(layer.kernel_size == (8,) for layer in convs)
    assert [layer.pool_size for layer in model.layers if isinstance(layer, layers.MaxPooling1D)] == [(8,), (8,)]
    assert model.input_shape == (None, N_MFCC, 1) and model.output_shape == (None, 8)
    # BatchNorm sits between the 2nd/6th convolutions and their ReLU, as in the seed code.
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 2
    for position, kind in enumerate(kinds):
        if kind == "BatchNormalization":
            assert kinds[position - 1] == "Conv1D" and kinds[position + 1] == "Activation"
    # Baseline recipe (b) trains this very network (one definition for speed and accuracy).
    from ser.training.baselines import seed_conv1d_model

    assert [type(layer) for layer in seed_conv1d_model().layers] == [type(layer) for layer in model.layers]


@pytest.mark.slow
def test_reference_pipeline_predicts_a_distribution(clips):
    probabilities = ReferencePipeline().predict_path(clips["clip"])
    assert probabilities.shape == (8,) and probabilities.sum() == pytest.approx(1.0, abs=1e-4)


@pytest.mark.slow
def test_library_measurements(bundle, clips):
    clip = library.single_clip(bundle, clips["clip"], warmup=1, repeats=2)
    assert clip["median_ms"] > 0 and clip["p95_ms"] >= clip["min_ms"] > 0 and clip["windows"] >= 1
    expected = {"decode", "features", "model", "other"} | ({"functionals"} if bundle.uses_functionals else set())
    assert set(clip["stages_median_ms"]) == expected
    assert clip["seconds"] > 0

    timeline = library.timeline(bundle, clips["recording"], warmup=0, repeats=1)
    assert timeline["seconds"] == pytest.approx(12.0, abs=0.01)
    assert timeline["windows"] == 10  # 3 s windows 1 s apart over 12 s
    assert 0 < timeline["rtf_median"] == pytest.approx(timeline["median_ms"] / 1000 / 12.0, rel=1e-3)

    throughput = library.throughput(bundle, clips["generated"], source="generated")
    assert throughput["clips"] == 2 and throughput["clips_per_s"] > 0 and throughput["audio_s_per_s"] > 0

    versus = library.versus_reference(bundle, clips["clip"], clips["generated"][:1], warmup=1, repeats=2)
    assert versus["clip_median_ratio"] > 0 and versus["file_median_ratio"] > 0
    assert versus["clip_latency"]["ours"]["n"] == 2 and versus["file_latency"]["reference"]["n"] == 1


def test_long_synthetic_recording_is_seeded_speech_with_pauses(tmp_path):
    import soundfile

    first = common.make_long_synthetic_recording(tmp_path / "a.wav", seconds=30.0, seed=3, sample_rate=16000)
    again = common.make_long_synthetic_recording(tmp_path / "b.wav", seconds=30.0, seed=3, sample_rate=16000)
    other = common.make_long_synthetic_recording(tmp_path / "c.wav", seconds=30.0, seed=4, sample_rate=16000)
    audio, rate = soundfile.read(first, dtype="float32")
    assert rate == 16000 and audio.shape == (30 * 16000,)
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    # 100 ms blocks: loud speech and near-silent pauses (-70 dBFS noise) both present.
    blocks = 20 * np.log10(np.sqrt((audio.reshape(-1, 1600).astype(np.float64) ** 2).mean(axis=1)) + 1e-12)
    assert (blocks > -30).mean() > 0.4 and (blocks < -60).sum() >= 5


@pytest.mark.slow
def test_long_file_is_answered_as_the_app_answers_it(bundle, tmp_path):
    from ser.serving.analysis import analyze_audio

    path = common.make_long_synthetic_recording(tmp_path / "long.wav", seconds=25.0, seed=0)
    result = library.long_file(bundle, path, runs=2, target_s=15.0)
    app = analyze_audio(path.read_bytes(), name=path.name, bundle=bundle)
    assert result.seconds == pytest.approx(25.0) and result.sample_rate == 48000 and result.runs == 2
    assert result.segments == len(app.segments) >= 2 and 1 <= result.scored_segments <= result.segments
    assert result.answer == app.prediction.emotion
    assert 0 < result.wall_min_s <= result.wall_median_s <= result.wall_max_s and result.cpu_median_s > 0
    row = [cells for cells in report.rows({"results": {"long_file": {
        **dataclasses.asdict(result), "measured": "now"}}})][0]
    assert row[2] == "≤ 15 s" and row[3] in ("met", "**missed**")
    with pytest.raises(ValueError, match="runs"):
        library.long_file(bundle, path, runs=0, target_s=15.0)


def test_critical_path_compares_the_three_variants_and_restores_the_engines(bundle, clips):
    from bench import critical_path
    from ser.serving import functionals

    result = critical_path.compare(bundle, clips["clip"], warmup=0, repeats=2)
    assert set(result["median_ratio_to_original"]) == {"original", "split", "split_spare"}
    assert result["median_ratio_to_original"]["original"] == 1.0 and result["split_spare"]["n"] == 2
    assert "take" not in vars(functionals._ENGINES) and bundle.calls.split is not None


def test_window_batch_size_does_not_change_the_scores(bundle, monkeypatch):
    """ser.serving.bundle scores windows 8 at a time (faster, less memory): same numbers as 32."""
    import ser.serving.bundle

    config = bundle.config
    windows = np.random.default_rng(0).normal(-5, 2, (20, config.window_frames, config.n_mels)).astype(np.float32)
    by_default = bundle.score_windows(windows)
    monkeypatch.setattr(ser.serving.bundle, "BATCH_WINDOWS", 32)
    by_32 = bundle.score_windows(windows)
    for head in by_default:
        np.testing.assert_allclose(by_default[head], by_32[head], rtol=0, atol=1e-6)


@pytest.mark.slow
def test_child_processes(clips):
    from bench import child

    cold = child.cold_start(BUNDLE, clips["clip"], repeats=1)
    assert cold["total_s"] > cold["tensorflow_import_s"] > 0 and cold["cpu_s"] > 0
    assert cold["total_s"] == pytest.approx(
        sum(cold[key] for key in ("python_start_s", "libraries_import_s", "tensorflow_import_s", "load_bundle_s",
                                  "first_prediction_s")), rel=1e-6)
    latency, _ = child._run_child("latency", "--bundle", str(BUNDLE), "--clip", str(clips["clip"]),
                                  "--warmup", "0", "--repeats", "2")
    assert latency["clip"]["median_ms"] > 0 and latency["model_32_windows"]["n"] >= 2
    assert sum(latency["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def test_onednn_summary(monkeypatch):
    """0-vs-1 bookkeeping, with the child processes faked (each real one imports TensorFlow)."""
    from bench import child

    def fake(mode, *options, env=None):
        value = env["TF_ENABLE_ONEDNN_OPTS"]
        ms = 20.0 if value == "0" else 15.0
        return {"clip": {"median_ms": ms, "p95_ms": ms + 1}, "model_32_windows": {"median_ms": 10 * ms},
                "probabilities": {"a": 0.5, "b": 0.5 + (1e-7 if value == "1" else 0.0)}}, 0.0

    monkeypatch.setattr(child, "_run_child", fake)
    summary = child.onednn(BUNDLE, Path("clip.flac"), rounds=2, warmup=0, repeats=1)
    assert summary["0"]["rounds"] == summary["1"]["rounds"] == 2
    assert summary["clip_ratio_1_over_0"] == pytest.approx(0.75)
    assert summary["max_probability_difference"] == pytest.approx(1e-7)


@pytest.mark.slow
def test_server_start_and_memory_sampling(tmp_path):
    """`streamlit run` of a one-line app: health and first page times, RSS sampled, server stopped."""
    from bench import server

    (tmp_path / "tiny_app.py").write_text("import streamlit as st\nst.write('hello')\n")
    result = server.measure_app(clip=tmp_path / "unused.flac", long_clip=None, bundle_path=BUNDLE,
                                app="tiny_app.py", root=tmp_path, browser=False)
    assert "error" not in result, result
    assert 0 < result["health_s"] <= result["first_page_http_s"]
    assert result["peak_rss_mb"] > 10 and result["samples"] > 0
    assert result["first_prediction_not_measured"]


def test_missing_app_is_reported_not_measured(tmp_path):
    from bench import server

    result = server.measure_app(clip=tmp_path / "c.flac", long_clip=None, bundle_path=BUNDLE, root=tmp_path)
    assert result == {"not_measured": "app.py does not exist yet"}


@pytest.mark.slow
def test_quick_run_writes_results_and_table(tmp_path):
    """The whole `python -m bench --quick` flow without subprocesses: JSON, table, README block."""
    from bench.__main__ import main

    out = tmp_path / "results.json"
    results = main(["--quick", "--out", str(out), "--no-app", "--no-cold", "--no-onednn"])
    saved = json.loads(out.read_text())
    assert saved["mode"] == "quick" and saved["machine"]["packages"]
    assert {"clip", "clip_48k_wav", "timeline", "throughput", "reference", "long_file"} <= set(saved["results"])
    assert saved["results"]["clip"]["median_ms"] > 0
    assert saved["results"]["timeline"]["rtf_median"] > 0
    text = report.table(results)
    assert "not measured: --no-app" in text and "ours/reference" in text
    readme = tmp_path / "README.md"
    readme.write_text("# Title\n\nintro\n")
    report.update_readme(readme, results)
    report.update_readme(readme, results)  # idempotent: one block, replaced
    written = readme.read_text()
    assert written.count("## Speed") == 1 and written.count(report.README_START) == 1
