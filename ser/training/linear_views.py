"""The linear views (logistic regression on openSMILE functionals) trained on several corpora
with a masked loss, and calibrated to a speaker by a reference of their neutral voice.

The shipped recipe (:func:`ser.training.cross_validation.fit_functional_member`) fits one
scikit-learn model per view on RAVDESS. Here the same views are fitted with
:func:`ser.training.masked_linear.fit_masked_logistic`, so each corpus teaches only the
emotions it has, with sample weights that balance classes within a corpus and corpora (and
optionally speakers) against each other.

Calibration to a speaker (:func:`speaker_offsets`): the mean functionals of a speaker's
reference clips (their ordinary, neutral voice) are moved onto the training speakers' neutral
centroid, and every clip of that speaker is moved by the same offset before the views score
it. For a linear model this is a per-speaker bias on the logits, so it needs nothing but the
offset at scoring time (:mod:`ser.serving.speaker`).

Example
-------
See ``experiments/cross_corpus.py``, which runs every protocol with these functions.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ser.training.corpora import emotion_mask, reference_clips, target_mask
from ser.training.data import EMOTIONS
from ser.training.masked_linear import MaskedLogistic, fit_masked_logistic
from ser.training.target_sets import narrow_partial_labels, single_labels, taught_classes

#: Standardised functionals are clipped to +-this many deviations (as the shipped model's
#: :class:`ser.serving.layers.Standardize`; repeated here so training imports no Keras).
STANDARDIZE_LIMIT = 8.0


#: ``LinearRecipe.utterance_centring`` -> the contour name prefixes it centres.
CENTRING_FAMILIES: dict[str, tuple[str, ...]] = {"none": (), "mfcc": ("mfcc",), "all": ("",)}


@dataclasses.dataclass(frozen=True)
class LinearRecipe:
    """How the linear views are trained (every field is a choice the study compares).

    Attributes
    ----------
    c_grid, voicing_c_grid : tuple of float
        L2 strengths tried per view (chosen on validation speakers), as the shipped recipe.
    speed_copies : bool
        Also train on the 0.9x and 1.1x speed copies of each clip.
    room_copies : bool
        Also train on one noisy / reverberant copy of each clip.
    corpus_share : str
        ``"equal"``: every training corpus has the same total weight; ``"size"``: its share of clips.
    corpus_weights : tuple of (str, float)
        Relative total weight per corpus name, overriding ``corpus_share`` for the corpora named
        (unnamed corpora weigh 1).
    class_balance : bool
        Inverse class frequency within each corpus (the shipped view's "balanced").
    speaker_balance : bool
        Every speaker of a corpus has the same total weight (before class balancing).
    speaker_shift : str
        ``"none"``: train on the functionals as extracted; ``"shifted"``: on each training speaker's
        functionals moved by their own reference offset (:func:`speaker_offsets`); ``"both"``: both copies.
    masked : bool
        Normalise each clip's loss over its corpus's emotions (else over all eight).
    utterance_centring : str
        ``"none"``, ``"mfcc"`` or ``"all"``: which contours' levels are centred on the clip's own
        median before anything else (:func:`utterance_centring`), in training and scoring alike.
    specific_sentence_weight : float
        Weight of clips whose sentence is spoken in one emotion only (ASED's sentences 03-07,
        whose words give the emotion away) relative to the others; 0 leaves them out.
    word_copies : bool
        Also train on one word-length cut of each clip (``FunctionalClips.words``, labelled as the
        clip), so a single word is judged against words of each emotion, not against sentences.
    """

    c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03)
    voicing_c_grid: tuple[float, ...] = (0.001, 0.003, 0.01, 0.03, 0.1)
    speed_copies: bool = True
    room_copies: bool = True
    corpus_share: str = "equal"
    corpus_weights: tuple[tuple[str, float], ...] = ()
    class_balance: bool = True
    speaker_balance: bool = False
    speaker_shift: str = "none"
    masked: bool = True
    utterance_centring: str = "none"
    specific_sentence_weight: float = 1.0
    word_copies: bool = False

    def __post_init__(self) -> None:
        if self.corpus_share not in ("equal", "size"):
            raise ValueError(f"corpus_share must be 'equal' or 'size', got {self.corpus_share!r}")
        if self.speaker_shift not in ("none", "shifted", "both"):
            raise ValueError(f"speaker_shift must be 'none', 'shifted' or 'both', got {self.speaker_shift!r}")
        if self.specific_sentence_weight < 0:
            raise ValueError(f"specific_sentence_weight must be >= 0, got {self.specific_sentence_weight}")
        if self.utterance_centring not in CENTRING_FAMILIES:
            raise ValueError(f"utterance_centring must be one of {sorted(CENTRING_FAMILIES)}")


@dataclasses.dataclass
class FunctionalClips:
    """Functionals and labels of the clips of one or more corpora, rows aligned with ``table``.

    Attributes
    ----------
    table : pandas.DataFrame
        A corpus table (:data:`ser.training.data.TABLE_COLUMNS`), index 0..n-1.
    speeds : dict
        ``speed -> (n, n_functionals)`` float32 (1.0 is the clip as recorded).
    room : np.ndarray or None, shape (n, n_functionals)
        The room copy of each clip.
    words : np.ndarray or None, shape (n, n_functionals)
        One word-length cut of each clip (NaN rows: a cut too short to score), for ``word_copies``.

    Derived: ``labels`` (n,) int (-1 for a partial label), ``targets`` (n, 8) bool (each row's target
    set), ``class_mask`` (n, 8) bool (what its corpus teaches), ``speaker``, ``corpus``, ``reference``.
    """

    table: pd.DataFrame
    speeds: dict[float, np.ndarray]
    room: np.ndarray | None
    words: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.table = self.table.reset_index(drop=True)
        for name, values in [*self.speeds.items(), ("room", self.room), ("words", self.words)]:
            if values is not None and values.shape[0] != len(self.table):
                raise ValueError(f"functionals {name} have {values.shape[0]} rows for {len(self.table)} clips")
        # A partial label ("neutral or calm") has no single class: -1 here, its classes in ``targets``.
        self.targets = target_mask(self.table)
        self.labels = single_labels(self.targets)
        self.class_mask = emotion_mask(self.table)
        self.speaker = self.table["speaker"].to_numpy(str)
        self.corpus = self.table["corpus"].to_numpy(str)
        self.reference = reference_clips(self.table)

    def __len__(self) -> int:
        return len(self.table)


@dataclasses.dataclass(frozen=True)
class LinearView:
    """One fitted view: standardise (clipped), then the masked logistic regression.

    Attributes
    ----------
    columns : np.ndarray or None
        The functionals this view reads (None: all).
    mean, scale : np.ndarray, shape (n_columns,)
    model : MaskedLogistic
    """

    columns: np.ndarray | None
    mean: np.ndarray
    scale: np.ndarray
    model: MaskedLogistic

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        values = raw if self.columns is None else raw[:, self.columns]
        return np.clip((values - self.mean) / self.scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT).astype(np.float32)

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Emotion probabilities over all eight, shape (n, len(EMOTIONS)), for raw functionals (n, F)."""
        return self.model.predict_proba(self.standardize(raw))


def neutral_centroid(clips: FunctionalClips, rows: np.ndarray) -> np.ndarray:
    """Mean over the speakers of ``rows`` of their reference clips' mean functionals (as recorded).

    Each speaker counts once however many clips they have, so a corpus with more speakers
    pulls the centroid more, never one talkative speaker.

    Returns
    -------
    np.ndarray, shape (n_functionals,), float64
    """
    chosen = rows & clips.reference
    if not chosen.any():
        raise ValueError("no training speaker has reference (neutral) clips to centre on")
    values = pd.DataFrame(clips.speeds[1.0][chosen].astype(np.float64))
    return values.groupby(clips.speaker[chosen]).mean().mean(axis=0).to_numpy()


def speaker_offsets(
    clips: FunctionalClips, rows: np.ndarray, *, centroid: np.ndarray, values: np.ndarray | None = None
) -> np.ndarray:
    """The offset that moves each speaker's reference mean onto ``centroid``, per row.

    Parameters
    ----------
    rows : np.ndarray of bool, shape (n,)
        The rows to compute offsets for (their speakers' references must be among all clips).
    values : np.ndarray, shape (n, F), optional
        The functionals the reference mean is taken from (default: as recorded, speed 1.0).

    Returns
    -------
    np.ndarray, shape (n, F), float64
        ``centroid - mean(reference of the row's speaker)``; NaN for rows not in ``rows`` or whose
        speaker has no reference.
    """
    values = clips.speeds[1.0] if values is None else values
    offsets = np.full(values.shape, np.nan)
    references = pd.DataFrame(values[clips.reference].astype(np.float64)).groupby(clips.speaker[clips.reference]).mean()
    for speaker in np.unique(clips.speaker[rows]):
        if speaker in references.index:
            offsets[rows & (clips.speaker == speaker)] = centroid - references.loc[speaker].to_numpy()
    return offsets


def _copies(clips: FunctionalClips, recipe: LinearRecipe) -> list[np.ndarray]:
    copies = [clips.speeds[1.0]]
    if recipe.speed_copies:
        copies += [clips.speeds[speed] for speed in sorted(clips.speeds) if speed != 1.0]
    if recipe.room_copies and clips.room is not None:
        copies.append(clips.room)
    if recipe.word_copies:
        if clips.words is None:
            raise ValueError("the recipe trains on word copies but the clips have none: set FunctionalClips.words")
        copies.append(clips.words)
    return copies


@dataclasses.dataclass(frozen=True)
class TrainingRows:
    """Every training copy of some clips (:func:`training_copies`), m rows.

    Attributes
    ----------
    values : np.ndarray, shape (m, F), float32
        Raw functionals (before standardisation).
    labels : np.ndarray of int, shape (m,)
        -1 for a partial label.
    class_mask, target_mask : np.ndarray of bool, shape (m, len(EMOTIONS))
        What each row's corpus teaches, and each row's target set.
    weights : np.ndarray, shape (m,), mean 1
    """

    values: np.ndarray
    labels: np.ndarray
    class_mask: np.ndarray
    target_mask: np.ndarray
    weights: np.ndarray


def training_rows(
    clips: FunctionalClips, rows: np.ndarray, *, recipe: LinearRecipe
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every training copy of the clips in ``rows``, with labels, class masks and weights.

    Returns
    -------
    values : np.ndarray, shape (n_copies * n_rows', F), float32
        Raw functionals (before standardisation).
    labels : np.ndarray, shape (m,)
    class_mask : np.ndarray of bool, shape (m, len(EMOTIONS))
    weights : np.ndarray, shape (m,)
    """
    copies = training_copies(clips, rows, recipe=recipe)
    return copies.values, copies.labels, copies.class_mask, copies.weights


def training_copies(clips: FunctionalClips, rows: np.ndarray, *, recipe: LinearRecipe) -> TrainingRows:
    """:func:`training_rows` with each row's target set too (partial labels: label -1).

    Class balancing counts a partial label as one class of its corpus (speechocean: one class, so
    the corpus's share is spread evenly over its clips). A partial label's classes that no single label
    among these rows teaches are dropped from it (from its target set and the classes it teaches),
    unless that would empty a target set: see :func:`single_label_classes`.
    """
    # Unknown (a manifest's clips) counts as a sentence spoken in every emotion.
    specific = ~clips.table["common_sentence"].fillna(True).to_numpy(bool)
    if recipe.specific_sentence_weight == 0:
        rows = rows & ~specific
    copies = _copies(clips, recipe)
    parts, selected = [], []
    if recipe.speaker_shift in ("none", "both"):
        for copy in copies:  # a word cut too short to score (NaN) is no training row
            usable = rows & ~np.isnan(copy).any(axis=1) if copy is clips.words else rows
            parts.append(copy[usable])
            selected.append(usable)
    if recipe.speaker_shift in ("shifted", "both"):
        centroid = neutral_centroid(clips, rows)
        shiftable = rows & np.isin(clips.speaker, clips.speaker[clips.reference])
        offsets = speaker_offsets(clips, shiftable, centroid=centroid)
        for copy in (copy for copy in copies if copy is not clips.words):
            # A speed copy is a different voice (pitch moves with speed): centre it on that copy's
            # own reference; a room copy keeps the clean reference, as a user's would be.
            is_speed = any(copy is clips.speeds[speed] for speed in clips.speeds)
            own = speaker_offsets(clips, shiftable, centroid=centroid, values=copy) if is_speed else offsets
            parts.append((copy[shiftable] + own[shiftable]).astype(np.float32))
            selected.append(shiftable)
    values = np.concatenate(parts)
    index = np.concatenate([np.flatnonzero(chosen) for chosen in selected])
    labels, corpus, speaker = clips.labels[index], clips.corpus[index], clips.speaker[index]
    class_mask = clips.class_mask[index] if recipe.masked else np.ones((len(index), len(EMOTIONS)), dtype=bool)
    weights = np.where(specific[index], recipe.specific_sentence_weight, 1.0)
    if recipe.speaker_balance:
        counts = pd.Series(speaker).value_counts()
        weights = weights / counts.loc[speaker].to_numpy()
        for name in np.unique(corpus):  # each corpus keeps its total before the shares below
            weights[corpus == name] *= (corpus == name).sum() / weights[corpus == name].sum()
    if recipe.class_balance:
        # Balance classes within each corpus on the already speaker-weighted counts.
        balanced = np.zeros(len(index))
        for name in np.unique(corpus):
            in_corpus = corpus == name
            for label in np.unique(labels[in_corpus]):
                chosen = in_corpus & (labels == label)
                balanced[chosen] = weights[chosen] / weights[chosen].sum() / len(np.unique(labels[in_corpus]))
        weights = balanced
    shares = pd.Series(weights).groupby(corpus).sum()
    named = dict(recipe.corpus_weights)
    for name in shares.index:
        if named:
            target = named.get(name, 1.0) / sum(named.get(other, 1.0) for other in shares.index)
        else:
            target = 1.0 / len(shares) if recipe.corpus_share == "equal" else np.mean(corpus == name)
        weights[corpus == name] *= target / shares[name]
    weights *= len(weights) / weights.sum()
    # A class no single label here teaches leaves the partial labels (a sink otherwise: narrow_partial_labels).
    targets, class_mask = narrow_partial_labels(labels, clips.targets[index], class_mask,
                                                taught=taught_classes(labels, class_mask))
    return TrainingRows(values=values, labels=labels, class_mask=class_mask, target_mask=targets, weights=weights)


def single_label_classes(clips: FunctionalClips, rows: np.ndarray) -> np.ndarray:
    """Boolean (len(EMOTIONS),): the emotions some single-labelled clip among ``rows`` has; what a
    model trained on them can answer (a class known only inside a partial label is not learnt).

    Falls back to every class a row's corpus teaches when ``rows`` hold partial labels only.
    """
    return taught_classes(clips.labels[rows], clips.class_mask[rows])


def _standardize(values: np.ndarray, columns: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = values if columns is None else values[:, columns]
    mean = values.mean(axis=0, dtype=np.float64)
    scale = values.std(axis=0, dtype=np.float64)
    scale = np.where(scale > 1e-8, scale, 1.0)
    rows = np.clip((values - mean) / scale, -STANDARDIZE_LIMIT, STANDARDIZE_LIMIT).astype(np.float32)
    return rows, mean, scale


def fit_views(
    clips: FunctionalClips,
    rows: np.ndarray,
    *,
    recipe: LinearRecipe,
    c_values: tuple[float, ...],
    columns: np.ndarray | None = None,
) -> list[LinearView]:
    """Fit one view per L2 strength in ``c_values`` on the clips in ``rows`` (a warm start
    along the grid, strongest L2 first).

    Returns
    -------
    list of LinearView, in the order of ``c_values``
    """
    copies = training_copies(clips, rows, recipe=recipe)
    standardized, mean, scale = _standardize(copies.values, columns)
    class_mask, weights = copies.class_mask, copies.weights
    # Single labels only: the labels path, bit-for-bit the fits before target sets existed.
    partial = (copies.labels < 0).any()
    labels, targets = (None, copies.target_mask) if partial else (copies.labels, None)
    del copies  # the raw copies: hundreds of MB on three corpora
    fitted: dict[float, LinearView] = {}
    previous = None
    for c in sorted(c_values):
        previous = fit_masked_logistic(
            standardized, labels, class_mask=class_mask, target_mask=targets, c=c, sample_weight=weights,
            initial=previous,
        )
        fitted[c] = LinearView(columns=columns, mean=mean, scale=scale, model=previous)
    return [fitted[c] for c in c_values]


#: Functionals that say where a contour lies (its level), not how it moves: what a per-utterance
#: mean/median normalisation of the contour (as cepstral mean normalisation) would shift.
LOCATION_FUNCTIONALS: tuple[str, ...] = (
    "amean", "posamean", "quartile1", "quartile2", "quartile3", "percentile1.0", "percentile99.0",
    "linregc2", "qregc3", "peakMeanAbs",
)


def utterance_centring(names: list[str], *, families: tuple[str, ...]) -> list[tuple[int, np.ndarray]]:
    """Per-utterance centring of contour levels, as (median column, location columns) pairs.

    For every low-level contour whose name starts with one of ``families`` (``"mfcc"``,
    ``"F0final"``, ... or ``""`` for all; deltas excluded: they are centred already), the
    utterance's own median of that contour (``quartile2``) is subtracted from its location
    functionals (:data:`LOCATION_FUNCTIONALS`): the contour as if mean-normalised within the
    clip, so a microphone's or a voice's constant offset is gone, its movements kept.

    Returns
    -------
    list of (int, np.ndarray)
        Column of the median and the columns it is subtracted from (the median's own included).
    """
    positions = {name: i for i, name in enumerate(names)}
    pairs = []
    for name, column in positions.items():
        contour, _, functional = name.rpartition("_")
        if functional != "quartile2" or "_de" in contour or not contour.startswith(families):
            continue
        targets = [positions[f"{contour}_{location}"] for location in LOCATION_FUNCTIONALS
                   if f"{contour}_{location}" in positions]
        pairs.append((column, np.array(targets, dtype=np.int64)))
    return pairs


def centre_utterances(values: np.ndarray, pairs: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Apply :func:`utterance_centring` pairs to functionals of shape (n, F); a new array."""
    centred = np.array(values, dtype=np.float32, copy=True)
    for median, targets in pairs:
        centred[:, targets] -= values[:, [median]]
    return centred


#: Probabilities are floored here before the log of the fusion (as ser.serving.layers.FUSION_FLOOR).
FUSION_FLOOR = 1e-7


def fuse_probabilities(*views: np.ndarray) -> np.ndarray:
    """Normalised geometric mean of the views' probabilities, shape (n, n_classes): the shipped
    model's fusion (:func:`ser.serving.layers.fuse_views`) without importing Keras."""
    logs = np.mean([np.log(np.clip(np.asarray(view, dtype=np.float64), FUSION_FLOOR, 1.0)) for view in views], axis=0)
    fused = np.exp(logs - logs.max(axis=-1, keepdims=True))
    return fused / fused.sum(axis=-1, keepdims=True)
