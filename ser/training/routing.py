"""The bundle's answer with its routing, on speakers it never heard: ``models/routing.json``.

The bundle answers with its main model (RAVDESS only) unless the unfamiliar-voice check fires
(:mod:`ser.serving.unfamiliarity`: the voice is more like ASED's speakers than any RAVDESS actor's), and
then with the joint views (RAVDESS, ASED and ordinary voices, :mod:`ser.training.joint_views`). Every part is taken out
of fold, so no clip is answered by anything that heard its speaker:

- the main model: on RAVDESS, its cross-validated answers (5 folds by actor, actors 1-20), which
  ``python -m ser train`` keeps in the bundle (``out_of_fold.npz``), or, for a bundle trained before it
  kept them, the answers of each fold's members (which the bundle holds) on that fold's test actors; on
  ASED and the ordinary voices, the bundle's main model itself, which never heard them (scored as ``ser
  predict`` scores a file, ASED's cached as ``python -m ser corpus-check`` caches it);
- the joint views: their cross-validated answers on the corpora they learnt from (the RAVDESS part exactly
  the headline's folds), which ``python -m ser joint-views`` keeps (``joint_views_out_of_fold.npz``); on
  ordinary voices they never learnt from, the shipped joint views themselves;
- the check: statistics from detectors fitted without the speaker (5 folds, :mod:`ser.training.unfamiliarity`),
  each fold's thresholds from the other folds' RAVDESS actors; on the ordinary voices (which no detector
  heard), the shipped detectors and thresholds, as ``ser predict`` routes.

Calibration: each speaker's two neutral reference clips (:func:`ser.training.corpora.reference_clips`; not
scored) give the neutral floor (:mod:`ser.serving.speaker`) for the speaker's other routed answers.
Across corpora: the main model on every ASED clip (leaving a corpus out is ``python -m ser loco``'s).

Ordinary voices (speechocean, when ``--data`` holds it) are scored by the share answered neutral or calm and
the share called angry, fearful or disgust (false alarms).

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
    "speechocean: 125 ordinary speakers, neutral or calm is right (the main model never heard them; the joint "
    "views and the voice check in 5 folds by speaker if they learnt from the corpus); "
    "calibrated: per speaker 2 neutral reference clips (not scored), neutral floor 0.5"
)


def routed_probabilities(main: np.ndarray, joint: np.ndarray, route: np.ndarray) -> np.ndarray:
    """The bundle's answer: ``joint`` where ``route`` (n_clips,) is set, ``main`` elsewhere; shape (n_clips, 8).

    >>> routed_probabilities(np.zeros((2, 1)), np.ones((2, 1)), np.array([True, False])).ravel().tolist()
    [1.0, 0.0]
    """
    return np.where(np.asarray(route, dtype=bool)[:, None], joint, main)


def learnt_ordinary(models: Path) -> bool:
    """Whether the bundle's unfamiliar-voice check learnt the ordinary voices as unlike RAVDESS's actors
    (False for a bundle without the check)."""
    from ser.serving.unfamiliarity import load_unfamiliarity
    from ser.training.familiarity_sets import ORDINARY_SET

    if not (models / "unfamiliarity.npz").is_file():
        return False
    measured = load_unfamiliarity(models / "unfamiliarity.npz").measured
    return ORDINARY_SET in measured.get("unfamiliar_voices", ["ased"])


def out_of_fold_route(models: Path, sets: dict[str, dict[str, np.ndarray]], rows: dict[str, np.ndarray],
                      n_clips: int, *, check: str, ordinary: bool) -> np.ndarray:
    """Whether ``check`` fires on each clip, from detectors and thresholds that never saw its speaker.

    ``sets`` are the cached functionals of :func:`ser.training.unfamiliarity.load_sets`; ``rows[name]`` places
    the clips of set ``name`` (``ravdess``, ``ased`` and, when the bundle's check learnt them, ``speechocean``)
    among the ``n_clips`` of the clip table. Clips of no set in ``rows`` are never routed here. ``ordinary``:
    the bundle's check learnt the ordinary voices (:func:`learnt_ordinary`), so each fold's detector does too.
    """
    from ser.serving.unfamiliarity import CHECKS, load_unfamiliarity
    from ser.training.unfamiliarity import FOLDS, fires, out_of_fold, threshold_of

    column = CHECKS.index(check)
    shipped = load_unfamiliarity(models / "unfamiliarity.npz")
    statistics = out_of_fold(sets, columns=(shipped.band_column, shipped.steadiness_column), ordinary=ordinary)
    ravdess, folds = statistics["ravdess"], statistics["fold"]
    held_folds = {}
    for name in rows:
        if name != "ravdess":  # out_of_fold holds out speakers[fold::FOLDS] of the sorted speakers
            speakers = sets[name]["speaker"]
            held_folds[name] = np.searchsorted(np.unique(speakers), speakers) % FOLDS
    route = np.zeros(n_clips, dtype=bool)
    for fold in range(FOLDS):
        thresholds = threshold_of(ravdess[folds != fold])
        mine = folds == fold
        route[rows["ravdess"][mine]] = fires(ravdess[mine], thresholds)[:, column]
        for name, of in held_folds.items():
            mine = (of == fold) & np.isfinite(statistics[name]).all(axis=1)
            route[rows[name][mine]] = fires(statistics[name][mine], thresholds)[:, column]
    return route


def fold_member_answers(bundle, table, *, root: Path, metrics: Path, score_cache: Path,
                        log: Callable[[str], None]) -> np.ndarray:
    """The main model's answers on RAVDESS clips by the members of the fold that never heard the actor.

    A bundle of ``python -m ser train`` holds every fold's refitted members (as ``python -m ser robustness``
    uses them): the fold's fused members answer the fold's test actors as ``ser predict`` answers a file, which
    gives the cross-validation of ``metrics.json`` for a bundle trained before ``ser train`` kept its answers.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
        Loaded without joint views (they heard every actor).
    table : pandas.DataFrame
        RAVDESS clips (speaker ``ravdess-NN``) below ``root``.
    metrics : Path
        The bundle's ``metrics.json`` (each fold's test actors).

    Returns
    -------
    np.ndarray, shape (len(table), n_emotions)
        Calibrated probabilities; NaN rows for clips refused as no speech.
    """
    from ser.errors import SERError
    from ser.reporting.provenance import model_sha256
    from ser.reporting.results import load_training
    from ser.training.corpus_check import ScoreCache, score_clips
    from ser.training.robustness import fold_bundles

    actors = table["speaker"].str[-2:].astype(int).to_numpy()
    answers = np.full((len(table), len(bundle.emotions)), np.nan)
    sha = model_sha256(Path(bundle.path) / "model.keras")
    folds = fold_bundles(bundle, load_training(metrics).cross_validation.per_fold)
    untested = sorted(set(actors.tolist()) - {actor for _, tested in folds.values() for actor in tested})
    if untested:
        raise SERError(f"no fold of {metrics} tested actors {untested}: pass --data with the actors the bundle was "
                       "cross-validated on, or retrain it with python -m ser train (which keeps its answers)")
    for fold, (fold_bundle, tested) in folds.items():
        rows = np.flatnonzero(np.isin(actors, sorted(tested)))
        cache = ScoreCache(score_cache, corpus=f"ravdess-fold{fold}", sha=sha)
        answers[rows] = score_clips(fold_bundle, table.iloc[rows], root=root, cache=cache, log=log)
        log(f"fold {fold}: {len(rows)} RAVDESS clips by the members that never heard actors {sorted(tested)}")
    return answers


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
    from ser.reporting.loco_results import score_set
    from ser.reporting.provenance import model_sha256, package_versions, utc_now
    from ser.reporting.results import ROUTING_COMMAND, SCHEMAS
    from ser.reporting.routing_results import AcrossCorpora, OrdinaryRouted, RoutedSet, RoutingResults
    from ser.serving.bundle import load_bundle
    from ser.serving.joint_views import JOINT_MODEL_FILE, read_joint_settings
    from ser.training.corpora import corpus_emotions, reference_clips, target_mask
    from ser.training.corpus_check import ScoreCache, score_clips
    from ser.training.data import EMOTIONS
    from ser.training.familiarity_sets import ORDINARY_SET
    from ser.training.fold_answers import OUT_OF_FOLD_FILE, clip_identity, read_out_of_fold
    from ser.training.joint_views import JOINT_OUT_OF_FOLD_FILE
    from ser.training.loco import corpus_table
    from ser.training.loco_bundle import JOINT, MAIN, ROUTED, bundle_answers
    from ser.training.target_sets import single_labels
    from ser.training.unfamiliarity import load_sets

    table = corpus_table(data, ordinary=(data / "speechocean").is_dir())
    labels = list(EMOTIONS)
    corpus = table["corpus"].to_numpy()
    ravdess_rows, ased_rows = np.flatnonzero(corpus == "ravdess"), np.flatnonzero(corpus == "ased")
    ordinary_rows = np.flatnonzero(corpus == "speechocean")
    identity = clip_identity(table)
    keys = list(zip(identity["corpus"].tolist(), identity["speaker"].tolist(), identity["file_name"].tolist(),
                    strict=True))

    kept = (models / OUT_OF_FOLD_FILE).is_file()  # ser train's own answers; older bundles: their fold members
    saved = [(read_out_of_fold(models), "train")] if kept else []
    joint_saved = read_out_of_fold(models, name=JOINT_OUT_OF_FOLD_FILE)  # read first: fail before scoring
    settings = read_joint_settings(models)
    bundle = load_bundle(models, joint_views=False)  # the main model alone on ASED, which it never heard
    for answers, producer in [*saved, (joint_saved, "joint-views")]:
        temperature = bundle.temperature if producer == "train" else settings.temperature
        if not np.isclose(answers.temperature, temperature):  # the answers of another training run
            raise SERError(f"the out-of-fold answers of python -m ser {producer} and the bundle it wrote disagree "
                           f"(temperature {answers.temperature:.4f} against {temperature:.4f}): run it again")
    if kept:
        main_answers = place_answers(saved[0][0], keys, what=OUT_OF_FOLD_FILE)
        if np.isnan(main_answers[ravdess_rows]).any():
            raise SERError(f"{OUT_OF_FOLD_FILE} lacks some RAVDESS clips of --data: python -m ser train on actors "
                           "1-20 writes every one")
    else:
        main_answers = np.full((len(table), len(labels)), np.nan)
        main_answers[ravdess_rows] = fold_member_answers(
            bundle, table.iloc[ravdess_rows].reset_index(drop=True), root=(data / "ravdess").resolve(),
            metrics=models / "metrics.json", score_cache=score_cache, log=log)
    if list(bundle.emotions) != labels:
        raise SERError(f"the bundle answers {bundle.emotions}, the routing check {labels}")
    ased_table = table.iloc[ased_rows].reset_index(drop=True)
    cache = ScoreCache(score_cache, corpus="ased", sha=model_sha256(models / "model.keras"))
    main_answers[ased_rows] = score_clips(bundle, ased_table, root=(data / "ased").resolve(), cache=cache, log=log)

    joint = place_answers(joint_saved, keys, what=JOINT_OUT_OF_FOLD_FILE)
    ordinary_route = np.zeros(len(ordinary_rows), dtype=bool)
    joint_heard_ordinary = "speechocean" in settings.corpora
    if len(ordinary_rows):  # the main model never heard an ordinary voice: its answers as ser predict gives them
        answers = bundle_answers(load_bundle(models), table["path"].iloc[ordinary_rows].tolist(), cut=False, log=log)
        main_answers[ordinary_rows], ordinary_route = answers[MAIN], answers[ROUTED]
        if not joint_heard_ordinary:
            joint[ordinary_rows] = answers[JOINT]
        elif np.isnan(joint[ordinary_rows]).all(axis=1).any():
            raise SERError(f"{JOINT_OUT_OF_FOLD_FILE} lacks some speechocean clips of --data: python -m ser "
                           "joint-views on the same folder writes every one")
    joint[np.isnan(main_answers).any(axis=1)] = np.nan  # refused as no speech by the bundle: refused either way

    sets = load_sets(data, models, log=log)  # cached by ser familiarity; the clips are the clip table's, in order
    if not (np.array_equal(sets["ravdess"]["actor"], table["speaker"].iloc[ravdess_rows].str[-2:].astype(int))
            and np.array_equal(sets["ased"]["speaker"], table["speaker"].iloc[ased_rows].str[-2:].astype(int))):
        raise SERError("the cached familiarity sets are not in the clip table's order: run python -m ser familiarity")
    routed_sets = {"ravdess": ravdess_rows, "ased": ased_rows}
    check_heard_ordinary = learnt_ordinary(models)
    if check_heard_ordinary and len(ordinary_rows):  # the check learnt them: out of fold, as the others
        readers = table["speaker"].iloc[ordinary_rows]
        if not np.array_equal(sets[ORDINARY_SET]["speaker"], np.searchsorted(np.unique(readers), readers)):
            raise SERError("the cached ordinary-voice set is not in the clip table's order: run python -m ser "
                           "unfamiliarity --data ../shared/data")
        routed_sets[ORDINARY_SET] = ordinary_rows
    route = out_of_fold_route(models, sets, routed_sets, len(table), check=settings.route,
                              ordinary=check_heard_ordinary)
    if ORDINARY_SET not in routed_sets:
        route[ordinary_rows] = ordinary_route  # no detector heard these voices: the shipped one decides
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
    ordinary = None
    if len(ordinary_rows):
        targets = target_mask(table.iloc[ordinary_rows])
        shared = {"targets": targets, "labels": single_labels(targets), "speakers": speakers[ordinary_rows],
                  "allowed": np.ones(len(labels), dtype=bool), "ordinary": True}
        answered = ~np.isnan(routed[ordinary_rows]).any(axis=1)
        heard = ("the joint views answer out of fold, 5 folds by speaker (they learnt from the other speakers)"
                 if joint_heard_ordinary else "the joint views never heard the corpus")
        heard += ("; the voice check out of fold too (it learnt ordinary voices)" if ORDINARY_SET in routed_sets
                  else "; the voice check never heard them")
        ordinary = OrdinaryRouted(
            description=f"speechocean: {len(np.unique(speakers[ordinary_rows]))} speakers reading aloud, no emotion "
                        f"labels, so neutral or calm is right; {heard}",
            joint_views_heard_corpus=joint_heard_ordinary,
            routed_share=float(route[ordinary_rows][answered].mean()) if answered.any() else 0.0,
            routed=score_set(routed[ordinary_rows], **shared),
            main_only=score_set(main_answers[ordinary_rows], **shared),
            joint_only=score_set(joint[ordinary_rows], **shared))
        figures = ", ".join(f"{name} {100 * scores.neutral_or_calm_share:.1f} / {100 * scores.false_alarm_share:.1f}"
                            for name, scores in (("routed", ordinary.routed), ("main only", ordinary.main_only),
                                                 ("joint views only", ordinary.joint_only)))
        log(f"speechocean: routed {100 * ordinary.routed_share:.1f}% | neutral or calm / false alarms: {figures}")
    return RoutingResults(
        schema=SCHEMAS[RoutingResults], model_sha256=model_sha256(models / "model.keras"),
        joint_views_sha256=model_sha256(models / JOINT_MODEL_FILE), measured=utc_now(),
        command=ROUTING_COMMAND, versions=package_versions(), protocol=PROTOCOL, labels=labels,
        joint_temperature=settings.temperature, sets=results, across_corpora=across, ordinary=ordinary,
    )
