"""The clips a training run learns from: cached features and integer labels, and which of them train.

Example
-------
>>> import numpy as np
>>> from ser.training.clips import ClipSet, training_mask
>>> clips = ClipSet(variants={1.0: [np.zeros((5, 4), np.float32)] * 3}, emotion=np.array([0, 1, 2]),
...                 gender=np.array([0, 1, 0]), intensity=np.array([0, 0, 1]), actor=np.array([1, 2, 3]))
>>> training_mask(clips, actors=[1, 3]).tolist()
[True, False, True]
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ser.config import FeatureConfig
from ser.serving.functionals import functional_names
from ser.training.cache import load_features, load_functionals, load_room_functionals, load_word_functionals
from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
from ser.training.target_sets import one_hot_targets, single_labels


@dataclasses.dataclass
class ClipSet:
    """Features and labels of a set of clips.

    ``variants[speed][i]`` is clip i's log-mel matrix ``(frames, n_mels)``; ``functionals[speed]``
    the openSMILE functionals of every clip ``(n_clips, n_functionals)`` (None for a log-mel-only
    config); ``room_functionals`` those of each clip's room copy ``(n_clips, n_functionals)``
    (:func:`ser.training.cache.load_room_functionals`; NaN for song clips; None when not loaded).
    """

    variants: dict[float, list[np.ndarray]]
    emotion: np.ndarray
    gender: np.ndarray
    intensity: np.ndarray
    actor: np.ndarray
    functionals: dict[float, np.ndarray] | None = None
    functional_names: list[str] | None = None
    room_functionals: np.ndarray | None = None
    #: Several corpora (:func:`build_corpus_clip_set`): each clip's corpus name, shape (n,) ...
    corpus: np.ndarray | None = None
    #: ... which of the eight emotions its corpus can teach, bool (n, len(EMOTIONS)) (the masked loss) ...
    class_mask: np.ndarray | None = None
    #: ... and the speaker each code of ``actor`` stands for (``speakers[code - 1]``, e.g. ``ased-07``).
    #: None for one RAVDESS folder, where ``actor`` is the actor's number and every clip has all 8.
    speakers: tuple[str, ...] | None = None
    #: Each clip's target set, bool (n, len(EMOTIONS)): its emotion, or a partial label's emotions
    #: (speechocean's "neutral or calm"; ``emotion`` is then -1). None: every clip's is its ``emotion``.
    target_mask: np.ndarray | None = None
    #: Functionals of one word-length cut of every speech clip, shape (n, n_functionals)
    #: (:func:`ser.training.cache.load_word_functionals`; NaN where no cut could be scored): a
    #: further training copy for the linear views. None: they learn from sentences only.
    word_functionals: np.ndarray | None = None

    @property
    def masked(self) -> bool:
        """True when the clips come from several corpora (or a manifest): train with the masked loss."""
        return self.class_mask is not None

    def targets(self) -> np.ndarray:
        """Each clip's target set (a right answer is any of it), bool, shape (len(self), len(EMOTIONS))."""
        if self.target_mask is not None:
            return self.target_mask
        return one_hot_targets(self.emotion, n_classes=len(EMOTIONS))

    def subset(self, mask: np.ndarray) -> ClipSet:
        """The clips where ``mask`` (bool, shape ``(len(self),)``) is true, in their order."""
        positions = np.flatnonzero(mask)
        return ClipSet(
            variants={speed: [items[i] for i in positions] for speed, items in self.variants.items()},
            emotion=self.emotion[positions],
            gender=self.gender[positions],
            intensity=self.intensity[positions],
            actor=self.actor[positions],
            functionals=None
            if self.functionals is None
            else {speed: values[positions] for speed, values in self.functionals.items()},
            functional_names=self.functional_names,
            room_functionals=None if self.room_functionals is None else self.room_functionals[positions],
            corpus=None if self.corpus is None else self.corpus[positions],
            class_mask=None if self.class_mask is None else self.class_mask[positions],
            speakers=self.speakers,
            target_mask=None if self.target_mask is None else self.target_mask[positions],
            word_functionals=None if self.word_functionals is None else self.word_functionals[positions],
        )

    def functional_copies(self) -> list[np.ndarray]:
        """Every training copy of the functionals: one per speed, then the room copy if loaded, then
        the word copy if loaded (a clip whose cut held too little voice repeats the clip itself).

        Returns
        -------
        list of np.ndarray, each of shape (len(self), n_functionals)
        """
        if self.functionals is None:
            raise ValueError("these clips have no functionals; use a config with functionals set")
        copies = [self.functionals[speed] for speed in sorted(self.functionals)]
        if self.room_functionals is not None:
            copies.append(self.room_functionals)
        if self.word_functionals is not None:
            refused = np.isnan(self.word_functionals).any(axis=1, keepdims=True)
            copies.append(np.where(refused, self.functionals[1.0], self.word_functionals))
        return copies

    def __len__(self) -> int:
        return len(self.emotion)


def build_clip_set(index: pd.DataFrame, *, config: FeatureConfig, cache_dir: Path, words: bool = False) -> ClipSet:
    """Load (cached) features and integer labels for every row of ``index`` (from
    :func:`ser.training.data.index_dataset`), and for a config with functionals those of the
    room copies too (and, with ``words``, of one word-length cut of every speech clip)."""
    variants = load_features(index, config=config, cache_dir=cache_dir)
    functionals = load_functionals(index, config=config, cache_dir=cache_dir) if config.functionals else None
    room = load_room_functionals(index, config=config, cache_dir=cache_dir) if config.functionals else None
    word = load_word_functionals(index, config=config, cache_dir=cache_dir) if config.functionals and words else None
    return ClipSet(
        variants=variants,
        emotion=index["emotion"].map(EMOTIONS.index).to_numpy(np.int64),
        gender=index["gender"].map(GENDERS.index).to_numpy(np.int64),
        intensity=index["intensity"].map(INTENSITIES.index).to_numpy(np.int64),
        actor=index["actor"].to_numpy(np.int64),
        functionals=functionals,
        functional_names=functional_names(config) if config.functionals else None,
        room_functionals=room,
        word_functionals=word,
    )


def build_corpus_clip_set(table: pd.DataFrame, *, config: FeatureConfig, cache_dir: Path) -> ClipSet:
    """Features and labels of a corpus table (:func:`ser.training.corpora.index_corpora`), for the
    masked recipe.

    Features are cached corpus by corpus (a corpus's cache file serves any combination it is in;
    RAVDESS's is the one a one-folder run uses). Unknown gender or intensity is ``-1`` (that head
    does not learn from the clip); ``actor`` holds speaker codes 1..n (``speakers[code - 1]``, in
    table order of first appearance); ``class_mask`` the emotions of each clip's corpus and
    ``target_mask`` each clip's target set (:func:`ser.training.corpora.target_mask`; ``emotion`` is
    -1 for a partial label such as speechocean's "neutral or calm").

    Returns
    -------
    ClipSet
        Rows aligned with ``table`` (``table`` must list each corpus's clips together).
    """
    from ser.training.corpora import emotion_mask, target_mask

    table = table.reset_index(drop=True)
    targets = target_mask(table)  # first: an unknown label is named before any feature is computed
    names = list(dict.fromkeys(table["corpus"]))
    if (table["corpus"] != table["corpus"].shift()).sum() != len(names):  # features are joined per corpus
        raise ValueError("the table must list each corpus's clips together (as index_corpora does)")
    variants: dict[float, list[np.ndarray]] = {}
    functionals: dict[float, list[np.ndarray]] = {}
    rooms: list[np.ndarray] = []
    for name in names:
        part = table[table["corpus"] == name]
        index = pd.DataFrame({"path": part["path"].tolist(), "vocal_channel": part["vocal_channel"].tolist()})
        for speed, items in load_features(index, config=config, cache_dir=cache_dir).items():
            variants.setdefault(speed, []).extend(items)
        if config.functionals:
            for speed, values in load_functionals(index, config=config, cache_dir=cache_dir).items():
                functionals.setdefault(speed, []).append(values)
            rooms.append(load_room_functionals(index, config=config, cache_dir=cache_dir))
    speakers = tuple(dict.fromkeys(table["speaker"]))
    code = {speaker: position + 1 for position, speaker in enumerate(speakers)}

    def labels(column: str, values: tuple[str, ...]) -> np.ndarray:
        return table[column].map(lambda value: values.index(value) if value in values else -1).to_numpy(np.int64)

    return ClipSet(
        variants=variants,
        emotion=single_labels(targets),
        gender=labels("gender", GENDERS),
        intensity=labels("intensity", INTENSITIES),
        actor=table["speaker"].map(code).to_numpy(np.int64),
        functionals={speed: np.concatenate(parts) for speed, parts in functionals.items()} if functionals else None,
        functional_names=functional_names(config) if config.functionals else None,
        room_functionals=np.concatenate(rooms) if rooms else None,
        corpus=table["corpus"].to_numpy(str),
        class_mask=emotion_mask(table),
        speakers=speakers,
        target_mask=targets,
    )


def training_mask(clips: ClipSet, *, actors: list[int]) -> np.ndarray:
    """The clips the CNN trains on from ``actors``: their speech and their song clips.

    Returns
    -------
    np.ndarray of bool, shape (len(clips),)
    """
    return np.isin(clips.actor, actors)
