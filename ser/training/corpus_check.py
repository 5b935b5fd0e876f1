"""The shipped model on voices it was never trained on: ASED (Amharic, 65 speakers), with and without
calibration to the speaker, and how honest its confidence is there.

The shipped ``models/model.keras`` was trained on RAVDESS actors 1-20 only; no ASED speaker was
ever heard. Every ASED clip is scored as ``python -m ser predict`` scores a file
(:func:`ser.serving.segments.score_recording` on ``bundle.recording(...)``: cut where the speaker
pauses, each utterance scored, calibrated); a clip refused as "no speech" is counted, not scored.

- **Without calibration**: every clip, as the app answers (8 emotions) and restricted to ASED's
  5 (the probabilities of those 5 renormalised), on all sentences and on the two common
  sentences only (01 and 02, spoken in every emotion, so the words cannot give it away).
- **With calibration**: per speaker, the two neutral reference clips of
  :func:`ser.training.corpora.reference_clips` (chosen without looking at audio) go through
  :func:`ser.serving.speaker.adapt_to_reference` (the neutral floor, as ``--reference`` does);
  every other clip of that speaker is adapted with ``adaptation.apply``, beside the same clips
  without it. Speakers without two neutral clips (or whose reference holds too little speech)
  are left out of that comparison and counted.
- **Confidence**: expected calibration error (15 bins), how often the model calls itself sure
  (top probability at or above the bundle's threshold) and how often it is wrong then.
- **Synthetic speech** (when ``espeak-ng`` is installed): flat, emotionally neutral English
  sentences: how often they are called neutral, and how often the model is sure.

Per-clip probabilities and each speaker's calibration are kept in ``.cache/corpus_check/``
(:class:`ScoreCache`: one JSON line each, keyed by the model's SHA-256; a killed run resumes), so a
second run only summarises. ``python -m ser corpus-check`` (:mod:`ser.corpus_check_cli`) writes
``models/corpus_check.json`` (:class:`ser.reporting.corpus_results.CorpusCheckResults`; the Model
page, the model card and the README show it while it describes the shipped ``model.keras``). About
7 minutes here the first time (seconds after that)::

    python -m ser corpus-check --data ../shared/data --out models/
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ser.errors import NoSpeechError
from ser.serving.audio import decode_audio
from ser.serving.bundle import Bundle
from ser.serving.segments import score_recording
from ser.serving.speaker import SpeakerAdaptation, adapt_to_reference

CACHE = Path(".cache") / "corpus_check"
#: Flat, emotionally neutral sentences for the synthetic check, each in every voice.
NEUTRAL_SENTENCES = (
    "The train to the city leaves at nine in the morning.",
    "Please put the books back on the second shelf.",
    "The meeting has been moved to the room next door.",
    "It will be cloudy tomorrow with some rain in the evening.",
    "The shop on the corner closes at six o'clock.",
)
ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3")
PROTOCOL = (
    "The shipped model (trained on RAVDESS actors 1-20 only) scores every clip of ASED v1 (Amharic, 65 speakers "
    "recorded in their own rooms, none heard in training) as `python -m ser predict` scores a file. As the app "
    "answers: the answer among the 8 emotions; restricted: among ASED's 5 (the probabilities of those renormalised). "
    "Common sentences: ASED sentences 01 and 02, spoken in every emotion, so the words cannot give the emotion away "
    "(on the other sentences they can, though this model knows no Amharic). A clip refused as no speech is counted "
    "and left out of the scores. With calibration: per speaker, two neutral clips chosen without looking at audio "
    "(`ser.training.corpora.reference_clips`) calibrate the model to that voice (the neutral floor of "
    "`ser.serving.speaker`, as `--reference` does); the speaker's other clips are scored with it, beside the same "
    "clips without it."
)


def _lines(path: Path) -> Iterable[dict]:
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


class ScoreCache:
    """One JSON line per scored clip, calibrated speaker or synthetic sentence, for one model."""

    def __init__(self, folder: Path, *, corpus: str, sha: str) -> None:
        self.path = Path(folder) / f"{corpus}-{sha[:16]}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.entries = {(entry["kind"], entry["key"]): entry for entry in _lines(self.path)}

    def get(self, kind: str, key: str) -> dict | None:
        return self.entries.get((kind, key))

    def put(self, kind: str, key: str, **values) -> dict:
        entry = {"kind": kind, "key": key, **values}
        self.entries[(kind, key)] = entry
        with self.path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
        return entry


def score_file(bundle: Bundle, waveform: np.ndarray) -> tuple[list[float] | None, str]:
    """Calibrated probabilities in the bundle's label order as ``predict`` gives them, or the refusal."""
    rate = bundle.config.sample_rate
    try:
        overall = score_recording(bundle.recording(waveform, sample_rate=rate), bundle=bundle).overall
    except NoSpeechError as error:
        return None, str(error)
    return [float(overall.probabilities[name]) for name in bundle.emotions], ""


def score_clips(bundle: Bundle, table: pd.DataFrame, *, root: Path, cache: ScoreCache,
                log: Callable[[str], None] | None = None) -> np.ndarray:
    """Probabilities of every clip of ``table``, shape (n_clips, n_labels); NaN rows were refused."""
    started, done = time.perf_counter(), 0
    rows = []
    for number, path in enumerate(table["path"], start=1):
        key = Path(path).relative_to(root).as_posix()
        entry = cache.get("clip", key)
        if entry is None:
            probabilities, problem = score_file(bundle, decode_audio(path, sample_rate=bundle.config.sample_rate))
            entry = cache.put("clip", key, probabilities=probabilities, problem=problem)
            done += 1
            if done % 100 == 0 and log is not None:
                log(f"{number}/{len(table)} clips ({time.perf_counter() - started:.0f} s)")
        rows.append(entry["probabilities"] or [np.nan] * len(bundle.emotions))
    return np.asarray(rows, dtype=np.float64).reshape(len(table), len(bundle.emotions))


def adapt_speakers(bundle: Bundle, table: pd.DataFrame, *, reference: np.ndarray, root: Path,
                   cache: ScoreCache) -> dict[str, SpeakerAdaptation | None]:
    """Each speaker's calibration from their reference clips; None when they have none or it failed."""
    rate = bundle.config.sample_rate
    neutral = bundle.emotions.index("neutral")

    def score(piece: np.ndarray) -> np.ndarray:
        probabilities = bundle.predict_clip(piece, sample_rate=rate).probabilities
        return np.array([probabilities[name] for name in bundle.emotions])

    adaptations: dict[str, SpeakerAdaptation | None] = {}
    for speaker, clips in table[reference].groupby("speaker", sort=True):
        entry = cache.get("speaker", str(speaker))
        if entry is None:
            try:
                adaptation = adapt_to_reference([decode_audio(path, sample_rate=rate) for path in clips["path"]],
                                                config=bundle.config, score=score, neutral=neutral)
                entry = cache.put("speaker", str(speaker), adaptation=adaptation.to_dict(), problem="",
                                  references=[Path(path).relative_to(root).as_posix() for path in clips["path"]])
            except NoSpeechError as error:
                entry = cache.put("speaker", str(speaker), adaptation=None, problem=str(error), references=[])
        adaptations[str(speaker)] = SpeakerAdaptation(**entry["adaptation"]) if entry["adaptation"] else None
    return adaptations


def espeak_probabilities(bundle: Bundle, *, cache: ScoreCache) -> np.ndarray | None:
    """Probabilities of each neutral sentence in each espeak-ng voice (NaN rows refused); None without espeak-ng."""
    if shutil.which("espeak-ng") is None:
        return None
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for voice in ESPEAK_VOICES:
            for index, text in enumerate(NEUTRAL_SENTENCES):
                entry = cache.get("synthetic", f"{voice}/{index}")
                if entry is None:
                    path = Path(folder) / "sentence.wav"
                    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, timeout=60)
                    waveform = decode_audio(path, sample_rate=bundle.config.sample_rate)
                    probabilities, problem = score_file(bundle, waveform)
                    entry = cache.put("synthetic", f"{voice}/{index}", probabilities=probabilities, problem=problem)
                rows.append(entry["probabilities"] or [np.nan] * len(bundle.emotions))
    return np.asarray(rows, dtype=np.float64)


def adapted_probabilities(probabilities: np.ndarray, speakers: np.ndarray,
                          adaptations: dict[str, SpeakerAdaptation | None]) -> np.ndarray:
    """Each clip's probabilities through its speaker's ``adaptation.apply`` (NaN where none)."""
    adapted = np.full_like(probabilities, np.nan)
    for speaker, adaptation in adaptations.items():
        rows = speakers == speaker
        if adaptation is not None and rows.any():
            adapted[rows] = adaptation.apply(probabilities[rows])
    return adapted
