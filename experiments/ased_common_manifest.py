"""A CSV manifest of ASED's two common sentences only: the clips whose words do not give the emotion away.

ASED's sentences 03-07 of each emotion folder are spoken in that emotion only, so a model trained on
them can learn the Amharic words instead of the voice; sentences 01 and 02 are spoken in all five
emotions (:data:`ser.training.data.ASED_COMMON_SENTENCES`, where the choice of numbers is justified).
The manifest (``path,emotion,speaker,gender``; paths relative to the manifest) lets ``ser train``
use those clips as a corpus of their own, e.g. jointly with RAVDESS. Its corpus name is the file's
stem, so speakers become ``ased_common-01`` ... and cannot collide with RAVDESS's or ASED's ids.
Each speaker's gender is the majority over all their ASED files (as :func:`ser.training.data.index_ased`).

From the repository root (``runs/`` is git-ignored)::

    python -m experiments.ased_common_manifest --ased ../shared/data/ased --out runs/ased_common.csv
    python -m ser train --data ../shared/data/ravdess --data runs/ased_common.csv --folds 1 --out /tmp/joint-common
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path

import pandas as pd

from ser.training.data import index_ased


def common_sentence_rows(table: pd.DataFrame, *, manifest_folder: Path) -> list[dict[str, str]]:
    """Manifest rows for the common-sentence clips of an ASED table (:func:`index_ased`).

    Returns
    -------
    list of dict
        ``path`` (relative to ``manifest_folder``), ``emotion``, ``speaker`` (the two-digit ASED
        number) and ``gender``, in the table's order.
    """
    common = table[table["common_sentence"].fillna(False).astype(bool)]
    return [
        {
            "path": os.path.relpath(Path(path).resolve(), manifest_folder.resolve()),
            "emotion": emotion,
            "speaker": str(speaker).rsplit("-", 1)[-1],
            "gender": gender or "",
        }
        for path, emotion, speaker, gender in zip(
            common["path"], common["emotion"], common["speaker"], common["gender"], strict=True
        )
    ]


def write_manifest(*, ased: Path, out: Path) -> int:
    """Write the common-sentence manifest of the ASED folder ``ased`` to ``out``; returns the number of clips."""
    rows = common_sentence_rows(index_ased(ased), manifest_folder=out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "speaker", "gender"])
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ased", type=Path, required=True, help="the ASED folder (01Neutral ... 05Angry)")
    parser.add_argument("--out", type=Path, default=Path("runs/ased_common.csv"), help="manifest to write")
    args = parser.parse_args(argv)
    count = write_manifest(ased=args.ased, out=args.out)
    print(f"{count} common-sentence clips written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
