"""RAVDESS file-name parsing and dataset indexing.

A RAVDESS name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA``: modality,
vocal channel (01 speech, 02 song), emotion (01-08), intensity (01 normal, 02 strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"),
repetition (01, 02) and actor (01-24; odd actors are male, even female).

Example
-------
>>> from ser.training.data import parse_ravdess_name
>>> parse_ravdess_name("03-01-05-02-01-02-12.wav").emotion
'angry'
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd

from ser.errors import DatasetError

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
GENDERS: tuple[str, ...] = ("male", "female")
INTENSITIES: tuple[str, ...] = ("normal", "strong")
VOCAL_CHANNELS = {1: "speech", 2: "song"}
AUDIO_SUFFIXES = (".wav", ".flac")

_NAME_PATTERN = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
EXPECTED_PATTERN = "MM-VV-EE-II-SS-RR-AA.wav, e.g. 03-01-05-02-01-02-12.wav"


@dataclasses.dataclass(frozen=True)
class RavdessItem:
    """The fields encoded in one RAVDESS file name."""

    modality: int
    vocal_channel: str
    emotion: str
    intensity: str
    statement: int
    repetition: int
    actor: int
    gender: str


def parse_ravdess_name(name: str | Path) -> RavdessItem:
    """Parse a RAVDESS file name (with or without folders and extension).

    Raises
    ------
    DatasetError
        If the name does not follow the RAVDESS pattern or a field is out of range;
        the message names the file and the expected pattern.
    """
    stem = Path(name).stem
    match = _NAME_PATTERN.match(stem)
    if match is None:
        raise DatasetError(f"{name!s}: not a RAVDESS file name; expected {EXPECTED_PATTERN}")
    modality, channel, emotion, intensity, statement, repetition, actor = map(int, match.groups())
    problems = []
    if channel not in VOCAL_CHANNELS:
        problems.append(f"vocal channel {channel:02d} (expected 01 or 02)")
    if not 1 <= emotion <= len(EMOTIONS):
        problems.append(f"emotion {emotion:02d} (expected 01-08)")
    if intensity not in (1, 2):
        problems.append(f"intensity {intensity:02d} (expected 01 or 02)")
    if statement not in (1, 2):
        problems.append(f"statement {statement:02d} (expected 01 or 02)")
    if repetition not in (1, 2):
        problems.append(f"repetition {repetition:02d} (expected 01 or 02)")
    if actor < 1:
        problems.append(f"actor {actor:02d} (expected 01 or more)")
    if problems:
        raise DatasetError(f"{name!s}: out-of-range field(s) {', '.join(problems)}; expected {EXPECTED_PATTERN}")
    return RavdessItem(
        modality=modality,
        vocal_channel=VOCAL_CHANNELS[channel],
        emotion=EMOTIONS[emotion - 1],
        intensity=INTENSITIES[intensity - 1],
        statement=statement,
        repetition=repetition,
        actor=actor,
        gender=GENDERS[0] if actor % 2 == 1 else GENDERS[1],
    )


def index_dataset(root: str | Path) -> pd.DataFrame:
    """Index every ``.wav``/``.flac`` RAVDESS file below ``root`` (any depth).

    Returns
    -------
    pandas.DataFrame
        One row per file, sorted by path, with the columns ``path`` plus the fields of
        :class:`RavdessItem`.

    Raises
    ------
    DatasetError
        If ``root`` does not exist, holds no audio, or holds a malformed name.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; pass the folder that holds the RAVDESS audio")
    paths = sorted(path for path in root.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file())
    if not paths:
        raise DatasetError(f"{root}: no .wav or .flac files found below this folder")
    rows = [{"path": str(path), **dataclasses.asdict(parse_ravdess_name(path))} for path in paths]
    return pd.DataFrame(rows)
