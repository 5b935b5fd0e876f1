"""``models/routing.json``: the shipped bundle's answer with its routing, on speakers it never heard.

The bundle answers with its main model (trained on RAVDESS) unless the unfamiliar-voice check fires,
and then with the joint views (``models/joint_views.keras``, trained on RAVDESS, ASED and, as shipped, the
ordinary voices of speechocean). Every part of that answer is measured out of fold here: the main model's
cross-validated answers on RAVDESS and its answers on ASED and the ordinary voices (which it never heard),
the joint views' cross-validated answers on the corpora they learnt from (5 folds by speaker), and the
checks' statistics and thresholds from folds that never saw the speaker. Written only by
``python -m ser routing --data ../shared/data --out models/``
(:data:`ser.reporting.results.ROUTING_COMMAND`, :mod:`ser.training.routing`); read by the model card and
the Model page through :func:`ser.reporting.results.load_routing`.
"""

from __future__ import annotations

import dataclasses

from ser.reporting.corpus_results import CalibratedComparison, Comparison
from ser.reporting.loco_results import SetScores


@dataclasses.dataclass(frozen=True)
class RoutedSet:
    """One set of held-out clips, answered as the bundle answers (routed) and by the main model alone.

    Attributes
    ----------
    name : str
        ``"ravdess"`` (the headline's clips), ``"ased"`` (all sentences), ``"ased_common"`` (the two
        sentences spoken in every emotion, where the words cannot help).
    description : str
        The set and its protocol in words.
    routed_share : float
        Share of the answered clips the joint views answered (the checks fired).
    routed, main_only : Comparison
        The same clips as the bundle answers them and as the main model alone would.
    calibrated : CalibratedComparison
        The routed answer with each speaker's two neutral reference clips (not scored) and without.
    """

    name: str
    description: str
    routed_share: float
    routed: Comparison
    main_only: Comparison
    calibrated: CalibratedComparison


@dataclasses.dataclass(frozen=True)
class AcrossCorpora:
    """A model trained on one corpus only, on every clip of the other (none of whose speakers it heard).

    Attributes
    ----------
    name : str
        ``"ravdess_to_ased"`` or ``"ased_to_ravdess"``.
    description : str
        The model and the clips in words.
    scores : Comparison
        As the app answers and restricted to the test corpus's emotions.
    calibrated : CalibratedComparison
        With each test speaker's two neutral reference clips (not scored) and without.
    """

    name: str
    description: str
    scores: Comparison
    calibrated: CalibratedComparison


@dataclasses.dataclass(frozen=True)
class OrdinaryRouted:
    """Ordinary voices (speechocean: no emotion labels, so neutral or calm is right and angry, fearful or
    disgust a false alarm), answered as the bundle answers them, by the main model alone and by the joint
    views alone, none of which heard the speaker.

    Attributes
    ----------
    description : str
        The clips and who answers them, in words.
    joint_views_heard_corpus : bool
        The joint views learnt from other speakers of this corpus (their answers here are out of fold, 5
        folds by speaker); otherwise the joint views never heard the corpus.
    routed_share : float
        Share of the answered clips the joint views answered.
    routed, main_only, joint_only : SetScores
        With :attr:`SetScores.neutral_or_calm_share` and :attr:`SetScores.false_alarm_share`.
    """

    description: str
    joint_views_heard_corpus: bool
    routed_share: float
    routed: SetScores
    main_only: SetScores
    joint_only: SetScores


@dataclasses.dataclass(frozen=True)
class RoutingResults:
    """What ``python -m ser routing`` measured (see the module docstring).

    ``sets`` are, in order, RAVDESS (8 emotions), ASED all sentences and ASED common sentences
    (5 emotions; "restricted" answers among them, "app" among all 8). ``across_corpora``: the main
    model (RAVDESS only) on ASED (files measured before the routing moved into ``ser`` also hold the joint
    views' recipe trained on ASED only, on RAVDESS's clips of ASED's emotions). ``ordinary``: the ordinary
    voices, when ``--data`` holds them (files measured before 2026-12-08 have none).
    """

    schema: str
    model_sha256: str
    joint_views_sha256: str
    measured: str
    command: str
    versions: dict[str, str]
    protocol: str
    labels: list[str]
    joint_temperature: float
    sets: list[RoutedSet]
    across_corpora: list[AcrossCorpora]
    ordinary: OrdinaryRouted | None = None

    def set_named(self, name: str) -> RoutedSet:
        """The set called ``name``; KeyError names the ones there are."""
        for entry in self.sets:
            if entry.name == name:
                return entry
        raise KeyError(f"no set {name!r} in routing.json; it has {[entry.name for entry in self.sets]}")


@dataclasses.dataclass(frozen=True)
class RoutingRow:
    """One line of the routing table the model card and the Model page print (fractions in [0, 1]).

    ``accuracy`` / ``uar`` are among the set's emotions (restricted), ``app_accuracy`` among all the app's;
    ``largest_share`` is the most frequent answer as the app answers and its share (a collapse shows).
    """

    description: str
    answered: int
    routed_share: float
    main_accuracy: float
    main_uar: float
    accuracy: float
    uar: float
    app_accuracy: float
    neutral_recall: float | None
    largest_share: tuple[str, float]
    speaker_min: float
    speaker_median: float
    speaker_max: float
    calibrated_before: float
    calibrated_after: float
    calibrated_neutral_recall: float | None


def routing_rows(results: RoutingResults) -> list[RoutingRow]:
    """The table of :class:`RoutingResults`, one row per set, in its order."""
    rows = []
    for entry in results.sets:
        routed, app = entry.routed.restricted, entry.routed.app
        top = max(app.answer_share.items(), key=lambda item: item[1])
        spread = routed.speaker_accuracy
        rows.append(RoutingRow(
            description=entry.description, answered=routed.answered, routed_share=entry.routed_share,
            main_accuracy=entry.main_only.restricted.accuracy, main_uar=entry.main_only.restricted.uar,
            accuracy=routed.accuracy, uar=routed.uar, app_accuracy=app.accuracy,
            neutral_recall=app.recall.get("neutral"), largest_share=(top[0], float(top[1])),
            speaker_min=spread.min, speaker_median=spread.median, speaker_max=spread.max,
            calibrated_before=entry.calibrated.unadapted.restricted.accuracy,
            calibrated_after=entry.calibrated.adapted.restricted.accuracy,
            calibrated_neutral_recall=entry.calibrated.adapted.app.recall.get("neutral"),
        ))
    return rows
