"""Does the recording level change the model's answer? (Research check, about a minute here.)

Every ``--every``-th RAVDESS speech clip (actors 1-20) is scored by the shipped bundle through
``Bundle.predict_clip`` as recorded, ``--gain`` dB quieter and ``--gain`` dB louder (clipped at
full scale). Among the clips that get an answer as recorded, it counts the quieter and louder
copies refused as "no speech" and the answers that differ from the clip's own. Writes
``models/level_check.json`` (:class:`ser.reporting.results.LevelCheckResults`; the model card
shows it while it describes the shipped ``model.keras``). From the repository root:

    python -m experiments.level_check --data ../shared/data/ravdess
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ser.errors import SERError
from ser.reporting.provenance import model_sha256, package_versions, utc_now
from ser.reporting.results import FILES, LEVEL_CHECK_COMMAND, SCHEMAS, LevelCheckResults
from ser.reporting.schema import write_results
from ser.serving.audio import decode_audio
from ser.serving.bundle import load_bundle
from ser.training.data import index_dataset


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--every", type=int, default=10, help="score every n-th speech clip")
    parser.add_argument("--gain", type=float, default=12.0, help="level change in dB, down and up")
    args = parser.parse_args()
    if args.gain <= 0 or args.every < 1:
        parser.error("--gain must be positive (dB) and --every at least 1")
    bundle = load_bundle(args.models)
    rate = bundle.config.sample_rate
    index = index_dataset(args.data)
    index = index[index["vocal_channel"] == "speech"].reset_index(drop=True).iloc[:: args.every]
    started = time.perf_counter()
    answers: dict[float, list[str | None]] = {0.0: [], -args.gain: [], args.gain: []}
    for row in index.itertuples():
        clean = decode_audio(row.path, sample_rate=rate)
        for gain, given in answers.items():
            audio = np.clip(clean * 10 ** (gain / 20), -1.0, 1.0).astype(np.float32)
            try:
                given.append(bundle.predict_clip(audio, sample_rate=rate).emotion)
            except SERError:  # refused as "no speech"
                given.append(None)
    answered = [position for position, answer in enumerate(answers[0.0]) if answer is not None]
    refused = {gain: sum(answers[gain][p] is None for p in answered) for gain in (-args.gain, args.gain)}
    pairs = [(answers[0.0][p], answers[gain][p]) for gain in (-args.gain, args.gain) for p in answered
             if answers[gain][p] is not None]
    command = LEVEL_CHECK_COMMAND + "".join(
        f" --{name} {value:g}" for name, value, default in (("every", args.every, 10), ("gain", args.gain, 12.0))
        if value != default
    )
    results = LevelCheckResults(
        schema=SCHEMAS[LevelCheckResults],
        model_sha256=model_sha256(args.models / "model.keras"),
        measured=utc_now(),
        command=command,
        versions=package_versions(),
        every=args.every,
        gain_db=args.gain,
        clips=len(index),
        answered=len(answered),
        refused_quieter=refused[-args.gain],
        refused_louder=refused[args.gain],
        compared=len(pairs),
        changed=sum(clean != other for clean, other in pairs),
    )
    write_results(args.models / FILES[LevelCheckResults][0], results)
    print(f"{results.changed} of {results.compared} answers changed; {results.refused_quieter} of "
          f"{results.answered} quieter copies refused ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
