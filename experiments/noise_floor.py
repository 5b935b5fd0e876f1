"""Why a faint noise floor moves the answer: which view of the model hears it (research check, ~20 s).

Each example clip (``assets/examples``) is scored by the shipped bundle as recorded and with
seeded white noise added at ``--levels`` dBFS (RMS). The RAVDESS recordings hold digital
silence between and around words (thousands of exact-zero samples); a noise floor fills it.
For each clip and level the script prints the largest change of a calibrated emotion
probability (in points) with the noise heard by both views, by the log-mel CNN view only
(functionals of the clean clip) and by the openSMILE functionals view only (log-mel of the
clean clip). The trimmed utterance is checked to be the same length, so the change is not
segmentation or trimming. From the repository root:

    python -m experiments.noise_floor --levels -90 -80 -70
"""

from __future__ import annotations

import argparse

import numpy as np

from ser.serving.audio import decode_audio
from ser.serving.bundle import DEFAULT_BUNDLE, Bundle, load_bundle
from ser.serving.calibration import apply_temperature
from ser.serving.features import window_features
from ser.serving.functionals import acoustic_functionals
from ser.testing import EXAMPLES


def views(bundle: Bundle, audio: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(trimmed utterance length in samples, its log-mel windows (n, frames, mels), functionals (n_functionals,))."""
    recording = bundle.recording(audio, sample_rate=bundle.config.sample_rate)
    windows, _ = window_features(recording.utterance_log_mel, config=bundle.config)
    return recording.utterance.size, windows, acoustic_functionals(recording.utterance, config=bundle.config)


def emotion_probabilities(bundle: Bundle, windows: np.ndarray, functionals: np.ndarray) -> np.ndarray:
    """Calibrated emotion probabilities of one clip, shape (n_emotions,), as ``Bundle.predict_clip`` averages them."""
    raw = bundle.score_windows(windows, functionals=functionals)["emotion"].mean(axis=0)
    return apply_temperature(raw, temperature=bundle.temperature)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=float, nargs="+", default=[-90.0, -80.0, -70.0], help="noise RMS, dBFS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bundle = load_bundle(DEFAULT_BUNDLE)
    if not bundle.uses_functionals:
        parser.error("the shipped bundle has one view only; this check compares two")
    rate = bundle.config.sample_rate
    print("clip | exact zeros | quietest 20 ms frame (dBFS) | noise dBFS: max change in points, both / log-mel "
          "only / functionals only")
    worst = {level: 0.0 for level in args.levels}
    for path in sorted(EXAMPLES.glob("*.flac")):
        clip = decode_audio(path, sample_rate=rate)
        frames = clip[: clip.size // 320 * 320].reshape(-1, 320)
        quietest = 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)).min() + 1e-12)
        length, windows, functionals = views(bundle, clip)
        clean = emotion_probabilities(bundle, windows, functionals)
        cells = []
        for level in args.levels:
            noise = 10 ** (level / 20) * np.random.default_rng(args.seed).standard_normal(clip.size)
            noisy_length, noisy_windows, noisy_functionals = views(bundle, (clip + noise).astype(np.float32))
            if noisy_length != length:
                cells.append(f"{level:.0f}: trimmed differently ({length} vs {noisy_length} samples)")
                continue
            changes = [100 * np.abs(emotion_probabilities(bundle, w, f) - clean).max() for w, f in (
                (noisy_windows, noisy_functionals), (noisy_windows, functionals), (windows, noisy_functionals))]
            worst[level] = max(worst[level], changes[0])
            cells.append(f"{level:.0f}: " + " / ".join(f"{change:.1f}" for change in changes))
        print(f"{path.stem} | {int((clip == 0).sum())} | {quietest:.0f} | " + " | ".join(cells))
    print("largest change over the examples (points, both views): "
          + ", ".join(f"{level:.0f} dBFS {change:.1f}" for level, change in worst.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
