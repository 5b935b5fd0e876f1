"""``python -m ser loco``: leave one corpus out, written to ``models/loco.json`` (its one writer).

Trains the recipe's linear views on every corpus but one, for each of RAVDESS, ASED and speechocean,
answers the corpus left out (whole sentences and word-length cuts), and scores the shipped bundle on
the corpora it never heard (:mod:`ser.training.loco` has the protocol)::

    python -m ser loco --data ../shared/data --out models/        # about 15 min here, functionals cached

The functionals of every speed and room copy are cached in ``--cache`` (extracting them for the three
corpora takes about 15 min on two cores the first time).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ser.console import log as _log


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``loco`` subcommand's arguments."""
    loco = commands.add_parser("loco", help="leave one corpus out: train on the others, answer the one left out")
    loco.add_argument("--data", type=Path, required=True,
                      help="the folder holding ravdess/, ased/ and speechocean/ (../shared/data)")
    loco.add_argument("--out", type=Path, default=Path("models"),
                      help="the bundle folder: its model is scored where it never heard a corpus; "
                           "loco.json is written there")
    loco.add_argument("--cache", type=Path, default=Path(".cache"), help="feature cache folder")
    loco.add_argument("--no-bundle", action="store_true", help="leave out the shipped bundle's rows (the recipe only)")


def _sets(clips, left_out: str, rows: np.ndarray, allowed: np.ndarray):
    """``(subset words, positions within rows, answer space, targets, ordinary)`` reported for ``left_out``."""
    from ser.reporting.loco_results import FIVE, Target
    from ser.training.data import EMOTIONS
    from ser.training.loco import CHILD_AGE

    emotion = clips.table["emotion"].to_numpy()[rows]
    five = np.isin(EMOTIONS, FIVE)
    if left_out == "ravdess":
        shared = np.isin(emotion, FIVE)
        return [("5 emotions shared with ASED", shared, allowed & five, [Target("accuracy", 0.45, True)], False),
                ("8 emotions, as the app answers", np.ones(len(rows), bool), allowed, [], False)]
    if left_out == "ased":
        common = clips.table["common_sentence"].fillna(False).to_numpy(bool)[rows]
        everyone = np.ones(len(rows), bool)
        return [("within its 5, all sentences", everyone, allowed & five, [Target("accuracy", 0.50, True)], False),
                ("within its 5, the two common sentences", common, allowed & five, [], False),
                ("all sentences, as the app answers", everyone, allowed, [], False)]
    age = clips.age[rows]
    targets = [Target("neutral_or_calm_share", 0.75, True), Target("false_alarm_share", 0.10, False)]
    speakers = len(set(clips.speaker[rows]))
    return [(f"all {speakers} speakers", np.ones(len(rows), bool), allowed, targets, True),
            (f"children ({CHILD_AGE} or younger)", age <= CHILD_AGE, allowed, [], True),
            ("adults", age > CHILD_AGE, allowed, [], True)]


def score_rows(clips, *, left_out: str, answered_by: str, trained_on: list[str], rows: np.ndarray,
               allowed: np.ndarray, answers: dict[str, np.ndarray]) -> list:
    """:class:`ser.reporting.loco_results.LocoRow` of every reported set, for ``answers`` (``sentence``, ``word``)."""
    from ser.reporting.loco_results import LocoRow, score_set

    out = []
    for subset, chosen, space, targets, ordinary in _sets(clips, left_out, rows, allowed):
        if not chosen.any():
            continue
        positions = rows[chosen]
        for length, probabilities in answers.items():
            scores = score_set(probabilities[chosen], targets=clips.targets[positions], labels=clips.labels[positions],
                               speakers=clips.speaker[positions], allowed=space, ordinary=ordinary)
            out.append(LocoRow(left_out=left_out, answered_by=answered_by, trained_on=trained_on, subset=subset,
                               length=length, scores=scores, targets=targets if length == "sentence" else []))
    return out


def command_loco(args: argparse.Namespace) -> int:
    """Run every left-out corpus, score the bundle where it applies, write ``loco.json`` and the card."""
    from ser.reporting.loco_results import LOCO_SCHEMA, CutSummary, LocoResults
    from ser.reporting.model_card import refresh_model_card
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, LOCO_COMMAND
    from ser.reporting.schema import write_results
    from ser.training.linear_views import LinearRecipe
    from ser.training.loco import (
        CORPORA,
        corpus_table,
        leave_out,
        load_cuts,
        load_functional_clips,
        speechocean_ages,
    )

    started = time.perf_counter()
    table = corpus_table(args.data)
    clips = load_functional_clips(table, cache=args.cache, ages=speechocean_ages(args.data))
    _log(f"{len(clips)} clips: " + ", ".join(f"{k} {v}" for k, v in table.groupby("corpus").size().items()))
    cuts, seconds = load_cuts(table, cache=args.cache, log=_log)
    recipe = LinearRecipe()
    rows, chosen = [], {}
    for left_out in CORPORA:
        run = leave_out(clips, left_out, recipe=recipe, cuts=cuts, log=_log)
        chosen[left_out] = run["chosen"]
        rows += score_rows(clips, left_out=left_out, answered_by="recipe", trained_on=run["trained_on"],
                           rows=run["rows"], allowed=run["allowed"],
                           answers={"sentence": run["sentence"], "word": run["cut"]})
    sha = model_sha256(args.out / "model.keras") if (args.out / "model.keras").is_file() else ""
    if not args.no_bundle:
        rows += _bundle_rows(clips, args.out, log=_log)
    refused = np.isnan(cuts).any(axis=1)
    results = LocoResults(
        schema=LOCO_SCHEMA, model_sha256=sha, measured=utc_now(), command=LOCO_COMMAND, versions=package_versions(),
        protocol=("Leave one corpus out (RAVDESS actors 1-20 speech, ASED, speechocean762): the recipe's linear views "
                  "trained on every speaker of the other two corpora, L2 chosen on fold 0 of their speaker folds; "
                  "the shipped bundle's parts scored only on corpora they never heard. Whole sentences and one "
                  "0.5-1.2 s cut of each, through the app's trimming and features."),
        recipe=("two L2 logistic regressions (6373 ComParE functionals; 473 voice-source ones) fused by the normalised "
                "geometric mean; masked loss with target sets (speechocean: neutral or calm), corpora equal, classes "
                "balanced within each corpus, every speed and room copy"),
        chosen=chosen,
        cuts=CutSummary(minimum=float(seconds.min()), median=float(np.median(seconds)), maximum=float(seconds.max()),
                        refused=int(refused.sum()), clips=len(seconds)),
        minutes=round((time.perf_counter() - started) / 60, 1), rows=rows,
    )
    write_results(args.out / FILES[LocoResults][0], results)
    refresh_model_card(args.out)
    for row in results.rows:
        if row.targets:
            verdicts = ", ".join(f"{t.figure} {'met' if t.met(row.scores) else 'NOT met'} ({t.words()})"
                                 for t in row.targets)
            _log(f"{row.left_out} left out, {row.answered_by}, {row.subset}: accuracy {row.scores.accuracy:.3f}; "
                 f"{verdicts}")
    _log(f"wrote {args.out / FILES[LocoResults][0]} in {results.minutes:.1f} min")
    return 0


def _bundle_rows(clips, folder: Path, *, log) -> list:
    """The shipped bundle's parts on the corpora they never heard: speechocean (as shipped and by each model alone;
    by the main model alone if the joint views or the router learnt from it) and ASED (the main model alone; its
    joint views and router learnt from ASED)."""
    from ser.serving.bundle import load_bundle
    from ser.training.data import EMOTIONS
    from ser.training.loco_bundle import JOINT, MAIN, SHIPPED, bundle_answers

    bundle = load_bundle(folder)
    if list(bundle.emotions) != list(EMOTIONS):
        raise ValueError(f"{folder} answers {bundle.emotions}; loco scores bundles of the eight emotions {EMOTIONS}")
    from ser.training.routing import learnt_ordinary

    joint_corpora = list(bundle.joint_views.settings.corpora) if bundle.has_joint_views else []
    trained = ["ravdess", *(name for name in joint_corpora if name != "ravdess")]
    # Only what never heard the corpus answers it: joint views that learnt the ordinary voices do not count here
    # (``ser routing`` scores them on the ordinary speakers they did not hear).
    heard = "speechocean" in joint_corpora or learnt_ordinary(folder)
    ordinary = (MAIN,) if heard else (SHIPPED, MAIN, JOINT)
    rows = []
    for left_out, kinds in (("speechocean", ordinary), ("ased", (MAIN,))):
        positions = np.flatnonzero(clips.corpus == left_out)
        paths = clips.table["path"].to_numpy()[positions].tolist()
        answers = {length: bundle_answers(bundle, paths, cut=length == "word", log=log)
                   for length in ("sentence", "word")}
        for kind in kinds:
            if kind not in answers["sentence"]:
                continue
            trained_on = ["ravdess"] if kind == MAIN else (joint_corpora if kind == JOINT else trained)
            rows += score_rows(clips, left_out=left_out, answered_by=kind, trained_on=trained_on, rows=positions,
                               allowed=np.ones(len(EMOTIONS), bool),
                               answers={length: values[kind] for length, values in answers.items()})
    return rows
