"""The shipped bundle's answer with its routing, on speakers it never heard: writes ``models/routing.json``.

The bundle answers with its main model (RAVDESS only) unless the unfamiliar-voice check fires
(``ser.serving.unfamiliarity``: the voice is more like ASED's speakers than any RAVDESS actor's), and then
with the joint views (RAVDESS and ASED,
``experiments.joint_views``). Every part is taken out of fold, so no clip is answered by anything
that heard its speaker:

- the main model: on RAVDESS, the shipped recipe's cross-validated answers (5 folds by actor,
  actors 1-20; ``python -m experiments.calibrated_headline --data ../shared/data/ravdess`` saves them
  to ``runs/calibrated_headline/oof.npz``, deterministic: 66.6% as shipped); on ASED, the shipped
  model itself, which never heard ASED (scored as ``ser predict`` scores a file; cached by
  ``python -m ser corpus-check`` in ``.cache/corpus_check/``);
- the joint views: their 5-fold cross-validated answers on both corpora (the RAVDESS part exactly the
  headline's folds; ``runs/joint_views/joint-joint_cv.npz`` from ``experiments.joint_views``), tempered
  with the shipped joint temperature;
- the check: statistics from detectors fitted without the speaker (5 folds, ``ser.training.unfamiliarity``),
  each fold's thresholds from the other folds' RAVDESS actors.

Across corpora (no routing): the main model on every ASED clip, and the joint views' recipe trained on ASED
only on RAVDESS's clips of ASED's five emotions (``python -m experiments.cross_corpus --recipe shipped
--protocol ased_cv --protocol ased_to_ravdess`` saves its answers to ``runs/cross_corpus/``).

Calibration: each speaker's two neutral reference clips (``ser.training.corpora.reference_clips``; not
scored) give the neutral floor (``ser.serving.speaker``) for the speaker's other routed answers.

Run from the repository root, after the two producers above::

    python -m experiments.routed_headline --data ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROTOCOL = (
    "Held-out speakers only. RAVDESS: speech of actors 1-20, 5 folds by actor, 8 emotions; ASED: 65 speakers, "
    "5 emotions (the main model never heard ASED; the joint views and the checks in 5 folds by speaker); "
    "calibrated: per speaker 2 neutral reference clips (not scored), neutral floor 0.5"
)


def routed_probabilities(main: np.ndarray, joint: np.ndarray, route: np.ndarray) -> np.ndarray:
    """The bundle's answer: ``joint`` where ``route`` (n_clips,) is set, ``main`` elsewhere; shape (n_clips, 8)."""
    return np.where(np.asarray(route, dtype=bool)[:, None], joint, main)


def out_of_fold_route(models: Path, sets: dict[str, dict[str, np.ndarray]], ravdess_rows: np.ndarray,
                      ased_rows: np.ndarray, n_clips: int, *, check: str) -> np.ndarray:
    """Whether ``check`` fires on each clip, from detectors and thresholds that never saw its speaker.

    ``sets`` are the cached functionals of :func:`ser.training.unfamiliarity.load_sets`; ``ravdess_rows`` and
    ``ased_rows`` place their RAVDESS and ASED clips among the ``n_clips`` of the study's table.
    """
    from ser.serving.unfamiliarity import CHECKS, load_unfamiliarity
    from ser.training.unfamiliarity import FOLDS, fires, out_of_fold, threshold_of

    column = CHECKS.index(check)

    shipped = load_unfamiliarity(models / "unfamiliarity.npz")
    statistics = out_of_fold(sets, columns=(shipped.band_column, shipped.steadiness_column))
    ravdess, folds = statistics["ravdess"], statistics["fold"]
    speakers = sets["ased"]["speaker"]
    ased_folds = np.searchsorted(np.unique(speakers), speakers) % FOLDS  # out_of_fold holds speakers[fold::FOLDS]
    route = np.zeros(n_clips, dtype=bool)
    for fold in range(FOLDS):
        thresholds = threshold_of(ravdess[folds != fold])
        mine = folds == fold
        route[ravdess_rows[mine]] = fires(ravdess[mine], thresholds)[:, column]
        mine = (ased_folds == fold) & np.isfinite(statistics["ased"]).all(axis=1)
        route[ased_rows[mine]] = fires(statistics["ased"][mine], thresholds)[:, column]
    return route


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/ and ased/")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    args = parser.parse_args(argv)

    from experiments.cross_corpus import clip_table
    from ser.reporting.corpus_results import adapt_per_speaker, calibrated_comparison, corpus_comparison
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import FILES, ROUTING_COMMAND, SCHEMAS
    from ser.reporting.routing_results import AcrossCorpora, RoutedSet, RoutingResults
    from ser.reporting.schema import write_results
    from ser.serving.bundle import load_bundle
    from ser.serving.calibration import apply_temperature
    from ser.serving.joint_views import JOINT_MODEL_FILE, read_joint_settings
    from ser.training.corpora import corpus_emotions, reference_clips
    from ser.training.corpus_check import CACHE, ScoreCache, score_clips
    from ser.training.data import EMOTIONS
    from ser.training.unfamiliarity import load_sets

    table = clip_table(args.data / "ravdess", args.data / "ased")
    labels = list(EMOTIONS)
    corpus = table["corpus"].to_numpy()
    ravdess_rows, ased_rows = np.flatnonzero(corpus == "ravdess"), np.flatnonzero(corpus == "ased")
    paths = {str(Path(path).resolve()): row for row, path in enumerate(table["path"])}

    main_answers = np.full((len(table), len(labels)), np.nan)
    saved = np.load(args.runs / "calibrated_headline" / "oof.npz")
    for path, probabilities in zip(saved["paths"], saved["probabilities"], strict=True):
        main_answers[paths[str((ROOT / str(path)).resolve())]] = probabilities
    bundle = load_bundle(args.models, joint_views=False)  # the main model alone on ASED, which it never heard
    if list(bundle.emotions) != labels:
        raise SystemExit(f"the bundle answers {bundle.emotions}, this study {labels}")
    ased_table = table.iloc[ased_rows].reset_index(drop=True)
    root = (args.data / "ased").resolve()
    ased_table["path"] = [str(Path(path).resolve()) for path in ased_table["path"]]
    cache = ScoreCache(ROOT / CACHE, corpus="ased", sha=model_sha256(args.models / "model.keras"))
    main_answers[ased_rows] = score_clips(bundle, ased_table, root=root, cache=cache)

    settings = read_joint_settings(args.models)
    joint_saved = np.load(args.runs / "joint_views" / "joint-joint_cv.npz")
    joint = np.full_like(main_answers, np.nan)
    joint[joint_saved["rows"]] = apply_temperature(joint_saved["fused"], temperature=settings.temperature)
    joint[np.isnan(main_answers).any(axis=1)] = np.nan  # refused as no speech by the bundle: refused either way

    sets = load_sets(None, args.models)  # the checks' clips are the study's, in the same order
    if not (np.array_equal(sets["ravdess"]["actor"], table["speaker"].iloc[ravdess_rows].str[-2:].astype(int))
            and np.array_equal(sets["ased"]["speaker"], table["speaker"].iloc[ased_rows].str[-2:].astype(int))):
        raise SystemExit("the cached familiarity sets are not in the study's clip order: rebuild them")
    route = out_of_fold_route(args.models, sets, ravdess_rows, ased_rows, len(table), check=settings.route)
    routed = routed_probabilities(main_answers, joint, route)

    truth, speakers = table["emotion"].to_numpy(), table["speaker"].to_numpy()
    reference = np.zeros(len(table), dtype=bool)
    for name in ("ravdess", "ased"):
        rows = corpus == name
        reference[rows] = reference_clips(table[rows].reset_index(drop=True))
    neutral = labels.index("neutral")
    adapted, adaptations = adapt_per_speaker(routed, speakers=speakers, reference=reference, neutral=neutral)
    ased_emotions = list(corpus_emotions(table[corpus == "ased"])["ased"])
    common = table["common_sentence"].fillna(False).to_numpy(dtype=bool)
    threshold = bundle.confidence_threshold
    chosen = {
        "ravdess": (corpus == "ravdess", labels, "RAVDESS speech, actors 1-20, 5 folds by actor (the headline's), "
                    "8 emotions"),
        "ased": (corpus == "ased", ased_emotions, "ASED (Amharic), all sentences, 65 speakers, 5 emotions"),
        "ased_common": ((corpus == "ased") & common, ased_emotions,
                        "ASED, the two sentences spoken in every emotion (the words cannot help), 5 emotions"),
    }
    results = []
    for name, (rows, emotions, description) in chosen.items():
        shared = {"truth": truth[rows], "speakers": speakers[rows], "labels": labels, "emotions": emotions,
                  "threshold": threshold}
        answered = ~np.isnan(routed[rows]).any(axis=1)
        results.append(RoutedSet(
            name=name, description=description,
            routed_share=float(route[rows][answered].mean()),
            routed=corpus_comparison(routed[rows], **shared),
            main_only=corpus_comparison(main_answers[rows], **shared),
            calibrated=calibrated_comparison(routed[rows], adapted[rows], reference=reference[rows],
                                             adaptations={s: adaptations.get(s) for s in np.unique(speakers[rows])},
                                             **shared),
        ))
        entry = results[-1]
        main, shipped = entry.main_only.restricted, entry.routed.restricted
        print(f"{name:12s} routed {100 * entry.routed_share:5.1f}% | main only {100 * main.accuracy:.1f} / UAR "
              f"{100 * main.uar:.1f} | routed {100 * shipped.accuracy:.1f} / UAR {100 * shipped.uar:.1f} (app "
              f"{100 * entry.routed.app.accuracy:.1f}) | calibrated "
              f"{100 * entry.calibrated.unadapted.restricted.accuracy:.1f} -> "
              f"{100 * entry.calibrated.adapted.restricted.accuracy:.1f}", flush=True)
    across = []
    ravdess_shared = (corpus == "ravdess") & np.isin(truth, ased_emotions)
    ased_trained = np.full_like(main_answers, np.nan)
    saved_across = np.load(args.runs / "cross_corpus" / "shipped-ased_to_ravdess.npz")
    ased_trained[saved_across["rows"]] = saved_across["fused"]
    for name, rows, answers, description in (
        ("ravdess_to_ased", corpus == "ased", main_answers,
         "the main model (trained on RAVDESS only) on every ASED clip, 5 emotions"),
        ("ased_to_ravdess", ravdess_shared, ased_trained,
         "the joint views' recipe trained on ASED only (all 65 speakers) on RAVDESS's clips of ASED's 5 emotions"),
    ):
        shared = {"truth": truth[rows], "speakers": speakers[rows], "labels": labels, "emotions": ased_emotions,
                  "threshold": threshold}
        calibrated_answers, calibrations = adapt_per_speaker(answers[rows], speakers=speakers[rows],
                                                             reference=reference[rows], neutral=neutral)
        across.append(AcrossCorpora(
            name=name, description=description, scores=corpus_comparison(answers[rows], **shared),
            calibrated=calibrated_comparison(answers[rows], calibrated_answers, reference=reference[rows],
                                             adaptations=calibrations, **shared)))
        entry = across[-1]
        print(f"{name:16s} {100 * entry.scores.restricted.accuracy:.1f} / UAR {100 * entry.scores.restricted.uar:.1f}"
              f" (app {100 * entry.scores.app.accuracy:.1f}) | calibrated "
              f"{100 * entry.calibrated.unadapted.restricted.accuracy:.1f} -> "
              f"{100 * entry.calibrated.adapted.restricted.accuracy:.1f}", flush=True)
    out = RoutingResults(
        schema=SCHEMAS[RoutingResults], model_sha256=model_sha256(args.models / "model.keras"),
        joint_views_sha256=model_sha256(args.models / JOINT_MODEL_FILE), measured=utc_now(),
        command=ROUTING_COMMAND, versions=package_versions(), protocol=PROTOCOL, labels=labels,
        joint_temperature=settings.temperature, sets=results, across_corpora=across,
    )
    write_results(args.models / FILES[RoutingResults][0], out)
    print(f"wrote {args.models / FILES[RoutingResults][0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
