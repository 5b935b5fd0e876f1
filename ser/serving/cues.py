"""The cues a listener hears in a voice, in words.

:func:`voice_cues` measures, from one clip:

- **pitch level and range**: median pitch (Hz) of the voiced frames and the spread between
  their 10th and 90th percentiles in semitones, from the speech detector's YIN pitch
  (:mod:`ser.serving.speech`, already computed for every analysis: no extra cost);
- **loudness and its variability**: median level of the voiced frames in dB re full scale and
  the standard deviation of the level over the active frames (dB);
- **speaking rate**: syllable-like peaks of the level contour (at least 2 dB prominent, 80 ms
  apart, a voiced frame within 40 ms) per second of active audio;
- **voice quality**: mean harmonics-to-noise ratio (dB) and local jitter (%) from the ComParE
  functionals ``logHNR_sma_amean`` and ``jitterLocal_sma_amean`` when they are given.

:func:`describe_cues` compares each cue with a reference: the speaker's own calibration
recording (:func:`reference_from_cues`) or the RAVDESS training speakers of the same gender
(``models/cues.json``, written by ``python -m ser familiarity --data ../shared/data --out models/``),
and phrases the difference ("higher than your usual voice", "faster than most male training
voices"). Which training speakers is decided once per recording by :func:`read_voice` from the
model's gender answer for the whole recording: below :data:`CLEAR_GENDER` the gender is unclear
and the cues are compared with all training speakers (:func:`pooled_reference`). The size of a
difference is judged against a measured spread: how much the training speakers differ from one
another, or, against one's own recording, how much one speaker's neutral clips differ from each
other.

The arousal/valence view of the answer is :mod:`ser.serving.affect`.

Example
-------
>>> from ser.serving.cues import voice_cues
>>> from ser.testing import synthetic_voice
>>> cues = voice_cues(synthetic_voice(seconds=3.0), sample_rate=16000)
>>> 120 < cues.pitch_hz < 160, 2.5 < cues.syllables_per_second < 5.5
(True, True)
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ser.serving.functionals import functional_names
from ser.serving.recording import Recording
from ser.serving.speech import SpeechActivity, detect_speech

DEFAULT_CUES = Path(__file__).resolve().parents[2] / "models" / "cues.json"
#: Frames within this many dB of the loudest frame count as active (speaking, not pausing).
ACTIVE_RANGE_DB = 30.0
#: A syllable peak stands this many dB above the dips on either side of it.
SYLLABLE_PROMINENCE_DB = 2.0
#: Syllable peaks are at least this far apart (seconds): about 12 syllables per second at most.
SYLLABLE_MIN_GAP_SECONDS = 0.08
#: The level contour is averaged over this many 20 ms frames before peaks are counted.
SYLLABLE_SMOOTHING_FRAMES = 2
#: Names of the ComParE functionals used for voice quality.
HNR_FUNCTIONAL = "logHNR_sma_amean"
JITTER_FUNCTIONAL = "jitterLocal_sma_amean"
#: Differences smaller than this many spreads read "about the same as"; beyond STRONG, "much".
SAME_SPREADS = 0.5
STRONG_SPREADS = 1.5
#: The model's gender answer picks the comparison voices only from this probability on. Below it the
#: voice's gender is unclear (one woman was heard as 57% male), and the wrong gender's voices misread
#: her pitch by about four between-speaker spreads (the centres are 10 semitones apart), so the cues
#: are compared with all training voices instead.
CLEAR_GENDER = 0.7
#: How the comparison names all training speakers, men and women pooled.
ALL_VOICES = "most training voices"


@dataclasses.dataclass(frozen=True)
class VoiceCues:
    """Cues of one clip (NaN where a cue cannot be measured, e.g. no voiced frames).

    Attributes
    ----------
    pitch_semitones : float
        Median pitch in semitones above 55 Hz (``12 * log2(hz / 55)``): differences are in semitones.
    pitch_range_semitones : float
        10th-90th percentile spread of the voiced frames' pitch.
    loudness_dbfs : float
        Median RMS level of the voiced frames, dB re full scale.
    loudness_variability_db : float
        Standard deviation of the active frames' level.
    syllables_per_second : float
    harmonics_to_noise_db : float
    jitter_percent : float
    """

    pitch_semitones: float
    pitch_range_semitones: float
    loudness_dbfs: float
    loudness_variability_db: float
    syllables_per_second: float
    harmonics_to_noise_db: float = math.nan
    jitter_percent: float = math.nan

    @property
    def pitch_hz(self) -> float:
        """Median pitch in Hz."""
        return 55.0 * 2 ** (self.pitch_semitones / 12)


#: How each cue is named and which words say "more" and "less" of it.
CUE_WORDS: dict[str, tuple[str, str, str]] = {
    "pitch_semitones": ("pitch", "higher", "lower"),
    "pitch_range_semitones": ("pitch range", "livelier", "flatter"),
    "loudness_dbfs": ("loudness", "louder", "quieter"),
    "loudness_variability_db": ("loudness changes", "more varied", "steadier"),
    "syllables_per_second": ("speaking rate", "faster", "slower"),
    "harmonics_to_noise_db": ("voice clarity", "clearer", "breathier or rougher"),
    "jitter_percent": ("pitch steadiness", "shakier", "steadier"),
}


@dataclasses.dataclass(frozen=True)
class CueReference:
    """What a cue is compared with: a centre and a spread per cue, and who it describes.

    Attributes
    ----------
    centre, spread : VoiceCues
        Typical value and the difference that counts as one step (positive).
    whom : str
        How the comparison names the reference: "your usual voice", "most male training voices".
    speakers : int
        How many training speakers the centre and spread describe (0: not a training group).
    """

    centre: VoiceCues
    spread: VoiceCues
    whom: str
    speakers: int = 0


@dataclasses.dataclass(frozen=True)
class CueComparison:
    """One cue against a reference.

    Attributes
    ----------
    cue : str
        Field name of :class:`VoiceCues`.
    label : str
        Plain name ("speaking rate").
    value, reference : float
    spreads : float
        ``(value - reference) / spread``: signed size of the difference.
    sentence : str
        "Speaking rate: faster than most male training voices."
    word : str
        The difference alone, for a table cell: "faster", "much louder", "about the same".
    """

    cue: str
    label: str
    value: float
    reference: float
    spreads: float
    sentence: str
    word: str = ""


@dataclasses.dataclass(frozen=True)
class VoiceReading:
    """The gender the model heard in one recording, read once for all of its cues.

    Attributes
    ----------
    heard : str
        The most probable gender label ("male", "female").
    probability : float
        Its probability, in [0, 1].
    clear : bool
        ``probability >= CLEAR_GENDER``: the cues are compared with the training voices of
        ``heard``; otherwise with all training voices.
    """

    heard: str
    probability: float
    clear: bool


def _speech_rate(level_db: np.ndarray, voiced: np.ndarray, active: np.ndarray, *, frame_seconds: float) -> float:
    from scipy.signal import find_peaks

    if not active.any():
        return math.nan
    floored = np.where(active, level_db, level_db[active].min())  # pauses flat: no peaks in them
    smooth = np.convolve(floored, np.ones(SYLLABLE_SMOOTHING_FRAMES) / SYLLABLE_SMOOTHING_FRAMES, mode="same")
    peaks, _ = find_peaks(smooth, prominence=SYLLABLE_PROMINENCE_DB,
                          distance=max(1, int(round(SYLLABLE_MIN_GAP_SECONDS / frame_seconds))))
    peaks = peaks[_near(voiced, peaks)]  # a syllable has a vowel: a voiced frame within 40 ms
    return peaks.size / (active.sum() * frame_seconds)


def _near(voiced: np.ndarray, positions: np.ndarray, reach: int = 2) -> np.ndarray:
    """True where a voiced frame lies within ``reach`` frames of each position."""
    padded = np.concatenate([np.zeros(reach, bool), voiced, np.zeros(reach, bool)])
    return np.array([padded[p : p + 2 * reach + 1].any() for p in positions], dtype=bool)


def voice_cues(
    waveform: np.ndarray,
    *,
    sample_rate: int,
    activity: SpeechActivity | None = None,
    functionals: np.ndarray | None = None,
    functional_names: Sequence[str] | None = None,
) -> VoiceCues:
    """Measure the cues of one clip.

    Parameters
    ----------
    waveform : np.ndarray, shape (samples,)
        Mono audio (the recording as uploaded: level is measured on it).
    sample_rate : int
    activity : SpeechActivity, optional
        The speech detector's result for this waveform (``Recording.activity``); computed if absent.
    functionals : np.ndarray, shape (n_functionals,), optional
        ComParE functionals of the clip, for voice quality; with ``functional_names``.
    functional_names : sequence of str, optional
        :func:`ser.serving.functionals.functional_names` of the bundle's config.

    Returns
    -------
    VoiceCues

    Raises
    ------
    ValueError
        If ``functionals`` is given without matching ``functional_names``, or the waveform is not mono.
    """
    if activity is None:
        activity = detect_speech(np.asarray(waveform, dtype=np.float32), sample_rate=sample_rate)
    voiced, level = activity.voiced, activity.level_db
    active = level > level.max(initial=-200.0) - ACTIVE_RANGE_DB
    if voiced.any():
        semitones = 12 * np.log2(activity.pitch_hz[voiced] / 55.0)
        low, middle, high = np.percentile(semitones, [10, 50, 90])
        pitch, pitch_range, loudness = float(middle), float(high - low), float(np.median(level[voiced]))
    else:
        pitch = pitch_range = loudness = math.nan
    variability = float(np.std(level[active])) if active.sum() > 1 else math.nan
    rate = _speech_rate(level, voiced, active, frame_seconds=activity.frame_seconds)
    hnr = jitter = math.nan
    if functionals is not None:
        if functional_names is None or len(functional_names) != len(functionals):
            raise ValueError("pass functional_names (ser.serving.functionals.functional_names) matching functionals")
        names = list(functional_names)
        hnr = float(functionals[names.index(HNR_FUNCTIONAL)])
        jitter = 100.0 * float(functionals[names.index(JITTER_FUNCTIONAL)])
    return VoiceCues(pitch_semitones=pitch, pitch_range_semitones=pitch_range, loudness_dbfs=loudness,
                     loudness_variability_db=variability, syllables_per_second=float(rate),
                     harmonics_to_noise_db=hnr, jitter_percent=jitter)


def recording_cues(recording: Recording) -> VoiceCues:
    """:func:`voice_cues` of a recording from the stages it has computed already.

    The speech detector's frames (:attr:`~ser.serving.recording.Recording.activity`) give pitch,
    loudness and rate; the functionals the model was given (:attr:`~ser.serving.recording.Recording.functionals`,
    set when the recording was scored) give voice quality, NaN when there are none. Nothing is
    computed twice: a clip scored and described runs the detector and openSMILE once each.
    """
    functionals = recording.functionals
    return voice_cues(recording.audio, sample_rate=recording.config.sample_rate, activity=recording.activity,
                      functionals=functionals,
                      functional_names=functional_names(recording.config) if functionals is not None else None)


def describe_cues(cues: VoiceCues, *, reference: CueReference) -> list[CueComparison]:
    """Each measurable cue compared with the reference, in words.

    The word is chosen from the signed difference in reference spreads: within
    +-:data:`SAME_SPREADS`, "about the same as"; beyond :data:`STRONG_SPREADS`, "much ...".
    Cues that are NaN in the clip or the reference are left out.
    """
    comparisons = []
    for field in dataclasses.fields(VoiceCues):
        value = getattr(cues, field.name)
        centre = getattr(reference.centre, field.name)
        spread = getattr(reference.spread, field.name)
        if not all(math.isfinite(x) for x in (value, centre, spread)) or spread <= 0:
            continue
        label, more, less = CUE_WORDS[field.name]
        spreads = (value - centre) / spread
        if abs(spreads) < SAME_SPREADS:
            word, phrase = "about the same", f"about the same as {reference.whom}"
        else:
            word = f"{'much ' if abs(spreads) >= STRONG_SPREADS else ''}{more if spreads > 0 else less}"
            phrase = f"{word} than {reference.whom}"
        comparisons.append(CueComparison(cue=field.name, label=label, value=float(value), reference=float(centre),
                                         spreads=float(spreads), sentence=f"{label.capitalize()}: {phrase}.",
                                         word=word))
    return comparisons


def _cues_from(values: Mapping[str, float]) -> VoiceCues:
    return VoiceCues(**{field.name: float(values[field.name]) for field in dataclasses.fields(VoiceCues)})


def load_cue_references(path: str | Path = DEFAULT_CUES) -> dict[str, CueReference]:
    """Per-gender references of the training speakers, keyed "male"/"female" (the bundle's gender labels).

    Raises
    ------
    FileNotFoundError
        If ``models/cues.json`` is missing (run ``python -m ser familiarity``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no cue references; run python -m ser familiarity --data ../shared/data --out models/"
        )
    stored = json.loads(path.read_text())
    return {
        gender: CueReference(centre=_cues_from(entry["centre"]), spread=_cues_from(entry["between_speakers"]),
                             whom=f"most {gender} training voices", speakers=int(entry.get("speakers", 0)))
        for gender, entry in stored["genders"].items()
    }


def pooled_reference(references: Mapping[str, CueReference], *, whom: str = ALL_VOICES) -> CueReference:
    """All training speakers as one group, from the per-gender references.

    The centre is the speaker-weighted mean of the groups' centres; the spread is how much all
    speakers differ from one another: the groups' own spreads and the distance between their
    centres together (``sqrt(sum n_g (spread_g^2 + (centre_g - centre)^2) / sum n_g)``). Groups
    without a speaker count weigh the same.

    Raises
    ------
    ValueError
        If ``references`` is empty.
    """
    if not references:
        raise ValueError("no references to pool; load them with load_cue_references")
    groups = list(references.values())
    weights = np.array([group.speakers for group in groups], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 and (weights > 0).all() else np.full(len(groups),
                                                                                                1 / len(groups))
    centre, spread = {}, {}
    for field in dataclasses.fields(VoiceCues):
        centres = np.array([getattr(group.centre, field.name) for group in groups])
        spreads = np.array([getattr(group.spread, field.name) for group in groups])
        centre[field.name] = float(weights @ centres)
        spread[field.name] = float(np.sqrt(weights @ (spreads**2 + (centres - centre[field.name]) ** 2)))
    return CueReference(centre=_cues_from(centre), spread=_cues_from(spread), whom=whom,
                        speakers=sum(group.speakers for group in groups))


def read_voice(gender: Mapping[str, float] | None, *, clear_from: float = CLEAR_GENDER) -> VoiceReading | None:
    """The model's gender answer as one reading: the most probable gender and whether it is clear.

    Pass the answer for the whole recording (:attr:`ser.serving.analysis.Analysis.prediction`),
    never a segment's, so every cue of the recording is compared with the same voices. None when
    the model gives no gender.
    """
    if not gender:
        return None
    heard = max(gender, key=gender.get)
    probability = float(gender[heard])
    return VoiceReading(heard=heard, probability=probability, clear=probability >= clear_from)


def reference_from_cues(own: VoiceCues, *, path: str | Path = DEFAULT_CUES) -> CueReference:
    """A reference from the speaker's own calibration recording.

    The spread is how much one training speaker's neutral clips differ from each other
    (``within_speaker`` in ``models/cues.json``, both genders pooled).
    """
    stored = json.loads(Path(path).read_text())
    return CueReference(centre=own, spread=_cues_from(stored["within_speaker"]), whom="your usual voice")


def reference_for(*, gender: Mapping[str, float] | None, references: Mapping[str, CueReference],
                  own: VoiceCues | None = None, path: str | Path = DEFAULT_CUES) -> CueReference | None:
    """What a clip's cues are compared with.

    Parameters
    ----------
    gender : mapping label -> probability, optional
        The model's gender answer (:attr:`ser.serving.bundle.ClipPrediction.gender`).
        For a recording cut into segments, the whole recording's answer: one reading of the
        voice for every segment (:func:`read_voice`).
    references : mapping gender -> CueReference
        :func:`load_cue_references`.
    own : VoiceCues, optional
        Cues of the speaker's own calibration recording; when given, they are the reference
        (:func:`reference_from_cues`).

    Returns
    -------
    CueReference or None
        The speaker's own voice; else the training speakers of the gender the model heard when
        it is clear (:data:`CLEAR_GENDER`), all training speakers when it is not
        (:func:`pooled_reference`); None when neither the voice nor a gender is known.
    """
    if own is not None:
        return reference_from_cues(own, path=path)
    reading = read_voice(gender)
    if reading is None or not references:
        return None
    if reading.clear and reading.heard in references:
        return references[reading.heard]
    return pooled_reference(references)
