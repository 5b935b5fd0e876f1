"""The bundle's answer with its routing, on speakers it never heard: ``models/routing.json``.

The bundle answers with its main model (RAVDESS only) unless the unfamiliar-voice check fires
(:mod:`ser.serving.unfamiliarity`: the voice is more like ASED's speakers than any RAVDESS actor's), and
then with the joint views (RAVDESS and ASED, :mod:`ser.training.joint_views`). Every part is taken out
of fold, so no clip is answered by anything that heard its speaker:

- the main model: on RAVDESS, its cross-validated answers (5 folds by actor, actors 1-20), which
  ``python -m ser train`` keeps in the bundle (``out_of_fold.npz``); on ASED, the bundle's main model
  itself, which never heard ASED (scored as ``ser predict`` scores a file, cached as ``python -m ser
  corpus-check`` caches it);
- the joint views: their cross-validated answers on both corpora (the RAVDESS part exactly the
  headline's folds), which ``python -m ser joint-views`` keeps (``joint_views_out_of_fold.npz``);
- the check: statistics from detectors fitted without the speaker (5 folds, :mod:`ser.training.unfamiliarity`),
  each fold's thresholds from the other folds' RAVDESS actors.

Calibration: each speaker's two neutral reference clips (:func:`ser.training.corpora.reference_clips`; not
scored) give the neutral floor (:mod:`ser.serving.speaker`) for the speaker's other routed answers.
Across corpora: the main model on every ASED clip (leaving a corpus out is ``python -m ser loco``'s).

Run after ``ser train``, ``ser joint-views``, ``ser familiarity`` and ``ser unfamiliarity`` (``make train`` does)::

    python -m ser routing --data ../shared/data --out models/
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

PROTOCOL = (
    "Held-out speakers only. RAVDESS: speech of actors 1-20, 5 folds by actor, 8 emotions; ASED: 65 speakers, "
    "5 emotions (the main model never heard ASED; the joint views and the checks in 5 folds by speaker); "
    "calibrated: per speaker 2 neutral reference clips (not scored), neutral floor 0.5"
)


def routed_probabilities(main: np.ndarray, joint: np.ndarray, route: np.ndarray) -> np.ndarray:
    """The bundle's answer: ``joint`` where ``route`` (n_clips,) is set, ``main`` elsewhere; shape (n_clips, 8).

    >>> routed_probabilities(np.zeros((2, 1)), np.ones((2, 1)), np.array([True, False])).ravel().tolist()
    [1.0, 0.0]
    """
    return np.where(np.asarray(route, dtype=bool)[:, None], joint, main)


def out_of_fold_route(models: Path, sets: dict[str, dict[str, np.ndarray]], ravdess_rows: np.ndarray,
                      ased_rows: np.ndarray, n_clips: int, *, check: str) -> np.ndarray:
    """Whether ``check`` fires on each clip, from detectors and thresholds that never saw its speaker.

    ``sets`` are the cached functionals of :func:`ser.training.unfamiliarity.load_sets`; ``ravdess_rows`` and
    ``ased_rows`` place their RAVDESS and ASED clips among the ``n_clips`` of the clip table.
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


def place_answers(answers, keys: list[tuple[str, str, str]], *, what: str) -> np.ndarray:
    """``answers.probabilities`` (:class:`ser.training.fold_answers.OutOfFold`) in the order of ``keys``
    (corpus, speaker, file name); NaN for clips it has no answer for.

    Raises
    ------
    ser.errors.SERError
        If it answers a clip ``keys`` does not hold (``--data`` is not the folder it was trained on).
    """
    from ser.errors import SERError

    position = {key: row for row, key in enumerate(keys)}
    placed = np.full((len(keys), answers.probabilities.shape[1]), np.nan)
    for corpus, speaker, name, probabilities in zip(answers.corpus, answers.speaker, answers.file_name,
                                                    answers.probabilities, strict=True):
        row = position.get((str(corpus), str(speaker), str(name)))
        if row is None:
            raise SERError(f"{what} answers {corpus} clip {name} of {speaker}, which --data does not hold: pass the "
                           "folder of the corpora it was trained on")
        placed[row] = probabilities
    return placed


def routing_results(*, data: Path, models: Path, score_cache: Path, log: Callable[[str], None]):
    """Score the routed answer on every clip of RAVDESS (actors 1-20, speech) and ASED below ``data``.

    Returns
    -------
    ser.reporting.routing_results.RoutingResults

    Raises
    ------
    ser.errors.SERError
        If a part is missing from the bundle (the message names the command that writes it).
    """
    from ser.errors import SERError
    from ser.reporting.corpus_results import adapt_per_speaker, calibrated_comparison, corpus_comparison
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import ROUTING_COMMAND, SCHEMAS
    from ser.reporting.routing_results import AcrossCorpora, RoutedSet, RoutingResults
    from ser.serving.bundle import load_bundle
    from ser.serving.joint_views import JOINT_MODEL_FILE, read_joint_settings
    from ser.training.corpora import corpus_emotions, reference_clips
    from ser.training.corpus_check import ScoreCache, score_clips
    from ser.training.data import EMOTIONS
    from ser.training.fold_answers import clip_identity, read_out_of_fold
    from ser.training.joint_views import JOINT_OUT_OF_FOLD_FILE
    from ser.training.loco import corpus_table
    from ser.training.unfamiliarity import load_sets

    table = corpus_table(data, ordinary=False)
    labels = list(EMOTIONS)
    corpus = table["corpus"].to_numpy()
    ravdess_rows, ased_rows = np.flatnonzero(corpus == "ravdess"), np.flatnonzero(corpus == "ased")
    identity = clip_identity(table)
    keys = list(zip(identity["corpus"].tolist(), identity["speaker"].tolist(), identity["file_name"].tolist(),
                    strict=True))

    main_saved = read_out_of_fold(models)
    joint_saved = read_out_of_fold(models, name=JOINT_OUT_OF_FOLD_FILE)  # both read first: fail before scoring
    settings = read_joint_settings(models)
    bundle = load_bundle(models, joint_views=False)  # the main model alone on ASED, which it never heard
    for saved, temperature, producer in ((main_saved, bundle.temperature, "train"),
                                         (joint_saved, settings.temperature, "joint-views")):
        if not np.isclose(saved.temperature, temperature):  # the answers of another training run
            raise SERError(f"the out-of-fold answers of python -m ser {producer} and the bundle it wrote disagree "
                           f"(temperature {saved.temperature:.4f} against {temperature:.4f}): run it again")
    main_answers = place_answers(main_saved, keys, what="out_of_fold.npz")
    if np.isnan(main_answers[ravdess_rows]).any():
        raise SERError("out_of_fold.npz lacks some RAVDESS clips of --data: python -m ser train on actors 1-20 "
                       "writes every one")
    if list(bundle.emotions) != labels:
        raise SERError(f"the bundle answers {bundle.emotions}, the routing check {labels}")
    ased_table = table.iloc[ased_rows].reset_index(drop=True)
    cache = ScoreCache(score_cache, corpus="ased", sha=model_sha256(models / "model.keras"))
    main_answers[ased_rows] = score_clips(bundle, ased_table, root=(data / "ased").resolve(), cache=cache, log=log)

    joint = place_answers(joint_saved, keys, what=JOINT_OUT_OF_FOLD_FILE)
    joint[np.isnan(main_answers).any(axis=1)] = np.nan  # refused as no speech by the bundle: refused either way

    sets = load_sets(data, models, log=log)  # cached by ser familiarity; the clips are the clip table's, in order
    if not (np.array_equal(sets["ravdess"]["actor"], table["speaker"].iloc[ravdess_rows].str[-2:].astype(int))
            and np.array_equal(sets["ased"]["speaker"], table["speaker"].iloc[ased_rows].str[-2:].astype(int))):
        raise SERError("the cached familiarity sets are not in the clip table's order: run python -m ser familiarity")
    route = out_of_fold_route(models, sets, ravdess_rows, ased_rows, len(table), check=settings.route)
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
            name=name, description=description, routed_share=float(route[rows][answered].mean()),
            routed=corpus_comparison(routed[rows], **shared),
            main_only=corpus_comparison(main_answers[rows], **shared),
            calibrated=calibrated_comparison(routed[rows], adapted[rows], reference=reference[rows],
                                             adaptations={s: adaptations.get(s) for s in np.unique(speakers[rows])},
                                             **shared),
        ))
        entry = results[-1]
        log(f"{name}: routed {100 * entry.routed_share:.1f}% | main only "
            f"{100 * entry.main_only.restricted.accuracy:.1f} | routed {100 * entry.routed.restricted.accuracy:.1f} "
            f"/ UAR {100 * entry.routed.restricted.uar:.1f} (app {100 * entry.routed.app.accuracy:.1f})")
    rows = corpus == "ased"
    shared = {"truth": truth[rows], "speakers": speakers[rows], "labels": labels, "emotions": ased_emotions,
              "threshold": threshold}
    calibrated_answers, calibrations = adapt_per_speaker(main_answers[rows], speakers=speakers[rows],
                                                         reference=reference[rows], neutral=neutral)
    across = [AcrossCorpora(
        name="ravdess_to_ased", description="the main model (trained on RAVDESS only) on every ASED clip, 5 emotions",
        scores=corpus_comparison(main_answers[rows], **shared),
        calibrated=calibrated_comparison(main_answers[rows], calibrated_answers, reference=reference[rows],
                                         adaptations=calibrations, **shared))]
    return RoutingResults(
        schema=SCHEMAS[RoutingResults], model_sha256=model_sha256(models / "model.keras"),
        joint_views_sha256=model_sha256(models / JOINT_MODEL_FILE), measured=utc_now(),
        command=ROUTING_COMMAND, versions=package_versions(), protocol=PROTOCOL, labels=labels,
        joint_temperature=settings.temperature, sets=results, across_corpora=across,
    )
