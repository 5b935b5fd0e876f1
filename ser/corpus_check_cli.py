"""``python -m ser corpus-check``: the bundle's main model on ASED, voices it never heard (``corpus_check.json``).

Every ASED clip scored as ``python -m ser predict`` scores a file, with and without calibration to the
speaker, and (with ``espeak-ng``) flat synthetic English sentences (:mod:`ser.training.corpus_check`
has the protocol)::

    python -m ser corpus-check --data ../shared/data --out models/    # about 7 min the first time

Per-clip scores are cached in ``--cache`` (keyed by the model's SHA-256), so a second run takes seconds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ser.console import log as _log


def add_parser(commands: argparse._SubParsersAction) -> None:
    """The ``corpus-check`` subcommand's arguments."""
    check = commands.add_parser("corpus-check", help="the bundle's main model on ASED (Amharic), voices it never heard")
    check.add_argument("--data", type=Path, required=True, help="the folder holding ased/ (../shared/data)")
    check.add_argument("--out", type=Path, default=Path("models"),
                       help="the bundle folder (model.keras); corpus_check.json is written there")
    check.add_argument("--cache", type=Path, default=Path(".cache") / "corpus_check",
                       help="per-clip scores, reused by the next run")
    check.add_argument("--no-synthetic", action="store_true", help="skip the espeak-ng sentences")


def command_corpus_check(args: argparse.Namespace) -> int:
    """Score ASED (cached), calibrate per speaker, write ``corpus_check.json`` and the model card."""
    from ser.checks_cli import check_inputs
    from ser.reporting.corpus_results import (
        CorpusCheckResults,
        calibrated_comparison,
        corpus_comparison,
        synthetic_check,
    )
    from ser.reporting.model_card import refresh_model_card
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import CORPUS_CHECK_COMMAND, FILES, SCHEMAS
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle
    from ser.training.corpora import corpus_emotions, reference_clips
    from ser.training.corpus_check import (
        ESPEAK_VOICES,
        NEUTRAL_SENTENCES,
        PROTOCOL,
        ScoreCache,
        adapt_speakers,
        adapted_probabilities,
        espeak_probabilities,
        score_clips,
    )
    from ser.training.data import index_ased

    check_inputs(args.data, args.out)
    root = args.data / "ased"
    table = index_ased(root)  # says what is wrong with the folder before the model loads
    bundle = load_bundle(args.out, joint_views=False)  # the main model: the joint views heard ASED
    started = time.perf_counter()
    sha = model_sha256(args.out / "model.keras")
    cache = ScoreCache(args.cache, corpus="ased", sha=sha)
    probabilities = score_clips(bundle, table, root=root, cache=cache, log=_log)
    reference = reference_clips(table)
    adaptations = adapt_speakers(bundle, table, reference=reference, root=root, cache=cache)
    synthetic = None if args.no_synthetic else espeak_probabilities(bundle, cache=cache)

    labels = list(bundle.emotions)
    emotions = list(corpus_emotions(table)["ased"])
    truth, speakers = table["emotion"].to_numpy(), table["speaker"].to_numpy()
    common = table["common_sentence"].fillna(False).to_numpy(dtype=bool)
    adapted = adapted_probabilities(probabilities, speakers, adaptations)
    threshold = bundle.confidence_threshold
    shared = {"labels": labels, "emotions": emotions, "threshold": threshold}
    calibrated = {
        name: calibrated_comparison(probabilities[subset], adapted[subset], truth=truth[subset],
                                    speakers=speakers[subset], reference=reference[subset],
                                    adaptations={speaker: adaptation.to_dict() if adaptation else None
                                                 for speaker, adaptation in adaptations.items()},
                                    **shared)
        for name, subset in (("all", np.ones(len(table), dtype=bool)), ("common", common))
    }
    results = CorpusCheckResults(
        schema=SCHEMAS[CorpusCheckResults],
        model_sha256=sha,
        measured=utc_now(),
        command=CORPUS_CHECK_COMMAND + (" --no-synthetic" if synthetic is None else ""),
        versions=package_versions(),
        corpus="ASED",
        language="Amharic",
        protocol=PROTOCOL,
        labels=labels,
        emotions=emotions,
        confidence_threshold=threshold,
        clips=len(table),
        speakers=int(table["speaker"].nunique()),
        all_sentences=corpus_comparison(probabilities, truth=truth, speakers=speakers, **shared),
        common_sentences=corpus_comparison(probabilities[common], truth=truth[common], speakers=speakers[common],
                                           **shared),
        calibrated=calibrated["all"],
        calibrated_common=calibrated["common"],
        synthetic=None if synthetic is None else synthetic_check(
            synthetic, labels=labels, threshold=threshold, voices=list(ESPEAK_VOICES),
            sentences=len(NEUTRAL_SENTENCES)),
    )
    write_results(args.out / FILES[CorpusCheckResults][0], results)
    refresh_model_card(args.out)
    restricted = results.all_sentences.restricted
    _log(f"ASED: {restricted.accuracy:.1%} within its 5 emotions ({restricted.answered} clips, {restricted.refused} "
         f"refused); with calibration {results.calibrated.adapted.restricted.accuracy:.1%} against "
         f"{results.calibrated.unadapted.restricted.accuracy:.1%} on the same clips "
         f"({time.perf_counter() - started:.0f} s)")
    return 0


#: The handler of the subcommand this module adds.
HANDLERS = {"corpus-check": command_corpus_check}
