"""Per-view fusion weights fitted on fold 0's validation speakers: do they recover what fusion loses?

The shipped fusion is an equal-weight log-linear one (:func:`ser.serving.layers.fuse_views`): each
window's answer is ``softmax(mean_v log p_v)``. This scores every clip of fold 0's validation and
test speakers as ``python -m ser predict`` does (:func:`ser.serving.segments.score_recording`: cut at
pauses, each utterance's windows averaged, temperature, utterances averaged by seconds of speech),
keeping each window's per-view probabilities (the inputs of the model's ``emotion``
:class:`~ser.serving.layers.LogLinearFusion` layer). It then fits non-negative weights ``w_v`` for
``softmax(sum_v w_v log p_v)`` (nothing else; the bundle's temperature unchanged) by minimising the
negative log-likelihood of the served clip probabilities on the validation clips, each corpus
weighted equally, and scores the test clips with equal and fitted weights
(:func:`ser.reporting.corpus_results.corpus_comparison`, as ``experiments.bundle_transfer``).

Caveat: ``ser train --folds 1`` refits the shipped views on training + validation speakers, so the
validation clips are in-sample for every view; weights fitted there see the views as surer than
they are on new voices. The test speakers are never used to fit.

How much any per-view weights could give is measured apart, as a diagnostic on the test speakers (not a
recipe to choose from): each test speaker fused with weights fitted on the other test speakers of the
bundle's corpora (``test_speakers_left_out``).

A RAVDESS-only bundle is fitted on RAVDESS's validation actors alone (from
``cross_validation.per_fold[0]``) and scored on ASED's fold-0 test speakers of the joint bundles.
Writes ``runs/fusion_weights.json``; from the repository root (all bundles share the clips' features)::

    python -m experiments.fusion_weights --data ../shared/data \
        --model /tmp/ravdess-fold0 --model /tmp/joint-weighted --model /tmp/hybrid   # about 4 min

and ``--reuse`` refits from the views that run saved in ``runs/fusion_views-BUNDLE.npz`` (seconds).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from ser.errors import NoSpeechError
from ser.reporting.corpus_results import corpus_comparison
from ser.serving.audio import decode_audio
from ser.serving.bundle import Bundle, load_bundle
from ser.serving.layers import FUSION_FLOOR
from ser.serving.segments import score_recording
from ser.training.data import EMOTIONS, index_ased, index_ravdess

ASED_EMOTIONS = ["neutral", "happy", "sad", "angry", "fearful"]


@dataclasses.dataclass(frozen=True)
class ViewClips:
    """Per-window view probabilities of scored clips, flat.

    ``windows`` (n_windows, n_views, n_classes); ``window_segment`` (n_windows,) the segment of each
    window; ``segment_seconds`` (n_segments,) its seconds of speech; ``segment_clip`` (n_segments,)
    the clip of each segment, among ``n_clips`` (a clip without segments was refused: NaN).
    """

    windows: np.ndarray
    window_segment: np.ndarray
    segment_seconds: np.ndarray
    segment_clip: np.ndarray
    n_clips: int

    def subset(self, clips: np.ndarray) -> ViewClips:
        """The clips whose indices are in ``clips`` (in that order)."""
        new_index = np.full(self.n_clips, -1)
        new_index[clips] = np.arange(len(clips))
        keep_segment = new_index[self.segment_clip] >= 0
        segment_index = np.full(len(self.segment_clip), -1)
        segment_index[keep_segment] = np.arange(keep_segment.sum())
        keep_window = keep_segment[self.window_segment]
        return ViewClips(windows=self.windows[keep_window],
                         window_segment=segment_index[self.window_segment[keep_window]],
                         segment_seconds=self.segment_seconds[keep_segment],
                         segment_clip=new_index[self.segment_clip[keep_segment]], n_clips=len(clips))


def fused_probabilities(clips: ViewClips, *, weights: np.ndarray, temperature: float) -> np.ndarray:
    """Each clip's served probabilities with view weights ``weights`` (n_views,): shape (n_clips, n_classes),
    NaN rows for refused clips. Equal weights ``1 / n_views`` give the shipped model's answer."""
    logs = np.log(np.clip(clips.windows, FUSION_FLOOR, 1.0))
    window = np.einsum("wvc,v->wc", logs, np.asarray(weights, dtype=np.float64))
    window = np.exp(window - window.max(axis=1, keepdims=True))
    window /= window.sum(axis=1, keepdims=True)
    n_segments, n_classes = len(clips.segment_seconds), window.shape[1]
    counts = np.bincount(clips.window_segment, minlength=n_segments)
    segment = np.zeros((n_segments, n_classes))
    np.add.at(segment, clips.window_segment, window)
    segment /= np.maximum(counts, 1)[:, None]
    scaled = np.log(np.clip(segment, 1e-12, 1.0)) / temperature  # ser.serving.calibration.apply_temperature
    segment = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    segment /= segment.sum(axis=1, keepdims=True)
    seconds = np.bincount(clips.segment_clip, weights=clips.segment_seconds, minlength=clips.n_clips)
    share = clips.segment_seconds / seconds[clips.segment_clip]
    fused = np.zeros((clips.n_clips, n_classes))
    np.add.at(fused, clips.segment_clip, segment * share[:, None])
    fused[np.bincount(clips.segment_clip, minlength=clips.n_clips) == 0] = np.nan
    return fused


def fit_view_weights(groups: list[tuple[ViewClips, np.ndarray]], *, temperature: float) -> np.ndarray:
    """Non-negative view weights minimising the mean negative log-likelihood of each group (corpus),
    the groups weighted equally.

    Parameters
    ----------
    groups : list of (ViewClips, np.ndarray of shape (n_clips,))
        Clips and the index of each clip's true class; refused clips are ignored.
    temperature : float

    Returns
    -------
    np.ndarray, shape (n_views,), every entry >= 0
    """
    if not groups:
        raise ValueError("give at least one group of clips to fit on")
    n_views = groups[0][0].windows.shape[1]

    def loss(weights: np.ndarray) -> float:
        total = 0.0
        for clips, truth in groups:
            probabilities = fused_probabilities(clips, weights=weights, temperature=temperature)
            answered = ~np.isnan(probabilities[:, 0])
            picked = probabilities[answered, truth[answered]]
            total -= np.mean(np.log(np.clip(picked, 1e-12, 1.0)))
        return total / len(groups)

    start = np.full(n_views, 1.0 / n_views)
    result = minimize(loss, start, method="L-BFGS-B", bounds=[(0.0, None)] * n_views)
    return np.maximum(result.x, 0.0)


def view_bundle(path: Path) -> tuple[Bundle, list[str], dict[int, np.ndarray]]:
    """The bundle at ``path`` whose model also returns the views' emotion probabilities per window;
    the view names; a store ``id(ClipPrediction) -> (n_windows, n_views, n_classes)`` its predictions fill."""
    import keras

    bundle = load_bundle(path)
    fusion = bundle.model.get_layer("emotion")
    names = [tensor._keras_history.operation.name for tensor in fusion.input]
    outputs = {head: bundle.model.get_layer(head).output for head in bundle.model.output_names}
    outputs.update({f"view_{name}": tensor for name, tensor in zip(names, fusion.input, strict=True)})
    bundle.model = keras.Model(inputs=bundle.model.inputs, outputs=outputs)
    # Its calls are built for the replaced model: not a pure fusion any more, so it is called whole and
    # every window's scores pass through ModelCalls.finish, with the views beside the heads.
    calls = bundle.calls
    store: dict[int, np.ndarray] = {}
    local, lock = threading.local(), threading.Lock()
    finish, predict_recording = calls.finish, bundle.predict_recording

    def capture_windows(started, *, functionals: np.ndarray | None, batch_windows: int) -> dict[str, np.ndarray]:
        outputs = finish(started, functionals=functionals, batch_windows=batch_windows)
        local.views = np.stack([outputs[f"view_{name}"] for name in names], axis=1)
        return outputs

    def capture_prediction(recording):
        prediction = predict_recording(recording)
        with lock:
            store[id(prediction)] = local.views
        return prediction

    calls.finish = capture_windows  # instance attributes: score_windows and predict_recording look them up
    bundle.predict_recording = capture_prediction
    return bundle, names, store


def score_views(bundles: list[tuple[Bundle, dict[int, np.ndarray]]], table: pd.DataFrame) -> list[ViewClips]:
    """Every clip of ``table`` through every bundle (the clip decoded and examined once)."""
    parts = [([], [], [], []) for _ in bundles]  # windows, window segment, segment seconds, segment clip
    started = time.perf_counter()
    for number, path in enumerate(table["path"]):
        first = bundles[0][0]
        recording = first.recording(decode_audio(path, sample_rate=first.config.sample_rate),
                                    sample_rate=first.config.sample_rate)
        for (bundle, store), (windows, window_segment, seconds, segment_clip) in zip(bundles, parts, strict=True):
            try:
                segments = score_recording(recording, bundle=bundle).segments
            except NoSpeechError:
                continue
            for segment in segments:
                if segment.prediction is None:
                    continue
                views = store.pop(id(segment.prediction))
                window_segment.append(np.full(len(views), len(seconds)))
                windows.append(views)
                seconds.append(segment.prediction.speech_seconds)
                segment_clip.append(number)
            store.clear()
        if (number + 1) % 100 == 0:
            print(f"{number + 1}/{len(table)} clips ({time.perf_counter() - started:.0f} s)", file=sys.stderr,
                  flush=True)
    return [ViewClips(windows=np.concatenate(windows), window_segment=np.concatenate(window_segment),
                      segment_seconds=np.asarray(seconds, dtype=np.float64), segment_clip=np.asarray(segment_clip),
                      n_clips=len(table)) for windows, window_segment, seconds, segment_clip in parts]


def fold_speakers(model: Path) -> tuple[list[str], list[str]]:
    """Fold 0's validation and test speakers of a one-fold bundle (``corpora.folds`` or, for one
    corpus, RAVDESS actors in ``cross_validation.per_fold``)."""
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    if metrics.get("corpora") and metrics["corpora"].get("folds"):
        fold = metrics["corpora"]["folds"][0]
        return fold["validation"], fold["test"]
    fold = metrics["cross_validation"]["per_fold"][0]
    return [f"ravdess-{actor:02d}" for actor in fold["validation"]], [f"ravdess-{actor:02d}" for actor in fold["test"]]


def leave_one_speaker_out(clips: ViewClips, table: pd.DataFrame, *, truth: np.ndarray, speakers: list[str],
                          temperature: float) -> np.ndarray:
    """A diagnostic on test speakers, not a recipe: each speaker's clips fused with weights fitted on the
    other ``speakers`` (each corpus weighted equally). Shape (n_clips, n_classes); NaN for other clips."""
    probabilities = np.full((clips.n_clips, clips.windows.shape[2]), np.nan)
    for speaker in speakers:
        groups = []
        for corpus in sorted({other.split("-")[0] for other in speakers}):
            rows = np.flatnonzero(table["speaker"].isin([s for s in speakers if s != speaker and
                                                          s.startswith(f"{corpus}-")]).to_numpy())
            if len(rows):
                groups.append((clips.subset(rows), truth[rows]))
        mine = np.flatnonzero((table["speaker"] == speaker).to_numpy())
        weights = fit_view_weights(groups, temperature=temperature)
        probabilities[mine] = fused_probabilities(clips.subset(mine), weights=weights, temperature=temperature)
    return probabilities


def scores(probabilities: np.ndarray, chosen: pd.DataFrame, *, bundle: Bundle, emotions: list[str]) -> dict:
    comparison = corpus_comparison(probabilities, truth=chosen["emotion"].to_numpy(),
                                   speakers=chosen["speaker"].to_numpy(), labels=bundle.emotions, emotions=emotions,
                                   threshold=bundle.confidence_threshold)
    restricted = comparison.restricted
    return {"clips": int(restricted.answered), "accuracy": float(restricted.accuracy), "uar": float(restricted.uar),
            "app_accuracy": float(comparison.app.accuracy), "app_uar": float(comparison.app.uar)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ravdess/ and ased/")
    parser.add_argument("--model", type=Path, action="append", required=True, help="a bundle trained with --folds 1")
    parser.add_argument("--limit", type=int, default=0, help="a random sample of this many clips (a smoke test)")
    parser.add_argument("--reuse", action="store_true", help="the views saved by the last run, not scored again")
    parser.add_argument("--out", type=Path, default=Path("runs") / "fusion_weights.json")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    speakers = {model: fold_speakers(model) for model in args.model}
    ased_test = next(([s for s in test if s.startswith("ased-")] for _, test in speakers.values()
                      if any(s.startswith("ased-") for s in test)), [])
    wanted = {s for validation, test in speakers.values() for s in [*validation, *test]} | set(ased_test)
    ravdess, ased = index_ravdess(args.data / "ravdess"), index_ased(args.data / "ased")
    table = pd.concat([ravdess[ravdess["vocal_channel"] == "speech"], ased[ased["emotion"].isin(ASED_EMOTIONS)]])
    table = table[table["speaker"].isin(wanted)].reset_index(drop=True)
    if args.limit:
        table = table.sample(n=args.limit, random_state=0).reset_index(drop=True)
    print(f"{len(table)} clips of {table['speaker'].nunique()} speakers", flush=True)
    loaded = [view_bundle(model) for model in args.model]
    saved = [args.out.parent / f"fusion_views-{model.name}.npz" for model in args.model]
    if args.reuse and not args.limit and all(path.is_file() for path in saved):
        views = [ViewClips(**{key: (int(value) if key == "n_clips" else value) for key, value in np.load(path).items()})
                 for path in saved]
    else:
        views = score_views([(bundle, store) for bundle, _, store in loaded], table)
        for path, clips in zip(saved, views, strict=True):  # the scores, to refit without rescoring (--reuse)
            np.savez_compressed(path, **dataclasses.asdict(clips))
    results = []
    for model, (bundle, names, _), clips in zip(args.model, loaded, views, strict=True):
        validation, test = speakers[model]
        truth = table["emotion"].map({name: index for index, name in enumerate(bundle.emotions)}).to_numpy()
        groups = []
        for corpus in ("ravdess", "ased"):
            rows = np.flatnonzero(table["speaker"].isin(validation).to_numpy() & (table["corpus"] == corpus).to_numpy())
            if len(rows):
                groups.append((clips.subset(rows), truth[rows]))
        fitted = fit_view_weights(groups, temperature=bundle.temperature)
        trained = [corpus for corpus in ("ravdess", "ased") if any(s.startswith(f"{corpus}-") for s in validation)]
        held_out = leave_one_speaker_out(clips, table, truth=truth, speakers=[s for s in [*test, *ased_test]
                                         if s.split("-")[0] in trained], temperature=bundle.temperature)
        equal = np.full(len(names), 1.0 / len(names))
        test_sets = {"ravdess": table["speaker"].isin([s for s in test if s.startswith("ravdess")]).to_numpy(),
                     "ased": table["speaker"].isin(ased_test).to_numpy()}
        test_sets["ased_common"] = test_sets["ased"] & table["common_sentence"].to_numpy(dtype=bool)
        entry = {"model": model.name, "views": names, "fitted_weights": fitted.tolist(),
                 "validation_speakers": validation, "sets": {}}
        for name, weights in (("equal", equal), ("fitted", fitted), ("test_speakers_left_out", None)):
            probabilities = held_out if weights is None else fused_probabilities(clips, weights=weights,
                                                                                  temperature=bundle.temperature)
            for set_name, rows in test_sets.items():
                if weights is None and not set_name.startswith(tuple(trained)):
                    continue
                emotions = list(EMOTIONS) if set_name == "ravdess" else ASED_EMOTIONS
                entry["sets"].setdefault(set_name, {})[name] = scores(probabilities[rows], table[rows], bundle=bundle,
                                                                      emotions=emotions)
        results.append(entry)
        print(json.dumps({"model": model.name, "weights": dict(zip(names, np.round(fitted, 3).tolist(), strict=True)),
                          **{k: {w: (round(v["accuracy"], 3), round(v["uar"], 3)) for w, v in s.items()}
                             for k, s in entry["sets"].items()}}), flush=True)
    command = " ".join(["python -m experiments.fusion_weights", *(argv or sys.argv[1:])])
    args.out.write_text(json.dumps({"command": command,
                                    "wall_seconds": round(time.perf_counter() - started), "bundles": results},
                                   indent=2), encoding="utf-8")
    print(f"{args.out} written ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
