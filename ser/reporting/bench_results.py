"""The part of ``bench/results.json`` the model card shows: the clip latency, when and under what load.

``python -m bench`` (``make bench``) owns that file and its larger format; this module only reads it.

Example
-------
>>> from ser.reporting.bench_results import DEFAULT_BENCH, load_bench
>>> load_bench(DEFAULT_BENCH).clip_median_ms  # doctest: +SKIP
54.377002001274384
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ser.config import read_json
from ser.reporting.schema import ResultsError, from_json

BENCH_COMMAND = "make bench"
#: The bench's output, next to the package (``python -m bench`` writes it).
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "bench" / "results.json"


@dataclasses.dataclass(frozen=True)
class BenchResults:
    """The clip latency of ``bench/results.json`` (a ``clip_seconds`` clip), when and under what load
    it was measured."""

    measured: str
    cores: int
    load_average_at_start: list[float]
    clip_seconds: float
    clip_median_ms: float
    clip_min_ms: float
    clip_median_ms_target: float
    model_sha256: str | None


def load_bench(path: Path) -> BenchResults:
    """Read the clip latency from ``bench/results.json``; other keys (the bench's own) are ignored.

    Raises
    ------
    ResultsError
        When the file is missing or lacks a key the card needs: run ``make bench``.
    """
    if not Path(path).is_file():
        raise ResultsError(f"{path} is missing; `{BENCH_COMMAND}` writes it")
    data = read_json(path)
    try:
        clip = data["results"]["clip"]
        picked = {
            "measured": data["generated"],
            "cores": data["machine"]["cores"],
            "load_average_at_start": data["machine"]["load_average_at_start"],
            "clip_seconds": clip["seconds"],
            "clip_median_ms": clip["median_ms"],
            "clip_min_ms": clip["min_ms"],
            "clip_median_ms_target": data["targets"]["clip_median_ms"],
            "model_sha256": (data.get("bundle") or {}).get("model_sha256"),
        }
    except (KeyError, TypeError) as error:
        raise ResultsError(f"{path} has no {error} entry; rerun `{BENCH_COMMAND}` to rewrite it") from None
    return from_json(BenchResults, picked, source=str(path), command=BENCH_COMMAND)
