"""How does the model hold up off the studio: noise, phone line, room, codecs, a laptop mic?

Each RAVDESS speech clip (actors 1-20) is corrupted, then scored through
``Bundle.predict_clip`` (speech detector, trimming, windows, fusion, as the app does) by
the members of the one fold whose test actors include it: the CNN, functional and
voice-source models that never heard that speaker. So every number is on unseen speakers,
like the headline. Conditions (seeded per clip):

- ``clean``: the clip as recorded;
- ``white_20db``, ``white_10db``, ``pink_10db``: noise that far below the speech's active
  level (:func:`ser.training.augment.add_noise`; the functional views train with such noise);
- ``reverb_0.5s``: a synthetic room with RT60 0.5 s (:func:`ser.training.augment.reverberate`;
  half the functional views' noisy copies are also reverberated);
- ``phone_8k``: resampled to 8 kHz and band-passed 300-3400 Hz (never seen in training);
- ``mp3``, ``opus``: encoded and decoded by libsndfile (never seen in training);
- ``laptop_mic``: 200 Hz high-pass and a bright tilt (never seen in training).

Writes ``models/robustness.json`` (:class:`ser.reporting.results.RobustnessResults`; the model
card, README and Model page show it while it describes the shipped ``model.keras``). About 15-20
min here, from the repository root:

    python -m experiments.robustness --data ../shared/data/ravdess

Needs the RAVDESS folder.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

from ser.errors import SERError
from ser.reporting.provenance import model_sha256, package_versions, utc_now
from ser.reporting.results import (
    FILES,
    ROBUSTNESS_COMMAND,
    SCHEMAS,
    ConditionScores,
    FoldScore,
    RobustnessResults,
    load_training,
)
from ser.reporting.schema import write_results
from ser.serving.audio import decode_audio, resample
from ser.training.augment import add_noise, reverberate
from ser.training.data import index_dataset

RATE = 16000


def _phone(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    narrow = resample(waveform, orig_sample_rate=RATE, target_sample_rate=8000)
    band = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), narrow).astype(np.float32)
    return resample(band, orig_sample_rate=8000, target_sample_rate=RATE)


def _codec(waveform: np.ndarray, *, file_format: str, subtype: str) -> np.ndarray:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, RATE, format=file_format, subtype=subtype)
    buffer.seek(0)
    decoded, rate = soundfile.read(buffer, dtype="float32")
    decoded = decoded if decoded.ndim == 1 else decoded.mean(axis=1)
    return decoded if rate == RATE else resample(decoded, orig_sample_rate=rate, target_sample_rate=RATE)


def _laptop(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    thin = sosfilt(butter(2, 200, btype="highpass", fs=RATE, output="sos"), waveform)
    bright = thin + 2.0 * np.diff(thin, prepend=0.0)  # +6 dB/octave towards the top
    return (bright * np.sqrt(np.mean(waveform.astype(np.float64) ** 2) / np.mean(bright**2))).astype(np.float32)


CONDITIONS = {
    "clean": lambda x, rng: x,
    "white_20db": lambda x, rng: add_noise(x, snr_db=20.0, colour="white", rng=rng),
    "white_10db": lambda x, rng: add_noise(x, snr_db=10.0, colour="white", rng=rng),
    "pink_10db": lambda x, rng: add_noise(x, snr_db=10.0, colour="pink", rng=rng),
    "reverb_0.5s": lambda x, rng: reverberate(x, rt60=0.5, sample_rate=RATE, rng=rng),
    "phone_8k": _phone,
    "mp3": lambda x, rng: _codec(x, file_format="MP3", subtype="MPEG_LAYER_III"),
    "opus": lambda x, rng: _codec(x, file_format="OGG", subtype="OPUS"),
    "laptop_mic": _laptop,
}
#: Conditions in the training data: the studio clips and what the room copies imitate.
SEEN_IN_TRAINING = ("clean", "white_20db", "white_10db", "pink_10db", "reverb_0.5s")


def fold_bundles(bundle, folds: list[FoldScore]):
    """One bundle per fold (``{fold: (bundle, test actors)}``): that fold's CNN, functional and
    voice-source members, fused."""
    from ser.serving.bundle import Bundle
    from ser.training.networks import build_fused

    model = bundle.model
    names = {layer.name for layer in model.layers}
    result = {}
    for split in folds:
        fold = split.fold
        if f"member_{fold}" not in names:
            raise SystemExit(f"the bundle has no member_{fold}: this check needs the fold members of `ser train`")
        views = [[model.get_layer(f"member_{fold}")], [model.get_layer(f"functional_{fold}")]]
        if f"voicing_{fold}" in names:
            views.append([model.get_layer(f"voicing_{fold}")])
        fused = build_fused(*views)
        fold_bundle = Bundle(model=fused, labels=bundle.labels, config=bundle.config, temperature=bundle.temperature,
                             confidence_threshold=bundle.confidence_threshold, path=bundle.path)
        # The main model's fold members only: the shipped joint views heard every actor, so routing to them
        # here would score clips with a model that knows the speaker.
        fold_bundle.joint_settings = None
        result[fold] = (fold_bundle, set(split.test))
    return result


def main() -> int:
    from ser.serving.bundle import load_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--every", type=int, default=1, help="score every n-th clip (1: all 1200)")
    args = parser.parse_args()
    training = load_training(args.models / "metrics.json")
    bundle = load_bundle(args.models)
    folds = fold_bundles(bundle, training.cross_validation.per_fold)
    index = index_dataset(args.data)
    index = index[index["vocal_channel"] == "speech"].reset_index(drop=True).iloc[:: args.every]
    answers: dict[str, list[str | None]] = {name: [] for name in CONDITIONS}
    truth: list[str] = []
    started = time.perf_counter()
    for position, row in enumerate(index.itertuples()):
        fold_bundle = next(b for b, test in folds.values() if row.actor in test)
        clean = decode_audio(row.path, sample_rate=RATE)
        truth.append(row.emotion)
        for number, (name, corrupt) in enumerate(CONDITIONS.items()):
            rng = np.random.default_rng([position, number])
            audio = np.clip(corrupt(clean, rng), -1.0, 1.0).astype(np.float32)
            try:
                answers[name].append(fold_bundle.predict_clip(audio, sample_rate=RATE).emotion)
            except SERError:  # refused ("no speech detected"): counted as wrong
                answers[name].append(None)
        if position % 200 == 0:
            print(f"{position}/{len(index)} clips, {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    classes = np.array(truth)
    rows = {}
    for name, guesses in answers.items():
        hits = np.array([guess == true for guess, true in zip(guesses, truth, strict=True)])
        # Refusals count as errors, in accuracy and in each class's recall alike.
        uar = float(np.mean([hits[classes == label].mean() for label in bundle.emotions if np.any(classes == label)]))
        rows[name] = ConditionScores(
            accuracy=int(hits.sum()) / len(truth),
            uar=uar,
            refused=sum(guess is None for guess in guesses),
            same_answer_as_clean=int(sum(g == c for g, c in zip(guesses, answers["clean"], strict=True)
                                         if g is not None)),
            seen_in_training=name in SEEN_IN_TRAINING,
        )
        print(f"{name:12s} accuracy {rows[name].accuracy:.3f} refused {rows[name].refused}", flush=True)
    results = RobustnessResults(
        schema=SCHEMAS[RobustnessResults],
        model_sha256=model_sha256(args.models / "model.keras"),
        measured=utc_now(),
        command=ROBUSTNESS_COMMAND + (f" --every {args.every}" if args.every != 1 else ""),
        versions=package_versions(),
        protocol="each clip scored by the members of the fold that never heard its speaker "
                 "(5 folds by actor, RAVDESS speech, actors 1-20); refusals count as errors",
        clips=len(truth),
        minutes=round((time.perf_counter() - started) / 60, 1),
        conditions=rows,
    )
    write_results(args.models / FILES[RobustnessResults][0], results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
