"""A one-fold bundle on the speakers it never heard: within its training corpora and across to the others.

``python -m ser train --folds 1 --out BUNDLE`` saves fold 0's model, trained on fold 0's training and
validation speakers (``BUNDLE/metrics.json``, ``corpora.folds``). This scores, as ``python -m ser
predict`` scores a file (:func:`ser.training.corpus_check.score_clips`), every clip of RAVDESS's
speech (actors 1-20) and of ASED whose speaker the bundle never heard:

- a corpus the bundle was trained on: its fold-0 test speakers only (within corpus, as
  ``metrics.json`` scores them);
- a corpus it was not trained on: every speaker (across corpora).

The clips are those of the emotions both the test corpus has and the bundle was taught (an ASED-only
bundle is tested on RAVDESS's neutral, happy, sad, angry and fearful clips), scored as the app answers
(8 emotions) and restricted to those emotions, with recall per emotion and the share of each answer
(:func:`ser.reporting.corpus_results.corpus_comparison`). ASED is scored on all sentences and on the
two common ones only (01 and 02, spoken in every emotion, so the words cannot give the emotion away).
A training corpus read from a manifest of ASED clips (``experiments.ased_common_manifest``) names the
same people as ASED: ``--same-speakers ased_common=ased`` maps its speakers ``ased_common-07`` to
``ased-07``, so ASED is tested (all sentences and common ones) on that manifest's fold-0 test speakers.

Writes ``BUNDLE/transfer.json`` (:class:`TransferResults`); per-clip scores are kept in
``.cache/corpus_check/`` keyed by the model's SHA-256. From the repository root (a few minutes)::

    python -m experiments.bundle_transfer --model /tmp/ased-only --data ../shared/data
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ser.config import write_json
from ser.errors import SERError
from ser.reporting.corpus_results import Comparison, corpus_comparison
from ser.reporting.provenance import model_sha256, package_versions, utc_now
from ser.reporting.results import load_training
from ser.reporting.schema import to_json
from ser.serving.bundle import load_bundle
from ser.training.corpora import corpus_emotions
from ser.training.corpus_check import CACHE, ScoreCache, score_clips
from ser.training.data import EMOTIONS, index_ased, index_ravdess

#: The test corpora: folder below ``--data`` and how to index it.
TEST_CORPORA = {"ravdess": ("ravdess", index_ravdess), "ased": ("ased", index_ased)}


@dataclasses.dataclass(frozen=True)
class TransferSet:
    """One test set: the clips of ``speakers`` (never heard by the bundle) of ``emotions``.

    ``protocol`` is ``"within corpus"`` (fold 0's test speakers of a training corpus) or ``"across
    corpora"`` (every speaker of a corpus the bundle was not trained on); ``sentences`` is ``"all"``
    or ``"common"`` (ASED's sentences 01 and 02 only).
    """

    corpus: str
    protocol: str
    sentences: str
    emotions: list[str]
    speakers: list[str]
    scores: Comparison


@dataclasses.dataclass(frozen=True)
class TransferResults:
    """``transfer.json``: one bundle on every test set of :data:`TEST_CORPORA`."""

    model_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    trained_on: dict[str, list[str]]
    heard_speakers: int
    sets: list[TransferSet]


def heard_speakers(model: Path, *, aliases: dict[str, str]) -> tuple[dict[str, list[str]], set[str], set[str]]:
    """The corpora (with their emotions) a one-fold bundle learnt from, every speaker it heard (fold 0's
    training and validation speakers) and fold 0's test speakers, ids mapped by ``aliases``.

    Raises
    ------
    SERError
        If ``model/metrics.json`` holds no multi-corpus fold list (train with ``--data`` for each
        corpus, or an ASED folder / manifest, and ``--folds 1``).
    """
    training = load_training(model / "metrics.json")
    if training.corpora is None or not training.corpora.folds:
        raise SERError(f"{model}/metrics.json lists no fold speakers; train the bundle with `python -m ser train "
                       "--data ... --folds 1` on an ASED folder, a manifest or several corpora")
    if len(training.corpora.folds) != 1:
        raise SERError(f"{model} was trained on {len(training.corpora.folds)} folds; every speaker was heard by "
                       "one of them: use a bundle trained with --folds 1")
    fold = training.corpora.folds[0]
    taught = {score.corpus: list(score.emotions) for score in training.corpora.corpora}

    def alias(speaker: str) -> str:
        corpus, _, name = speaker.rpartition("-")
        return f"{aliases.get(corpus, corpus)}-{name}"

    return ({aliases.get(corpus, corpus): emotions for corpus, emotions in taught.items()},
            {alias(speaker) for speaker in [*fold.train, *fold.validation]}, {alias(speaker) for speaker in fold.test})


def test_sets(table: pd.DataFrame, *, corpus: str, trained_on: dict[str, list[str]], heard: set[str],
              tested: set[str]) -> list[tuple[str, str, list[str], np.ndarray]]:
    """``(protocol, sentences, emotions, rows)`` for one test corpus's table; rows a boolean mask: a
    training corpus's clips of the ``tested`` speakers, another corpus's of every speaker not ``heard``."""
    taught = {emotion for emotions in trained_on.values() for emotion in emotions}
    has = corpus_emotions(table)[corpus]
    emotions = [emotion for emotion in EMOTIONS if emotion in has and emotion in taught]
    protocol = "within corpus" if corpus in trained_on else "across corpora"
    rows = (table["vocal_channel"] == "speech").to_numpy() & table["emotion"].isin(emotions).to_numpy()
    speakers = table["speaker"]
    rows &= speakers.isin(tested).to_numpy() if corpus in trained_on else ~speakers.isin(heard).to_numpy()
    if rows.any() and speakers[rows].isin(heard).any():  # cannot happen with one fold's disjoint parts
        raise SERError(f"{corpus}: a speaker of fold 0's training or validation set is among the test speakers")
    sets = [(protocol, "all", emotions, rows)]
    if table["common_sentence"].notna().all() and not table["common_sentence"].all():
        sets.append((protocol, "common", emotions, rows & table["common_sentence"].to_numpy(dtype=bool)))
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a bundle trained with --folds 1")
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/ and ased/")
    parser.add_argument("--cache", type=Path, default=CACHE, help="per-clip scores, reused by the next run")
    parser.add_argument("--same-speakers", action="append", default=[], metavar="CORPUS=CORPUS",
                        help="a training corpus whose speakers are a test corpus's, e.g. ased_common=ased")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        aliases = dict(pair.split("=", 1) for pair in args.same_speakers)
        trained_on, heard, tested = heard_speakers(args.model, aliases=aliases)
        bundle = load_bundle(args.model)
    except (SERError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sha = model_sha256(args.model / "model.keras")
    labels = list(bundle.emotions)
    sets: list[TransferSet] = []
    for corpus, (folder, index) in TEST_CORPORA.items():
        root = args.data / folder
        table = index(root)
        cache = ScoreCache(args.cache, corpus=corpus, sha=sha)
        for protocol, sentences, emotions, rows in test_sets(table, corpus=corpus, trained_on=trained_on, heard=heard,
                                                                tested=tested):
            chosen = table[rows]
            probabilities = score_clips(bundle, chosen, root=root, cache=cache)
            speakers = chosen["speaker"].to_numpy()
            scores = corpus_comparison(probabilities, truth=chosen["emotion"].to_numpy(), speakers=speakers,
                                       labels=labels, emotions=emotions, threshold=bundle.confidence_threshold)
            sets.append(TransferSet(corpus=corpus, protocol=protocol, sentences=sentences, emotions=emotions,
                                    speakers=sorted(set(speakers.tolist())), scores=scores))
            restricted, app = scores.restricted, scores.app
            print(f"{corpus} ({protocol}, {sentences} sentences, {len(emotions)} emotions, "
                  f"{restricted.speakers} speakers, {restricted.answered} clips): {restricted.accuracy:.1%} "
                  f"UAR {restricted.uar:.1%} restricted; as the app answers {app.accuracy:.1%} UAR {app.uar:.1%}",
                  flush=True)
    command = " ".join(["python -m experiments.bundle_transfer", "--model", args.model.name, "--data", "../shared/data",
                        *(f"--same-speakers {pair}" for pair in args.same_speakers)])
    # An experiment's file beside the bundle, not one of the shipped model's result files (FILES).
    write_json(args.model / "transfer.json", to_json(TransferResults(
        model_sha256=sha, measured=utc_now(), command=command, versions=package_versions(),
        trained_on=trained_on, heard_speakers=len(heard), sets=sets)))
    print(f"{args.model / 'transfer.json'} written ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
