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
    from experiments.word_prior import by_unseen_models, score_words
    from ser.reporting.provenance import model_sha256
    from ser.serving.bundle import load_bundle
    from ser.training.loco import corpus_table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--cache", type=Path, default=ROOT / ".cache")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "word_views.json")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    table = corpus_table(args.data, ordinary=True)
    bundle = load_bundle(args.models, joint_views=False)
    file = args.cache / f"word-views-{model_sha256(args.models / 'model.keras')[:12]}-{len(table)}.npz"
    if file.exists():
        with np.load(file) as stored:
            answers = stored["answers"]
    else:
        arrays, _ = by_unseen_models(bundle, table, lambda scorer, paths: {"answers": view_answers(scorer, paths,
                                                                                                   log=log)},
                                     metrics=args.models / "metrics.json", log=log)
        answers = arrays["answers"]
        file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(file, answers=answers)

    subsets = [subset for size in (3, 2, 1) for subset in itertools.combinations(range(len(VIEWS)), size)]
    report = {}
    for subset in subsets:
        name = " + ".join(VIEWS[view] for view in subset)
        report[name] = score_words(fused(answers, subset, temperature=bundle.temperature), table, kind=name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
