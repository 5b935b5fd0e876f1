"""Batch throughput: ``python -m ser batch`` in one process vs on Ray with 1 and 2 workers.

Every configuration runs the whole batch path (sources, scoring, Parquet writes) over the
same clips into a fresh output, ``repeats`` times, interleaved (process, Ray 1, Ray 2,
process, ...) so that background load hits all alike; the medians are reported. Two rates:

- end to end: files / wall time from the call to the last write, start-up included (a
  local Ray, each worker importing TensorFlow and loading the bundle);
- steady: from the write that passes 20% of the files to the last one, when start-up is
  paid and every worker is busy: what a long run approaches. Per core = steady / cores
  used (workers for Ray; the one process uses every core of the machine).

Run alone (prints the table and the JSON; ``python -m bench`` stores it as ``batch`` in
``bench/results.json``)::

    python -m bench.batch --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common

#: Share of the files written before the steady rate is measured.
STEADY_AFTER = 0.2


def _run_once(manifest: Path, out: Path, *, engine: str, workers: int | None, bundle_path: Path, bundle: Any,
              batch_size: int) -> dict[str, Any]:
    from ser.batch import BatchSettings, run_batch

    settings = BatchSettings(out=out, model=bundle_path, engine=engine, workers=workers, batch_size=batch_size,
                             progress=False)
    load = common.load_average()
    report = run_batch([str(manifest)], settings=settings, bundle=bundle, log=lambda message: None)
    files = report.scored + report.failed
    # Steady rate: from the first write at or past STEADY_AFTER of the files to the last write
    # (start-up and the first batches of every worker are behind by then).
    start = next(((seconds, done) for seconds, done in report.written if done >= STEADY_AFTER * files),
                 report.written[0])
    steady_files = files - start[1]
    steady_seconds = report.written[-1][0] - start[0]
    return {
        "files": files,
        "failed": report.failed,
        "wall_s": report.wall_seconds,
        "first_batch_s": report.first_batch_seconds,
        "files_per_s": files / report.wall_seconds,
        "steady_files_per_s": steady_files / steady_seconds if steady_files and steady_seconds > 0 else None,
        "audio_s": report.audio_seconds,
        "load_average_before": load,
    }


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def measure(*, bundle_path: Path, paths: list[Path], source: str, repeats: int, workers: tuple[int, ...] = (1, 2),
            ray: bool = True, bundle: Any = None, batch_size: int = 32) -> dict[str, Any]:
    """Median rates of each configuration over ``repeats`` interleaved runs.

    Parameters
    ----------
    bundle_path : Path
        The bundle every engine loads (its own load is part of the end-to-end time).
    paths : list of Path
        The clips.
    ray : bool
        Also measure the Ray pipeline with each of ``workers`` (skipped when Ray is absent).
    bundle : Bundle, optional
        A loaded bundle for the one-process runs (quick mode: saves a load per run).
    """
    configurations: list[tuple[str, str, int | None]] = [("process", "process", None)]
    ray_note = None
    if ray:
        try:
            import ray as _ray  # noqa: F401
        except ImportError:
            ray_note = "Ray is not installed (pip install -r requirements-batch.txt)"
        else:
            configurations += [(f"ray_{count}", "ray", count) for count in workers]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in configurations}
    with tempfile.TemporaryDirectory(prefix="ser-bench-batch-") as folder:
        manifest = Path(folder) / "clips.txt"
        manifest.write_text("\n".join(str(path) for path in paths) + "\n", encoding="utf-8")
        for repeat in range(repeats):
            for name, engine, count in configurations:
                print(f"[bench] batch {name}, run {repeat + 1}/{repeats}", file=sys.stderr, flush=True)
                runs[name].append(_run_once(manifest, Path(folder) / f"{name}-{repeat}.parquet", engine=engine,
                                            workers=count, bundle_path=bundle_path,
                                            bundle=bundle if engine == "process" else None, batch_size=batch_size))
    cores = os.cpu_count() or 1
    mean_clip_s = runs["process"][0]["audio_s"] / max(runs["process"][0]["files"], 1)
    summary: dict[str, Any] = {
        "source": source,
        "clips": len(paths),
        "mean_clip_s": mean_clip_s,
        "repeats": repeats,
        "batch_size": batch_size,
        "cores": cores,
        "configurations": {},
        "runs": runs,
    }
    if ray_note:
        summary["ray"] = {"not_measured": ray_note}
    for name, engine, count in configurations:
        steady = _median(runs[name], "steady_files_per_s")
        used_cores = cores if engine == "process" else count
        summary["configurations"][name] = {
            "engine": engine,
            "workers": count or 1,
            "cores_used": used_cores,
            "files_per_s": _median(runs[name], "files_per_s"),
            "steady_files_per_s": steady,
            "steady_audio_s_per_s": steady * mean_clip_s if steady else None,
            "steady_files_per_s_per_core": steady / used_cores if steady else None,
            "first_batch_s": _median(runs[name], "first_batch_s"),
            "wall_s": _median(runs[name], "wall_s"),
        }
    return summary


def describe(batch: dict[str, Any]) -> str:
    """A small Markdown table of :func:`measure`'s medians."""
    if "not_measured" in batch:
        return f"batch scoring: not measured ({batch['not_measured']})"
    lines = [f"Batch scoring, {batch['clips']} {batch['source']} clips (mean {batch['mean_clip_s']:.2f} s), "
             f"batch size {batch['batch_size']}, medians of {batch['repeats']} runs on {batch['cores']} cores:",
             "",
             "| engine | end to end files/s | steady files/s | steady audio s/s | steady files/s per core "
             "| first batch after |",
             "|---|---|---|---|---|---|"]

    def number(value: float | None, digits: int = 1) -> str:
        return "n/a" if value is None else f"{value:.{digits}f}"

    for row in batch["configurations"].values():
        label = "one process" if row["engine"] == "process" else f"Ray, {row['workers']} worker(s)"
        lines.append(f"| {label} | {number(row['files_per_s'])} | {number(row['steady_files_per_s'])} | "
                     f"{number(row['steady_audio_s_per_s'], 0)} | {number(row['steady_files_per_s_per_core'])} | "
                     f"{number(row['first_batch_s'])} s |")
    if "ray" in batch:
        lines.append(f"Ray: not measured ({batch['ray']['not_measured']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.batch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=common.ROOT / "models", help="model bundle folder")
    parser.add_argument("--data", type=Path, default=common.SHARED_SPEECH,
                        help="speech clips (generated clips when the folder is absent)")
    parser.add_argument("--clips", type=int, default=None, help="at most this many clips (default all)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (medians reported)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    import ser  # noqa: F401

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = common.machine()  # before the runs: its load average and commit are the start's
    with tempfile.TemporaryDirectory(prefix="ser-bench-clips-") as folder:
        paths = common.speech_clips(args.data, limit=args.clips)
        source = "RAVDESS speech" if paths else "generated"
        paths = paths or common.generated_clips(Path(folder), count=args.clips or 48)
        batch = measure(bundle_path=args.bundle, paths=paths, source=source, repeats=args.repeats,
                        batch_size=args.batch_size)
    batch["generated"] = started
    batch["machine"] = machine
    print(describe(batch))
    text = json.dumps(batch, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return batch


if __name__ == "__main__":
    main()
