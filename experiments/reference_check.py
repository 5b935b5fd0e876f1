"""How ordinary does a calibration reference sound to the shipped model? Sets the "does not sound
ordinary" threshold of :mod:`ser.serving.reference`.

A calibration reference is meant to be a person's ordinary voice (``app_calibration``, ``predict
--reference``). The check reads the shipped model's answer for the reference, exactly as
:func:`ser.serving.speaker.calibrate_bundle` computes it (the normalised geometric mean of the
pieces' calibrated probabilities), and takes its *ordinary share*: neutral + calm.

References measured (each as a person would give one, about 5-10 s):

- ``speechocean``: every speaker of speechocean762 (ordinary read English, children and
  adults, never acted), their clips joined until at least 6 s: ordinary voices, must not warn;
- ``ased-neutral``: every ASED speaker's first two neutral clips (Amharic, own rooms): ordinary
  voices the model finds unfamiliar, must not warn either;
- ``ased-angry`` / ``ased-happy``: the same speakers' first two angry / happy clips;
- ``ravdess-strong``: one strong-intensity clip (statement 1, repetition 1) per actor 1-20 of
  angry, happy, fearful and surprised (2-4 s, like the clip a user gave in issue 24).

Run from the repository root (about 5 minutes on 2 cores)::

    python -m experiments.reference_check --data ../shared/data

Writes ``runs/reference_check/summary.json``: per set, the quantiles of the ordinary share and the
share of references under each candidate threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "reference_check"
CANDIDATES = (0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1)


def _references(data: Path) -> dict[str, list[list[Path]]]:
    sets: dict[str, list[list[Path]]] = {}
    by_speaker: dict[str, list[Path]] = defaultdict(list)
    with open(data / "speechocean" / "speakers.csv", newline="") as stream:
        for row in csv.DictReader(stream):
            by_speaker[row["speaker"]].append(data / "speechocean" / row["file"])
    sets["speechocean"] = [sorted(paths) for _, paths in sorted(by_speaker.items())]
    for folder, name in (("01Neutral", "ased-neutral"), ("05Angry", "ased-angry"), ("03Happy", "ased-happy")):
        speakers: dict[str, list[Path]] = defaultdict(list)
        for path in sorted((data / "ased" / folder).glob("*.flac")):
            speakers[path.stem.split("-")[-1]].append(path)
        sets[name] = [paths[:2] for _, paths in sorted(speakers.items())]
    sets["ravdess-strong"] = [
        [data / "ravdess" / "speech" / f"Actor_{actor:02d}" / f"03-01-{code}-02-01-01-{actor:02d}.flac"]
        for code in ("03", "05", "06", "08") for actor in range(1, 21)
    ]
    return sets


def _verdict(bundle, paths: list[Path], *, join_seconds: float):
    """The :class:`ser.serving.reference.ReferenceVerdict` of one reference, calibrated exactly as the app
    and ``predict --reference`` calibrate (``calibrate_bundle`` on the joined recording); None when refused."""
    from ser.errors import SERError
    from ser.serving.analysis import waveform_to_wav
    from ser.serving.audio import decode_audio
    from ser.serving.speaker import calibrate_bundle

    rate = bundle.config.sample_rate
    waveforms, seconds = [], 0.0
    for path in paths:
        waveforms.append(decode_audio(path, sample_rate=rate))
        seconds += waveforms[-1].size / rate
        if seconds >= join_seconds:
            break
    gap = np.zeros(int(0.3 * rate), dtype=np.float32)
    joined = np.concatenate([part for waveform in waveforms for part in (waveform, gap)])
    try:
        return calibrate_bundle(bundle, references=[waveform_to_wav(joined, sample_rate=rate)]).verdict
    except SERError:
        return None


def main(argv: list[str] | None = None) -> None:
    from ser.serving.bundle import DEFAULT_BUNDLE, load_bundle

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args(argv)
    bundle = load_bundle(DEFAULT_BUNDLE)
    summary = {}
    for name, references in _references(args.data).items():
        shares, seconds, tops, refused = [], [], defaultdict(int), 0
        for paths in references:
            verdict = _verdict(bundle, paths, join_seconds=6.0 if name == "speechocean" else 0.0)
            if verdict is None:
                refused += 1
                continue
            shares.append(verdict.ordinary_share)
            seconds.append(verdict.seconds)
            tops[verdict.heard_as] += 1
        values = np.array(shares)
        summary[name] = {
            "references": len(values),
            "refused": refused,
            "speech_seconds_median": round(float(np.median(seconds)), 2),
            "quantiles": {f"{q:g}": round(float(np.quantile(values, q)), 4) for q in (0.0, 0.01, 0.05, 0.1, 0.5)},
            "under": {f"{t:g}": round(float(np.mean(values < t)), 4) for t in CANDIDATES},
            "top_emotion": dict(tops),
        }
        print(name, json.dumps(summary[name]), flush=True)
    RUNS.mkdir(parents=True, exist_ok=True)
    (RUNS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
