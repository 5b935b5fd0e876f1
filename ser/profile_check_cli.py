"""``python -m ser profile-check``: what a personal voice profile does for speakers the bundle never heard.

Scores every RAVDESS and ASED clip by a model that never heard its speaker (cached in ``--cache``),
then builds each speaker's profile from a few of their clips and answers their other clips with and
without it (:mod:`ser.training.voice_profile` has the protocol). Writes ``models/voice_profile.json``
and the model card::

    python -m ser profile-check --data ../shared/data --out models/    # about 6 min the first time

``python -m ser profile`` (:mod:`ser.profile_cli`) builds one person's profile; this measures what it does.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ser.console import log as _log


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``profile-check`` subcommand's arguments."""
    check = commands.add_parser("profile-check",
                                help="how much a personal voice profile helps, on speakers the bundle never heard")
    check.add_argument("--data", type=Path, required=True,
                       help="the folder holding ravdess/ and ased/ (../shared/data)")
    check.add_argument("--out", type=Path, default=Path("models"),
                       help="the bundle folder (model.keras, metrics.json); voice_profile.json is written there")
    check.add_argument("--cache", type=Path, default=Path(".cache") / "voice_profile",
                       help="every clip's scores, reused by the next run")


def command_profile_check(args: argparse.Namespace) -> int:
    """Score both corpora (cached), choose the prior strength by nested folds, write ``voice_profile.json``."""
    from ser.checks_cli import check_inputs
    from ser.reporting.model_card import refresh_model_card
    from ser.reporting.profile_results import PROFILE_COMMAND, PROFILE_SCHEMA, ProfileResults
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, load_training
    from ser.reporting.schema import write_results
    from ser.serving import profile as profiles
    from ser.serving.bundle import load_bundle
    from ser.training.robustness import fold_bundles
    from ser.training.voice_profile import PROTOCOL, profile_rows
    from ser.training.voice_profile_scores import collect

    check_inputs(args.data, args.out, needs=("model.keras", "metrics.json"))
    started = time.perf_counter()
    scores = collect(data=args.data, models=args.out, cache=args.cache, log=_log)
    main_bundle = load_bundle(args.out, joint_views=False)
    folds = load_training(args.out / "metrics.json").cross_validation.per_fold
    statistics = {fold: bundle.functional_statistics for fold, (bundle, _) in fold_bundles(main_bundle, folds).items()}
    rows, nested, shipped = profile_rows(scores, folds=folds, statistics=statistics,
                                         main_statistics=main_bundle.functional_statistics, log=_log)
    for row in rows:
        _log(f"{row.corpus:8s} K={row.k} {row.enrolled:28s} {row.scored:48s} generic {row.generic_accuracy:.3f} "
             f"profile {row.profile_accuracy:.3f} (UAR {row.generic_uar:.3f} -> {row.profile_uar:.3f})")
    results = ProfileResults(
        schema=PROFILE_SCHEMA,
        model_sha256=model_sha256(args.out / "model.keras"),
        measured=utc_now(),
        command=PROFILE_COMMAND,
        versions=package_versions(),
        protocol=PROTOCOL,
        prior_strength=profiles.PRIOR_STRENGTH,
        chosen_on_all_actors=shipped,
        chosen_per_fold={str(fold): strength for fold, strength in nested.items()},
        minutes=round((time.perf_counter() - started) / 60, 1),
        rows=rows,
    )
    write_results(args.out / FILES[ProfileResults][0], results)
    refresh_model_card(args.out)
    _log(f"wrote {args.out / FILES[ProfileResults][0]} in {results.minutes:.1f} min")
    return 0


#: The handler of the subcommand this module adds.
HANDLERS = {"profile-check": command_profile_check}
