"""``python -m bench.critical_path``: one 4 s clip answered three ways, interleaved in this process.

What waits for openSMILE in ``Bundle.predict_recording`` (issue 22 item 6), each variant's answer
to the same clip (decode + ``predict_clip``, as ``bench.library.predict_file``):

``original``
    the whole fused model called once the functionals are back, on an openSMILE engine built
    inside the extraction (the code before the change);
``split``
    the CNN views scored while openSMILE runs, then the functional views of one row
    (:mod:`ser.serving.forward`), engine still built inside the extraction;
``split_spare``
    as ``split``, on an engine built ahead in the background (what the library does now).

The variants alternate call by call (a busy machine slows them alike); prints medians and their
ratios to ``original`` as JSON. Timings on this shared 2-core machine swing with its load: the
ratios are the numbers to compare. Nothing is written to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402


def compare(bundle: Any, clip: Path, *, warmup: int, repeats: int) -> dict[str, Any]:
    """Interleaved medians of the three variants on ``clip`` (see the module docstring)."""
    from bench.library import predict_file
    from ser.serving import functionals
    from ser.serving.forward import ModelCalls

    whole_calls = ModelCalls(model=bundle.model)
    whole_calls.split = None  # the model called whole, after the functionals
    whole = copy.copy(bundle)
    whole.__dict__.update(_calls=whole_calls, _lock=threading.Lock())
    engines = functionals._ENGINES
    take, refill = engines.take, engines.refill
    fresh = {"on": False}
    # Instance attributes over the methods: an engine built inside each extraction while "on".
    engines.take = lambda name, rate: engines.build(name, rate) if fresh["on"] else take(name, rate)
    engines.refill = lambda name, rate: None if fresh["on"] else refill(name, rate)

    def variant(answering: Any, *, fresh_engine: bool) -> Any:
        def run() -> Any:
            fresh["on"] = fresh_engine
            return predict_file(answering, clip)

        return run

    runs = {"original": variant(whole, fresh_engine=True), "split": variant(bundle, fresh_engine=True),
            "split_spare": variant(bundle, fresh_engine=False)}
    try:
        emotions = {name: run().emotion for name, run in runs.items()}
        if len(set(emotions.values())) != 1:
            raise RuntimeError(f"the variants answer differently: {emotions}")
        load_before = common.load_average()
        summary = common.interleaved(runs, warmup=warmup, repeats=repeats)
    finally:
        del engines.take, engines.refill
    base = summary["original"]["median_ms"]
    return {"file": clip.name, "load_average": [load_before, common.load_average()], **summary,
            "median_ratio_to_original": {name: summary[name]["median_ms"] / base for name in summary}}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.critical_path", description=__doc__)
    parser.add_argument("--bundle", type=Path, default=common.ROOT / "models")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls of each variant")
    args = parser.parse_args(argv)

    from ser.serving.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="ser-critical-path-") as folder:
        clip = common.make_clip(Path(folder) / "clip-4s.flac", seconds=4.0, sources=common.source_clips())
        result = compare(load_bundle(args.bundle), clip, warmup=args.warmup, repeats=args.repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
