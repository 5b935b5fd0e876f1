"""``python -m ser {familiarity,unfamiliarity}``: the bundle's "unlike the training data" detector and cue references.

Both read the clips of :mod:`ser.training.familiarity_sets`, scored once by the bundle and cached in
``--cache`` (about 20 minutes here to fill; the second command then takes about 2 minutes)::

    python -m ser familiarity --data ../shared/data --out models/     # familiarity.json and cues.json
    python -m ser unfamiliarity --data ../shared/data --out models/   # unfamiliarity.npz

``familiarity`` fits the background familiarity score (``familiarity.json``) and the cue references
the app's "why" panel reads (``cues.json``, :mod:`ser.training.familiarity`); ``unfamiliarity`` fits
the four checks every analysis carries (``unfamiliarity.npz``, :mod:`ser.training.unfamiliarity`),
whose measured figures the model card and the Model page show.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ser.console import log as _log

FAMILIARITY_COMMAND = "python -m ser familiarity --data ../shared/data --out models/"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``familiarity`` and ``unfamiliarity`` subcommands' arguments."""
    helps = {"familiarity": "fit the familiarity score and the voice-cue references (familiarity.json, cues.json)",
             "unfamiliarity": "fit and measure the bundle's 'unlike the training data' checks (unfamiliarity.npz)"}
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--data", type=Path, required=name == "familiarity", default=None,
                         help="the folder holding ravdess/ and ased/ (../shared/data)"
                              + ("; not needed once --cache holds every set" if name == "unfamiliarity" else ""))
        sub.add_argument("--out", type=Path, default=Path("models"),
                         help="the bundle folder (model.keras); the files are written there")
        sub.add_argument("--cache", type=Path, default=Path(".cache") / "familiarity",
                         help="every clip's functionals and answers, reused by the next run")
    commands.choices["unfamiliarity"].add_argument(
        "--false-positive-target", type=float, default=0.005,
        help="share of held-out RAVDESS clips each check may flag (default %(default)s)")
    commands.choices["unfamiliarity"].add_argument(
        "--ordinary", action=argparse.BooleanOptionalAction, default=False,
        help="the unfamiliar-voice check learns speechocean's ordinary voices as unlike RAVDESS's actors, beside "
             "ASED's (needs --data or their cached set)")


def command_familiarity(args: argparse.Namespace) -> int:
    """Score every set (cached), fit and measure the score: ``familiarity.json`` and ``cues.json``."""
    from ser.checks_cli import check_inputs
    from ser.serving.bundle import load_bundle
    from ser.training.familiarity import report
    from ser.training.familiarity_sets import cache_folder, compute_sets

    check_inputs(args.data, args.out)
    bundle = load_bundle(args.out)
    sets = compute_sets(bundle, args.data, cache=cache_folder(args.cache, args.out), log=_log)
    measured = report(bundle=bundle, sets=sets, root=args.data, out=args.out, command=FAMILIARITY_COMMAND)
    _log(json.dumps(measured, indent=1))
    _log(f"wrote {args.out / 'familiarity.json'} and {args.out / 'cues.json'}")
    return 0


def command_unfamiliarity(args: argparse.Namespace) -> int:
    """Fit the detector on the cached sets, measure it on held-out speakers: ``unfamiliarity.npz`` and the card."""
    from ser.errors import SERError
    from ser.reporting.model_card import refresh_model_card
    from ser.reporting.provenance import model_sha256
    from ser.serving.unfamiliarity import (
        BAND_FUNCTIONAL,
        STEADINESS_FUNCTIONAL,
        producer,
        save_unfamiliarity,
    )
    from ser.training.unfamiliarity import DOMAIN_C, N_COMPONENTS, build_detector, load_sets, table

    if not 0 < args.false_positive_target < 0.5:
        raise SERError(f"--false-positive-target must be in (0, 0.5), got {args.false_positive_target:g}")
    if args.data is not None:
        from ser.checks_cli import check_inputs

        check_inputs(args.data, args.out)
    elif not (args.out / "model.keras").is_file():
        raise SERError(f"--out {args.out} holds no model.keras; run `python -m ser train --out {args.out}` first")
    started = time.perf_counter()
    sets = load_sets(args.data, args.out, cache=args.cache, log=_log)
    detector = build_detector(sets, target=args.false_positive_target, ordinary=args.ordinary, log=_log)
    header = {"schema": 1, "command": producer(ordinary=args.ordinary),
              "measured_at": time.strftime("%Y-%m-%d", time.gmtime()),
              "functionals": "ComParE_2016", "band_functional": BAND_FUNCTIONAL,
              "steadiness_functional": STEADINESS_FUNCTIONAL, "n_components": N_COMPONENTS, "domain_c": DOMAIN_C,
              "model_sha256": model_sha256(args.out / "model.keras")}
    path = args.out / "unfamiliarity.npz"
    save_unfamiliarity(detector, path, header=header)
    refresh_model_card(args.out)
    _log(json.dumps(detector.measured, indent=1))
    _log(table(detector.measured))
    _log(f"{time.perf_counter() - started:.0f} s; wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


#: The handler of each subcommand this module adds.
HANDLERS = {"familiarity": command_familiarity, "unfamiliarity": command_unfamiliarity}
