"""Run a batch: expand the sources, skip what ``--out`` holds, score the rest, write as it comes.

Two engines score the files: ``process`` (this process, one batch after another) and ``ray``
(a Ray Data pool of actors, see :mod:`ser.batch.ray_engine`). Both yield batches of rows to
the same loop here, which writes each batch (timeline rows first, then the results, so a
kill between the two is repaired on resume), updates the progress bar and counts.

Example
-------
>>> from ser.batch.runner import BatchSettings, run_batch
>>> report = run_batch(["assets/examples"], settings=BatchSettings(out="results.parquet", engine="process"))
>>> report.scored + report.failed
16
"""

from __future__ import annotations

import collections
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ser.batch.results import Layout, SpeakerProfile, SpeakerReference
from ser.batch.sources import expand_sources
from ser.batch.writers import open_writer, timeline_path
from ser.config import read_json
from ser.errors import SERError

ENGINES = ("auto", "ray", "process")
SCALE_OUT_HINT = (
    "to score on every core or on a cluster, install Ray (pip install -r requirements-batch.txt) "
    "and run again (--workers N, --address HOST:PORT)"
)


@dataclasses.dataclass(frozen=True)
class BatchSettings:
    """How to run a batch (the ``python -m ser batch`` options).

    Attributes
    ----------
    out : path
        ``.parquet`` (a folder of parts), ``.csv`` or ``.jsonl``; an existing one is resumed.
    model : path, optional
        Bundle folder (default: the shipped model).
    timeline : bool
        Also write one row per model window of recordings longer than one window, to
        :func:`ser.batch.writers.timeline_path` of ``out``.
    reference : SpeakerReference or SpeakerProfile, optional
        Calibrate every answer to this speaker (``--reference``) or answer relative to their voice profile
        (``--profile``).
    batch_size : int
        Files per batch: the unit of work of a worker and of each write.
    engine : str
        ``auto`` (Ray when installed, else this process), ``ray`` or ``process``.
    workers : int, optional
        Ray actors (default: one per ``cpus_per_worker`` cores of the machine or cluster).
    cpus_per_worker : int
        Cores each Ray actor reserves (and lets TensorFlow use).
    address : str, optional
        An existing Ray cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``); default: a
        local Ray started for the run and stopped after it.
    progress : bool
        Show a progress bar on stderr.
    """

    out: str | Path
    model: str | Path | None = None
    timeline: bool = False
    reference: SpeakerReference | SpeakerProfile | None = None
    batch_size: int = 32
    engine: str = "auto"
    workers: int | None = None
    cpus_per_worker: int = 1
    address: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise SERError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.batch_size < 1:
            raise SERError(f"--batch-size must be at least 1, not {self.batch_size}")
        if self.workers is not None and self.workers < 1:
            raise SERError(f"--workers must be at least 1, not {self.workers}")
        if self.cpus_per_worker < 1:
            raise SERError(f"--cpus-per-worker must be at least 1, not {self.cpus_per_worker}")


@dataclasses.dataclass
class BatchReport:
    """What a run did (the end summary and the benchmark read it).

    Attributes
    ----------
    found : int
        Files the sources named.
    skipped : int
        Of those, already in ``out`` from an earlier run.
    scored, failed : int
        Files answered / written as error rows by this run.
    failures : Counter
        ``error_kind -> count`` of this run's failures.
    emotions : Counter
        ``emotion -> count`` of this run's answers.
    audio_seconds : float
        Decoded audio of this run's files.
    timeline_rows : int
        Window rows written.
    engine : str
        ``process`` or ``ray``; ``workers`` the pool size (1 in one process).
    wall_seconds : float
        From the call to the last write, start-up (Ray, bundle loads) included.
    first_batch_seconds : float or None
        From the call to the first written batch (start-up and one batch).
    first_batch_files : int
        Files in that first batch.
    written : list of (float, int)
        After each batch: seconds since the call, files written so far (the benchmark's
        steady rate is read from it).
    warnings : list of str
        Sources that matched nothing, a repaired output.
    """

    out: str
    found: int = 0
    skipped: int = 0
    scored: int = 0
    failed: int = 0
    failures: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    emotions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    audio_seconds: float = 0.0
    timeline_rows: int = 0
    engine: str = "process"
    workers: int = 1
    wall_seconds: float = 0.0
    first_batch_seconds: float | None = None
    first_batch_files: int = 0
    written: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> list[str]:
        """The end-of-run summary, one line each."""
        done = self.scored + self.failed
        rate = done / self.wall_seconds if self.wall_seconds > 0 else 0.0
        lines = [f"{done} files in {self.wall_seconds:.1f} s ({rate:.1f} files/s, "
                 f"{self.audio_seconds / max(self.wall_seconds, 1e-9):.1f} s of audio/s; engine: {self.engine}"
                 + (f", {self.workers} workers" if self.engine == "ray" else "") + f") -> {self.out}"]
        if self.skipped:
            lines.append(f"skipped {self.skipped} files already in {self.out}")
        lines.append(f"scored {self.scored}")
        if self.failed:
            reasons = ", ".join(f"{kind.replace('_', ' ')} {count}" for kind, count in self.failures.most_common())
            lines.append(f"failed {self.failed}: {reasons} (see the error column)")
        if self.emotions:
            lines.append("emotions: " + ", ".join(f"{name} {count}" for name, count in self.emotions.most_common()))
        if self.timeline_rows:
            lines.append(f"timeline: {self.timeline_rows} window rows -> {timeline_path(self.out)}")
        return lines


#: A batch as the engines yield it: the result rows and the timeline rows of its files.
Batch = tuple[list[dict[str, Any]], list[dict[str, Any]]]


class ProcessPipeline:
    """Scores ``paths`` in this process, ``settings.batch_size`` at a time (the bundle is loaded
    here, before the progress bar starts, so its rate and ETA measure scoring only)."""

    workers = 1

    def __init__(self, paths: list[str], *, settings: BatchSettings, bundle: Any) -> None:
        from ser.batch.scorer import Scorer

        self._paths = paths
        self._batch_size = settings.batch_size
        self._scorer = Scorer(bundle=bundle, timeline=settings.timeline, reference=settings.reference)

    def __iter__(self) -> Iterator[Batch]:
        from ser.batch.scorer import blas_threads

        layout = self._scorer.layout
        with blas_threads(1):  # restored when the run ends
            for start in range(0, len(self._paths), self._batch_size):
                results = self._scorer.score(self._paths[start : start + self._batch_size])
                yield ([layout.row(result) for result in results],
                       [row for result in results for row in layout.timeline_rows(result)])

    def close(self) -> None:
        """Nothing to stop in this process."""


def _ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def choose_engine(settings: BatchSettings, *, log: Callable[[str], None]) -> str:
    """``ray`` or ``process``; ``auto`` falls back to one process (saying how to scale out).

    Raises
    ------
    SERError
        If Ray was asked for (``--engine ray`` or ``--address``) but is not installed.
    """
    wants_ray = settings.engine == "ray" or settings.address is not None
    if settings.engine == "process" and settings.address is None:
        return "process"
    if _ray_available():
        return "ray"
    if wants_ray:
        raise SERError("Ray is not installed (or lacks Ray Data); pip install -r requirements-batch.txt")
    log(f"Ray is not installed: scoring in this one process; {SCALE_OUT_HINT}")
    return "process"


def _progress(total: int, *, enabled: bool) -> Any:
    from tqdm import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(total=total, unit="file", desc="scoring", file=sys.stderr, disable=not enabled or total == 0,
                mininterval=0.5 if interactive else 30.0, smoothing=0.05, dynamic_ncols=interactive)


def run_batch(sources: list[str], *, settings: BatchSettings, bundle: Any = None,
              log: Callable[[str], None] = lambda message: print(message, file=sys.stderr, flush=True)) -> BatchReport:
    """Score every audio file the sources name that ``settings.out`` does not hold yet.

    Parameters
    ----------
    sources : list of str
        Folders, globs, manifests or files (see :func:`ser.batch.sources.expand_sources`).
    settings : BatchSettings
    bundle : Bundle, optional
        An already loaded bundle for the ``process`` engine (saves a load; the benchmark).
    log : callable
        Where notes go (default: stderr).

    Returns
    -------
    BatchReport

    Raises
    ------
    SERError
        Bad options, an unreadable manifest, a bundle file missing, an output of another
        model, Ray asked for but absent.
    """
    started = time.perf_counter()
    from ser.serving.bundle import DEFAULT_BUNDLE

    model = Path(settings.model) if settings.model is not None else DEFAULT_BUNDLE
    if not (model / "labels.json").is_file():
        raise SERError(f"{model / 'labels.json'} is missing; train with `python -m ser train --out {model}`")
    if settings.reference is not None:
        # Checked here, once, so that a reference without speech stops the run before any worker
        # starts (each worker then computes the same adaptation from the same bytes).
        from ser.serving.bundle import load_bundle

        if bundle is None:
            bundle = load_bundle(model)  # kept: the process engine scores with it (no second load)
        adaptation = settings.reference.adaptation(bundle)
        if isinstance(settings.reference, SpeakerProfile):
            log(f"answers relative to the voice profile {settings.reference.name} ({', '.join(adaptation.enrolled)})")
        else:
            log(f"calibrated to the speaker: {adaptation.reference_seconds:.1f} s of reference speech read "
                f"{adaptation.reference_neutral:.0%} neutral before calibration")
            if adaptation.verdict is not None and not adaptation.verdict.fine:  # as predict --reference says it
                log(f"--reference: warning: {adaptation.verdict.message}")
    layout = Layout.for_run(read_json(model / "labels.json"), reference=settings.reference)
    found = expand_sources(sources)
    report = BatchReport(out=str(settings.out), found=len(found.paths), warnings=list(found.warnings))
    for warning in found.warnings:
        log(f"warning: {warning}")
    if not found.paths:
        raise SERError("the sources name no audio files; pass folders, globs, manifests or files")
    writer = open_writer(settings.out, columns=layout.columns, types=layout.column_types())
    timeline_writer = None
    done = writer.completed()
    if writer.repaired:
        report.warnings.append(f"{settings.out}: cut off a row left half-written by an interrupted run")
        log(f"note: {report.warnings[-1]}")
    if settings.timeline:
        timeline_writer = open_writer(timeline_path(settings.out), columns=layout.timeline_columns,
                                      types=layout.column_types(timeline=True))
        timeline_writer.completed()
        timeline_writer.keep_only(done)
    todo = [path for path in found.paths if path not in done]
    report.skipped = len(found.paths) - len(todo)
    if report.skipped:
        log(f"resuming: {report.skipped} of {len(found.paths)} files are already in {settings.out}")
    if not todo:
        report.wall_seconds = time.perf_counter() - started
        return report

    report.engine = choose_engine(settings, log=log)
    batches: Any
    if report.engine == "ray":
        from ser.batch.ray_engine import RayPipeline

        batches = RayPipeline(todo, settings=settings, model=model)
    else:
        batches = ProcessPipeline(todo, settings=settings, bundle=bundle if bundle is not None else model)
    report.workers = batches.workers
    progress = _progress(len(todo), enabled=settings.progress)
    try:
        for rows, windows in batches:
            if timeline_writer is not None:
                timeline_writer.write(windows)  # first: a kill before the rows below is repaired on resume
            writer.write(rows)
            if report.first_batch_seconds is None:
                report.first_batch_seconds = time.perf_counter() - started
                report.first_batch_files = len(rows)
            report.timeline_rows += len(windows)
            for row in rows:
                report.audio_seconds += row["duration_seconds"] or 0.0
                if row["error"] is None:
                    report.scored += 1
                    report.emotions[row["emotion"]] += 1
                else:
                    report.failed += 1
                    report.failures[row["error_kind"]] += 1
            report.written.append((time.perf_counter() - started, report.scored + report.failed))
            progress.update(len(rows))
            elapsed = max(progress.format_dict["elapsed"], 1e-9)
            progress.set_postfix_str(f"failed {report.failed}, {report.audio_seconds / elapsed:.0f} s audio/s",
                                     refresh=False)
    finally:
        progress.close()
        batches.close()  # stops the pipeline (and a local Ray started for it), also on an early exit
        writer.close()
        if timeline_writer is not None:
            timeline_writer.close()
    report.wall_seconds = time.perf_counter() - started
    if report.scored + report.failed != len(todo):
        raise SERError(f"only {report.scored + report.failed} of {len(todo)} files came back from the workers; "
                       "run the same command again to score the rest")
    return report
