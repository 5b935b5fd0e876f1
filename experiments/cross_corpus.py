"""Cross-corpus study of the linear views: RAVDESS and ASED, each alone, across, and together
with a masked loss; with and without calibration to the speaker.

Run (features are cached in ``.cache/``; the first run extracts them, ~15 min here)::

    python -m experiments.cross_corpus --ravdess ../shared/data/ravdess --ased ../shared/data/ased \\
        --recipe shipped --recipe joint

Every protocol is grouped by speaker (no speaker is ever in two parts of a split):

- ``ravdess_cv``: RAVDESS headline, speech of actors 1-20, 8 emotions, 5 folds by actor
  (:func:`ser.training.splits.actor_folds`); each fold's L2 strength is chosen on the next
  fold's actors with a fit on the other 12, then refitted on those 16.
- ``ased_cv``: ASED, 5 speaker folds (gender-balanced), 5 emotions, the same C selection;
  scored on all sentences and on the two common sentences only (where the words cannot help).
- ``ravdess_to_ased`` / ``ased_to_ravdess``: trained on every speaker of one corpus (C: the
  grid value with the best mean validation accuracy in that corpus's own folds), tested on the
  other: all ASED clips, or RAVDESS's clips of ASED's five emotions.
- ``joint_cv``: both corpora, fold k of each is the test set (fold k+1 validation), so the
  RAVDESS part is exactly the headline protocol and the ASED part the ``ased_cv`` one.

Answers are given over all emotions the model was trained on ("app") and restricted to the test
corpus's emotions ("restricted"). With calibration, each test speaker's two neutral reference
clips (:func:`ser.training.corpora.reference_clips`) are not scored; the rest are scored with
and without the speaker offset (:func:`ser.training.linear_views.speaker_offsets`).
Results go to ``runs/cross_corpus/<recipe>.json`` (one file per recipe, one writer).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

# One BLAS thread: on this shared 2-core machine OpenBLAS's second thread spins against other
# jobs (a fit took 8x longer with two threads under load).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from experiments.cross_corpus_report import study_scores  # noqa: E402
from ser.config import FeatureConfig  # noqa: E402
from ser.reporting.metrics import clip_set_scores  # noqa: E402
from ser.serving.speaker import apply_neutral_bias, neutral_floor_bias  # noqa: E402
from ser.training.corpora import corpus_emotions, fold_speakers, index_corpora  # noqa: E402
from ser.training.data import EMOTIONS  # noqa: E402
from ser.training.linear_views import (  # noqa: E402
    CENTRING_FAMILIES,
    FunctionalClips,
    LinearRecipe,
    centre_utterances,
    fit_views,
    fuse_probabilities,
    neutral_centroid,
    speaker_offsets,
    utterance_centring,
)

#: The recipes compared (``--recipe NAME``); "shipped" is the linear views as shipped today.
RECIPES: dict[str, LinearRecipe] = {
    "shipped": LinearRecipe(),
    "no_room": LinearRecipe(room_copies=False),
    "no_speed": LinearRecipe(speed_copies=False),
    "size_share": LinearRecipe(corpus_share="size"),
    "speaker_balance": LinearRecipe(speaker_balance=True),
    "unmasked": LinearRecipe(masked=False),
    "shift_trained": LinearRecipe(speaker_shift="shifted"),
    "shift_both": LinearRecipe(speaker_shift="both"),
    "no_class_balance": LinearRecipe(class_balance=False),
    "centre_mfcc": LinearRecipe(utterance_centring="mfcc"),
    "centre_all": LinearRecipe(utterance_centring="all"),
    "common_only": LinearRecipe(specific_sentence_weight=0.0),
    "ravdess_2to1": LinearRecipe(corpus_weights=(("ravdess", 2.0), ("ased", 1.0))),
    "ravdess_3to1": LinearRecipe(corpus_weights=(("ravdess", 3.0), ("ased", 1.0))),
    "specific_half": LinearRecipe(specific_sentence_weight=0.5),
}
#: Neutral floors compared (ser.serving.speaker.neutral_floor_bias).
NEUTRAL_FLOORS = (0.3, 0.5)
PROTOCOLS = ("ravdess_cv", "ased_cv", "ravdess_to_ased", "ased_to_ravdess", "joint_cv")
N_FOLDS, SEED = 5, 0


def clip_table(ravdess: Path, ased: Path):
    """RAVDESS speech of actors 1-20, then all of ASED: the rows every saved answer of this study indexes."""
    table = index_corpora([ravdess.resolve(), ased.resolve()])
    table = table[table["vocal_channel"] == "speech"].reset_index(drop=True)
    order = np.concatenate([np.flatnonzero(table["corpus"] == corpus) for corpus in ("ravdess", "ased")])
    return table.iloc[order].reset_index(drop=True)


def load_clips(ravdess: Path, ased: Path, cache: Path) -> FunctionalClips:
    """RAVDESS speech of actors 1-20 and all of ASED, with (cached) functionals of every copy."""
    import pandas as pd

    from ser.serving.functionals import functional_names
    from ser.training.cache import load_functionals, load_room_functionals

    config = FeatureConfig()
    table = clip_table(ravdess, ased)
    speeds, rooms = {}, []
    for corpus in ("ravdess", "ased"):  # cached per corpus: one file list each
        part = table[table["corpus"] == corpus]
        index = pd.DataFrame({"path": part["path"].tolist(), "vocal_channel": "speech"})
        for speed, values in load_functionals(index, config=config, cache_dir=cache).items():
            speeds.setdefault(speed, []).append(values)
        rooms.append(load_room_functionals(index, config=config, cache_dir=cache))
    clips = FunctionalClips(
        table=table, speeds={speed: np.concatenate(parts) for speed, parts in speeds.items()},
        room=np.concatenate(rooms),
    )
    clips.names = functional_names(config)
    return clips


def voicing(clips: FunctionalClips) -> np.ndarray:
    from ser.serving.functionals import voicing_columns

    return voicing_columns(clips.names)


@dataclasses.dataclass
class Predictions:
    """Fused linear-view probabilities of test clips, raw and speaker-calibrated (NaN where the
    speaker has no reference), and each view alone."""

    rows: list[np.ndarray] = dataclasses.field(default_factory=list)
    fused: list[np.ndarray] = dataclasses.field(default_factory=list)
    functionals: list[np.ndarray] = dataclasses.field(default_factory=list)
    calibrated: list[np.ndarray] = dataclasses.field(default_factory=list)
    calibrated_half: list[np.ndarray] = dataclasses.field(default_factory=list)
    floors: dict[float, list[np.ndarray]] = dataclasses.field(default_factory=dict)
    answer_space: list[tuple[str, ...]] = dataclasses.field(default_factory=list)


def _views(clips, train, validation, recipe, *, log, label):
    """Fit both views on ``train``; with ``validation``, choose C there and refit on train | validation.

    Returns the two fitted views and the chosen C per view with their validation accuracies.
    """
    fitted, choice = [], {}
    plan = (("functionals", None, recipe.c_grid), ("voicing", voicing(clips), recipe.voicing_c_grid))
    for name, columns, grid in plan:
        started = time.perf_counter()
        if validation is None or len(grid) == 1:  # nothing to choose: fit on everything given
            everyone = train if validation is None else train | validation
            view = fit_views(clips, everyone, recipe=recipe, c_values=grid[:1], columns=columns)[0]
            choice[name] = {"chosen": grid[0]}
        else:
            candidates = fit_views(clips, train, recipe=recipe, c_values=grid, columns=columns)
            space = corpus_emotions(clips.table[train])
            allowed = np.isin(EMOTIONS, sorted({e for names in space.values() for e in names}))
            accuracy = {}
            for c, view in zip(grid, candidates, strict=True):
                answers = np.where(allowed, view.probabilities(clips.speeds[1.0][validation]), -1).argmax(1)
                accuracy[c] = float(np.mean(answers == clips.labels[validation]))
            best = max(grid, key=lambda c: (accuracy[c], -c))  # ties: stronger L2
            view = fit_views(clips, train | validation, recipe=recipe, c_values=(best,), columns=columns)[0]
            choice[name] = {"chosen": best, "validation_accuracy": {str(c): a for c, a in accuracy.items()}}
        fitted.append(view)
        log(f"  {label} {name}: C {choice[name]['chosen']} ({time.perf_counter() - started:.0f} s)")
    return fitted, choice


def predict(clips, views, trained_on, test, recipe, out: Predictions) -> None:
    """Fused probabilities of the ``test`` clips, raw and calibrated by the speaker offset."""
    raw = clips.speeds[1.0][test]
    centroid = neutral_centroid(clips, trained_on)
    offsets = speaker_offsets(clips, test, centroid=centroid)[test]
    shifted = raw + np.nan_to_num(offsets)
    space = corpus_emotions(clips.table[trained_on])
    emotions = tuple(e for e in EMOTIONS if any(e in names for names in space.values()))
    allowed = np.isin(EMOTIONS, emotions)

    def fused(values):
        probabilities = [np.where(allowed, view.probabilities(values), 0.0) for view in views]
        return fuse_probabilities(*probabilities) * allowed, probabilities[0]

    out.rows.append(np.flatnonzero(test))
    both, functionals = fused(raw)
    out.fused.append(both)
    out.functionals.append(functionals)
    no_reference = np.isnan(offsets).any(axis=1)
    calibrated = fused(shifted)[0]
    calibrated[no_reference] = np.nan
    out.calibrated.append(calibrated)
    # Half the offset: two reference clips estimate a voice's centre with noise (shrinkage).
    half = fused(raw + 0.5 * np.nan_to_num(offsets))[0]
    half[no_reference] = np.nan
    out.calibrated_half.append(half)
    # The neutral floor: one bias per speaker on the neutral class, from the model's own answer
    # for that speaker's reference clips (ser.serving.speaker; works on any model's output).
    speakers, references = clips.speaker[test], clips.reference[test]
    for floor in NEUTRAL_FLOORS:
        adapted = np.full_like(both, np.nan)
        for speaker in np.unique(speakers[references]):
            own = speakers == speaker
            bias = neutral_floor_bias(both[own & references][:, allowed], neutral=0, floor=floor)
            adapted[own] = apply_neutral_bias(both[own], neutral=EMOTIONS.index("neutral"), bias=bias)
        out.floors.setdefault(floor, []).append(adapted)
    out.answer_space.append(emotions)


def summarise(clips, predictions: Predictions, *, subsets: dict[str, np.ndarray]) -> dict:
    """Scores per test corpus and subset: app answer and restricted, raw and calibrated."""
    rows = np.concatenate(predictions.rows)
    fused, functionals = np.concatenate(predictions.fused), np.concatenate(predictions.functionals)
    calibrated = np.concatenate(predictions.calibrated)
    calibrated_half = np.concatenate(predictions.calibrated_half)
    floors = {floor: np.concatenate(parts) for floor, parts in predictions.floors.items()}
    app = predictions.answer_space[0]
    result = {}

    def score(probabilities: np.ndarray, chosen: np.ndarray, space: tuple[str, ...]) -> dict:
        truth = np.asarray(EMOTIONS)[clips.labels[rows][chosen]]
        return study_scores(clip_set_scores(probabilities[chosen], truth=truth, speakers=clips.speaker[rows][chosen],
                                            labels=EMOTIONS, answer_space=space))

    for name, subset in subsets.items():
        keep = subset[rows]
        if not keep.any():
            continue
        corpus = clips.table.loc[rows[keep], "corpus"].iloc[0]
        test_space = corpus_emotions(clips.table.iloc[rows[keep]])[corpus]
        entry = {
            "app": score(fused, keep, app),
            "restricted": score(fused, keep, test_space),
            "functionals_only_restricted": score(functionals, keep, test_space),
        }
        # Calibrated comparison: speakers with a reference, reference clips not scored.
        scored = keep & ~clips.reference[rows] & ~np.isnan(calibrated).any(axis=1)
        if scored.any():
            for space_name, space in (("app", app), ("restricted", test_space)):
                entry[f"same_clips_uncalibrated_{space_name}"] = score(fused, scored, space)
                entry[f"calibrated_{space_name}"] = score(calibrated, scored, space)
                entry[f"calibrated_half_{space_name}"] = score(calibrated_half, scored, space)
                for floor, adapted in floors.items():
                    entry[f"neutral_floor_{floor}_{space_name}"] = score(adapted, scored, space)
        result[name] = entry
    return result


def run_recipe(clips: FunctionalClips, recipe: LinearRecipe, *, protocols, log, save_to: Path | None = None) -> dict:
    """Every protocol of one recipe; with ``save_to``, each protocol's test probabilities are also
    saved as ``<save_to>-<protocol>.npz`` (rows into the clip table, fused probabilities)."""
    if recipe.utterance_centring != "none":
        pairs = utterance_centring(clips.names, families=CENTRING_FAMILIES[recipe.utterance_centring])
        names = clips.names
        clips = FunctionalClips(
            table=clips.table, speeds={s: centre_utterances(v, pairs) for s, v in clips.speeds.items()},
            room=None if clips.room is None else centre_utterances(clips.room, pairs),
        )
        clips.names = names
    table = clips.table
    is_ravdess, is_ased = (clips.corpus == "ravdess"), (clips.corpus == "ased")
    common = table["common_sentence"].fillna(False).to_numpy(bool)
    subsets = {
        "ravdess": is_ravdess,
        "ravdess_shared_emotions": is_ravdess & np.isin(table["emotion"], corpus_emotions(table)["ased"]),
        "ased": is_ased,
        "ased_common_sentences": is_ased & common,
    }
    results: dict = {"recipe": dataclasses.asdict(recipe), "protocols": {}}
    corpora_of = {"ravdess_cv": ("ravdess",), "ased_cv": ("ased",), "joint_cv": ("ravdess", "ased")}
    selections: dict[str, dict] = {}
    for protocol in protocols:
        started = time.perf_counter()
        log(f"{protocol}:")
        predictions, choices = Predictions(), []
        if protocol in corpora_of:
            members = np.isin(clips.corpus, corpora_of[protocol])
            for fold in range(N_FOLDS):
                train, validation, test = fold_speakers(table[members], n_folds=N_FOLDS, fold=fold, seed=SEED)
                masks = [np.isin(clips.speaker, group) & members for group in (train, validation, test)]
                views, choice = _views(clips, masks[0], masks[1], recipe, log=log, label=f"fold {fold}")
                predict(clips, views, masks[0] | masks[1], masks[2], recipe, predictions)
                choices.append(choice)
            selections[protocol] = choices
        else:
            source, target = ("ravdess", "ased") if protocol == "ravdess_to_ased" else ("ased", "ravdess")
            own = selections.get(f"{source}_cv")
            chosen = {}
            for view in ("functionals", "voicing"):
                grid = recipe.c_grid if view == "functionals" else recipe.voicing_c_grid
                if len(grid) == 1:  # --fixed-c: nothing to choose
                    chosen[view] = grid[0]
                    continue
                if own is None:
                    raise SystemExit(f"{protocol} takes C from {source}_cv: run that protocol first")
                mean = {c: np.mean([fold[view]["validation_accuracy"][str(c)] for fold in own]) for c in grid}
                chosen[view] = max(grid, key=lambda c: (mean[c], -c))
            train = clips.corpus == source
            views = []
            for view, columns in (("functionals", None), ("voicing", voicing(clips))):
                views += fit_views(clips, train, recipe=recipe, c_values=(chosen[view],), columns=columns)
            target_rows = clips.corpus == target
            predict(clips, views, train, target_rows, recipe, predictions)
            choices = chosen
        if save_to is not None:
            np.savez(f"{save_to}-{protocol}.npz", rows=np.concatenate(predictions.rows),
                     fused=np.concatenate(predictions.fused), calibrated=np.concatenate(predictions.calibrated))
        results["protocols"][protocol] = {
            "c": choices, "scores": summarise(clips, predictions, subsets=subsets),
            "seconds": round(time.perf_counter() - started, 1),
        }
        log(headline(protocol, results["protocols"][protocol]["scores"]))
    return results


def headline(protocol: str, scores: dict) -> str:
    parts = []
    for subset, entry in scores.items():
        main = entry["restricted"]
        line = f"{subset}: {100 * main['accuracy']:.1f}% (UAR {100 * main['uar']:.1f})"
        if "calibrated_restricted" in entry:
            line += (
                f", same clips {100 * entry['same_clips_uncalibrated_restricted']['accuracy']:.1f}"
                f" -> calibrated {100 * entry['calibrated_restricted']['accuracy']:.1f}"
                f" (half {100 * entry['calibrated_half_restricted']['accuracy']:.1f}); neutral floor 0.5: "
                f"{100 * entry['neutral_floor_0.5_restricted']['accuracy']:.1f}"
            )
        parts.append(line)
    return f"  {protocol}: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ravdess", type=Path, default=ROOT.parent / "shared" / "data" / "ravdess")
    parser.add_argument("--ased", type=Path, default=ROOT.parent / "shared" / "data" / "ased")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "cross_corpus")
    parser.add_argument("--recipe", action="append", choices=sorted(RECIPES), help="repeat for several")
    parser.add_argument("--protocol", action="append", choices=PROTOCOLS, help="repeat; default all")
    parser.add_argument(
        "--fixed-c", nargs=2, type=float, metavar=("FUNCTIONALS", "VOICING"),
        help="quick comparison: one L2 strength per view, no selection (results named <recipe>-fixed)",
    )
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    clips = load_clips(args.ravdess, args.ased, args.cache)
    log(f"{len(clips)} clips: " + ", ".join(f"{k} {v}" for k, v in clips.table.groupby("corpus").size().items()))
    args.out.mkdir(parents=True, exist_ok=True)
    protocols = args.protocol or list(PROTOCOLS)
    for name in args.recipe or ["shipped"]:
        recipe = RECIPES[name]
        if args.fixed_c:
            recipe = dataclasses.replace(recipe, c_grid=(args.fixed_c[0],), voicing_c_grid=(args.fixed_c[1],))
            name = f"{name}-fixed"
        log(f"recipe {name}: {recipe}")
        results = run_recipe(clips, recipe, protocols=protocols, log=log, save_to=args.out / name)
        results["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        results["command"] = "python -m experiments.cross_corpus " + " ".join(argv or sys.argv[1:])
        (args.out / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
