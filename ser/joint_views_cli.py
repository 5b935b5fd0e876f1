"""``python -m ser joint-views`` and ``python -m ser routing``: the bundle's second model and its held-out score.

``joint-views`` trains the views that answer for voices unlike RAVDESS's actors on RAVDESS, ASED and the
ordinary voices of speechocean (``--no-ordinary``: the first two only; :mod:`ser.training.joint_views`)
and writes ``joint_views.keras``, ``joint_views.json`` and their out-of-fold answers into the bundle;
``routing`` scores the bundle's routed answer on speakers it never heard (:mod:`ser.training.routing`)
and writes ``routing.json``. ``make train`` runs both::

    python -m ser joint-views --data ../shared/data --out models/   # ~23 min here, functionals cached
    python -m ser routing --data ../shared/data --out models/       # after familiarity, unfamiliarity; minutes
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path

from ser.console import log as _log


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``joint-views`` and ``routing`` subcommands' arguments."""
    joint = commands.add_parser("joint-views",
                                help="train the views for voices unlike RAVDESS's actors (RAVDESS, ASED, "
                                     "ordinary voices)")
    routing = commands.add_parser("routing", help="score the bundle's routed answer on speakers it never heard")
    for sub in (joint, routing):
        sub.add_argument("--data", type=Path, required=True,
                         help="the folder holding ravdess/, ased/ and speechocean/ (../shared/data)")
        sub.add_argument("--out", type=Path, default=Path("models"), help="the bundle folder written into")
    joint.add_argument("--cache", type=Path, default=Path(".cache"), help="the functionals cache (as ser loco's)")
    joint.add_argument("--ordinary", action=argparse.BooleanOptionalAction, default=True,
                       help="learn from the ordinary voices too (speechocean/, partial label neutral or calm; "
                            "the shipped recipe); --no-ordinary: RAVDESS and ASED only")
    routing.add_argument("--cache", type=Path, default=Path(".cache") / "corpus_check",
                         help="the main model's per-clip ASED scores (shared with ser corpus-check)")


def command_joint_views(args: argparse.Namespace) -> int:
    """Cross-validate and fit the joint views; write the model, its settings and out-of-fold answers."""
    from ser.checks_cli import check_inputs
    from ser.errors import SERError
    from ser.serving.joint_views import JOINT_MODEL_FILE, JOINT_SETTINGS_FILE, PRODUCER, ROUTE_CHECK, SCHEMA
    from ser.training.fold_answers import write_out_of_fold
    from ser.training.joint_views import (
        CORPORA,
        JOINT_OUT_OF_FOLD_FILE,
        ORDINARY,
        out_of_fold_answers,
        train_joint_views,
    )
    from ser.training.loco import corpus_table, load_functional_clips

    check_inputs(args.data, args.out, needs=())
    if args.ordinary and not (args.data / ORDINARY).is_dir():
        raise SERError(f"--data {args.data} holds no {ORDINARY}/ (the ordinary voices): point it at the folder that "
                       "does, or pass --no-ordinary to learn from RAVDESS and ASED only")
    started = time.perf_counter()
    corpora = (*CORPORA, ORDINARY) if args.ordinary else CORPORA
    clips = load_functional_clips(corpus_table(args.data, ordinary=args.ordinary), cache=args.cache)
    trained = train_joint_views(clips, corpora=corpora, log=_log)
    args.out.mkdir(parents=True, exist_ok=True)
    trained.model.save(args.out / JOINT_MODEL_FILE)
    write_out_of_fold(out_of_fold_answers(trained, clips), args.out, name=JOINT_OUT_OF_FOLD_FILE)
    header = {
        "schema": SCHEMA, "temperature": trained.temperature, "corpora": list(corpora), "route": ROUTE_CHECK,
        "c": trained.c, "fold_choices": trained.folds.choices, "clips": trained.clips, "speakers": trained.speakers,
        "command": PRODUCER if args.ordinary else PRODUCER.replace(" --out", " --no-ordinary --out"),
        "measured": datetime.date.today().isoformat(),
    }
    (args.out / JOINT_SETTINGS_FILE).write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
    _log(f"wrote {args.out / JOINT_MODEL_FILE} (temperature {trained.temperature:.3f}) in "
         f"{(time.perf_counter() - started) / 60:.1f} min")
    return 0


def command_routing(args: argparse.Namespace) -> int:
    """Score the routed answer out of fold; write ``routing.json`` and refresh the model card."""
    from ser.checks_cli import check_inputs
    from ser.errors import SERError
    from ser.reporting.model_card import refresh_model_card
    from ser.reporting.results import FILES
    from ser.reporting.routing_results import RoutingResults
    from ser.reporting.schema import write_results
    from ser.serving.joint_views import JOINT_MODEL_FILE
    from ser.training.routing import routing_results

    check_inputs(args.data, args.out)
    for name, producer in ((JOINT_MODEL_FILE, "joint-views"), ("unfamiliarity.npz", "unfamiliarity")):
        if not (args.out / name).is_file():
            raise SERError(f"--out {args.out} holds no {name}; run `python -m ser {producer} --data {args.data} "
                           f"--out {args.out}` first")
    results = routing_results(data=args.data, models=args.out, score_cache=args.cache, log=_log)
    write_results(args.out / FILES[RoutingResults][0], results)
    refresh_model_card(args.out)
    return 0


#: The handlers of the subcommands this module adds.
HANDLERS = {"joint-views": command_joint_views, "routing": command_routing}
