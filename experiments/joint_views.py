"""The views trained on RAVDESS and ASED that answer for voices unlike RAVDESS's actors.

The shipped model (``models/model.keras``) learnt from RAVDESS's 20 actors only: on other voices it
collapses (ASED: neutral recall 15%, "fearful" for 28% of clips). Training the whole model on both
corpora costs the RAVDESS headline 4-10 points (``docs/cross-corpus.md``), so the shipped bundle keeps
it and adds a second, small model beside it: the two linear views (logistic regressions on the
openSMILE functionals, all 6373 and the 473 voice-source ones, fused by the normalised geometric
mean) trained on both corpora with the masked loss, corpora equal, classes balanced within each
corpus, on every speed and room copy (``ser.training.linear_views``, the study's "shipped" recipe).
``Bundle.predict_recording`` answers with it when the unfamiliar-voice check fires
(``ser.serving.unfamiliarity``: the voice is more like ASED's speakers than RAVDESS's actors), and with the
main model otherwise. Not on the other checks: on telephone-band copies of unseen RAVDESS actors the joint
views are right 42.1% of the time (240 clips, 5 folds), the main model 47.5% (robustness table): they know
more voices, not more channels.

This script:

1. cross-validates the joint views (5 folds by speaker, the RAVDESS part exactly the headline's
   folds; L2 strength of each view chosen on the next fold's speakers), unless that study's
   out-of-fold answers are already in ``runs/joint_views/`` (``--reuse``);
2. fits both views on every clip of both corpora with, per view, the L2 strength with the best
   mean validation accuracy over those folds;
3. fits the temperature on the out-of-fold answers (each corpus's clips weighted equally);
4. writes ``joint_views.keras`` and ``joint_views.json`` into the bundle folder.

Run from the repository root (features cached in ``.cache``; ~45 min for the folds, ~5 for the fit)::

    python -m experiments.joint_views --data ../shared/data --models models
    python -m experiments.routed_headline --data ../shared/data   # what the routed answer scores

The study's fold answers go to ``runs/joint_views/``; ``--reuse`` fits the shipped views from them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs" / "joint_views"
COMMAND = "python -m experiments.joint_views --data ../shared/data --models models"
VIEWS = ("functionals", "voicing")


def chosen_c(choices: list[dict], *, grid: tuple[float, ...], view: str) -> float:
    """The L2 strength with the best mean validation accuracy over the folds (ties: stronger L2)."""
    mean = {c: float(np.mean([fold[view]["validation_accuracy"][str(c)] for fold in choices])) for c in grid}
    return max(grid, key=lambda c: (mean[c], -c))


def joint_model(views: list, *, n_features: int):
    """One Keras model: raw functionals (batch, n_features) -> fused emotion probabilities (batch, 8)."""
    import keras

    from ser.serving.layers import LogLinearFusion
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from ser.training.views import linear_member

    inputs = keras.Input(shape=(n_features,), name="functionals")
    outputs = []
    for name, view in zip(VIEWS, views, strict=True):
        width = n_features if view.columns is None else len(view.columns)
        silent = {head: (np.zeros((width, len(classes))), np.zeros(len(classes)))
                  for head, classes in (("gender", GENDERS), ("intensity", INTENSITIES))}
        member = linear_member(n_features=n_features, columns=view.columns, mean=view.mean, scale=view.scale,
                               heads={"emotion": (view.model.coef, view.model.intercept), **silent})
        member.name = f"joint_{name}"
        outputs.append(member(inputs)["emotion"])
    fused = LogLinearFusion(name="emotion")(outputs)
    if fused.shape[-1] != len(EMOTIONS):
        raise ValueError(f"the joint views answer {fused.shape[-1]} emotions, the app {len(EMOTIONS)}")
    return keras.Model(inputs, {"emotion": fused}, name="ser_joint_views")


def fit_equal_temperature(probabilities: np.ndarray, labels: np.ndarray, corpora: np.ndarray) -> float:
    """Temperature minimising the mean of each corpus's negative log-likelihood (corpora equal)."""
    from scipy.optimize import minimize_scalar

    from ser.serving.calibration import apply_temperature

    def loss(temperature: float) -> float:
        scaled = apply_temperature(probabilities, temperature=temperature)
        picked = np.log(np.clip(scaled[np.arange(len(labels)), labels], 1e-12, 1.0))
        return float(-np.mean([picked[corpora == corpus].mean() for corpus in np.unique(corpora)]))

    return float(minimize_scalar(loss, bounds=(0.05, 10.0), method="bounded").x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/ and ased/")
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="the bundle folder written into")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--reuse", action="store_true", help="the folds' answers saved by the last run")
    args = parser.parse_args(argv)
    from experiments.cross_corpus import RECIPES, load_clips, run_recipe, voicing
    from ser.serving.joint_views import JOINT_MODEL_FILE, JOINT_SETTINGS_FILE, ROUTE_CHECK, SCHEMA
    from ser.training.data import EMOTIONS
    from ser.training.linear_views import fit_views

    started = time.perf_counter()
    recipe = RECIPES["shipped"]
    clips = load_clips(args.data / "ravdess", args.data / "ased", args.cache)
    RUNS.mkdir(parents=True, exist_ok=True)
    study = RUNS / "study.json"
    if not (args.reuse and study.is_file() and (RUNS / "joint-joint_cv.npz").is_file()):
        results = run_recipe(clips, recipe, protocols=("joint_cv",), log=lambda line: print(line, flush=True),
                             save_to=RUNS / "joint")
        study.write_text(json.dumps({"command": COMMAND, "date": datetime.date.today().isoformat(), **results},
                                    indent=1, default=float), encoding="utf-8")
    choices = json.loads(study.read_text(encoding="utf-8"))["protocols"]["joint_cv"]["c"]
    c = {"functionals": chosen_c(choices, grid=recipe.c_grid, view="functionals"),
         "voicing": chosen_c(choices, grid=recipe.voicing_c_grid, view="voicing")}
    print(f"L2 strength per view (best mean validation accuracy over 5 folds): {c}", flush=True)

    everyone = np.isin(clips.corpus, ("ravdess", "ased"))
    views = []
    for name, columns in (("functionals", None), ("voicing", voicing(clips))):
        fit_started = time.perf_counter()
        views += fit_views(clips, everyone, recipe=recipe, c_values=(c[name],), columns=columns)
        seconds = time.perf_counter() - fit_started
        print(f"fitted {name} on {int(everyone.sum())} clips of both corpora ({seconds:.0f} s)", flush=True)
    model = joint_model(views, n_features=clips.speeds[1.0].shape[1])

    # The Keras model must answer as the fitted views do (float32 against float64: ~1e-6).
    from ser.training.linear_views import fuse_probabilities

    sample = clips.speeds[1.0][:: max(1, len(clips) // 200)]
    expected = fuse_probabilities(*[view.probabilities(sample) for view in views])
    got = np.asarray(model.predict(sample.astype(np.float32), verbose=0)["emotion"])
    if np.abs(got - expected).max() > 1e-4:
        raise SystemExit(f"the Keras joint views differ from the fitted views by {np.abs(got - expected).max():.2g}")

    saved = np.load(RUNS / "joint-joint_cv.npz")
    labels = np.array([EMOTIONS.index(e) for e in clips.table["emotion"].to_numpy()])[saved["rows"]]
    temperature = fit_equal_temperature(saved["fused"], labels, clips.corpus[saved["rows"]])
    args.models.mkdir(parents=True, exist_ok=True)
    model.save(args.models / JOINT_MODEL_FILE)
    header = {
        "schema": SCHEMA, "temperature": temperature, "corpora": ["ravdess", "ased"], "route": ROUTE_CHECK,
        "c": c, "clips": int(everyone.sum()), "speakers": int(len(np.unique(clips.speaker[everyone]))),
        "command": COMMAND, "measured": datetime.date.today().isoformat(),
    }
    (args.models / JOINT_SETTINGS_FILE).write_text(json.dumps(header, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.models / JOINT_MODEL_FILE} (temperature {temperature:.3f}) in "
          f"{(time.perf_counter() - started) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
