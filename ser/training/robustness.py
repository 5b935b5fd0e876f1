"""How the shipped model holds up off the studio: noise, phone line, room, codecs, a laptop mic, one word.

Each RAVDESS speech clip (actors 1-20) is corrupted, then scored through ``Bundle.predict_clip``
(speech detector, trimming, windows, fusion, as the app does) by the members of the one fold whose
test actors include it (:func:`fold_bundles`): the CNN, functional and voice-source models that
never heard that speaker. So every number is on unseen speakers, like the headline. Conditions
(:data:`CONDITIONS`, seeded per clip):

- ``clean``: the clip as recorded;
- ``white_20db``, ``white_10db``, ``pink_10db``: noise that far below the speech's active level
  (:func:`ser.training.augment.add_noise`; the functional views train with such noise);
- ``reverb_0.5s``: a synthetic room with RT60 0.5 s (:func:`ser.training.augment.reverberate`;
  half the functional views' noisy copies are also reverberated);
- ``phone_8k``: resampled to 8 kHz and band-passed 300-3400 Hz (never seen in training);
- ``mp3``, ``opus``: encoded and decoded by libsndfile (never seen in training);
- ``laptop_mic``: 200 Hz high-pass and a bright tilt (never seen in training);
- ``one_word``: one 0.5-1.2 s cut of the trimmed speech, about a word (:func:`ser.training.loco.cut_word`;
  never seen in training): is a single word answered from the word, or pulled towards one emotion?

``python -m ser robustness`` (:mod:`ser.checks_cli`) writes ``models/robustness.json``
(:class:`ser.reporting.results.RobustnessResults`; the model card, README and Model page show it
while it describes the shipped ``model.keras``). About 12 min here::

    python -m ser robustness --data ../shared/data/ravdess --out models/
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ser.errors import BundleError, SERError
from ser.reporting.results import ConditionScores, FoldScore
from ser.serving.audio import decode_audio, resample
from ser.training.augment import add_noise, reverberate

RATE = 16000


def _phone(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    narrow = resample(waveform, orig_sample_rate=RATE, target_sample_rate=8000)
    band = sosfilt(butter(4, [300, 3400], btype="bandpass", fs=8000, output="sos"), narrow).astype(np.float32)
    return resample(band, orig_sample_rate=8000, target_sample_rate=RATE)


def _codec(waveform: np.ndarray, *, file_format: str, subtype: str) -> np.ndarray:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, waveform, RATE, format=file_format, subtype=subtype)
    buffer.seek(0)
    decoded, rate = soundfile.read(buffer, dtype="float32")
    decoded = decoded if decoded.ndim == 1 else decoded.mean(axis=1)
    return decoded if rate == RATE else resample(decoded, orig_sample_rate=rate, target_sample_rate=RATE)


def _laptop(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    thin = sosfilt(butter(2, 200, btype="highpass", fs=RATE, output="sos"), waveform)
    bright = thin + 2.0 * np.diff(thin, prepend=0.0)  # +6 dB/octave towards the top
    return (bright * np.sqrt(np.mean(waveform.astype(np.float64) ** 2) / np.mean(bright**2))).astype(np.float32)


def _one_word(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A word-length cut at a place drawn from the clip's own generator (not ``ser loco``'s cut of the same file:
    each check draws its own), trimmed with the default features, which are the shipped bundle's."""
    from ser.config import FeatureConfig
    from ser.training.loco import cut_word

    return cut_word(waveform, rng=rng, config=FeatureConfig(sample_rate=RATE))


#: Each condition: ``corrupt(waveform at RATE, rng) -> waveform at RATE``.
CONDITIONS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "clean": lambda x, rng: x,
    "white_20db": lambda x, rng: add_noise(x, snr_db=20.0, colour="white", rng=rng),
    "white_10db": lambda x, rng: add_noise(x, snr_db=10.0, colour="white", rng=rng),
    "pink_10db": lambda x, rng: add_noise(x, snr_db=10.0, colour="pink", rng=rng),
    "reverb_0.5s": lambda x, rng: reverberate(x, rt60=0.5, sample_rate=RATE, rng=rng),
    "phone_8k": _phone,
    "mp3": lambda x, rng: _codec(x, file_format="MP3", subtype="MPEG_LAYER_III"),
    "opus": lambda x, rng: _codec(x, file_format="OGG", subtype="OPUS"),
    "laptop_mic": _laptop,
    "one_word": _one_word,
}
#: Conditions in the training data: the studio clips and what the room copies imitate.
SEEN_IN_TRAINING = ("clean", "white_20db", "white_10db", "pink_10db", "reverb_0.5s")
PROTOCOL = ("each clip scored by the members of the fold that never heard its speaker "
            "(5 folds by actor, RAVDESS speech, actors 1-20); refusals count as errors")


def fold_bundles(bundle: Any, folds: list[FoldScore]) -> dict[int, tuple[Any, set[int]]]:
    """One bundle per fold of ``metrics.json``: that fold's CNN, functional and voice-source members, fused.

    Parameters
    ----------
    bundle : ser.serving.bundle.Bundle
        The shipped bundle (its model holds ``member_F``, ``functional_F`` and maybe ``voicing_F``).
    folds : list of FoldScore
        ``metrics.json``'s ``cross_validation.per_fold``: each fold's test actors.

    Returns
    -------
    dict
        ``{fold: (bundle of that fold's members, its test actors)}``; the joint views are left out (they
        heard every actor).

    Raises
    ------
    BundleError
        When the model lacks a fold's members (not a bundle of ``python -m ser train``).
    """
    from ser.serving.bundle import Bundle
    from ser.training.networks import build_fused

    model = bundle.model
    names = {layer.name for layer in model.layers}
    result = {}
    for split in folds:
        fold = split.fold
        if f"member_{fold}" not in names or f"functional_{fold}" not in names:
            raise BundleError(f"the bundle has no member_{fold}/functional_{fold}: this check needs the fold "
                              "members of `python -m ser train`")
        views = [[model.get_layer(f"member_{fold}")], [model.get_layer(f"functional_{fold}")]]
        if f"voicing_{fold}" in names:
            views.append([model.get_layer(f"voicing_{fold}")])
        fused = build_fused(*views)
        fold_bundle = Bundle(model=fused, labels=bundle.labels, config=bundle.config, temperature=bundle.temperature,
                             confidence_threshold=bundle.confidence_threshold, path=bundle.path)
        # The main model's fold members only: the shipped joint views heard every actor, so routing to them
        # here would score clips with a model that knows the speaker.
        fold_bundle.joint_settings = None
        result[fold] = (fold_bundle, set(split.test))
    return result


def corrupted_answers(index: pd.DataFrame, *, folds: dict[int, tuple[Any, set[int]]],
                      log: Callable[[str], None]) -> tuple[list[str], dict[str, list[str | None]]]:
    """Every clip of ``index`` in every condition, answered by the fold that never heard its actor.

    Returns
    -------
    tuple
        ``(true emotions, {condition: answers})``; an answer is None where the clip was refused as no speech.

    Raises
    ------
    SERError
        When an actor of ``index`` is in no fold's test actors.
    """
    answers: dict[str, list[str | None]] = {name: [] for name in CONDITIONS}
    truth: list[str] = []
    started = time.perf_counter()
    for position, row in enumerate(index.itertuples()):
        fold_bundle = next((b for b, test in folds.values() if row.actor in test), None)
        if fold_bundle is None:
            raise SERError(f"actor {row.actor} is in no fold's test actors of metrics.json")
        clean = decode_audio(row.path, sample_rate=RATE)
        truth.append(row.emotion)
        for number, (name, corrupt) in enumerate(CONDITIONS.items()):
            rng = np.random.default_rng([position, number])
            audio = np.clip(corrupt(clean, rng), -1.0, 1.0).astype(np.float32)
            try:
                answers[name].append(fold_bundle.predict_clip(audio, sample_rate=RATE).emotion)
            except SERError:  # refused ("no speech detected"): counted as wrong
                answers[name].append(None)
        if position % 200 == 0:
            log(f"{position}/{len(index)} clips, {time.perf_counter() - started:.0f} s")
    return truth, answers


def condition_scores(truth: list[str], answers: dict[str, list[str | None]], *,
                     emotions: list[str]) -> dict[str, ConditionScores]:
    """Accuracy, UAR, refusals, agreement with the clean answer and the share of each answer given (among the
    clips answered) of each condition (refusals are errors)."""
    classes = np.array(truth)
    rows = {}
    for name, guesses in answers.items():
        hits = np.array([guess == true for guess, true in zip(guesses, truth, strict=True)])
        # Refusals count as errors, in accuracy and in each class's recall alike.
        uar = float(np.mean([hits[classes == label].mean() for label in emotions if np.any(classes == label)]))
        given = [guess for guess in guesses if guess is not None]
        rows[name] = ConditionScores(
            accuracy=int(hits.sum()) / len(truth),
            uar=uar,
            refused=sum(guess is None for guess in guesses),
            same_answer_as_clean=int(sum(g == c for g, c in zip(guesses, answers["clean"], strict=True)
                                         if g is not None)),
            seen_in_training=name in SEEN_IN_TRAINING,
            answer_share={label: given.count(label) / len(given) if given else 0.0 for label in emotions},
        )
    return rows
