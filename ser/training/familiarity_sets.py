"""The clips the familiarity score and the "unlike the training data" detector learn from and are measured on.

Every clip goes through the shipped bundle as the app sends it (speech detector, trimming, windows,
fusion, calibration); its utterance's ComParE functionals are kept (:func:`score_clip`). The sets
(:data:`SETS`): RAVDESS speech (actors 1-20), ASED (Amharic, 65 speakers), English sentences from
``espeak-ng`` (synthetic), telephone-band and laptop-microphone copies of 240 RAVDESS clips (as
:mod:`ser.training.robustness` makes them) and synthetic music (vibrato tones, chords, melodies).
Each set is cached in ``.cache/familiarity/SHA/NAME.npz`` (:func:`cache_folder`: the answers are
the model's, so each model has its own; about 20 minutes here to fill), read by
``python -m ser familiarity`` and ``python -m ser unfamiliarity`` (:mod:`ser.unfamiliarity_cli`)::

    python -m ser familiarity --data ../shared/data --out models/
"""

from __future__ import annotations

import concurrent.futures
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ser.errors import NoSpeechError, SERError
from ser.serving.audio import decode_audio
from ser.serving.features import window_features
from ser.serving.functionals import acoustic_functionals

RATE = 16000
CACHE = Path(".cache") / "familiarity"
#: Every scored set, in the order the detector's study reports them.
SETS = ("ravdess", "ased", "synthetic", "phone_8k", "laptop_mic", "music")
#: Ordinary voices (speechocean's readers), scored when the data folder holds them: the unfamiliar-voice check
#: learns them as unlike RAVDESS's actors (:mod:`ser.training.unfamiliarity`).
ORDINARY_SET = "speechocean"


def cache_folder(cache: Path, models: Path) -> Path:
    """The folder below ``cache`` holding the sets scored by the ``model.keras`` of ``models`` (by its SHA-256)."""
    from ser.reporting.provenance import model_sha256

    return Path(cache) / model_sha256(Path(models) / "model.keras")[:16]
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


def score_set(bundle, name: str, waveforms, *, meta: dict[str, list], cache: Path = CACHE,
              log: Callable[[str], None] = lambda message: None) -> dict[str, np.ndarray]:
    """Score a list of waveforms once; cached in ``cache/{name}.npz`` (``.cache/familiarity`` by default)."""
    file = cache / f"{name}.npz"
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
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **result)
    log(f"{name}: {len(rows)} clips in {time.perf_counter() - started:.0f} s")
    return result


def ordinary_set(bundle, root: Path, *, cache: Path = CACHE,
                 log: Callable[[str], None] = lambda message: None) -> dict[str, np.ndarray] | None:
    """speechocean's clips below ``root`` scored like the other sets (``speaker``: an index per reader);
    None when ``root`` holds no ``speechocean/``."""
    from ser.training.corpora import index_speechocean

    folder = Path(root) / ORDINARY_SET
    if not folder.is_dir():
        return None
    table = index_speechocean(folder.resolve())
    speakers = np.searchsorted(np.unique(table["speaker"]), table["speaker"])
    return score_set(bundle, ORDINARY_SET, (decode_audio(path, sample_rate=RATE) for path in table["path"]),
                     meta={"speaker": speakers}, cache=cache, log=log)


def ravdess_files(root: Path) -> list[Path]:
    """RAVDESS speech clips below ``root`` (the folder holding ``ravdess/``), sorted."""
    return sorted((root / "ravdess" / "speech").glob("Actor_*/*.flac"))


def ased_files(root: Path) -> list[Path]:
    """ASED clips below ``root`` (the folder holding ``ased/``), sorted."""
    return sorted((root / "ased").glob("*/*.flac"))


def espeak_waveforms() -> list[np.ndarray]:
    """English sentences from espeak-ng (three voices), at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        raise SERError("espeak-ng is missing: apt-get install -y espeak-ng")
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
    """Telephone-band or laptop-microphone copies (the corruptions of :mod:`ser.training.robustness`)."""
    from ser.training.robustness import CONDITIONS

    corrupt = CONDITIONS[kind]
    waveforms = []
    for path in files:
        rng = np.random.default_rng([int(part) for part in path.stem.split("-")])
        waveforms.append(corrupt(decode_audio(path, sample_rate=RATE), rng))
    return waveforms


def _later(make: Callable[[], list[np.ndarray]]) -> Iterator[np.ndarray]:
    """The waveforms of ``make()``, made only when a set is scored (a cached set needs no espeak-ng)."""
    yield from make()


def compute_sets(bundle, root: Path, *, cache: Path = CACHE,
                 log: Callable[[str], None] = lambda message: None) -> dict[str, dict[str, np.ndarray]]:
    """Every scored set of :data:`SETS` (cached in ``cache``), the utterance functionals and probabilities.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
        The shipped bundle, scoring each clip as the app does.
    root : Path
        The folder holding ``ravdess/`` and ``ased/``.
    cache : Path
        One ``NAME.npz`` per set; a set already there is read, not scored again.
    log : callable
        Progress messages.
    """
    kept = {"cache": cache, "log": log}
    ravdess = ravdess_files(root)
    ased = ased_files(root)
    rng = np.random.default_rng(0)
    corrupt_subset = [ravdess[i] for i in sorted(rng.choice(len(ravdess), size=min(240, len(ravdess)), replace=False))]
    sets = {
        "ravdess": score_set(
            bundle, "ravdess", (decode_audio(path, sample_rate=RATE) for path in ravdess),
            meta={"actor": [int(path.stem.split("-")[6]) for path in ravdess],
                  "emotion": [int(path.stem.split("-")[2]) - 1 for path in ravdess]}, **kept,
        ),
        "ased": score_set(
            bundle, "ased", (decode_audio(path, sample_rate=RATE) for path in ased),
            meta={"speaker": [int(path.stem.split("-")[4]) for path in ased],
                  "emotion": [bundle.emotions.index(ASED_EMOTIONS[path.stem[:2].lower()]) for path in ased]}, **kept,
        ),
        "synthetic": score_set(bundle, "synthetic", _later(espeak_waveforms), meta={}, **kept),
        "music": score_set(bundle, "music", _later(music_waveforms), meta={}, **kept),
    }
    for kind in ("phone_8k", "laptop_mic"):
        sets[kind] = score_set(
            bundle, kind, _later(lambda kind=kind: corrupted(corrupt_subset, kind=kind)),
            meta={"actor": [int(path.stem.split("-")[6]) for path in corrupt_subset]}, **kept,
        )
    return sets
