"""Timing helpers, the machine's description and the clips every measurement uses."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ser import testing

ROOT = Path(__file__).resolve().parent.parent
SHARED_SPEECH = ROOT.parent / "shared" / "data" / "ravdess" / "speech"
EXAMPLES = ROOT / "assets" / "examples"
RESULTS = Path(__file__).resolve().parent / "results.json"
SAMPLE_RATE = 16000

PACKAGES = ("tensorflow-cpu", "tensorflow", "keras", "numpy", "scipy", "librosa", "soxr", "soundfile", "av",
            "streamlit", "playwright", "py-spy")


def summarize(seconds: list[float]) -> dict[str, float]:
    """Median, p95, min and max in milliseconds of a list of durations in seconds."""
    values = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "median_ms": float(np.median(values)),
        "p95_ms": float(np.percentile(values, 95)),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
        "n": int(values.size),
    }


def measure(fn: Callable[[], Any], *, warmup: int, repeats: int) -> dict[str, float]:
    """Call ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; :func:`summarize`."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return summarize(times)


def interleaved(runs: dict[str, Callable[[], Any]], *, warmup: int, repeats: int) -> dict[str, dict[str, float]]:
    """Each of ``runs`` called in turn, ``warmup`` rounds untimed then ``repeats`` timed, so a busy machine
    slows them alike; ``name -> `` :func:`summarize` of its times."""
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(max(1, repeats)):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(values) for name, values in times.items()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict[str, str]:
    """Installed versions of the packages that matter for speed (missing ones left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, memory, load, Python, packages, commit."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions(),
        "load_average_at_start": load_average(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def bundle_info(bundle: Any) -> dict[str, Any]:
    """Which model was measured (SHA-256 of model.keras, the identifier every result file records;
    never the machine's path) and its size: parameters, ensemble members, file size."""
    from ser.reporting.provenance import model_sha256

    model = bundle.model
    members = [layer.name for layer in model.layers if hasattr(layer, "layers")]
    path = Path(bundle.path) / "model.keras"
    return {
        "model_sha256": model_sha256(path) if path.is_file() else None,
        "parameters": int(model.count_params()),
        "ensemble_members": len(members) or 1,
        "model_file_mb": round(path.stat().st_size / 1e6, 2) if path.is_file() else None,
        "window_seconds": bundle.config.window_seconds,
        "window_hop_seconds": bundle.config.window_hop_seconds,
    }


# ---------------------------------------------------------------- clips


def synthetic_voice(*, seconds: float, pitch: float = 140.0, seed: int = 0) -> np.ndarray:
    """The tests' synthetic voice at the bench's sample rate (see :mod:`ser.testing`)."""
    return testing.synthetic_voice(seconds=seconds, sample_rate=SAMPLE_RATE, pitch=pitch, seed=seed)


def speech_clips(data_dir: Path | None = SHARED_SPEECH, *, limit: int | None = None) -> list[Path]:
    """RAVDESS speech clips, sorted; ``limit`` picks that many spread evenly over the list.

    Empty when ``data_dir`` is absent (a fresh clone without ``../shared``).
    """
    if data_dir is None or not Path(data_dir).is_dir():
        return []
    paths = sorted(Path(data_dir).rglob("*.flac")) + sorted(Path(data_dir).rglob("*.wav"))
    if limit is not None and 0 < limit < len(paths):
        index = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in index]
    return paths


def generated_clips(folder: Path, *, count: int) -> list[Path]:
    """``count`` synthetic voiced clips (2.5-4.5 s, different pitches) written as FLAC."""
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        seconds = 2.5 + 2.0 * (index % 5) / 4
        waveform = synthetic_voice(seconds=seconds, pitch=100.0 + 15.0 * (index % 10), seed=index)
        path = folder / f"generated-{index:03d}.flac"
        soundfile.write(path, waveform, SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths


def _read(path: Path) -> np.ndarray:
    import soundfile

    from ser.serving.audio import resample

    waveform, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return resample(waveform.mean(axis=1), orig_sample_rate=rate, target_sample_rate=SAMPLE_RATE)


def source_clips(data_dir: Path | None = SHARED_SPEECH) -> list[Path]:
    """Real speech to build the test clips from: the shared data, else the shipped examples."""
    return speech_clips(data_dir) or sorted(EXAMPLES.glob("*.flac"))


def make_clip(path: Path, *, seconds: float, sources: list[Path], sample_rate: int = SAMPLE_RATE,
              subtype: str = "PCM_16") -> Path:
    """Write exactly ``seconds`` of speech: the first source clip, repeated if shorter, cut.

    With no source at all, a synthetic voice. ``sample_rate`` other than 16 kHz writes a
    resampled copy (e.g. 48 kHz, what browsers record), so decoding pays the resampling.
    """
    import soundfile

    from ser.serving.audio import resample

    waveform = _read(sources[0]) if sources else synthetic_voice(seconds=seconds)
    samples = int(round(seconds * SAMPLE_RATE))
    waveform = np.tile(waveform, -(-samples // waveform.size))[:samples]
    if sample_rate != SAMPLE_RATE:
        waveform = resample(waveform, orig_sample_rate=SAMPLE_RATE, target_sample_rate=sample_rate)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, waveform, sample_rate, subtype=subtype)
    return path


def make_recording(path: Path, *, seconds: float, sources: list[Path], gap_seconds: float = 0.4) -> Path:
    """Write a ``seconds`` long recording: speech clips one after another with short pauses.

    Uses clips of several actors and emotions (every 7th source clip) so the timeline has
    something to follow; synthetic voice when there is no source.
    """
    import soundfile

    samples = int(round(seconds * SAMPLE_RATE))
    gap = np.zeros(int(gap_seconds * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    total = 0
    picks = sources[::7] or sources
    index = 0
    while total < samples:
        if picks:
            clip = _read(picks[index % len(picks)])
        else:
            clip = synthetic_voice(seconds=3.0, pitch=100.0 + 20.0 * (index % 6), seed=index)
        parts += [clip, gap]
        total += clip.size + gap.size
        index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(parts)[:samples], SAMPLE_RATE, subtype="PCM_16")
    return path


def make_long_synthetic_recording(path: Path, *, seconds: float, seed: int = 0, sample_rate: int = 48000) -> Path:
    """Write a seeded, speech-like recording of exactly ``seconds``: utterances with pauses.

    Utterances are :func:`ser.testing.synthetic_voice` (voiced, syllable-modulated), 1.5-6 s
    long at 95-260 Hz and -6 to -18 dB apart in level; the pauses between them are 0.3-2.5 s
    of faint noise (-70 dBFS), so some are shorter than the segmenter's 0.8 s join gap (two
    utterances scored as one) and most are longer. Written as 16-bit WAV at ``sample_rate``
    (48 kHz: what a browser or phone records), so decoding pays the resampling as an upload does.
    """
    import soundfile

    rng = np.random.default_rng(seed)
    total = int(round(seconds * sample_rate))
    parts: list[np.ndarray] = []
    filled = 0
    index = 0
    while filled < total:
        voice = testing.synthetic_voice(seconds=float(rng.uniform(1.5, 6.0)), sample_rate=sample_rate,
                                        pitch=float(rng.uniform(95.0, 260.0)), seed=seed * 100_000 + index)
        pause = 10 ** (-70 / 20) * rng.standard_normal(int(rng.uniform(0.3, 2.5) * sample_rate))
        parts += [voice * 10 ** (-float(rng.uniform(0.0, 12.0)) / 20), pause.astype(np.float32)]
        filled += voice.size + pause.size
        index += 1
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, np.concatenate(parts)[:total], sample_rate, subtype="PCM_16")
    return path


def enrolment_clips(paths: list[Path]) -> list[Path]:
    """At most 20 clips to enrol a voice profile from (the bench's clips, or the shipped examples)."""
    return list(paths[:20]) or sorted((ROOT / "assets" / "examples").glob("*.flac"))
