"""Quick explorations behind the cross-corpus study's choices (linear views, one L2 strength per
view fixed a priori, no speed copies, so each fit takes seconds to a minute here).

Run::

    python -m experiments.cross_corpus_explore calibration   # ways to use a speaker's reference
    python -m experiments.cross_corpus_explore features      # L2 strength and functional families

``calibration`` compares, on RAVDESS -> ASED, ASED -> RAVDESS (its 5 shared emotions), the 5
RAVDESS headline folds and 2 ASED speaker folds, for speakers with a reference (reference clips
not scored): no calibration; the functional shift onto the training speakers' neutral centroid
(full, half, shrunk per functional by the between- vs within-speaker variance, or only along the
top between-speaker directions); and the neutral floor on the answers (0.3, 0.5, 0.7; one-sided
as shipped, or two-sided). ``features`` fits the functional view alone on each family of
functionals and at three L2 strengths, raw and shifted. Each line: accuracy / UAR / neutral
recall / largest answer share (%), answers over the test corpus's emotions.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from experiments.cross_corpus import load_clips, voicing  # noqa: E402
from ser.serving.speaker import apply_neutral_bias, neutral_floor_bias  # noqa: E402
from ser.training.corpora import corpus_emotions, fold_speakers  # noqa: E402
from ser.training.data import EMOTIONS  # noqa: E402
from ser.training.linear_views import (  # noqa: E402
    LinearRecipe,
    fit_views,
    fuse_probabilities,
    neutral_centroid,
    speaker_offsets,
)

RECIPE = LinearRecipe(speed_copies=False)
C_FUNCTIONALS, C_VOICING = 0.003, 0.01


def _line(probabilities: dict[str, np.ndarray], labels: np.ndarray, allowed: np.ndarray) -> str:
    parts = []
    for name, values in probabilities.items():
        answers = np.where(allowed, values, -1).argmax(axis=1)
        recall = [np.mean(answers[labels == label] == label) for label in np.unique(labels)]
        share = np.bincount(answers).max() / len(answers)
        parts.append(f"{name} {100 * np.mean(answers == labels):.1f}/{100 * np.mean(recall):.1f}/"
                     f"{100 * recall[0]:.0f}/{100 * share:.0f}")
    return "  ".join(parts)


def calibration(clips, train, test, answer_space, label) -> None:
    views = [fit_views(clips, train, recipe=RECIPE, c_values=(C_FUNCTIONALS,))[0],
             fit_views(clips, train, recipe=RECIPE, c_values=(C_VOICING,), columns=voicing(clips))[0]]
    allowed = np.isin(EMOTIONS, answer_space)
    raw = clips.speeds[1.0].astype(np.float64)

    def answer(values):
        return fuse_probabilities(*[np.where(allowed, view.probabilities(values), 0) for view in views]) * allowed

    has_reference = np.isin(clips.speaker, clips.speaker[clips.reference])
    scored, references = test & ~clips.reference & has_reference, test & clips.reference
    offsets = np.nan_to_num(speaker_offsets(clips, scored, centroid=neutral_centroid(clips, train))[scored])
    # Per-functional shrinkage: between-speaker variance of reference means vs within-speaker
    # variance of neutral clips over the two reference clips (a posterior mean of the voice).
    chosen = train & clips.reference
    between = pd.DataFrame(raw[chosen]).groupby(clips.speaker[chosen]).mean().var().to_numpy()
    neutral = train & (clips.labels == 0)
    frame = pd.DataFrame(raw[neutral])
    within = ((frame - frame.groupby(clips.speaker[neutral]).transform("mean")) ** 2).mean().to_numpy()
    # Top directions in which training speakers' mean voices differ (standardised like the view).
    means = pd.DataFrame(raw[train]).groupby(clips.speaker[train]).mean()
    directions = np.linalg.svd(((means - means.mean()) / views[0].scale).to_numpy(), full_matrices=False)[2]
    variants = {"none": answer(raw[scored]), "shift": answer(raw[scored] + offsets),
                "half": answer(raw[scored] + 0.5 * offsets),
                "shrunk": answer(raw[scored] + offsets * between / (between + within / 2 + 1e-12))}
    for k in (3, 15):
        projected = (offsets / views[0].scale) @ directions[:k].T @ directions[:k] * views[0].scale
        variants[f"top{k}"] = answer(raw[scored] + projected)
    plain, reference_answers = variants["none"], answer(raw[references])
    for floor in (0.3, 0.5, 0.7):
        for one_sided in (True, False):
            adapted = plain.copy()
            for speaker in np.unique(clips.speaker[scored]):
                own = clips.speaker[references] == speaker
                logs = np.log(np.clip(reference_answers[own][:, allowed], 1e-12, 1)).mean(axis=0)
                others = np.logaddexp.reduce(logs[1:])
                bias = (neutral_floor_bias(reference_answers[own][:, allowed], neutral=0, floor=floor) if one_sided
                        else np.log(floor / (1 - floor)) - (logs[0] - others))
                rows = clips.speaker[scored] == speaker
                adapted[rows] = apply_neutral_bias(plain[rows], neutral=0, bias=bias)
            variants[f"floor{floor}{'' if one_sided else '(both ways)'}"] = adapted
    print(label, _line(variants, clips.labels[scored], allowed), flush=True)


def features(clips, train, test, answer_space, label) -> None:
    allowed = np.isin(EMOTIONS, answer_space)
    names = clips.names
    families = {
        "all": None,
        "mfcc": [i for i, n in enumerate(names) if n.startswith("mfcc")],
        "rasta_bands": [i for i, n in enumerate(names) if n.startswith("audSpec_Rfilt")],
        "spectral": [i for i, n in enumerate(names) if n.startswith("pcm_fftMag")],
        "energy": [i for i, n in enumerate(names) if n.startswith(("pcm_RMS", "audspec", "pcm_zcr"))],
        "voice_source": list(voicing(clips)),
    }
    offsets = np.nan_to_num(speaker_offsets(clips, test, centroid=neutral_centroid(clips, train))[test])
    for family, columns in families.items():
        for c in ((0.0003, 0.001, 0.003) if columns is None else (0.01,)):
            view = fit_views(clips, train, recipe=RECIPE, c_values=(c,),
                             columns=None if columns is None else np.array(columns))[0]
            values = clips.speeds[1.0][test]
            line = _line({"raw": view.probabilities(values), "shift": view.probabilities(values + offsets)},
                         clips.labels[test], allowed)
            size = len(names) if columns is None else len(columns)
            print(f"{label} {family} ({size} functionals) C {c}: {line}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv not in (["calibration"], ["features"]):
        print(__doc__, file=sys.stderr)
        return 2
    clips = load_clips(ROOT.parent / "shared" / "data" / "ravdess", ROOT.parent / "shared" / "data" / "ased",
                       ROOT / ".cache")
    ravdess, ased = clips.corpus == "ravdess", clips.corpus == "ased"
    shared = corpus_emotions(clips.table)["ased"]
    shared_ravdess = ravdess & np.isin(clips.table["emotion"], shared)
    run = calibration if argv == ["calibration"] else features
    run(clips, ravdess, ased, shared, "RAVDESS -> ASED")
    run(clips, ased, shared_ravdess, shared, "ASED -> RAVDESS")
    if run is calibration:
        for corpus, members, space, folds in (("RAVDESS", ravdess, EMOTIONS, 5), ("ASED", ased, shared, 2)):
            for fold in range(folds):
                train, validation, test = fold_speakers(clips.table[members], n_folds=5, fold=fold, seed=0)
                calibration(clips, np.isin(clips.speaker, train + validation), np.isin(clips.speaker, test), space,
                            f"{corpus} fold {fold}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
