"""Fit the familiarity score, set its threshold on held-out speakers, and measure what it flags.

Every clip goes through the shipped bundle as the app sends it (speech detector, trimming,
windows, fusion, calibration); its utterance's ComParE functionals are kept for the score.

- **fit**: principal components of the standardised functionals of RAVDESS speech, actors 1-20;
- **threshold**: 5 folds of 4 actors: the PCA is fitted on 16 actors and scores the other 4,
  so every actor is scored once as an unseen speaker; the threshold is the 99th percentile of
  those held-out scores (the 95th is reported too);
- **measured on**: ASED (Amharic, 65 speakers: share flagged, per speaker), English sentences
  from ``espeak-ng`` (synthetic), telephone-band and laptop-microphone copies of RAVDESS clips
  (as ``experiments/robustness.py`` makes them), and synthetic music (vibrato tones, chords);
- **calibration**: expected calibration error and "sure but wrong" of the shipped model on RAVDESS
  (actors 1-20, all seen in training: an optimistic reference) and on ASED restricted to its 5
  emotions (the probabilities of those 5 renormalised);
- **cue references**: the cues of :mod:`ser.serving.cues` over RAVDESS neutral speech, per gender.

Writes ``models/familiarity.json``, ``models/cues.json`` and prints the numbers that
``docs/familiarity.md`` quotes. About 22 minutes here (features cached in ``.cache/familiarity``),
from the repository root:

    python -m experiments.familiarity --data ../shared/data
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ser.errors import NoSpeechError
from ser.reporting.provenance import model_sha256
from ser.serving.audio import decode_audio
from ser.serving.familiarity import FamiliarityModel, fingerprint, fit_familiarity, standardizer_of
from ser.serving.features import window_features
from ser.serving.functionals import acoustic_functionals

RATE = 16000
CACHE = Path(".cache") / "familiarity"
#: Principal components kept (the JSON file stays about 300 KB).
N_COMPONENTS = 5
#: Held-out percentile that sets the warning threshold.
THRESHOLD_PERCENTILE = 99.0
ASED_EMOTIONS = {"n1": "neutral", "f2": "fearful", "h3": "happy", "s4": "sad", "a5": "angry"}
SENTENCES = (
    "Kids are talking by the door.",
    "Dogs are sitting by the door.",
    "I can't believe you did that again.",
    "We finally won the championship tonight.",
    "Please leave me alone for a while.",
    "The results will be announced tomorrow morning.",
    "Nobody told me the meeting was cancelled.",
    "What a wonderful surprise to see you here.",
    "I am so tired of waiting in this line.",
    "Something is moving in the dark corner.",
    "That smell from the kitchen is disgusting.",
    "Let us sit quietly and watch the sunset.",
)
ESPEAK_VOICES = ("en-us", "en-us+f3", "en-gb")


def score_clip(bundle, waveform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Functionals of the trimmed utterance and the calibrated emotion probabilities (NaN if refused).

    Follows ``Bundle.predict_recording`` step by step so the functionals are the ones the model saw.
    """
    size = 6373
    recording = bundle.recording(waveform, sample_rate=RATE)
    try:
        utterance = recording.utterance
    except NoSpeechError:
        return np.full(size, np.nan), np.full(len(bundle.emotions), np.nan)
    functionals = acoustic_functionals(utterance, config=bundle.config)
    if not recording.activity.is_speech:
        return functionals, np.full(len(bundle.emotions), np.nan)
    windows, _ = window_features(recording.utterance_log_mel, config=bundle.config)
    outputs = bundle.score_windows(windows, functionals=functionals)
    mean = {head: values.mean(axis=0) for head, values in outputs.items()}
    prediction = bundle.clip_prediction(mean, speech_seconds=0.0)  # the calibration the app applies
    return functionals, np.array([prediction.probabilities[name] for name in bundle.emotions])


def score_set(bundle, name: str, waveforms, *, meta: dict[str, list]) -> dict[str, np.ndarray]:
    """Score a list of waveforms once; cached in ``.cache/familiarity/{name}.npz``."""
    file = CACHE / f"{name}.npz"
    if file.exists():
        with np.load(file, allow_pickle=False) as stored:
            return {key: stored[key] for key in stored.files}
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        rows = list(pool.map(lambda waveform: score_clip(bundle, waveform), waveforms))
    result = {
        "functionals": np.stack([row[0] for row in rows]).astype(np.float32),
        "probabilities": np.stack([row[1] for row in rows]).astype(np.float32),
        **{key: np.asarray(values) for key, values in meta.items()},
    }
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(file, **result)
    print(f"{name}: {len(rows)} clips in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return result


def ravdess_files(root: Path) -> list[Path]:
    return sorted((root / "ravdess" / "speech").glob("Actor_*/*.flac"))


def ased_files(root: Path) -> list[Path]:
    return sorted((root / "ased").glob("*/*.flac"))


def espeak_waveforms() -> list[np.ndarray]:
    """English sentences from espeak-ng (three voices), at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is missing: apt-get install -y espeak-ng")
    waveforms = []
    with tempfile.TemporaryDirectory() as folder:
        for voice in ESPEAK_VOICES:
            for index, sentence in enumerate(SENTENCES):
                path = Path(folder) / f"{voice}-{index}.wav"
                subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), sentence], check=True)
                waveforms.append(decode_audio(path, sample_rate=RATE))
    return waveforms


def music_waveforms(*, count: int = 24, seed: int = 0) -> list[np.ndarray]:
    """Synthetic music: harmonic vibrato tones, chords and short melodies, 3 s each."""
    rng = np.random.default_rng(seed)
    time_axis = np.arange(3 * RATE) / RATE
    waveforms = []
    for index in range(count):
        kind = index % 3
        if kind == 0:  # a sung-like tone: 5-6 Hz vibrato of +-0.5 semitone, harmonics
            base = rng.uniform(110, 440)
            pitch = base * 2 ** (0.5 / 12 * np.sin(2 * np.pi * rng.uniform(5, 6) * time_axis))
            phase = 2 * np.pi * np.cumsum(pitch) / RATE
            wave = sum(np.sin(harmonic * phase) / harmonic for harmonic in range(1, 8))
        elif kind == 1:  # a major chord with a slow decay
            root = rng.uniform(110, 330)
            wave = sum(np.sin(2 * np.pi * root * ratio * time_axis) for ratio in (1.0, 1.26, 1.5, 2.0))
            wave = wave * np.exp(-time_axis / rng.uniform(1.0, 3.0))
        else:  # a melody of eight notes from a major scale, plucked
            notes = rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=8)
            root = rng.uniform(150, 400)
            step = time_axis.size // 8
            wave = np.zeros_like(time_axis)
            for note_index, note in enumerate(notes):
                local = time_axis[: step]
                tone = np.sin(2 * np.pi * root * 2 ** (note / 12) * local) * np.exp(-local * 4)
                wave[note_index * step : (note_index + 1) * step] = tone
        wave = wave / np.max(np.abs(wave)) * 0.3
        waveforms.append(wave.astype(np.float32))
    return waveforms


def corrupted(files: list[Path], *, kind: str) -> list[np.ndarray]:
    """Telephone-band or laptop-microphone copies (the corruptions of experiments/robustness.py)."""
    from experiments.robustness import CONDITIONS

    corrupt = CONDITIONS[kind]
    waveforms = []
    for path in files:
        rng = np.random.default_rng([int(part) for part in path.stem.split("-")])
        waveforms.append(corrupt(decode_audio(path, sample_rate=RATE), rng))
    return waveforms


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/ and ased/")
    parser.add_argument("--bundle", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("models"))
    return parser.parse_args(argv)


def compute_sets(bundle, root: Path) -> dict[str, dict[str, np.ndarray]]:
    """Every scored set (cached)."""
    ravdess = ravdess_files(root)
    ased = ased_files(root)
    rng = np.random.default_rng(0)
    corrupt_subset = [ravdess[i] for i in sorted(rng.choice(len(ravdess), size=240, replace=False))]
    sets = {
        "ravdess": score_set(
            bundle, "ravdess", (decode_audio(path, sample_rate=RATE) for path in ravdess),
            meta={"actor": [int(path.stem.split("-")[6]) for path in ravdess],
                  "emotion": [int(path.stem.split("-")[2]) - 1 for path in ravdess]},
        ),
        "ased": score_set(
            bundle, "ased", (decode_audio(path, sample_rate=RATE) for path in ased),
            meta={"speaker": [int(path.stem.split("-")[4]) for path in ased],
                  "emotion": [bundle.emotions.index(ASED_EMOTIONS[path.stem[:2].lower()]) for path in ased]},
        ),
        "synthetic": score_set(bundle, "synthetic", espeak_waveforms(), meta={}),
        "music": score_set(bundle, "music", music_waveforms(), meta={}),
    }
    for kind in ("phone_8k", "laptop_mic"):
        sets[kind] = score_set(
            bundle, kind, corrupted(corrupt_subset, kind=kind),
            meta={"actor": [int(path.stem.split("-")[6]) for path in corrupt_subset]},
        )
    return sets


def standardized(functionals: np.ndarray, *, mean: np.ndarray, scale: np.ndarray, limit: float) -> np.ndarray:
    return np.clip((functionals - mean) / scale, -limit, limit)


def held_out_scores(rows: np.ndarray, actors: np.ndarray, *, mean, scale, limit) -> np.ndarray:
    """Each clip scored by a PCA fitted without its actor (5 folds of 4 actors, 2 male and 2 female)."""
    scores = np.full(len(rows), np.nan)
    ordered = np.unique(actors)
    for fold in range(5):
        test_actors = ordered[fold::5]  # actors 1,6,11,16 / 2,7,12,17 / ...: two odd (male), two even
        test = np.isin(actors, test_actors)
        model = familiarity_model(rows[~test], mean=mean, scale=scale, limit=limit, threshold=np.inf)
        scores[test] = model.scores(rows[test])
    return scores


def familiarity_model(rows: np.ndarray, *, mean, scale, limit, threshold: float) -> FamiliarityModel:
    centre, components, variances, residual_scale = fit_familiarity(
        standardized(rows, mean=mean, scale=scale, limit=limit), n_components=N_COMPONENTS
    )
    return FamiliarityModel(mean=mean, scale=scale, limit=limit, centre=centre, components=components,
                            variances=variances, residual_scale=residual_scale, threshold=threshold)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """ECE of the top answer over equal-width confidence bins (the team's 15-bin definition)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(
        np.sum(index == b) / len(labels) * abs(correct[index == b].mean() - confidence[index == b].mean())
        for b in range(bins) if np.any(index == b)
    ))


def calibration(probabilities: np.ndarray, labels: np.ndarray, *, threshold: float,
                columns: list[int] | None = None) -> dict[str, float]:
    """The app's answer (8 emotions, "sure" above the bundle's threshold) and, if ``columns``, the ECE
    of the probabilities restricted to those emotions and renormalised."""
    scored = ~np.isnan(probabilities).any(axis=1)
    probabilities, labels = probabilities[scored], labels[scored]
    sure = probabilities.max(axis=1) >= threshold
    right = probabilities.argmax(axis=1) == labels
    restricted = probabilities if columns is None else probabilities[:, columns]
    restricted = restricted / restricted.sum(axis=1, keepdims=True)
    restricted_labels = labels if columns is None else np.searchsorted(columns, labels)
    return {
        "clips_scored": int(scored.sum()),
        "accuracy": float(right.mean()),
        "sure_share": float(sure.mean()),
        "sure_and_wrong_share": float((sure & ~right).mean()),
        "accuracy_when_sure": float(right[sure].mean()) if sure.any() else float("nan"),
        "ece_15_bins": expected_calibration_error(restricted, restricted_labels),
        "restricted_accuracy": float((restricted.argmax(axis=1) == restricted_labels).mean()),
    }


def cue_references(bundle, root: Path, ravdess: dict[str, np.ndarray]) -> dict:
    """Cues of RAVDESS neutral speech: per-gender centre and between-speaker spread, pooled within-speaker spread."""
    from ser.serving.cues import VoiceCues, voice_cues
    from ser.serving.functionals import functional_names

    names = functional_names(bundle.config)
    files = ravdess_files(root)
    fields = [field.name for field in dataclasses.fields(VoiceCues)]
    per_actor: dict[int, list[list[float]]] = {}
    for position, path in enumerate(files):
        if int(path.stem.split("-")[2]) != 1:  # neutral only
            continue
        waveform = decode_audio(path, sample_rate=RATE)
        cues = voice_cues(waveform, sample_rate=RATE, functionals=ravdess["functionals"][position],
                          functional_names=names)
        per_actor.setdefault(int(path.stem.split("-")[6]), []).append([getattr(cues, name) for name in fields])
    actor_means = {actor: np.nanmean(rows, axis=0) for actor, rows in per_actor.items()}
    within = np.sqrt(np.nanmean([np.nanvar(rows, axis=0, ddof=1) for rows in per_actor.values()], axis=0))
    genders = {}
    for gender, parity in (("male", 1), ("female", 0)):
        means = np.array([values for actor, values in actor_means.items() if actor % 2 == parity])
        genders[gender] = {
            "centre": dict(zip(fields, np.round(means.mean(axis=0), 4).tolist(), strict=True)),
            "between_speakers": dict(zip(fields, np.round(means.std(axis=0, ddof=1), 4).tolist(), strict=True)),
            "speakers": int(len(means)),
        }
    return {"source": "RAVDESS speech, actors 1-20, neutral (4 clips each); centre and spread over speakers' means",
            "genders": genders, "within_speaker": dict(zip(fields, np.round(within, 4).tolist(), strict=True))}


def report(*, bundle, sets: dict[str, dict[str, np.ndarray]], root: Path, out: Path) -> None:
    """Fit, threshold, measure; write models/familiarity.json and models/cues.json; print the numbers."""
    mean, scale, limit = standardizer_of(bundle.model)
    ravdess = sets["ravdess"]
    held_out = held_out_scores(ravdess["functionals"].astype(np.float64), ravdess["actor"],
                               mean=mean, scale=scale, limit=limit)
    threshold = float(np.percentile(held_out, THRESHOLD_PERCENTILE))
    model = familiarity_model(ravdess["functionals"].astype(np.float64), mean=mean, scale=scale, limit=limit,
                              threshold=threshold)
    measured: dict[str, dict] = {
        "ravdess_held_out": {
            "clips": int(held_out.size), "share_flagged": float(np.mean(held_out > threshold)),
            "percentile_95": float(np.percentile(held_out, 95)),
            "share_flagged_per_actor": {int(a): round(float(np.mean(held_out[ravdess["actor"] == a] > threshold)), 3)
                                        for a in np.unique(ravdess["actor"])},
        }
    }
    for name in ("ased", "synthetic", "phone_8k", "laptop_mic", "music"):
        rows = sets[name]["functionals"].astype(np.float64)
        usable = np.isfinite(rows).all(axis=1)
        scores = model.scores(rows[usable])
        entry = {"clips": int(rows.shape[0]), "clips_with_functionals": int(usable.sum()),
                 "share_flagged": float(np.mean(scores > threshold)), "median_score": float(np.median(scores)),
                 "refused_as_no_speech": int(np.isnan(sets[name]["probabilities"]).any(axis=1).sum())}
        if name == "ased":
            speakers = sets[name]["speaker"][usable]
            entry["share_flagged_per_speaker"] = {int(s): round(float(np.mean(scores[speakers == s] > threshold)), 3)
                                                  for s in np.unique(speakers)}
            probabilities = sets[name]["probabilities"][usable]
            sure = probabilities.max(axis=1) >= bundle.confidence_threshold
            right = probabilities.argmax(axis=1) == sets[name]["emotion"][usable]
            flagged = scores > threshold
            for label, chosen in (("flagged", sure & flagged), ("not_flagged", sure & ~flagged)):
                entry[f"sure_clips_{label}"] = int(chosen.sum())
                entry[f"accuracy_when_sure_{label}"] = float(right[chosen].mean()) if chosen.any() else None
        if name in ("synthetic", "music"):
            probabilities = sets[name]["probabilities"]
            scored = ~np.isnan(probabilities).any(axis=1)
            confidence = probabilities[scored].max(axis=1)
            entry["sure_share_of_scored"] = float(np.mean(confidence >= bundle.confidence_threshold))
        measured[name] = entry
    ased_columns = sorted(bundle.emotions.index(emotion) for emotion in ASED_EMOTIONS.values())
    measured["calibration"] = {
        "ravdess_training_speakers": calibration(ravdess["probabilities"], ravdess["emotion"],
                                                 threshold=bundle.confidence_threshold),
        "ased_5_emotions": calibration(sets["ased"]["probabilities"], sets["ased"]["emotion"],
                                       threshold=bundle.confidence_threshold, columns=ased_columns),
    }
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": 1,
        "command": "python -m experiments.familiarity --data ../shared/data",
        "measured_at": time.strftime("%Y-%m-%d", time.gmtime()),
        "model_sha256": model_sha256(bundle.path / "model.keras"),
        "fingerprint": fingerprint(mean),
        "n_components": N_COMPONENTS,
        "threshold_rule": f"{THRESHOLD_PERCENTILE:g}th percentile of held-out RAVDESS actors' scores "
                          "(5 folds by actor)",
        "threshold": threshold,
        "residual_scale": model.residual_scale,
        "variances": model.variances.tolist(),
        "centre": [float(f"{value:.4g}") for value in model.centre],
        "components": [[float(f"{value:.4g}") for value in row] for row in model.components],
        "measured": measured,
    }
    (out / "familiarity.json").write_text(json.dumps(document, separators=(",", ":")) + "\n")
    (out / "cues.json").write_text(json.dumps(cue_references(bundle, root, ravdess), indent=1) + "\n")
    print(json.dumps(measured, indent=1))


def main(argv: list[str] | None = None) -> int:
    from ser.serving.bundle import load_bundle

    args = parse_args(argv)
    bundle = load_bundle(args.bundle)
    sets = compute_sets(bundle, args.data)
    report(bundle=bundle, sets=sets, root=args.data, out=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
