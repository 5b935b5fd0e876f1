"""``python -m bench``: run every measurement, print the table, write ``bench/results.json``."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common, report  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny repeat counts, few clips (for tests; numbers are not meaningful)")
    parser.add_argument("--bundle", type=Path, default=common.ROOT / "models", help="model bundle folder")
    parser.add_argument("--data", type=Path, default=common.SHARED_SPEECH,
                        help="speech clips for throughput (generated clips when the folder is absent)")
    parser.add_argument("--clips", type=int, default=None, help="at most this many clips for throughput (default all)")
    parser.add_argument("--compare-files", type=int, default=100,
                        help="clips scored by both ours and the reference pipeline")
    parser.add_argument("--out", type=Path, default=common.RESULTS, help="where to write the JSON results")
    parser.add_argument("--readme", action="store_true", help="also write the table into docs/speed.md")
    parser.add_argument("--render", action="store_true",
                        help="measure nothing: print the table of the existing --out file (with --readme: write it)")
    parser.add_argument("--no-app", action="store_true", help="skip `streamlit run` (items 4b and 5)")
    parser.add_argument("--no-browser", action="store_true", help="start the app but do not drive it in Chromium")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold-start processes")
    parser.add_argument("--no-onednn", action="store_true", help="skip the TF_ENABLE_ONEDNN_OPTS 0-vs-1 processes")
    parser.add_argument("--no-batch", action="store_true", help="skip batch scoring (one process vs Ray)")
    parser.add_argument("--only", choices=["long_file", "voice_profile"], default=None,
                        help="measure this case alone and merge it into the existing --out file (long_file: "
                             "a 10-minute recording answered as the app answers an upload; voice_profile: a "
                             "profile built from 20 clips and applied to a 4 s clip)")
    parser.add_argument("--long-runs", type=int, default=None,
                        help="timed runs of the 10-minute file (default 3; 1 with --quick)")
    parser.add_argument("--long-seconds", type=float, default=None,
                        help="length of the long file (default 600 s; 20 s with --quick)")
    return parser.parse_args(argv)


def plan(quick: bool) -> dict[str, int]:
    """Repeat counts: a full run, or tiny ones for ``--quick``."""
    if quick:
        return dict(warmup=1, repeats=3, timeline_repeats=1, throughput_clips=4, compare_files=2,
                    cold_runs=1, onednn_rounds=1, onednn_repeats=3, generated=4, long_runs=1, long_seconds=20)
    return dict(warmup=5, repeats=50, timeline_repeats=7, throughput_clips=0, compare_files=-1,
                cold_runs=3, onednn_rounds=2, onednn_repeats=30, generated=48, long_runs=3, long_seconds=600)


def _step(name: str) -> float:
    print(f"[bench] {name} …", file=sys.stderr, flush=True)
    return time.perf_counter()


def measure_long_file(args: argparse.Namespace, *, bundle: Any, work: Path) -> dict[str, Any]:
    """Item 8: a seeded synthetic recording with pauses (10 minutes in a full run), answered by
    ``analyze_audio`` as the app answers an upload; its own time, load and commit recorded with it."""
    import dataclasses

    from bench import library

    counts = plan(args.quick)
    seconds = args.long_seconds or counts["long_seconds"]
    _step(f"8. a {seconds:g} s recording answered as the app does ({args.long_runs or counts['long_runs']} runs)")
    path = common.make_long_synthetic_recording(work / f"synthetic-{seconds:g}s.wav", seconds=seconds, seed=0)
    result = library.long_file(bundle, path, runs=args.long_runs or counts["long_runs"],
                               target_s=report.TARGETS["long_file_s"])
    machine = common.machine()
    return dataclasses.asdict(result) | {
        "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "git_commit": machine["git_commit"],
        "model_sha256": common.bundle_info(bundle)["model_sha256"],
        "how": "python -m bench --only long_file: ser.serving.analysis.analyze_audio on the file's bytes "
               "(bench.common.make_long_synthetic_recording, seed 0, 48 kHz 16-bit WAV)",
    }


def run_only(args: argparse.Namespace) -> dict[str, Any]:
    """``--only``: measure one case and put it into the existing results (a fresh file when there is none)."""
    from ser.serving.bundle import load_bundle

    if args.out.is_file():
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        results = {"generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   "mode": "quick" if args.quick else "full", "machine": common.machine(), "results": {}}
    results["targets"] = {**results.get("targets", {}), **report.TARGETS}
    _step("loading the bundle")
    bundle = load_bundle(args.bundle)
    results.setdefault("bundle", common.bundle_info(bundle))  # a full run's entry describes its own model
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as folder:
        if args.only == "voice_profile":
            from bench import library

            counts = plan(args.quick)
            clip = common.make_clip(Path(folder) / "clip-4s.flac", seconds=4.0, sources=common.source_clips(args.data))
            paths = common.enrolment_clips(common.speech_clips(args.data, limit=20)
                                           or common.generated_clips(Path(folder) / "generated", count=20))
            _step("a voice profile: built from 20 clips, applied to the 4 s clip")
            results["results"]["voice_profile"] = library.voice_profile(
                bundle, paths, clip, warmup=counts["warmup"], repeats=max(3, counts["repeats"] // 2)) | {
                "measured": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "load": os.getloadavg()[0]}
        else:
            results["results"]["long_file"] = measure_long_file(args, bundle=bundle, work=Path(folder))
    return results


def run(args: argparse.Namespace) -> dict[str, Any]:
    from bench import child, library, server
    from ser.serving.bundle import load_bundle

    counts = plan(args.quick)
    results: dict[str, Any] = {
        "generated": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "machine": common.machine(),
        "targets": report.TARGETS,
        "results": {},
    }
    measured = results["results"]
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as folder:
        work = Path(folder)
        sources = common.source_clips(args.data)
        clip = common.make_clip(work / "clip-4s.flac", seconds=4.0, sources=sources)
        clip_48k = common.make_clip(work / "clip-4s-48k.wav", seconds=4.0, sources=sources, sample_rate=48000)
        recording = common.make_recording(work / "recording-60s.flac", seconds=60.0, sources=sources)
        paths = common.speech_clips(args.data, limit=args.clips or counts["throughput_clips"] or None)
        source = f"RAVDESS speech ({args.data})" if paths else "generated"
        if not paths:
            paths = common.generated_clips(work / "generated", count=counts["generated"])
        source = "RAVDESS speech" if source.startswith("RAVDESS") else "generated"

        _step("loading the bundle")
        bundle = load_bundle(args.bundle)
        results["bundle"] = common.bundle_info(bundle)
        w, n = counts["warmup"], counts["repeats"]

        _step("1. one 4 s clip")
        measured["clip"] = library.single_clip(bundle, clip, warmup=w, repeats=n)
        measured["clip_48k_wav"] = library.single_clip(bundle, clip_48k, warmup=w, repeats=max(3, n // 2))
        measured["clip_routed"] = library.routed_clip(bundle, clip, warmup=w, repeats=max(3, n // 2))
        _step("1c. a voice profile: built from 20 clips, applied to the 4 s clip")
        measured["voice_profile"] = library.voice_profile(bundle, common.enrolment_clips(paths), clip, warmup=w,
                                                          repeats=max(3, n // 2))
        _step("2. timeline of a 60 s recording")
        measured["timeline"] = library.timeline(bundle, recording, warmup=1, repeats=counts["timeline_repeats"])
        _step(f"3. throughput over {len(paths)} {source} clips")
        measured["throughput"] = library.throughput(bundle, paths, source=source)
        compare = args.compare_files if counts["compare_files"] < 0 else counts["compare_files"]
        compare_paths = common.speech_clips(args.data, limit=compare) if compare else []
        compare_paths = compare_paths or paths[:compare]
        _step(f"6. reference pipeline, same 4 s clip and {len(compare_paths)} clips")
        measured["reference"] = library.versus_reference(bundle, clip, compare_paths, warmup=w,
                                                         repeats=max(3, n // 2))
        if args.no_batch:
            measured["batch"] = {"not_measured": "--no-batch"}
        else:
            _step(f"7. batch scoring over {len(paths)} {source} clips: one process vs Ray (1 and 2 workers)")
            from bench import batch

            # Quick mode: the one-process path only, with the loaded bundle (Ray's start-up is ~20 s).
            measured["batch"] = batch.measure(bundle_path=args.bundle, paths=paths, source=source,
                                              repeats=1 if args.quick else 3, ray=not args.quick,
                                              bundle=bundle if args.quick else None)
        measured["long_file"] = measure_long_file(args, bundle=bundle, work=work)
        results["bench_process_peak_rss_mb"] = library.own_peak_rss_mb()

        if args.no_cold:
            measured["cold_start"] = {"not_measured": "--no-cold"}
        else:
            _step("4. cold start (new processes)")
            measured["cold_start"] = child.cold_start(args.bundle, clip, repeats=counts["cold_runs"])
        if args.no_onednn:
            measured["onednn"] = {"not_measured": "--no-onednn"}
        else:
            _step("TF_ENABLE_ONEDNN_OPTS 0 vs 1 (new processes)")
            measured["onednn"] = child.onednn(args.bundle, clip, rounds=counts["onednn_rounds"], warmup=w,
                                              repeats=counts["onednn_repeats"])
        if args.no_app:
            measured["app"] = {"not_measured": "--no-app"}
        else:
            _step("4-5. the app under `streamlit run`")
            measured["app"] = server.measure_app(clip=clip, long_clip=recording, bundle_path=args.bundle.resolve(),
                                                 browser=not args.no_browser)
    results["load_average_at_end"] = common.load_average()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.render:
        results = json.loads(args.out.read_text(encoding="utf-8"))
    else:
        results = run_only(args) if args.only else run(args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.describe(results))
    print()
    print(report.table(results))
    if "batch" in results["results"]:
        from bench import batch

        print()
        print(batch.describe(results["results"]["batch"]))
    print(f"\n{'read' if args.render else 'written'}: {args.out}")
    if args.readme:
        report.update_readme(common.ROOT / "docs" / "speed.md", results)
        print("docs/speed.md: bench table updated")
    return results


if __name__ == "__main__":
    main()
