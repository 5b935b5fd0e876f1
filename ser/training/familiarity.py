"""Fit the familiarity score, set its threshold on held-out speakers, measure what it flags; the cue references.

From the scored sets of :mod:`ser.training.familiarity_sets` (every clip through the shipped bundle as
the app sends it, its utterance's ComParE functionals kept):

- **fit**: principal components of the standardised functionals of RAVDESS speech, actors 1-20;
- **threshold**: 5 folds of 4 actors: the PCA is fitted on 16 actors and scores the other 4,
  so every actor is scored once as an unseen speaker; the threshold is the 99th percentile of
  those held-out scores (the 95th is reported too);
- **measured on**: ASED (Amharic, 65 speakers: share flagged, per speaker), English sentences
  from ``espeak-ng`` (synthetic), telephone-band and laptop-microphone copies of RAVDESS clips
  (as :mod:`ser.training.robustness` makes them), and synthetic music (vibrato tones, chords);
- **calibration**: expected calibration error and "sure but wrong" of the shipped model on RAVDESS
  (actors 1-20, all seen in training: an optimistic reference) and on ASED restricted to its 5
  emotions (the probabilities of those 5 renormalised);
- **cue references**: the cues of :mod:`ser.serving.cues` over RAVDESS neutral speech, per gender
  (``models/cues.json``, which the app's "why" panel reads).

``python -m ser familiarity`` (:mod:`ser.unfamiliarity_cli`) writes ``models/familiarity.json`` and
``models/cues.json`` and prints the numbers that ``docs/familiarity.md`` quotes. About 22 minutes
here (the sets cached in ``.cache/familiarity``)::

    python -m ser familiarity --data ../shared/data --out models/
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from ser.reporting.provenance import model_sha256
from ser.serving.audio import decode_audio
from ser.serving.familiarity import FamiliarityModel, fingerprint, fit_familiarity, standardizer_of
from ser.training.familiarity_sets import ASED_EMOTIONS, RATE, ravdess_files

#: Principal components kept (the JSON file stays about 300 KB).
N_COMPONENTS = 5
#: Held-out percentile that sets the warning threshold.
THRESHOLD_PERCENTILE = 99.0


def standardized(functionals: np.ndarray, *, mean: np.ndarray, scale: np.ndarray, limit: float) -> np.ndarray:
    """Functionals standardised as the model's Standardize layer does (clipped to +-limit)."""
    return np.clip((functionals - mean) / scale, -limit, limit)


def held_out_scores(rows: np.ndarray, actors: np.ndarray, *, mean, scale, limit) -> np.ndarray:
    """Each clip scored by a PCA fitted without its actor (5 folds of 4 actors, 2 male and 2 female)."""
    scores = np.full(len(rows), np.nan)
    ordered = np.unique(actors)
    for fold in range(5):
        test_actors = ordered[fold::5]  # actors 1,6,11,16 / 2,7,12,17 / ...: two odd (male), two even
        test = np.isin(actors, test_actors)
        model = familiarity_model(rows[~test], mean=mean, scale=scale, limit=limit, threshold=np.inf)
        scores[test] = model.scores(rows[test])
    return scores


def familiarity_model(rows: np.ndarray, *, mean, scale, limit, threshold: float) -> FamiliarityModel:
    """The score's principal components fitted on ``rows`` (functionals), with ``threshold``."""
    centre, components, variances, residual_scale = fit_familiarity(
        standardized(rows, mean=mean, scale=scale, limit=limit), n_components=N_COMPONENTS
    )
    return FamiliarityModel(mean=mean, scale=scale, limit=limit, centre=centre, components=components,
                            variances=variances, residual_scale=residual_scale, threshold=threshold)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, *, bins: int = 15) -> float:
    """ECE of the top answer over equal-width confidence bins (the team's 15-bin definition)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return float(sum(
        np.sum(index == b) / len(labels) * abs(correct[index == b].mean() - confidence[index == b].mean())
        for b in range(bins) if np.any(index == b)
    ))


def calibration(probabilities: np.ndarray, labels: np.ndarray, *, threshold: float,
                columns: list[int] | None = None) -> dict[str, float]:
    """The app's answer (8 emotions, "sure" above the bundle's threshold) and, if ``columns``, the ECE
    of the probabilities restricted to those emotions and renormalised."""
    scored = ~np.isnan(probabilities).any(axis=1)
    probabilities, labels = probabilities[scored], labels[scored]
    sure = probabilities.max(axis=1) >= threshold
    right = probabilities.argmax(axis=1) == labels
    restricted = probabilities if columns is None else probabilities[:, columns]
    restricted = restricted / restricted.sum(axis=1, keepdims=True)
    restricted_labels = labels if columns is None else np.searchsorted(columns, labels)
    return {
        "clips_scored": int(scored.sum()),
        "accuracy": float(right.mean()),
        "sure_share": float(sure.mean()),
        "sure_and_wrong_share": float((sure & ~right).mean()),
        "accuracy_when_sure": float(right[sure].mean()) if sure.any() else float("nan"),
        "ece_15_bins": expected_calibration_error(restricted, restricted_labels),
        "restricted_accuracy": float((restricted.argmax(axis=1) == restricted_labels).mean()),
    }


def cue_references(bundle, root: Path, ravdess: dict[str, np.ndarray]) -> dict:
    """Cues of RAVDESS neutral speech: per-gender centre and between-speaker spread, pooled within-speaker spread."""
    from ser.serving.cues import VoiceCues, voice_cues
    from ser.serving.functionals import functional_names

    names = functional_names(bundle.config)
    files = ravdess_files(root)
    fields = [field.name for field in dataclasses.fields(VoiceCues)]
    per_actor: dict[int, list[list[float]]] = {}
    for position, path in enumerate(files):
        if int(path.stem.split("-")[2]) != 1:  # neutral only
            continue
        waveform = decode_audio(path, sample_rate=RATE)
        cues = voice_cues(waveform, sample_rate=RATE, functionals=ravdess["functionals"][position],
                          functional_names=names)
        per_actor.setdefault(int(path.stem.split("-")[6]), []).append([getattr(cues, name) for name in fields])
    actor_means = {actor: np.nanmean(rows, axis=0) for actor, rows in per_actor.items()}
    within = np.sqrt(np.nanmean([np.nanvar(rows, axis=0, ddof=1) for rows in per_actor.values()], axis=0))
    genders = {}
    for gender, parity in (("male", 1), ("female", 0)):
        means = np.array([values for actor, values in actor_means.items() if actor % 2 == parity])
        genders[gender] = {
            "centre": dict(zip(fields, np.round(means.mean(axis=0), 4).tolist(), strict=True)),
            "between_speakers": dict(zip(fields, np.round(means.std(axis=0, ddof=1), 4).tolist(), strict=True)),
            "speakers": int(len(means)),
        }
    return {"source": "RAVDESS speech, actors 1-20, neutral (4 clips each); centre and spread over speakers' means",
            "genders": genders, "within_speaker": dict(zip(fields, np.round(within, 4).tolist(), strict=True))}


def report(*, bundle, sets: dict[str, dict[str, np.ndarray]], root: Path, out: Path, command: str) -> dict:
    """Fit, threshold, measure; write ``out/familiarity.json`` and ``out/cues.json``; return what was measured.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
        The shipped bundle (its standardisation and confidence threshold).
    sets : dict
        :func:`ser.training.familiarity_sets.compute_sets`'s scored sets.
    root : Path
        The folder holding ``ravdess/`` (the cue references read its neutral clips).
    out : Path
        The folder the two files are written to.
    command : str
        The command recorded in ``familiarity.json``.
    """
    mean, scale, limit = standardizer_of(bundle.model)
    ravdess = sets["ravdess"]
    held_out = held_out_scores(ravdess["functionals"].astype(np.float64), ravdess["actor"],
                               mean=mean, scale=scale, limit=limit)
    threshold = float(np.percentile(held_out, THRESHOLD_PERCENTILE))
    model = familiarity_model(ravdess["functionals"].astype(np.float64), mean=mean, scale=scale, limit=limit,
                              threshold=threshold)
    measured: dict[str, dict] = {
        "ravdess_held_out": {
            "clips": int(held_out.size), "share_flagged": float(np.mean(held_out > threshold)),
            "percentile_95": float(np.percentile(held_out, 95)),
            "share_flagged_per_actor": {int(a): round(float(np.mean(held_out[ravdess["actor"] == a] > threshold)), 3)
                                        for a in np.unique(ravdess["actor"])},
        }
    }
    for name in ("ased", "synthetic", "phone_8k", "laptop_mic", "music"):
        rows = sets[name]["functionals"].astype(np.float64)
        usable = np.isfinite(rows).all(axis=1)
        scores = model.scores(rows[usable])
        entry = {"clips": int(rows.shape[0]), "clips_with_functionals": int(usable.sum()),
                 "share_flagged": float(np.mean(scores > threshold)), "median_score": float(np.median(scores)),
                 "refused_as_no_speech": int(np.isnan(sets[name]["probabilities"]).any(axis=1).sum())}
        if name == "ased":
            speakers = sets[name]["speaker"][usable]
            entry["share_flagged_per_speaker"] = {int(s): round(float(np.mean(scores[speakers == s] > threshold)), 3)
                                                  for s in np.unique(speakers)}
            probabilities = sets[name]["probabilities"][usable]
            sure = probabilities.max(axis=1) >= bundle.confidence_threshold
            right = probabilities.argmax(axis=1) == sets[name]["emotion"][usable]
            flagged = scores > threshold
            for label, chosen in (("flagged", sure & flagged), ("not_flagged", sure & ~flagged)):
                entry[f"sure_clips_{label}"] = int(chosen.sum())
                entry[f"accuracy_when_sure_{label}"] = float(right[chosen].mean()) if chosen.any() else None
        if name in ("synthetic", "music"):
            probabilities = sets[name]["probabilities"]
            scored = ~np.isnan(probabilities).any(axis=1)
            confidence = probabilities[scored].max(axis=1)
            entry["sure_share_of_scored"] = float(np.mean(confidence >= bundle.confidence_threshold))
        measured[name] = entry
    ased_columns = sorted(bundle.emotions.index(emotion) for emotion in ASED_EMOTIONS.values())
    measured["calibration"] = {
        "ravdess_training_speakers": calibration(ravdess["probabilities"], ravdess["emotion"],
                                                 threshold=bundle.confidence_threshold),
        "ased_5_emotions": calibration(sets["ased"]["probabilities"], sets["ased"]["emotion"],
                                       threshold=bundle.confidence_threshold, columns=ased_columns),
    }
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": 1,
        "command": command,
        "measured_at": time.strftime("%Y-%m-%d", time.gmtime()),
        "model_sha256": model_sha256(bundle.path / "model.keras"),
        "fingerprint": fingerprint(mean),
        "n_components": N_COMPONENTS,
        "threshold_rule": f"{THRESHOLD_PERCENTILE:g}th percentile of held-out RAVDESS actors' scores "
                          "(5 folds by actor)",
        "threshold": threshold,
        "residual_scale": model.residual_scale,
        "variances": model.variances.tolist(),
        "centre": [float(f"{value:.4g}") for value in model.centre],
        "components": [[float(f"{value:.4g}") for value in row] for row in model.components],
        "measured": measured,
    }
    (out / "familiarity.json").write_text(json.dumps(document, separators=(",", ":")) + "\n")
    (out / "cues.json").write_text(json.dumps(cue_references(bundle, root, ravdess), indent=1) + "\n")
    return measured
