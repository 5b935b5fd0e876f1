"""Measurements that need a fresh Python process.

``cold``: from the parent's ``Popen`` until the bundle is loaded and the first prediction
is out, TensorFlow's import included (the child reports wall-clock marks against the
parent's start time). ``latency``: single-clip latency under the environment the parent
chose (e.g. ``TF_ENABLE_ONEDNN_OPTS=0`` or ``1``, which must be set before TensorFlow is
imported, hence one process per setting).

The parent side (:func:`cold_start`, :func:`onednn`) runs the children one at a time and
reads the one JSON line each prints last.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: Longest a child may run before it is killed (seconds).
CHILD_TIMEOUT = 600


def _child_cold(args: argparse.Namespace) -> dict[str, Any]:
    marks = {"python_started": time.time()}
    from ser.serving.audio import decode_audio  # what the CLI and the app import first: ser, numpy, soundfile
    from ser.serving.bundle import load_bundle

    marks["libraries_imported"] = time.time()
    # What load_bundle does first (pylibsrtp first, TensorFlow imports Keras, scikit-learn hidden).
    from ser import import_tensorflow_quietly

    import_tensorflow_quietly()
    import keras  # noqa: F401

    marks["tensorflow_imported"] = time.time()
    bundle = load_bundle(args.bundle)
    marks["bundle_loaded"] = time.time()
    prediction = bundle.predict_clip(decode_audio(args.clip, sample_rate=bundle.config.sample_rate),
                                     sample_rate=bundle.config.sample_rate)
    marks["first_prediction"] = time.time()
    return {"marks": marks, "emotion": prediction.emotion}


def _child_latency(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    import ser  # noqa: F401
    from bench.common import measure
    from bench.library import predict_file
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(args.bundle)
    clip = Path(args.clip)
    single = measure(lambda: predict_file(bundle, clip), warmup=args.warmup, repeats=args.repeats)
    config = bundle.config
    batch = np.random.default_rng(0).standard_normal((32, config.window_frames, config.n_mels)).astype(np.float32)
    model32 = measure(lambda: bundle.score_windows(batch), warmup=1, repeats=max(2, args.repeats // 5))
    prediction = predict_file(bundle, clip)
    return {
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "clip": single,
        "model_32_windows": model32,
        "probabilities": prediction.probabilities,
    }


def _run_child(mode: str, *options: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run ``python -m bench.child MODE ...``; return its JSON and the parent's start time."""
    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = str(ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    started = time.time()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(
        [sys.executable, "-m", "bench.child", mode, "--t0", repr(started), *options],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False,
    )
    if completed.returncode != 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"bench.child {mode} failed ({completed.returncode}): " + " | ".join(tail))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    # CPU seconds (user + system) of the whole child: less sensitive to a busy machine than wall time.
    result["cpu_s"] = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return result, started


def cold_start(bundle_path: Path, clip: Path, *, repeats: int) -> dict[str, Any]:
    """New process -> bundle loaded -> first prediction, ``repeats`` times (medians).

    ``cpu_s`` is the child's CPU time (user + system, all threads, including the few
    moments after the first prediction until it exits): on a busy machine the wall time
    grows with the load, the CPU time much less. The file cache is warm after the first run
    (and usually before: the bench already loaded the same files), so this is a warm-cache
    cold start, like restarting the app.
    """
    stages: dict[str, list[float]] = {}
    for _ in range(max(1, repeats)):
        result, started = _run_child("cold", "--bundle", str(bundle_path), "--clip", str(clip))
        marks = result["marks"]
        values = {
            "python_start_s": marks["python_started"] - started,
            "libraries_import_s": marks["libraries_imported"] - marks["python_started"],
            "tensorflow_import_s": marks["tensorflow_imported"] - marks["libraries_imported"],
            "load_bundle_s": marks["bundle_loaded"] - marks["tensorflow_imported"],
            "first_prediction_s": marks["first_prediction"] - marks["bundle_loaded"],
            "total_s": marks["first_prediction"] - started,
            "cpu_s": result["cpu_s"],
        }
        for key, value in values.items():
            stages.setdefault(key, []).append(value)
    import numpy as np

    return {key: float(np.median(values)) for key, values in stages.items()} | {
        "runs": len(stages["total_s"]),
        "total_s_all": [round(value, 3) for value in stages["total_s"]],
    }


def onednn(bundle_path: Path, clip: Path, *, rounds: int, warmup: int, repeats: int) -> dict[str, Any]:
    """Single-clip latency with ``TF_ENABLE_ONEDNN_OPTS`` = 0 and = 1, one process each,
    alternating 0, 1, 0, 1... ``rounds`` times; medians over the rounds' medians."""
    import numpy as np

    runs: dict[str, list[dict[str, Any]]] = {"0": [], "1": []}
    for _ in range(max(1, rounds)):
        for value in ("0", "1"):
            env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=value)
            result, _ = _run_child("latency", "--bundle", str(bundle_path), "--clip", str(clip),
                                   "--warmup", str(warmup), "--repeats", str(repeats), env=env)
            runs[value].append(result)
    summary: dict[str, Any] = {}
    for value, results in runs.items():
        summary[value] = {
            "clip_median_ms": float(np.median([r["clip"]["median_ms"] for r in results])),
            "clip_p95_ms": float(np.median([r["clip"]["p95_ms"] for r in results])),
            "model_32_windows_median_ms": float(np.median([r["model_32_windows"]["median_ms"] for r in results])),
            "rounds": len(results),
        }
    first = {value: results[0]["probabilities"] for value, results in runs.items()}
    summary["max_probability_difference"] = max(abs(first["0"][k] - first["1"][k]) for k in first["0"])
    summary["clip_ratio_1_over_0"] = summary["1"]["clip_median_ms"] / summary["0"]["clip_median_ms"]
    summary["model_32_ratio_1_over_0"] = (summary["1"]["model_32_windows_median_ms"]
                                          / summary["0"]["model_32_windows_median_ms"])
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("mode", choices=["cold", "latency"])
    parser.add_argument("--t0", type=float, required=True, help="the parent's time.time() before Popen")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--clip", required=True)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    result = _child_cold(args) if args.mode == "cold" else _child_latency(args)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
