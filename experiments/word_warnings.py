"""How often does the "unlike the training data" warning fire on a single word? (issue 22, item 4)

The shipped detector (``models/unfamiliarity.npz``) on the functionals of one seeded 0.5-1.2 s cut of every clip
(the cuts ``python -m ser loco`` caches, :func:`ser.training.loco.load_cuts`), beside the same clips whole (the
functionals ``python -m ser familiarity`` caches). Its thresholds were set on whole clips; the detector's RAVDESS
statistics include every actor, so the RAVDESS figures are of voices it was fitted on, not of unseen ones::

    python -m experiments.word_warnings --data ../shared/data     # seconds here, once ser loco cached the cuts
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from ser.serving.unfamiliarity import CHECKS, load_unfamiliarity
    from ser.training.loco import corpus_table, load_cuts, load_functional_clips

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    args = parser.parse_args(argv)

    detector = load_unfamiliarity(args.models / "unfamiliarity.npz")
    table = corpus_table(args.data, ordinary=True)
    words, _ = load_cuts(table, cache=args.cache, log=lambda message: print(message, file=sys.stderr))
    whole = load_functional_clips(table, cache=args.cache).speeds[1.0]
    corpus = table["corpus"].to_numpy()
    print(f"{'set':24s} {'clips':>6s} " + " ".join(f"{check:>16s}" for check in CHECKS) + f" {'any':>6s}")
    for name in dict.fromkeys(corpus):
        for length, values in (("whole", whole), ("word", words)):
            rows = (corpus == name) & np.isfinite(values).all(axis=1)
            flags = detector.flags(detector.statistics(values[rows]))
            print(f"{name + ', ' + length:24s} {rows.sum():6d} "
                  + " ".join(f"{flags[:, column].mean():16.1%}" for column in range(len(CHECKS)))
                  + f" {flags.any(axis=1).mean():6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
