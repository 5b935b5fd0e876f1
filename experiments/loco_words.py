"""Does training on word-length cuts stop a single word being pulled towards one emotion? (issue 22, item 4)

Leave one corpus out exactly as ``python -m ser loco`` does (:mod:`ser.training.loco`), twice: the
recipe as it is, and the recipe with ``word_copies`` (one 0.5-1.2 s cut of every *training* clip added
as a training row, labelled as its clip). The left-out corpus's own cuts are only ever scored. Prints,
per left-out corpus, the sentence and word figures of both, and the answer the words are pulled to::

    python -m experiments.loco_words --data ../shared/data      # ~10 min here, functionals and cuts cached
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread: the other core is busy on this machine

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    from ser.loco_cli import score_rows
    from ser.training.linear_views import LinearRecipe
    from ser.training.loco import CORPORA, corpus_table, leave_out, load_cuts, load_functional_clips, speechocean_ages

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "loco_words.json")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    table = corpus_table(args.data)
    clips = load_functional_clips(table, cache=args.cache, ages=speechocean_ages(args.data))
    cuts, _ = load_cuts(table, cache=args.cache, log=log)
    clips.words = cuts
    out = {}
    for name, recipe in (("as is", LinearRecipe()), ("with word copies", LinearRecipe(word_copies=True))):
        for left_out in CORPORA:
            run = leave_out(clips, left_out, recipe=recipe, cuts=cuts, log=log)
            rows = score_rows(clips, left_out=left_out, answered_by="recipe", trained_on=run["trained_on"],
                              rows=run["rows"], allowed=run["allowed"],
                              answers={"sentence": run["sentence"], "word": run["cut"]})
            for row in rows:
                key = f"{name} | {left_out} | {row.subset} | {row.length}"
                out[key] = dataclasses.asdict(row.scores)
                scores = row.scores
                share = max(scores.answer_share, key=scores.answer_share.get)
                extra = (f" neutral/calm {scores.neutral_or_calm_share:.3f} alarms {scores.false_alarm_share:.3f}"
                         if scores.neutral_or_calm_share is not None else "")
                uar = "-" if scores.uar is None else f"{scores.uar:.3f}"
                print(f"{key}: accuracy {scores.accuracy:.3f} UAR {uar}{extra} largest {share} "
                      f"{scores.answer_share[share]:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"minutes": round((time.perf_counter() - started) / 60, 1), "rows": out},
                                   indent=1) + "\n", encoding="utf-8")
    log(f"{(time.perf_counter() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
