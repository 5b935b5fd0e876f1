"""``python -m ser {robustness,level-check,seed-check}``: checks of the trained bundle, each writing its one file.

They read the bundle ``python -m ser train`` wrote (``--out``, with its ``metrics.json``) and RAVDESS::

    python -m ser robustness --data ../shared/data/ravdess --out models/        # noise, phone, codecs, words (~12 min)
    python -m ser level-check --data ../shared/data/ravdess --out models/       # 12 dB quieter / louder (~1 min)
    python -m ser seed-check --data ../shared/data/ravdess --out models/ --offset 100   # training noise (~12 min)

Each writes ``models/robustness.json``, ``level_check.json`` or ``seed_check.json``
(:mod:`ser.reporting.results`; the model card shows them while they describe the bundle's
``model.keras``) and rewrites the model card. The other bundle checks: :mod:`ser.corpus_check_cli`,
:mod:`ser.profile_check_cli`, :mod:`ser.unfamiliarity_cli`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ser.console import log as _log
from ser.errors import SERError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``robustness``, ``level-check`` and ``seed-check`` subcommands' arguments."""
    helps = {"robustness": "accuracy of the bundle's fold models under noise, room, phone line, codecs, on one word",
             "level-check": "does playing clips quieter or louder change the answer",
             "seed-check": "retrain each fold's CNN with another seed: how much the headline moves"}
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--data", type=Path, required=True, help="the RAVDESS folder (../shared/data/ravdess)")
        sub.add_argument("--out", type=Path, default=Path("models"),
                         help="the bundle folder (model.keras, metrics.json); the result is written there")
    commands.choices["robustness"].add_argument("--every", type=int, default=1,
                                                help="score every n-th speech clip (1: all 1200)")
    commands.choices["level-check"].add_argument("--every", type=int, default=10,
                                                 help="score every n-th speech clip")
    commands.choices["level-check"].add_argument("--gain", type=float, default=12.0,
                                                 help="level change in dB, down and up")
    seed = commands.choices["seed-check"]
    seed.add_argument("--offset", type=int, default=100, help="CNN seed = fold + offset (shipped: fold + 0)")
    seed.add_argument("--cache", type=Path, default=Path(".cache/features"), help="feature cache folder (train's)")


def check_inputs(data: Path, out: Path, *, needs: tuple[str, ...] = ("model.keras",)) -> None:
    """Refuse, before any model loads, a ``--data`` that is no folder or an ``--out`` lacking the bundle's files.

    Raises
    ------
    SERError
        Naming the missing folder or file and what writes it.
    """
    if not Path(data).is_dir():
        raise SERError(f"--data {data}: no such folder; pass the folder that holds the corpus (see --help)")
    for name in needs:
        if not (Path(out) / name).is_file():
            raise SERError(f"--out {out} holds no {name}; run `python -m ser train --out {out}` first")


def _speech_clips(data: Path, *, every: int):
    """RAVDESS speech clips (``index_dataset``), every ``every``-th."""
    from ser.training.data import index_dataset

    if every < 1:
        raise SERError(f"--every must be at least 1, got {every}")
    index = index_dataset(data)
    return index[index["vocal_channel"] == "speech"].reset_index(drop=True).iloc[::every]


def _card(out: Path, written: str) -> None:
    """Rewrite the model card (when the bundle has its metrics.json) after writing ``written``."""
    from ser.reporting.model_card import refresh_model_card

    refresh_model_card(out)
    _log(f"wrote {out / written}")


def command_robustness(args: argparse.Namespace) -> int:
    """Every speech clip in every condition, by the fold that never heard its actor: ``robustness.json``."""
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, ROBUSTNESS_COMMAND, SCHEMAS, RobustnessResults, load_training
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle
    from ser.training.robustness import PROTOCOL, condition_scores, corrupted_answers, fold_bundles

    check_inputs(args.data, args.out, needs=("model.keras", "metrics.json"))
    index = _speech_clips(args.data, every=args.every)
    training = load_training(args.out / "metrics.json")
    bundle = load_bundle(args.out)
    folds = fold_bundles(bundle, training.cross_validation.per_fold)
    started = time.perf_counter()
    truth, answers = corrupted_answers(index, folds=folds, log=_log)
    rows = condition_scores(truth, answers, emotions=list(bundle.emotions))
    for name, row in rows.items():
        _log(f"{name:12s} accuracy {row.accuracy:.3f} refused {row.refused}")
    results = RobustnessResults(
        schema=SCHEMAS[RobustnessResults], model_sha256=model_sha256(args.out / "model.keras"), measured=utc_now(),
        command=ROBUSTNESS_COMMAND + (f" --every {args.every}" if args.every != 1 else ""),
        versions=package_versions(), protocol=PROTOCOL, clips=len(truth),
        minutes=round((time.perf_counter() - started) / 60, 1), conditions=rows)
    write_results(args.out / FILES[RobustnessResults][0], results)
    _card(args.out, FILES[RobustnessResults][0])
    return 0


def command_level_check(args: argparse.Namespace) -> int:
    """Every ``--every``-th speech clip as recorded, quieter and louder: ``level_check.json``."""
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, LEVEL_CHECK_COMMAND, SCHEMAS, LevelCheckResults
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle
    from ser.training.level_check import level_answers

    if not args.gain > 0:
        raise SERError(f"--gain must be positive (dB), got {args.gain:g}")
    check_inputs(args.data, args.out)
    index = _speech_clips(args.data, every=args.every)
    bundle = load_bundle(args.out)
    started = time.perf_counter()
    counts = level_answers(bundle, index, gain_db=args.gain)
    command = LEVEL_CHECK_COMMAND + "".join(
        f" --{name} {value:g}" for name, value, default in (("every", args.every, 10), ("gain", args.gain, 12.0))
        if value != default
    )
    results = LevelCheckResults(
        schema=SCHEMAS[LevelCheckResults], model_sha256=model_sha256(args.out / "model.keras"), measured=utc_now(),
        command=command, versions=package_versions(), every=args.every, gain_db=args.gain, clips=len(index),
        **counts)
    write_results(args.out / FILES[LevelCheckResults][0], results)
    _card(args.out, FILES[LevelCheckResults][0])
    _log(f"{results.changed} of {results.compared} answers changed; {results.refused_quieter} of "
         f"{results.answered} quieter copies refused ({time.perf_counter() - started:.0f} s)")
    return 0


def command_seed_check(args: argparse.Namespace) -> int:
    """Each fold's CNN retrained with seed ``fold + --offset``: ``seed_check.json``."""
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, SCHEMAS, SEED_CHECK_COMMAND, SeedCheckResults, load_training
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle
    from ser.training.clips import build_clip_set
    from ser.training.data import index_dataset
    from ser.training.seed_check import retrained_scores

    check_inputs(args.data, args.out, needs=("model.keras", "metrics.json"))
    training = load_training(args.out / "metrics.json")
    index = index_dataset(args.data)
    bundle = load_bundle(args.out)
    clips = build_clip_set(index, config=bundle.config, cache_dir=args.cache)
    speech = (index["vocal_channel"] == "speech").to_numpy()
    scores = retrained_scores(clips, speech=speech, bundle=bundle, training=training, offset=args.offset, log=_log)
    results = SeedCheckResults(
        schema=SCHEMAS[SeedCheckResults], model_sha256=model_sha256(args.out / "model.keras"), measured=utc_now(),
        command=SEED_CHECK_COMMAND.replace("--offset 100", f"--offset {args.offset}"), versions=package_versions(),
        what=f"each fold's refitted CNN trained again with seed fold + {args.offset} "
             "(same folds, schedules and linear views)",
        offset=args.offset, **scores)
    write_results(args.out / FILES[SeedCheckResults][0], results)
    _card(args.out, FILES[SeedCheckResults][0])
    _log(f"seed check: CNN {results.cnn_accuracy:.3f}, fused {results.fused_accuracy:.3f} "
         f"(UAR {results.fused_uar:.3f})")
    return 0


#: The handler of each subcommand this module adds.
HANDLERS = {"robustness": command_robustness, "level-check": command_level_check, "seed-check": command_seed_check}
