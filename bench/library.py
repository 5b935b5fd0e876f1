"""In-process measurements of the library: one clip, a long recording, throughput, reference,
and a 10-minute file answered as the app answers it."""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import interleaved, load_average, measure, summarize
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


def routed_clip(bundle: Any, path: Path, *, warmup: int, repeats: int) -> dict[str, Any]:
    """The same file answered by the joint views (as when the unfamiliar-voice check fires) and by the
    main model, interleaved in this process: medians and their ratio (the joint views' extra cost)."""
    if not getattr(bundle, "has_joint_views", False) or bundle.unfamiliarity_detector is None:
        return {"not_measured": "the bundle has no joint views or no unfamiliarity detector"}
    waveform = _decode(bundle, path)
    rate = bundle.config.sample_rate

    def answer(routed: bool) -> Any:
        bundle.routes = lambda unfamiliarity: routed  # every input routed or none; the class's method restored below
        try:
            return bundle.predict_clip(waveform, sample_rate=rate)
        finally:
            del bundle.routes

    if answer(True).answered_by != "both_corpora":
        raise RuntimeError("the routed run was not answered by the joint views")
    summary = interleaved({"routed": lambda: answer(True), "main": lambda: answer(False)}, warmup=warmup,
                          repeats=repeats)
    return {"file": path.name, **summary, "median_ratio": summary["routed"]["median_ms"] / summary["main"]["median_ms"]}


def voice_profile(bundle: Any, paths: list[Path], clip: Path, *, warmup: int, repeats: int) -> dict[str, Any]:
    """A voice profile's costs (issue 23): building one from 20 enrolment clips on one core, and what
    applying it adds to one clip's answer (interleaved with the generic answer in this process).

    The enrolment clips are the first 20 of ``paths`` labelled round-robin with the model's emotions
    (neutral first); scoring them is the app's usual cost per clip, measured apart from the fit.
    """
    from ser.serving.enrolment import EnrolmentItem, enrol, score_enrolment
    from ser.serving.profile import build_profile
    from ser.serving.speaker import adapt_prediction

    items = [EnrolmentItem(emotion=bundle.emotions[index % len(bundle.emotions)], source=str(path), name=path.name)
             for index, path in enumerate((paths * 20)[:20])]
    begin = time.perf_counter()
    enrolments = [score_enrolment(bundle, item) for item in items]
    scored = time.perf_counter() - begin
    fit = measure(lambda: build_profile(enrolments, emotions=bundle.emotions, bundle_version=bundle.version),
                  warmup=1, repeats=max(3, repeats // 5))
    whole = measure(lambda: enrol(bundle, items), warmup=0, repeats=max(1, repeats // 25))
    profile = build_profile(enrolments, emotions=bundle.emotions, bundle_version=bundle.version)
    waveform = _decode(bundle, clip)
    rate = bundle.config.sample_rate
    threshold = bundle.confidence_threshold

    def answer(profiled: bool) -> Any:
        prediction = bundle.predict_clip(waveform, sample_rate=rate)
        return adapt_prediction(prediction, adaptation=profile, confidence_threshold=threshold) if profiled \
            else prediction

    summary = interleaved({"profiled": lambda: answer(True), "generic": lambda: answer(False)}, warmup=warmup,
                          repeats=repeats)
    prediction = bundle.predict_clip(waveform, sample_rate=rate)
    apply_alone = measure(lambda: adapt_prediction(prediction, adaptation=profile, confidence_threshold=threshold),
                          warmup=warmup, repeats=repeats)
    return {"enrolment_clips": len(items), "scoring_enrolment_s": round(scored, 3), "fit": fit,
            "enrol_whole": whole, "clip": clip.name, **summary, "apply": apply_alone,
            "added_median_ms": summary["profiled"]["median_ms"] - summary["generic"]["median_ms"]}


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


@dataclasses.dataclass(frozen=True)
class LongFileResult:
    """A long file answered as the app answers an upload (``analyze_audio`` on its bytes), timed.

    Attributes
    ----------
    file : str
    seconds : float
        Length of the recording.
    sample_rate : int
        Rate of the file (decoding resamples it to the model's).
    segments, scored_segments : int
        Utterances found, and those the model answered (the rest held no speech to score).
    answer : str
        The overall answer (the same in every run).
    runs : int
        Timed runs, after one warm-up analysis of a short clip.
    wall_median_s, wall_min_s, wall_max_s : float
        Wall time of ``analyze_audio``, decode to answer.
    cpu_median_s : float
        CPU time of this process (all its threads) per run: what the analysis costs whatever
        else the machine is doing.
    rtf_median : float
        ``wall_median_s / seconds``.
    target_s : float
        The issue's bound on the wall time (issue 16: "under 15 s on this machine").
    load_average_before, load_average_after : list of float
        1, 5 and 15 minute load averages around the timed runs (the machine is shared).
    """

    file: str
    seconds: float
    sample_rate: int
    segments: int
    scored_segments: int
    answer: str
    runs: int
    wall_median_s: float
    wall_min_s: float
    wall_max_s: float
    cpu_median_s: float
    rtf_median: float
    target_s: float
    load_average_before: list[float]
    load_average_after: list[float]


def long_file(bundle: Any, path: Path, *, runs: int, target_s: float) -> LongFileResult:
    """Time ``ser.serving.analysis.analyze_audio`` on the bytes of ``path`` ``runs`` times.

    One short analysis first pays the process's one-off costs (the openSMILE extractor is built
    on first use), so the runs measure an app that has answered before.
    """
    import soundfile

    from ser.serving.analysis import analyze_audio, waveform_to_wav
    from ser.testing import synthetic_voice

    if runs < 1:
        raise ValueError("runs must be at least 1")
    rate = bundle.config.sample_rate
    analyze_audio(waveform_to_wav(synthetic_voice(seconds=3.0, sample_rate=rate), sample_rate=rate),
                  name="warm-up.wav", bundle=bundle)
    data = path.read_bytes()
    info = soundfile.info(path)
    walls, cpus, answers = [], [], set()
    before = load_average()
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        analysis = analyze_audio(data, name=path.name, bundle=bundle)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        answers.add((analysis.prediction.emotion, round(analysis.prediction.confidence, 6)))
    if len(answers) != 1:
        raise RuntimeError(f"the same file got different answers in different runs: {sorted(answers)}")
    scored = sum(segment.prediction is not None for segment in analysis.segments)
    return LongFileResult(
        file=path.name, seconds=round(info.frames / info.samplerate, 3), sample_rate=int(info.samplerate),
        segments=len(analysis.segments), scored_segments=int(scored), answer=analysis.prediction.emotion,
        runs=runs, wall_median_s=round(statistics.median(walls), 3), wall_min_s=round(min(walls), 3),
        wall_max_s=round(max(walls), 3), cpu_median_s=round(statistics.median(cpus), 3),
        rtf_median=round(statistics.median(walls) / (info.frames / info.samplerate), 5), target_s=target_s,
        load_average_before=before, load_average_after=load_average(),
    )


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
