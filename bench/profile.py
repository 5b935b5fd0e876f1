"""``python -m bench.profile``: where the time of one prediction goes (pyinstrument).

Profiles, in this process, the first prediction after ``load_bundle`` (what a cold start
pays beyond the imports) and then ``--repeats`` predictions of a 4 s clip (the steady
state), and prints pyinstrument's call trees. pyinstrument is in requirements-dev.txt.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import common  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--bundle", type=Path, default=common.ROOT / "models")
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--all", action="store_true", help="show library frames too")
    args = parser.parse_args(argv)

    from pyinstrument import Profiler

    import ser  # noqa: F401
    from bench.library import predict_file
    from ser.serving.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="ser-profile-") as folder:
        clip = common.make_clip(Path(folder) / "clip-4s.flac", seconds=4.0, sources=common.source_clips())
        bundle = load_bundle(args.bundle)
        for title, repeats in (("first prediction after load_bundle", 1), (f"{args.repeats} predictions", 0)):
            if repeats == 0:
                repeats = args.repeats
                for _ in range(3):  # warm-up
                    predict_file(bundle, clip)
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(repeats):
                predict_file(bundle, clip)
            profiler.stop()
            print(f"=== {title} ===")
            print(profiler.output_text(unicode=False, color=False, show_all=args.all))


if __name__ == "__main__":
    main()
