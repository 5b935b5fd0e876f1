"""Fit the "unlike the training data" detector, set every threshold on held-out speakers, measure it.

Reads the utterance functionals :mod:`ser.training.familiarity_sets` caches in ``.cache/familiarity/``
(RAVDESS actors 1-20, ASED, espeak-ng sentences, telephone-band and laptop-microphone copies of 240
RAVDESS clips, synthetic music); computes any missing set first (about 20 minutes). With the cache:
about 2 minutes. ``python -m ser unfamiliarity`` (:mod:`ser.unfamiliarity_cli`) writes the detector
to ``models/unfamiliarity.npz``::

    python -m ser unfamiliarity --data ../shared/data --out models/

Protocol (the four checks of :mod:`ser.serving.unfamiliarity`):

- 5 folds. RAVDESS: 4 actors a fold (``actors[f::5]``: two men, two women); ASED: 13 speakers a
  fold (``speakers[f::5]``). In each fold the standardisation, the principal components and the
  domain classifier are fitted on the other folds only; the held-out clips (and the phone and
  laptop copies of held-out actors' clips) get out-of-fold statistics.
- The shipped threshold of each check is the 99.5th (or 0.5th, for a check that fires below it)
  percentile of the out-of-fold RAVDESS statistics. The false-positive rate on RAVDESS is then
  measured cross-fitted: each fold against a threshold set on the other four folds' clips only.
- ASED is used for fitting the domain classifier, so its detection rates are out-of-fold
  (speakers never used to fit). espeak-ng speech, phone band, laptop mic and music are never
  used for fitting or for choosing anything: unseen conditions.
- The shipped detector is refitted on everything (:func:`build_detector`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ser.errors import SERError
from ser.serving.familiarity import fit_familiarity
from ser.serving.unfamiliarity import (
    BAND_FUNCTIONAL,
    CHECKS,
    DIRECTIONS,
    STEADINESS_FUNCTIONAL,
    UnfamiliarityDetector,
)
from ser.training.familiarity_sets import CACHE, ORDINARY_SET, SETS, cache_folder, compute_sets, ordinary_set

#: Principal components of the "not speech" distance (20 keep the file near 300 KB as float16;
#: docs/familiarity.md: 5 caught a third of music, 20 all of it).
N_COMPONENTS = 20
#: Share of held-out RAVDESS clips each check may flag.
FALSE_POSITIVE_TARGET = 0.005
#: Standardised values are clipped to +-LIMIT (as the model's Standardize layer does).
LIMIT = 8.0
#: Inverse L2 strength of the domain classifier, fixed before any result was seen (strong: 6373
#: features, 85 speakers), not tuned.
DOMAIN_C = 0.01
FOLDS = 5
LABELS = {"ravdess": "RAVDESS, held-out actors", "ased": "ASED (Amharic), held-out speakers",
          "synthetic": "espeak-ng English (unseen)", "phone_8k": "RAVDESS phone band 300-3400 Hz (unseen)",
          "laptop_mic": "RAVDESS laptop mic (unseen)", "music": "synthetic music (unseen)",
          ORDINARY_SET: "speechocean ordinary voices"}


def load_sets(data: Path | None, bundle_path: Path, *, cache: Path = CACHE,
              log: Callable[[str], None] = lambda message: None) -> dict[str, dict[str, np.ndarray]]:
    """The sets of :mod:`ser.training.familiarity_sets` the bundle's model scored, cached below ``cache``
    (:func:`~ser.training.familiarity_sets.cache_folder`); any missing one is computed (needs ``data``).

    Raises
    ------
    SERError
        When a set is missing from ``cache`` and no ``data`` folder is given to compute it.
    """
    cache = cache_folder(cache, bundle_path)
    cached = all((cache / f"{name}.npz").exists() for name in SETS)
    if not cached and data is None:
        raise SERError(f"{cache} lacks some of {SETS}; pass --data ../shared/data to compute them")
    sets = {}
    for name in (*SETS, ORDINARY_SET) if cached else ():
        if (cache / f"{name}.npz").exists():
            with np.load(cache / f"{name}.npz", allow_pickle=False) as stored:
                sets[name] = {key: stored[key] for key in stored.files}
    wants_ordinary = ORDINARY_SET not in sets and data is not None and (Path(data) / ORDINARY_SET).is_dir()
    if cached and not wants_ordinary:
        return sets
    from ser.serving.bundle import load_bundle

    bundle = load_bundle(bundle_path)  # once, for every set still to score
    if not cached:
        sets = compute_sets(bundle, data, cache=cache, log=log)
    if wants_ordinary:
        sets[ORDINARY_SET] = ordinary_set(bundle, data, cache=cache, log=log)
    return sets


def fit_detector(ravdess: np.ndarray, ased: np.ndarray, *, columns: tuple[int, int],
                 thresholds: np.ndarray | None = None) -> UnfamiliarityDetector:
    """Standardisation and components from RAVDESS rows, the domain classifier from RAVDESS against the
    rows of ``ased``: the unfamiliar voices (ASED's, and the ordinary voices' when the check learns them)."""
    from sklearn.linear_model import LogisticRegression

    mean = ravdess.mean(axis=0)
    scale = ravdess.std(axis=0)
    scale = np.where(scale > 1e-8 * np.maximum(1.0, np.abs(mean)), scale, 1.0)  # constant columns: no scaling
    standard = np.clip((ravdess - mean) / scale, -LIMIT, LIMIT)
    centre, components, variances, residual_scale = fit_familiarity(standard, n_components=N_COMPONENTS)
    features = np.vstack([standard, np.clip((ased - mean) / scale, -LIMIT, LIMIT)])
    target = np.r_[np.zeros(len(ravdess)), np.ones(len(ased))]
    classifier = LogisticRegression(C=DOMAIN_C, class_weight="balanced", max_iter=3000).fit(features, target)
    return UnfamiliarityDetector(
        mean=mean, scale=scale, limit=LIMIT, centre=centre, components=components, variances=variances,
        residual_scale=residual_scale, domain_weights=classifier.coef_[0].astype(np.float64),
        domain_bias=float(classifier.intercept_[0]), band_column=columns[0], steadiness_column=columns[1],
        thresholds=np.zeros(len(CHECKS)) if thresholds is None else thresholds,
    )


def threshold_of(values: np.ndarray, *, target: float = FALSE_POSITIVE_TARGET) -> np.ndarray:
    """Per check: the value that about ``target`` of ``values`` (n_clips, checks) lie beyond."""
    upper = np.percentile(values, 100 * (1 - target), axis=0)
    lower = np.percentile(values, 100 * target, axis=0)
    return np.array([upper[i] if DIRECTIONS[code] > 0 else lower[i] for i, code in enumerate(CHECKS)])


def fires(statistics: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Which checks fire on each row of ``statistics`` (n_clips, checks), each in its direction."""
    directions = np.array([DIRECTIONS[code] for code in CHECKS], dtype=np.float64)
    return directions * (statistics - thresholds) > 0


def out_of_fold(sets: dict[str, dict[str, np.ndarray]], *, columns: tuple[int, int], ordinary: bool = False,
                log: Callable[[str], None] = lambda message: None) -> dict[str, np.ndarray]:
    """Statistics of RAVDESS, ASED, the RAVDESS copies and (when scored) the ordinary voices from the fold that
    never saw their speaker; ``ordinary``: the domain classifier learns the ordinary voices as unfamiliar."""
    ravdess, ased = sets["ravdess"], sets["ased"]
    actors, speakers = np.unique(ravdess["actor"]), np.unique(ased["speaker"])
    held_sets = ("ravdess", "ased", "phone_8k", "laptop_mic", *([ORDINARY_SET] if ORDINARY_SET in sets else []))
    if ordinary and ORDINARY_SET not in sets:
        raise SERError(f"the check cannot learn the ordinary voices: no {ORDINARY_SET} set was scored (pass --data)")
    readers = np.unique(sets[ORDINARY_SET]["speaker"]) if ORDINARY_SET in sets else np.array([])
    result = {name: np.full((len(sets[name]["functionals"]), len(CHECKS)), np.nan) for name in held_sets}
    result["fold"] = np.full(len(ravdess["functionals"]), -1)
    for fold in range(FOLDS):
        test_actors, test_speakers = actors[fold::FOLDS], speakers[fold::FOLDS]
        train_r = ~np.isin(ravdess["actor"], test_actors)
        train_a = ~np.isin(ased["speaker"], test_speakers) & usable(ased)
        unfamiliar = [ased["functionals"][train_a]]
        if ordinary:
            others = sets[ORDINARY_SET]
            unfamiliar.append(others["functionals"][~np.isin(others["speaker"], readers[fold::FOLDS]) & usable(others)])
        detector = fit_detector(ravdess["functionals"][train_r].astype(np.float64),
                                np.vstack(unfamiliar).astype(np.float64), columns=columns)
        held_out = {"ravdess": test_actors, "ased": test_speakers, "phone_8k": test_actors, "laptop_mic": test_actors,
                    ORDINARY_SET: readers[fold::FOLDS]}
        for name in held_sets:
            key = "speaker" if name in ("ased", ORDINARY_SET) else "actor"
            rows = np.isin(sets[name][key], held_out[name]) & usable(sets[name])
            result[name][rows] = detector.statistics(sets[name]["functionals"][rows].astype(np.float64))
        result["fold"][~train_r] = fold
        log(f"fold {fold}: fitted")
    return result


def usable(entry: dict[str, np.ndarray]) -> np.ndarray:
    """Clips whose functionals exist (a clip refused before extraction has NaN)."""
    return np.isfinite(entry["functionals"]).all(axis=1)


def rates(flags: np.ndarray) -> dict[str, float]:
    """Share of clips each check (and any check) flags."""
    return {**{code: round(float(flags[:, i].mean()), 4) for i, code in enumerate(CHECKS)},
            "any": round(float(flags.any(axis=1).mean()), 4)}


def measure(sets, statistics: dict[str, np.ndarray], thresholds: np.ndarray, *,
            target: float = FALSE_POSITIVE_TARGET) -> dict:
    """False positives on RAVDESS (cross-fitted thresholds), detection rates elsewhere."""
    ravdess = statistics["ravdess"]
    folds = statistics["fold"]
    cross = np.zeros_like(ravdess, dtype=bool)
    for fold in range(FOLDS):
        cross[folds == fold] = fires(ravdess[folds == fold], threshold_of(ravdess[folds != fold], target=target))
    actors = sets["ravdess"]["actor"]
    per_actor = {int(a): float(cross[actors == a].any(axis=1).mean()) for a in np.unique(actors)}
    measured = {
        "ravdess": {"clips": int(len(ravdess)), "flagged_cross_fitted": rates(cross),
                    "flagged_with_shipped_thresholds": rates(fires(ravdess, thresholds)),
                    "any_per_actor_max": round(max(per_actor.values()), 4),
                    "any_per_actor": {a: round(v, 4) for a, v in per_actor.items()}},
    }
    for name in (*SETS[1:], ORDINARY_SET):
        values = statistics.get(name)
        if values is None:
            continue
        values = values[np.isfinite(values).all(axis=1)]
        measured[name] = {"clips": int(len(values)), "flagged": rates(fires(values, thresholds)),
                          "median_statistics": dict(zip(CHECKS, np.round(np.median(values, axis=0), 4).tolist(),
                                                        strict=True))}
    ased = statistics["ased"]
    speakers = sets["ased"]["speaker"][np.isfinite(ased).all(axis=1)]
    flagged = fires(ased[np.isfinite(ased).all(axis=1)], thresholds).any(axis=1)
    shares = np.array([flagged[speakers == s].mean() for s in np.unique(speakers)])
    measured["ased"]["any_per_speaker_min"] = round(float(shares.min()), 4)
    measured["ased"]["speakers_mostly_flagged"] = f"{int(np.sum(shares >= 0.5))} of {len(shares)}"
    return measured


def table(measured: dict) -> str:
    """The markdown table docs/familiarity.md quotes."""
    lines = ["| audio | clips | " + " | ".join(CHECKS) + " | any |", "|---" * (len(CHECKS) + 3) + "|"]
    for name in (*SETS, ORDINARY_SET):
        entry = measured.get(name)
        if entry is None:
            continue
        shares = entry["flagged_cross_fitted"] if name == "ravdess" else entry["flagged"]
        cells = [f"{100 * shares[code]:.1f}%" for code in (*CHECKS, "any")]
        lines.append(f"| {LABELS[name]} | {entry['clips']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_detector(sets: dict[str, dict[str, np.ndarray]], *, target: float = FALSE_POSITIVE_TARGET,
                   ordinary: bool = False,
                   log: Callable[[str], None] = lambda message: None) -> UnfamiliarityDetector:
    """The shipped detector: thresholds from out-of-fold RAVDESS statistics, refitted on everything, measured.

    Parameters
    ----------
    sets : dict
        The scored sets (:func:`load_sets`).
    target : float
        The share of held-out RAVDESS clips each check may flag, in (0, 0.5).
    ordinary : bool
        The unfamiliar-voice check learns the ordinary voices (``sets["speechocean"]``) as unlike RAVDESS's
        actors, beside ASED's.
    log : callable
        Progress messages.

    Returns
    -------
    UnfamiliarityDetector
        With ``measured``: every rate of :func:`measure`, the thresholds and the protocol.

    Raises
    ------
    ValueError
        When ``target`` is outside (0, 0.5).
    """
    from ser.config import FeatureConfig
    from ser.serving.functionals import functional_names

    if not 0 < target < 0.5:
        raise ValueError(f"the false-positive target must be in (0, 0.5), got {target}")
    names = functional_names(FeatureConfig())
    columns = (names.index(BAND_FUNCTIONAL), names.index(STEADINESS_FUNCTIONAL))
    statistics = out_of_fold(sets, columns=columns, ordinary=ordinary, log=log)
    thresholds = threshold_of(statistics["ravdess"], target=target)
    unfamiliar = [sets["ased"]["functionals"][usable(sets["ased"])]]
    if ordinary:
        unfamiliar.append(sets[ORDINARY_SET]["functionals"][usable(sets[ORDINARY_SET])])
    shipped = fit_detector(sets["ravdess"]["functionals"].astype(np.float64), np.vstack(unfamiliar).astype(np.float64),
                           columns=columns, thresholds=thresholds)
    for name in ("synthetic", "music"):  # never fitted on: scored by the shipped detector
        rows = usable(sets[name])
        statistics[name] = shipped.statistics(sets[name]["functionals"][rows].astype(np.float64))
    measured = measure(sets, statistics, thresholds, target=target)
    measured["thresholds"] = dict(zip(CHECKS, np.round(thresholds, 4).tolist(), strict=True))
    measured["unfamiliar_voices"] = ["ased", *([ORDINARY_SET] if ordinary else [])]
    ordinary_words = (f"; {ORDINARY_SET} learnt as unfamiliar too, out-of-fold (25 speakers a fold)" if ordinary else
                      f"; {ORDINARY_SET} never used for fitting" if ORDINARY_SET in sets else "")
    measured["protocol"] = (
        f"thresholds: {100 * (1 - target):g}th/{100 * target:g}th percentile of "
        f"out-of-fold RAVDESS statistics ({FOLDS} folds of 4 actors); RAVDESS false positives cross-fitted; ASED "
        f"out-of-fold (13 speakers a fold){ordinary_words}; espeak-ng, phone, laptop and music never used for "
        "fitting")
    return UnfamiliarityDetector(**{**shipped.__dict__, "measured": measured})
