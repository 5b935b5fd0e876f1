"""Several corpora in one table: a user's own corpus from a CSV manifest, folders of RAVDESS or
ASED, and what each corpus can teach.

A manifest is a CSV file whose header is ``path,emotion,speaker`` or
``path,emotion,speaker,gender``; ``path`` is relative to the manifest's folder (or absolute),
``emotion`` one of the eight the app answers in. It lets a researcher train and evaluate on
their own clips with the same commands as on RAVDESS and ASED.

Example
-------
>>> from pathlib import Path
>>> import tempfile
>>> from ser.training.corpora import read_manifest
>>> folder = Path(tempfile.mkdtemp())
>>> _ = (folder / "a.wav").write_bytes(b"RIFF")
>>> _ = (folder / "clips.csv").write_text("path,emotion,speaker\\na.wav,happy,p1\\n")
>>> read_manifest(folder / "clips.csv")[["corpus", "speaker", "emotion"]].values.tolist()
[['clips', 'clips-p1', 'happy']]
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ser.errors import DatasetError
from ser.training.data import (
    EMOTIONS,
    GENDERS,
    audio_files,
    index_ased,
    index_ravdess,
    name_format,
    table_from_rows,
)


@dataclasses.dataclass(frozen=True)
class PartialLabel:
    """A label that names a set of emotions rather than one.

    Attributes
    ----------
    targets : tuple of str
        Any of these is a right answer (the masked loss rewards their summed probability).
    teaches : tuple of str
        The emotions the label speaks about: the loss is normalised over them, so every emotion
        here but not in ``targets`` is taught as a wrong answer for the clip.
    alarms : tuple of str
        The wrong answers that matter most, reported on their own as false alarms.
    """

    targets: tuple[str, ...]
    teaches: tuple[str, ...]
    alarms: tuple[str, ...] = ()


#: Everyday, unacted speech: neutral or calm is right, any of the six others wrong (an ordinary voice
#: is not angry), so it teaches all eight emotions; angry, fearful or disgust are its false alarms.
NEUTRAL_OR_CALM = "neutral or calm"
#: ``label -> PartialLabel``: the partial labels a corpus table's ``emotion`` column may hold.
PARTIAL_LABELS: dict[str, PartialLabel] = {
    NEUTRAL_OR_CALM: PartialLabel(targets=("neutral", "calm"), teaches=EMOTIONS,
                                  alarms=("angry", "fearful", "disgust")),
}

MANIFEST_REQUIRED: tuple[str, ...] = ("path", "emotion", "speaker")
MANIFEST_OPTIONAL: tuple[str, ...] = ("gender",)
#: Labels other corpora use for our emotions: named in the error, never silently mapped.
_EMOTION_SYNONYMS = {
    "anger": "angry", "fear": "fearful", "afraid": "fearful", "happiness": "happy", "joy": "happy",
    "sadness": "sad", "surprise": "surprised", "disgusted": "disgust", "neu": "neutral", "ang": "angry",
    "hap": "happy",
}


def _manifest_errors(manifest: Path, problems: list[str]) -> DatasetError:
    shown = problems[:20]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    return DatasetError(
        f"{manifest}: {len(problems)} problem(s) in the manifest (header path,emotion,speaker[,gender]; "
        "paths relative to the manifest):\n  " + "\n  ".join(shown) + more
    )


def read_manifest(manifest: str | Path, *, corpus: str | None = None) -> pd.DataFrame:
    """A user's labelled corpus from a CSV manifest, as a corpus table (:data:`TABLE_COLUMNS`).

    The header is ``path,emotion,speaker`` with an optional ``gender`` column (``male``,
    ``female`` or empty). ``path`` is relative to the manifest's folder (or absolute);
    ``emotion`` is one of :data:`EMOTIONS` (any letter case). Speakers become
    ``<corpus>-<speaker>``; ``corpus`` defaults to the manifest's file name without extension.
    Sentence, repetition and intensity are unknown (empty).

    Raises
    ------
    DatasetError
        Naming the manifest, and each bad line with what is wrong: a bad header, an unknown
        emotion or gender, an empty path or speaker, a missing file, a repeated path, a row
        with the wrong number of fields, or no rows at all.
    """
    manifest = Path(manifest)
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: no such manifest file; pass a CSV with the header path,emotion,speaker")
    corpus = corpus or manifest.stem
    if not corpus.strip():
        raise DatasetError(f"{manifest}: give the corpus a name")
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{manifest}: not UTF-8 text ({error}); save the manifest as UTF-8 CSV") from error
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None:
        raise DatasetError(f"{manifest}: the manifest is empty; its first line must be path,emotion,speaker[,gender]")
    header = [name.strip().lower() for name in header]
    missing = [name for name in MANIFEST_REQUIRED if name not in header]
    unknown = [name for name in header if name not in MANIFEST_REQUIRED + MANIFEST_OPTIONAL]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if missing or unknown or repeated:
        parts = [f"missing column(s) {missing}"] * bool(missing) + [f"unknown column(s) {unknown}"] * bool(unknown)
        parts += [f"repeated column(s) {repeated}"] * bool(repeated)
        raise DatasetError(
            f"{manifest}: line 1: bad header {header}: {'; '.join(parts)}; expected path,emotion,speaker[,gender]"
        )
    problems: list[str] = []
    rows: list[dict] = []
    first_line: dict[Path, int] = {}
    for fields in reader:
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue  # blank lines are allowed
        if len(fields) != len(header):
            problems.append(f"line {line}: {len(fields)} field(s), expected {len(header)} ({','.join(header)})")
            continue
        values = {name: field.strip() for name, field in zip(header, fields, strict=True)}
        emotion, speaker, gender = values["emotion"].lower(), values["speaker"], values.get("gender", "").lower()
        if emotion not in EMOTIONS:
            hint = f" (did you mean {_EMOTION_SYNONYMS[emotion]!r}?)" if emotion in _EMOTION_SYNONYMS else ""
            known = ", ".join(EMOTIONS)
            problems.append(f"line {line}: unknown emotion {values['emotion']!r}{hint}; use one of {known}")
        if not speaker:
            problems.append(f"line {line}: empty speaker; every clip needs its speaker (results are grouped by it)")
        if gender and gender not in GENDERS:
            problems.append(f"line {line}: unknown gender {values['gender']!r}; use male, female or leave it empty")
        if not values["path"]:
            problems.append(f"line {line}: empty path")
            continue
        path = Path(values["path"])
        path = (path if path.is_absolute() else manifest.parent / path).resolve()
        if not path.is_file():
            problems.append(f"line {line}: no such file {values['path']!r} (looked for {path})")
        elif path in first_line:
            problems.append(f"line {line}: {values['path']!r} is listed again (first on line {first_line[path]})")
        first_line.setdefault(path, line)
        rows.append({
            "path": str(path), "corpus": corpus, "speaker": f"{corpus}-{speaker}", "gender": gender or None,
            "emotion": emotion, "sentence": None, "text": None, "common_sentence": None, "repetition": None,
            "vocal_channel": "speech", "intensity": None,
        })
    if problems:
        raise _manifest_errors(manifest, problems)
    if not rows:
        raise DatasetError(f"{manifest}: the manifest lists no clips; add one line per clip under the header")
    return table_from_rows(rows)


def index_corpus(source: str | Path, *, corpus: str | None = None) -> pd.DataFrame:
    """Index one corpus: a CSV manifest (:func:`read_manifest`), a folder holding speechocean's
    ``speakers.csv`` (:func:`index_speechocean`), or a folder of RAVDESS or ASED files, told apart by
    their names (:func:`index_ravdess`, :func:`index_ased`).

    Returns
    -------
    pandas.DataFrame
        One row per clip with :data:`TABLE_COLUMNS` (a folder's sorted by path, a manifest's in
        its order).
    """
    source = Path(source)
    if source.suffix.lower() == ".csv" or source.is_file():
        return read_manifest(source, corpus=corpus)
    if (source / "speakers.csv").is_file():  # speechocean's listing: its file names say nothing
        return index_speechocean(source, corpus=corpus or "speechocean")
    first = audio_files(source, what="corpus")[0]
    if name_format(first) == "ravdess":
        return index_ravdess(source, corpus=corpus or "ravdess")
    if name_format(first) == "ased":
        return index_ased(source, corpus=corpus or "ased")
    raise DatasetError(
        f"{source}: {first.name} is neither a RAVDESS nor an ASED file name, and there is no speechocean "
        "speakers.csv; describe your clips in a CSV manifest with the header path,emotion,speaker[,gender] and "
        "pass that file instead"
    )


def index_corpora(sources: list[str | Path] | tuple[str | Path, ...]) -> pd.DataFrame:
    """Index several corpora (:func:`index_corpus`) into one table with a ``corpus`` column.

    Raises
    ------
    DatasetError
        If two sources have the same corpus name (their speaker ids could collide: name a
        manifest differently) or list the same file.
    """
    if not sources:
        raise DatasetError("no corpus given; pass at least one folder or manifest")
    tables = [index_corpus(source) for source in sources]
    names = [str(table["corpus"].iloc[0]) for table in tables]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DatasetError(f"two sources are both corpus {repeated}; give each corpus once (rename a manifest)")
    table = pd.concat(tables, ignore_index=True)
    duplicated = table["path"][table["path"].duplicated()]
    if len(duplicated):
        raise DatasetError(f"{duplicated.iloc[0]} belongs to two corpora; list each file once")
    return table


def corpus_emotions(table: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """The emotions each corpus of ``table`` has clips of, in :data:`EMOTIONS` order: what that
    corpus can teach (a masked loss never treats the others as wrong answers for its clips). A
    corpus with a partial label (:data:`PARTIAL_LABELS`) also teaches the emotions that label
    speaks about: speechocean's "neutral or calm" teaches all eight."""
    taught = {}
    for corpus, group in table.groupby("corpus", sort=True):
        labels = set(group["emotion"])
        # A partial label teaches the emotions it speaks about (PartialLabel.teaches).
        names = labels.union(*(PARTIAL_LABELS[label].teaches for label in labels if label in PARTIAL_LABELS))
        taught[str(corpus)] = tuple(emotion for emotion in EMOTIONS if emotion in names)
    return taught


def emotion_mask(table: pd.DataFrame, *, emotions: dict[str, tuple[str, ...]] | None = None) -> np.ndarray:
    """Which of the eight emotions each row's corpus can teach: the class mask of a masked loss.

    Parameters
    ----------
    table : pandas.DataFrame
        A corpus table (:data:`ser.training.data.TABLE_COLUMNS`).
    emotions : dict, optional
        ``corpus -> emotions``; by default :func:`corpus_emotions` of ``table`` itself (pass the
        training table's when masking test rows).

    Returns
    -------
    np.ndarray of bool, shape (len(table), len(EMOTIONS))
    """
    emotions = corpus_emotions(table) if emotions is None else emotions
    missing = sorted(set(table["corpus"]) - set(emotions))
    if missing:
        raise ValueError(f"no emotions known for corpus {missing}")
    allowed = {corpus: np.isin(EMOTIONS, names) for corpus, names in emotions.items()}
    if not len(table):
        return np.zeros((0, len(EMOTIONS)), dtype=bool)
    return np.stack([allowed[corpus] for corpus in table["corpus"]])


def target_mask(table: pd.DataFrame) -> np.ndarray:
    """Each row's target set among the eight emotions: its emotion, or a partial label's targets.

    Returns
    -------
    np.ndarray of bool, shape (len(table), len(EMOTIONS))

    Raises
    ------
    DatasetError
        For a label that is neither an emotion nor a partial label (naming both lists).
    """
    targets = {emotion: np.asarray(EMOTIONS) == emotion for emotion in EMOTIONS}
    targets.update({name: np.isin(EMOTIONS, label.targets) for name, label in PARTIAL_LABELS.items()})
    unknown = sorted(set(table["emotion"]) - set(targets))
    if unknown:
        raise DatasetError(f"unknown label(s) {unknown}; use one of {', '.join(EMOTIONS)} or a partial label "
                           f"({', '.join(PARTIAL_LABELS)})")
    if not len(table):
        return np.zeros((0, len(EMOTIONS)), dtype=bool)
    return np.stack([targets[label] for label in table["emotion"]])


def index_speechocean(root: str | Path, *, corpus: str = "speechocean") -> pd.DataFrame:
    """speechocean762's ordinary voices below ``root`` as a corpus table (:data:`TABLE_COLUMNS`).

    ``root/speakers.csv`` (header ``file,speaker,gender,age,text``) lists the clips. The corpus has no
    emotion labels: it is everyday, unacted read speech, so every clip gets the partial label
    :data:`NEUTRAL_OR_CALM` (an answer of neutral or calm is right, any other a false alarm). Speakers
    are ``speechocean-0001`` ...; ``text`` is the words read (several speakers read the same words).

    Raises
    ------
    DatasetError
        If ``speakers.csv`` is missing or has another header, a listed file is missing, or a gender
        code is not ``m``/``f``.
    """
    root = Path(root)
    listing = root / "speakers.csv"
    if not listing.is_file():
        raise DatasetError(f"{listing}: no such file; pass the folder holding speechocean's speakers.csv and clips")
    with listing.open(encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    expected = ["file", "speaker", "gender", "age", "text"]
    if not records or list(records[0]) != expected:
        raise DatasetError(f"{listing}: expected the header {','.join(expected)} and at least one row")
    genders = {"m": "male", "f": "female"}
    problems, rows = [], []
    for line, record in enumerate(records, start=2):
        path = root / record["file"]
        if not path.is_file():
            problems.append(f"line {line}: no such file {record['file']!r}")
        if record["gender"] not in genders:
            problems.append(f"line {line}: gender {record['gender']!r} (expected m or f)")
            continue
        rows.append({
            "path": str(path), "corpus": corpus, "speaker": f"{corpus}-{record['speaker']}",
            "gender": genders[record["gender"]], "emotion": NEUTRAL_OR_CALM, "sentence": None,
            "text": record["text"], "common_sentence": None, "repetition": None, "vocal_channel": "speech",
            "intensity": None,
        })
    if problems:
        raise DatasetError(f"{listing}: {len(problems)} problem(s); fix the listing or restore the clips:\n  "
                           + "\n  ".join(problems[:20]))
    return table_from_rows(rows)


def speaker_folds(table: pd.DataFrame, *, n_folds: int, seed: int) -> list[list[str]]:
    """Deal every speaker of ``table`` into ``n_folds`` disjoint folds, corpus by corpus.

    Within a corpus, male speakers are shuffled and dealt round-robin first, then female, then
    those of unknown gender, with a generator seeded by ``seed`` afresh for each corpus: for
    RAVDESS that is exactly :func:`ser.training.splits.actor_folds` (the headline's folds).

    Returns
    -------
    list of list of str
        Speaker ids; each speaker in exactly one fold, each fold sorted.
    """
    speakers = table.groupby("speaker", sort=True).agg(corpus=("corpus", "first"), gender=("gender", "first"))
    if n_folds < 2 or n_folds > len(speakers):
        raise ValueError(f"n_folds must be between 2 and the number of speakers ({len(speakers)}), got {n_folds}")
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    for _, group in speakers.groupby("corpus", sort=True):
        rng = np.random.default_rng(seed)
        position = 0
        for gender in ("male", "female", None):
            chosen = group.index[group["gender"].isna()] if gender is None else group.index[group["gender"] == gender]
            members = sorted(chosen)
            rng.shuffle(members)
            for speaker in members:
                folds[position % n_folds].append(str(speaker))
                position += 1
    return [sorted(fold) for fold in folds]


def fold_speakers(
    table: pd.DataFrame, *, n_folds: int, fold: int, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """Fold ``fold`` of :func:`speaker_folds` is the test set, the next one the validation set
    (as :func:`ser.training.splits.train_validation_test`).

    Returns
    -------
    train, validation, test : list of str
        Disjoint speaker ids covering the table.
    """
    folds = speaker_folds(table, n_folds=n_folds, seed=seed)
    test, validation = folds[fold], folds[(fold + 1) % n_folds]
    train = sorted(speaker for group in folds for speaker in group if speaker not in test + validation)
    return train, validation, test


def reference_clips(table: pd.DataFrame, *, per_speaker: int = 2) -> np.ndarray:
    """The neutral clips that stand for each speaker's ordinary voice in calibrated scoring.

    Per speaker, ``per_speaker`` neutral clips, chosen without looking at audio or answers:
    sentences whose words are not spoken in other emotions first (so the reference does not
    share words with the scored clips where the corpus allows it), first repetitions first,
    different sentences before a second take of the same one, then by path. A speaker with
    fewer neutral clips gets none (their clips are left out of calibrated comparisons).

    Returns
    -------
    np.ndarray of bool, shape (len(table),)
        True for reference clips (never scored in a calibrated comparison).
    """
    chosen = np.zeros(len(table), dtype=bool)
    neutral = table[table["emotion"] == "neutral"]
    order = neutral.assign(
        _common=neutral["common_sentence"].fillna(False).astype(bool),
        _repetition=neutral["repetition"].fillna(1),
        _sentence=neutral["sentence"].fillna(0),
    ).sort_values(["speaker", "_common", "_repetition", "_sentence", "path"])
    for _, clips in order.groupby("speaker", sort=True):
        if len(clips) < per_speaker:
            continue
        picked: list = []
        texts: set = set()
        for row, text in zip(clips.index, clips["text"], strict=True):  # distinct words first
            if len(picked) < per_speaker and (text is None or text not in texts):
                picked.append(row)
                texts.add(text)
        picked += [row for row in clips.index if row not in picked][: per_speaker - len(picked)]
        chosen[table.index.get_indexer(picked)] = True
    return chosen
