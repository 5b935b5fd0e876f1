"""Which of the main model's views pulls a word towards one emotion, and would fewer views answer words better?

Issue 22, item 4. The rule was written before any figure here was computed (``docs/cross-corpus.md``,
"Which views should answer a word"). The same word cuts as :mod:`experiments.word_prior` (one seeded 0.5-1.2 s
cut of every clip, :func:`ser.training.loco.word_cut`), answered by the main model's three views (log-mel CNN,
ComParE functionals, voice-source functionals) and by every subset of them, fused as the model fuses them
(log-linear, equal weight, :func:`ser.serving.layers.fuse_views`), averaged over the windows, then the bundle's
temperature: RAVDESS's cuts by the fold members that never heard the actor, ASED's and speechocean's by the
shipped main model (it heard neither)::

    python -m experiments.word_views --data ../shared/data     # ~5 min here, answers cached in .cache/
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
VIEWS = ("cnn", "functionals", "voice source")


def view_answers(bundle, paths: list[str], *, log) -> np.ndarray:
    """Each view's emotion probabilities on one word cut of each file, shape (n, 3 views, n_emotions), averaged
    over the windows (NaN where the app refuses the cut)."""
    from ser.errors import NoSpeechError
    from ser.serving.audio import decode_audio
    from ser.serving.features import window_features
    from ser.training.loco import word_cut

    config, calls = bundle.config, bundle.calls
    if calls.split is None or calls.split.first["emotion"] != [True, False, False]:
        raise SystemExit("this study needs a fused model of one log-mel view and two functional views")
    answers = np.full((len(paths), len(VIEWS), len(bundle.emotions)), np.nan)
    started = time.perf_counter()
    for row, path in enumerate(paths):
        cut = word_cut(decode_audio(path, sample_rate=config.sample_rate), name=Path(path).name, config=config)
        recording = bundle.recording(cut, sample_rate=config.sample_rate)
        try:
            bundle.predict_recording(recording)  # refuses as the app refuses; keeps the functionals
        except NoSpeechError:
            continue
        windows, _ = window_features(recording.utterance_log_mel, config=config)
        cnn = calls.start(windows, batch_windows=8).views["emotion"][0]
        functional = calls.split.functionals(bundle._functional_rows(recording.functionals, n=len(windows)))
        answers[row, 0] = np.asarray(cnn, dtype=np.float64).mean(axis=0)
        for view, values in enumerate(functional["emotion"], start=1):
            answers[row, view] = np.asarray(values, dtype=np.float64)[0]
        if row % 500 == 0:
            log(f"  {row} of {len(paths)} cuts ({time.perf_counter() - started:.0f} s)")
    return answers


def fused(answers: np.ndarray, subset: tuple[int, ...], *, temperature: float) -> np.ndarray:
    """The subset's views fused as the model fuses them, then calibrated; (n, n_emotions), NaN rows kept.

    The CNN view is averaged over windows before fusing (the model fuses each window, then averages): for the
    one to three windows of a word the difference is small, and the same for every subset.
    """
    from ser.serving.calibration import apply_temperature
    from ser.serving.layers import fuse_views

    out = np.full(answers[:, 0].shape, np.nan)
    answered = ~np.isnan(answers).any(axis=(1, 2))
    out[answered] = apply_temperature(fuse_views(*[answers[answered, view] for view in subset]),
                                      temperature=temperature)
    return out


def main(argv: list[str] | None = None) -> int:
    from ser.reporting.loco_results import score_set
    from ser.reporting.provenance import model_sha256
    from ser.reporting.results import load_training
    from ser.serving.bundle import load_bundle
    from ser.training.corpora import corpus_emotions, target_mask
    from ser.training.data import EMOTIONS
    from ser.training.loco import corpus_table
    from ser.training.robustness import fold_bundles
    from ser.training.target_sets import single_labels

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "word_views.json")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    table = corpus_table(args.data, ordinary=True)
    corpus = table["corpus"].to_numpy()
    ravdess = corpus == "ravdess"
    bundle = load_bundle(args.models, joint_views=False)
    file = args.cache / f"word-views-{model_sha256(args.models / 'model.keras')[:12]}-{len(table)}.npz"
    if file.exists():
        with np.load(file) as stored:
            answers = stored["answers"]
    else:
        answers = np.full((len(table), len(VIEWS), len(bundle.emotions)), np.nan)
        actors = np.where(ravdess, table["speaker"].str[-2:], "0").astype(int)
        for number, (fold_bundle, tested) in fold_bundles(
                bundle, load_training(args.models / "metrics.json").cross_validation.per_fold).items():
            rows = np.flatnonzero(ravdess & np.isin(actors, sorted(tested)))
            answers[rows] = view_answers(fold_bundle, table["path"].iloc[rows].tolist(), log=log)
            log(f"fold {number}: {len(rows)} RAVDESS cuts")
        rows = np.flatnonzero(~ravdess)
        answers[rows] = view_answers(bundle, table["path"].iloc[rows].tolist(), log=log)
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, answers=answers)

    targets = target_mask(table)
    labels = single_labels(targets)
    speakers = table["speaker"].to_numpy()
    common = table["common_sentence"].fillna(False).to_numpy(dtype=bool)
    every = np.ones(len(EMOTIONS), dtype=bool)
    ased = np.isin(EMOTIONS, corpus_emotions(table)["ased"])
    sets = {"ravdess, 8 emotions": (ravdess, every, False),
            "ased, within 5, all sentences": (corpus == "ased", ased, False),
            "ased, within 5, common sentences": ((corpus == "ased") & common, ased, False),
            "speechocean, as the app answers": (corpus == "speechocean", every, True)}
    subsets = [subset for size in (3, 2, 1) for subset in itertools.combinations(range(len(VIEWS)), size)]
    report = {}
    for subset in subsets:
        name = " + ".join(VIEWS[view] for view in subset)
        probabilities = fused(answers, subset, temperature=bundle.temperature)
        report[name] = {}
        for set_name, (rows, allowed, ordinary) in sets.items():
            scores = score_set(probabilities[rows], targets=targets[rows], labels=labels[rows],
                               speakers=speakers[rows], allowed=allowed, ordinary=ordinary)
            top = max(scores.answer_share, key=scores.answer_share.get)
            report[name][set_name] = {"accuracy": scores.accuracy, "uar": scores.uar,
                                      "largest_share": [top, scores.answer_share[top]],
                                      "false_alarms": scores.false_alarm_share if ordinary else None}
            uar = f"{scores.uar:.1%}" if scores.uar is not None else "-"
            alarms = f", false alarms {scores.false_alarm_share:.1%}" if ordinary else ""
            print(f"{name:34s} {set_name:34s} accuracy {scores.accuracy:.1%}, UAR {uar}, most given {top} "
                  f"{scores.answer_share[top]:.1%}{alarms}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
