"""In-process measurements of the library: one clip, a long recording, throughput, reference."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import measure, summarize
from bench.reference import ReferencePipeline


def _decode(bundle: Any, path: Path) -> np.ndarray:
    from ser.serving.audio import decode_audio

    return decode_audio(path, sample_rate=bundle.config.sample_rate)


def predict_file(bundle: Any, path: Path) -> Any:
    """What the CLI and the app do with one file: decode, then ``predict_clip``."""
    return bundle.predict_clip(_decode(bundle, path), sample_rate=bundle.config.sample_rate)


def single_clip(bundle: Any, path: Path, *, warmup: int, repeats: int) -> dict[str, Any]:
    """Latency of decode + features + predict for one file, and of each stage alone.

    The stages are timed separately (each its own median); ``other`` is what the end-to-end
    median has beyond their sum (speech check, calibration, Python glue).
    """
    from ser.serving.features import log_mel_spectrogram, prepare_waveform, window_features

    config = bundle.config
    total = measure(lambda: predict_file(bundle, path), warmup=warmup, repeats=repeats)
    waveform = _decode(bundle, path)

    def features() -> np.ndarray:
        return window_features(log_mel_spectrogram(prepare_waveform(waveform, config=config), config=config),
                               config=config)[0]

    windows = features()
    stages = {
        "decode": measure(lambda: _decode(bundle, path), warmup=warmup, repeats=repeats),
        "features": measure(features, warmup=warmup, repeats=repeats),
    }
    functionals = None
    if getattr(bundle, "uses_functionals", False):
        from ser.serving.functionals import acoustic_functionals

        prepared = prepare_waveform(waveform, config=config)
        functionals = acoustic_functionals(prepared, config=config)
        stages["functionals"] = measure(
            lambda: acoustic_functionals(prepared, config=config), warmup=warmup, repeats=repeats
        )
    stages["model"] = measure(
        lambda: bundle.score_windows(windows, functionals=functionals), warmup=warmup, repeats=repeats
    )
    other = total["median_ms"] - sum(stage["median_ms"] for stage in stages.values())
    return {
        "file": path.name,
        "seconds": round(waveform.size / config.sample_rate, 3),
        "windows": int(len(windows)),
        **total,
        "stages_median_ms": {name: stage["median_ms"] for name, stage in stages.items()} | {"other": other},
    }


def timeline(bundle: Any, path: Path, *, warmup: int, repeats: int) -> dict[str, Any]:
    """Wall time of decode + ``Bundle.timeline`` for a long recording, and its real-time factor."""
    waveform = _decode(bundle, path)
    seconds = waveform.size / bundle.config.sample_rate
    result = bundle.timeline(waveform, sample_rate=bundle.config.sample_rate)

    def run() -> Any:
        return bundle.timeline(_decode(bundle, path), sample_rate=bundle.config.sample_rate)

    timing = measure(run, warmup=warmup, repeats=repeats)
    return {
        "file": path.name,
        "seconds": round(seconds, 3),
        "windows": int(len(result.starts)),
        "voiced_windows": int(result.voiced.sum()),
        **timing,
        "rtf_median": timing["median_ms"] / 1000.0 / seconds,
        "rtf_p95": timing["p95_ms"] / 1000.0 / seconds,
    }


def throughput(bundle: Any, paths: list[Path], *, source: str) -> dict[str, Any]:
    """Clips per second, one file after another (decode + predict each), over ``paths``."""
    import soundfile

    from ser.errors import SERError

    refused = 0
    audio_seconds = 0.0
    times = []
    predict_file(bundle, paths[0])  # warm-up
    start = time.perf_counter()
    for path in paths:
        begin = time.perf_counter()
        try:
            predict_file(bundle, path)
        except SERError:
            refused += 1
        times.append(time.perf_counter() - begin)
        audio_seconds += soundfile.info(path).duration
    wall = time.perf_counter() - start
    return {
        "source": source,
        "clips": len(paths),
        "refused_no_speech": refused,
        "wall_s": wall,
        "clips_per_s": len(paths) / wall,
        "audio_s_per_s": audio_seconds / wall,
        "mean_clip_s": audio_seconds / len(paths),
        "per_clip": summarize(times),
    }


def versus_reference(bundle: Any, clip: Path, paths: list[Path], *, warmup: int, repeats: int,
                     reference: ReferencePipeline | None = None) -> dict[str, Any]:
    """Ours and the seed-style reference, interleaved on the same clips in the same process.

    On the 4 s clip each pipeline runs ``repeats`` times, alternating; on ``paths`` each
    file is scored once by each, the order swapped every file, so background load hits
    both alike. Ratios are ours / reference (below 1: ours is faster).
    """
    reference = reference or ReferencePipeline()
    ours_fn = {"ours": lambda p: predict_file(bundle, p), "reference": reference.predict_path}
    for _ in range(max(1, warmup)):
        for fn in ours_fn.values():
            fn(clip)
    clip_times: dict[str, list[float]] = {"ours": [], "reference": []}
    file_times: dict[str, list[float]] = {"ours": [], "reference": []}
    for index in range(max(1, repeats)):
        order = ("ours", "reference") if index % 2 == 0 else ("reference", "ours")
        for name in order:
            begin = time.perf_counter()
            ours_fn[name](clip)
            clip_times[name].append(time.perf_counter() - begin)
    from ser.errors import SERError

    for index, path in enumerate(paths):
        order = ("ours", "reference") if index % 2 == 0 else ("reference", "ours")
        for name in order:
            begin = time.perf_counter()
            try:
                ours_fn[name](path)
            except SERError:
                pass  # a refused clip still cost its time
            file_times[name].append(time.perf_counter() - begin)
    clip_summary = {name: summarize(values) for name, values in clip_times.items()}
    file_summary = {name: summarize(values) for name, values in file_times.items()} if paths else {}
    result: dict[str, Any] = {
        "clip": clip.name,
        "clip_latency": clip_summary,
        "clip_median_ratio": clip_summary["ours"]["median_ms"] / clip_summary["reference"]["median_ms"],
        "reference_model_parameters": int(reference.model.count_params()),
    }
    if paths:
        result |= {
            "files": len(paths),
            "file_latency": file_summary,
            "file_median_ratio": file_summary["ours"]["median_ms"] / file_summary["reference"]["median_ms"],
            "throughput_ratio_ours_over_reference": sum(file_times["reference"]) / sum(file_times["ours"]),
        }
    return result


def own_peak_rss_mb() -> float | None:
    """This process's peak resident memory (VmHWM) in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
