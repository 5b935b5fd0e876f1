"""Leave one corpus out: train on the other corpora, answer the clips of the one left out.

Three corpora, each left out in turn: RAVDESS's acted English (actors 1-20, speech), ASED's acted
Amharic (5 emotions) and speechocean762's ordinary read speech (partial label "neutral or calm").
Two kinds of model answer the corpus left out:

- **the recipe**: the linear views (L2 logistic regressions on the 6373 openSMILE ComParE
  functionals and on their 473 voice-source columns, fused by the normalised geometric mean) with
  the multi-corpus recipe (:class:`ser.training.linear_views.LinearRecipe`: masked loss with target
  sets, corpora equal, classes balanced within each corpus, every speed and room copy), trained on
  every speaker of the other two corpora; each view's L2 strength chosen on validation speakers of
  the *training* corpora only (fold 0 of their speaker folds), then refitted on all of them;
- **the shipped bundle's parts**, where they never heard the corpus: speechocean (its main model alone;
  answered as ``ser predict`` answers and by its joint views alone too when neither they nor the router
  learnt ordinary voices) and ASED (its main model alone; the joint views and the router learnt from
  ASED). New speakers of a corpus the joint views learnt from are ``python -m ser routing``'s.

Every clip is answered twice: the whole sentence, and one word-length cut (0.5-1.2 s, at a seeded
place inside the trimmed speech, :func:`word_cut`), through the app's own trimming and features.
:func:`ser.reporting.loco_results.score_set` turns answers into the reported figures; the command
writes ``models/loco.json``::

    python -m ser loco --data ../shared/data --out models/
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ser.config import FeatureConfig
from ser.training.corpora import index_corpora, index_speechocean, speaker_folds
from ser.training.data import EMOTIONS
from ser.training.linear_views import (
    FunctionalClips,
    LinearRecipe,
    LinearView,
    fit_views,
    fuse_probabilities,
    single_label_classes,
)

#: The corpora, in row order of :func:`corpus_table`; each is a folder of that name below ``--data``.
CORPORA = ("ravdess", "ased", "speechocean")
#: Validation speakers (for the L2 choice) are fold 0 of this many speaker folds of the training corpora.
N_FOLDS, SEED = 5, 0
#: speechocean's children are 6-12 years old, its adults 13-37 (``speakers.csv``).
CHILD_AGE = 12
#: Word-length cuts: their length range in seconds, and the seed (with each file's name) of length and place.
CUT_SECONDS, CUT_SEED = (0.5, 1.2), 22
#: The views fused, and the columns each reads (None: all functionals).
VIEWS = ("functionals", "voicing")


def corpus_table(data: Path, *, ordinary: bool = True) -> pd.DataFrame:
    """RAVDESS speech, ASED, then (``ordinary``) speechocean below ``data``: the rows every answer indexes.

    Raises
    ------
    ser.errors.DatasetError
        If a corpus folder is missing or malformed (the message names it).
    """
    data = Path(data)
    table = index_corpora([(data / "ravdess").resolve(), (data / "ased").resolve()])
    table = table[table["vocal_channel"] == "speech"].reset_index(drop=True)
    order = np.concatenate([np.flatnonzero(table["corpus"] == corpus) for corpus in ("ravdess", "ased")])
    if not ordinary:
        return table.iloc[order].reset_index(drop=True)
    ordinary_voices = index_speechocean((data / "speechocean").resolve())
    return pd.concat([table.iloc[order], ordinary_voices], ignore_index=True)


def load_functional_clips(table: pd.DataFrame, *, cache: Path, ages: dict[str, float] | None = None) -> FunctionalClips:
    """The clips of ``table`` with the functionals of every speed and room copy, cached per corpus.

    ``clips.names`` are the functional names; ``clips.age`` each speaker's age where ``ages`` knows
    it (speechocean's ``speakers.csv``), NaN elsewhere.
    """
    from ser.serving.functionals import functional_names
    from ser.training.cache import load_functionals, load_room_functionals

    config = FeatureConfig()
    speeds: dict[float, list[np.ndarray]] = {}
    rooms = []
    for corpus in dict.fromkeys(table["corpus"]):  # one cache file per corpus: its own file list
        part = table[table["corpus"] == corpus]
        index = pd.DataFrame({"path": part["path"].tolist(), "vocal_channel": "speech"})
        for speed, values in load_functionals(index, config=config, cache_dir=cache).items():
            speeds.setdefault(speed, []).append(values)
        rooms.append(load_room_functionals(index, config=config, cache_dir=cache))
    clips = FunctionalClips(table=table, speeds={speed: np.concatenate(parts) for speed, parts in speeds.items()},
                            room=np.concatenate(rooms))
    clips.names = functional_names(config)
    clips.age = np.array([(ages or {}).get(speaker, np.nan) for speaker in clips.speaker], dtype=float)
    return clips


def speechocean_ages(data: Path) -> dict[str, float]:
    """``speaker -> age`` from ``data/speechocean/speakers.csv`` (speakers named as the corpus table names them)."""
    listing = pd.read_csv(Path(data) / "speechocean" / "speakers.csv", dtype={"speaker": str})
    return dict(zip("speechocean-" + listing["speaker"], listing["age"].astype(float), strict=True))


def word_cut(waveform: np.ndarray, *, name: str, config: FeatureConfig) -> np.ndarray:
    """One cut of 0.5-1.2 s of the clip's trimmed speech (all of it when shorter), seeded by ``name``.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        At ``config.sample_rate``.
    name : str
        The file's name: the same file always gives the same cut.

    Returns
    -------
    np.ndarray, shape (cut_samples,)
    """
    return cut_word(waveform, rng=np.random.default_rng([CUT_SEED, zlib.crc32(name.encode())]), config=config)


def cut_word(waveform: np.ndarray, *, rng: np.random.Generator, config: FeatureConfig) -> np.ndarray:
    """One cut of 0.5-1.2 s of the clip's trimmed speech (all of it when shorter), its length and place drawn
    from ``rng``.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        At ``config.sample_rate``.
    rng : np.random.Generator
        Draws the cut's length, then its start.
    config : FeatureConfig
        The trimming (``trim_top_db``) and the rate.

    Returns
    -------
    np.ndarray, shape (cut_samples,)
    """
    from ser.serving.features import remove_dc, trim_silence

    speech = trim_silence(remove_dc(waveform), config=config)
    length = int(rng.uniform(*CUT_SECONDS) * config.sample_rate)
    if speech.size <= length:
        return speech
    start = int(rng.integers(0, speech.size - length + 1))
    return speech[start : start + length]


def load_cuts(table: pd.DataFrame, *, cache: Path, log: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray]:
    """Functionals of one word-length cut of every clip (NaN rows where the app refuses the cut), cached.

    Returns
    -------
    values : np.ndarray, shape (n_clips, n_functionals), float32
    seconds : np.ndarray, shape (n_clips,)
        Length of each cut.
    """
    from ser.errors import NoSpeechError
    from ser.serving.audio import decode_audio
    from ser.serving.features import prepare_waveform
    from ser.serving.functionals import acoustic_functionals, n_functionals

    config = FeatureConfig()
    key = zlib.crc32(json.dumps([config.to_dict(), CUT_SECONDS, CUT_SEED, table["path"].tolist()],
                                sort_keys=True).encode())
    file = Path(cache) / f"functionals-cuts-{key:08x}.npz"
    if file.exists():
        with np.load(file) as stored:
            return stored["values"], stored["seconds"]
    started = time.perf_counter()
    values = np.full((len(table), n_functionals(config)), np.nan, dtype=np.float32)
    seconds = np.zeros(len(table))
    for row, path in enumerate(table["path"]):
        cut = word_cut(decode_audio(path, sample_rate=config.sample_rate), name=Path(path).name, config=config)
        seconds[row] = cut.size / config.sample_rate
        try:
            values[row] = acoustic_functionals(prepare_waveform(cut, config=config), config=config)
        except NoSpeechError:
            pass  # refused as the app would refuse it: scored as a refusal, never as an answer
        if row % 500 == 0:
            log(f"  cuts: {row} of {len(table)} ({time.perf_counter() - started:.0f} s)")
    file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(file, values=values, seconds=seconds)
    return values, seconds


def validation_score(probabilities: np.ndarray, clips: FunctionalClips, rows: np.ndarray,
                     allowed: np.ndarray) -> float:
    """Share of ``rows``' clips whose answer among their corpus's emotions (that the model answers,
    ``allowed``) is in their target set, averaged over the corpora (each counts once, as in the loss).

    Parameters
    ----------
    probabilities : np.ndarray, shape (len(rows), len(EMOTIONS))
    rows : np.ndarray of int, shape (n,)
    allowed : np.ndarray of bool, shape (len(EMOTIONS),)
    """
    answers = np.where(clips.class_mask[rows] & allowed, probabilities, -1.0).argmax(axis=1)
    right = clips.targets[rows][np.arange(len(answers)), answers]
    corpus = clips.corpus[rows]
    return float(np.mean([right[corpus == name].mean() for name in np.unique(corpus)]))


def fit_and_choose(clips: FunctionalClips, train: np.ndarray, validation: np.ndarray, recipe: LinearRecipe, *,
                   log: Callable[[str], None], label: str) -> tuple[list[LinearView], dict[str, dict]]:
    """Both views: each L2 strength of the grid fitted on ``train``, the best on ``validation`` refitted on both.

    Parameters
    ----------
    train, validation : np.ndarray of bool, shape (len(clips),)

    Returns
    -------
    views : list of LinearView
        The functionals view, then the voicing view.
    choice : dict
        ``view -> {"chosen": C, "validation": {str(C): score for every C of the grid}}``.
    """
    from ser.serving.functionals import voicing_columns

    views, choice = [], {}
    allowed = single_label_classes(clips, train)
    rows = np.flatnonzero(validation)
    plan = (("functionals", None, recipe.c_grid), ("voicing", voicing_columns(clips.names), recipe.voicing_c_grid))
    for name, columns, grid in plan:
        started = time.perf_counter()
        candidates = fit_views(clips, train, recipe=recipe, c_values=grid, columns=columns)
        values = clips.speeds[1.0][validation]
        scores = {c: validation_score(view.probabilities(values), clips, rows, allowed)
                  for c, view in zip(grid, candidates, strict=True)}
        best = max(grid, key=lambda c: (scores[c], -c))  # ties: the stronger L2
        views += fit_views(clips, train | validation, recipe=recipe, c_values=(best,), columns=columns)
        choice[name] = {"chosen": float(best), "validation": {str(c): score for c, score in scores.items()}}
        log(f"  {label} {name}: C {best} (validation {scores[best]:.3f}; {time.perf_counter() - started:.0f} s)")
    return views, choice


def fused_answers(views: list[LinearView], values: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Fused probabilities over the emotions the model answers (the others 0); NaN rows stay NaN (refused).

    Parameters
    ----------
    values : np.ndarray, shape (n, n_functionals)
    allowed : np.ndarray of bool, shape (len(EMOTIONS),)

    Returns
    -------
    np.ndarray, shape (n, len(EMOTIONS))
    """
    out = np.full((len(values), len(EMOTIONS)), np.nan)
    ok = ~np.isnan(values).any(axis=1)
    if ok.any():
        parts = [np.where(allowed, view.probabilities(values[ok]), 0.0) for view in views]
        out[ok] = fuse_probabilities(*parts) * allowed
    return out


def leave_out(clips: FunctionalClips, left_out: str, *, recipe: LinearRecipe, cuts: np.ndarray,
              log: Callable[[str], None]) -> dict:
    """Train the recipe on every corpus but ``left_out`` and answer ``left_out``'s clips.

    Parameters
    ----------
    cuts : np.ndarray, shape (len(clips), n_functionals)
        The word-length cuts' functionals (:func:`load_cuts`).

    Returns
    -------
    dict
        ``rows`` (int positions of the left-out clips), ``allowed`` (bool (len(EMOTIONS),): what the
        model answers), ``trained_on`` (corpora), ``chosen`` (L2 per view), ``sentence`` and ``cut``
        (probabilities, shape (len(rows), len(EMOTIONS))).

    Raises
    ------
    ValueError
        If ``left_out`` is not among the clips' corpora or no other corpus is.
    """
    corpora = list(dict.fromkeys(clips.corpus))
    if left_out not in corpora or len(corpora) < 2:
        raise ValueError(f"leaving out {left_out!r} needs it and another corpus among the clips' {corpora}")
    members = clips.corpus != left_out
    folds = speaker_folds(clips.table[members], n_folds=N_FOLDS, seed=SEED)
    validation = members & np.isin(clips.speaker, folds[0])
    views, choice = fit_and_choose(clips, members & ~validation, validation, recipe, log=log,
                                   label=f"without {left_out}")
    rows = np.flatnonzero(~members)
    allowed = single_label_classes(clips, members)
    return {"rows": rows, "allowed": allowed, "trained_on": [c for c in corpora if c != left_out],
            "chosen": {view: values["chosen"] for view, values in choice.items()},
            "sentence": fused_answers(views, clips.speeds[1.0][rows], allowed),
            "cut": fused_answers(views, cuts[rows], allowed)}
