"""``python -m ser batch SOURCE... --out RESULTS``: the subcommand's options and entry point.

Importing this module is cheap (argparse only): ``python -m ser`` registers the subcommand
on every start, and neither Ray nor TensorFlow is imported until a batch runs.

Examples
--------
Every audio file under a folder, on a local Ray with one worker per core::

    python -m ser batch ../shared/data/ravdess/speech --out results.parquet

A manifest, with timelines of long recordings, on an existing cluster with 16 workers::

    python -m ser batch calls.csv --out calls.jsonl --timeline --address auto --workers 16
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ser.batch.writers import FORMATS
from ser.errors import SERError


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``batch`` on the ``python -m ser`` subparsers and return its parser."""
    parser = commands.add_parser(
        "batch",
        help="score many files, resumably, on Ray or in one process",
        description="Score every audio file under folders, globs or manifests into one results table; "
                    "re-running with the same --out skips the files it already holds.",
    )
    parser.add_argument("sources", nargs="+", metavar="SOURCE",
                        help="folder, glob ('data/**/*.wav'), manifest (.csv with a 'path' column, or .txt "
                             "with one path per line) or audio file")
    parser.add_argument("--out", required=True, type=Path,
                        help=f"results file, format by extension: {', '.join(FORMATS)} (.parquet is a folder "
                             "of parts); an existing one is resumed")
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped one)")
    parser.add_argument("--timeline", action="store_true",
                        help="also write one row per model window of recordings longer than one window "
                             "(to RESULTS with .timeline before the extension)")
    parser.add_argument("--reference", type=Path, action="append", default=None, metavar="FILE",
                        help="recording of the speaker's ordinary voice to calibrate to (repeatable)")
    parser.add_argument("--profile", type=Path, default=None, metavar="PROFILE.json",
                        help="a voice profile (python -m ser profile): answers relative to that person's voice")
    parser.add_argument("--workers", type=int, default=None,
                        help="Ray workers, each loading the model once (default: one per core)")
    parser.add_argument("--cpus-per-worker", type=int, default=1, help="cores each Ray worker uses (default 1)")
    parser.add_argument("--address", default=None,
                        help="join this Ray cluster ('auto', HOST:PORT or ray://HOST:PORT) instead of "
                             "starting a local Ray")
    parser.add_argument("--engine", choices=("auto", "ray", "process"), default="auto",
                        help="'auto': Ray when installed, else this process (default)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="files per batch: a worker's unit of work and of each write (default 32)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def command_batch(args: argparse.Namespace) -> int:
    """Run the batch; print the summary on stdout. 0 when every file has a row (failed files
    included), 2 when the run itself could not go on (the message says why)."""
    from ser.batch.results import SpeakerProfile, SpeakerReference
    from ser.batch.runner import BatchSettings, run_batch

    if args.reference and args.profile:
        raise SERError("--reference and --profile: a profile already holds the speaker's neutral voice; "
                       "give one of them")
    reference = SpeakerReference.from_files(args.reference) if args.reference else None
    if args.profile:
        reference = SpeakerProfile.from_file(args.profile)
    settings = BatchSettings(
        out=args.out, model=args.model, timeline=args.timeline, reference=reference, batch_size=args.batch_size,
        engine=args.engine, workers=args.workers, cpus_per_worker=args.cpus_per_worker, address=args.address,
        progress=not args.no_progress,
    )
    report = run_batch(args.sources, settings=settings)
    print("\n".join(report.summary()), flush=True)
    return 0
