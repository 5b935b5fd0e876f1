"""The "unlike the training data" warning's measured figures in the model card: read from unfamiliarity.npz, never
retyped, and left out when the bundle has no detector."""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ser.config import write_json
from ser.reporting import results as r
from ser.reporting.model_card import render, results_table
from ser.reporting.model_results import load_model_results
from ser.reporting.schema import write_results
from ser.reporting.unfamiliarity_results import AUDIO_NAMES, load_unfamiliarity_results
from ser.serving.unfamiliarity import CHECKS, UnfamiliarityDetector, load_unfamiliarity, save_unfamiliarity
from tests.conftest import ROOT
from tests.test_results import FEATURES, side_fixtures, training_fixture

SECTION = "## When the app warns: unlike the training data"
SETS = ("ravdess", "ased", "synthetic", "phone_8k", "laptop_mic", "music")
SIZE = 12


def _bundle(folder: Path) -> Path:
    """A bundle folder with every JSON result file and no unfamiliarity.npz."""
    write_results(folder / "metrics.json", training_fixture())
    for cls, results in side_fixtures().items():
        write_results(folder / r.FILES[cls][0], results)
    write_json(folder / "config.json", {"features": FEATURES})
    return folder


def _detector(thresholds: list[float], measured: dict) -> UnfamiliarityDetector:
    components = np.linalg.qr(np.random.default_rng(0).standard_normal((SIZE, 3)))[0].T
    return UnfamiliarityDetector(
        mean=np.zeros(SIZE), scale=np.ones(SIZE), limit=8.0, centre=np.zeros(SIZE), components=components,
        variances=np.array([3.0, 2.0, 1.0]), residual_scale=1.0, domain_weights=np.eye(SIZE)[2], domain_bias=0.0,
        band_column=0, steadiness_column=1, thresholds=np.asarray(thresholds), measured=measured)


share = st.floats(0, 1).map(lambda value: round(value, 4))
shares = st.fixed_dictionaries({code: share for code in (*CHECKS, "any")})
measurements = st.fixed_dictionaries({
    "ravdess": st.fixed_dictionaries({"clips": st.integers(1, 5000), "flagged_cross_fitted": shares,
                                      "any_per_actor_max": share}),
    **{name: st.fixed_dictionaries({"clips": st.integers(1, 5000), "flagged": shares}) for name in SETS[1:]},
    "protocol": st.sampled_from(["thresholds: 99.5th percentile of held-out actors", "fixture protocol"]),
})
thresholds = st.lists(st.floats(-1e4, 1e4, allow_nan=False).map(lambda value: float(np.float32(value))),
                      min_size=len(CHECKS), max_size=len(CHECKS))


def _section(card: str) -> str:
    return card.split(SECTION, 1)[1].split("\n## ", 1)[0]


@settings(max_examples=25, deadline=None)
@given(measured=measurements, limits=thresholds)
def test_the_card_shows_the_files_measured_figures(measured, limits):
    with tempfile.TemporaryDirectory() as temporary:
        folder = _bundle(Path(temporary))
        save_unfamiliarity(_detector(limits, measured), folder / "unfamiliarity.npz", header={})
        stored = load_unfamiliarity(folder / "unfamiliarity.npz")  # the file as the app reads it
        card = render(load_model_results(folder, bench=None))
    section = _section(card)
    rows = {line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ") for line in section.splitlines()
            if line.startswith("| ") and "%" in line}
    assert len(rows) == len(SETS)
    assert next(iter(rows)) == AUDIO_NAMES["ravdess"]  # the false positives first
    for name in SETS:
        entry, cells = stored.measured[name], rows[AUDIO_NAMES[name]]
        figures = entry["flagged_cross_fitted" if name == "ravdess" else "flagged"]
        assert cells[1] == str(entry["clips"])
        assert cells[2:2 + len(CHECKS)] == [f"{100 * figures[code]:.1f}%" for code in CHECKS]
        assert cells[-1].startswith(f"**{100 * figures['any']:.1f}%**")
    actors = stored.measured["ravdess"]["any_per_actor_max"]
    assert f"(per actor at most {100 * actors:.1f}%)" in section
    for code, threshold in zip(CHECKS, stored.thresholds, strict=True):
        check = next(line for line in section.splitlines() if line.startswith(f"| `{code}` |"))
        cell = check.rstrip(" |").rsplit(" | ", 1)[1]
        assert re.match(rf"(above|below) {re.escape(f'{threshold:.4g}')}( Hz$| \(|$)", cell), cell
    assert stored.measured["protocol"][1:] in section and "python -m ser unfamiliarity" in section
    limits_text = card.split("## Known failure modes and limits", 1)[1]
    assert f"fires on {100 * stored.measured['ravdess']['flagged_cross_fitted']['any']:.1f}% of unseen" in limits_text


def test_the_shipped_card_has_the_section_with_the_shipped_figures():
    figures = load_unfamiliarity_results(ROOT / "models" / "unfamiliarity.npz")
    card = (ROOT / "models" / "MODEL_CARD.md").read_text(encoding="utf-8")
    section = _section(card)
    laptop = figures.audio_named("laptop_mic")
    assert laptop is not None and f"warning fires on {100 * laptop.flagged['any']:.1f}% of those copies" in section
    for words in ("languages other than Amharic", "natural (unacted) speech", "neural text-to-speech"):
        assert words in section
    assert [check.code for check in figures.checks] == list(CHECKS)
    assert figures.checks[1].plain_threshold.endswith(" Hz") and "%" in figures.checks[3].plain_threshold


def test_without_the_detector_the_card_has_no_section(tmp_path):
    results = load_model_results(_bundle(tmp_path), bench=None)
    assert results.unfamiliarity is None and not results.notes
    card = render(results)
    assert SECTION not in card and "unlike the training data" not in card
    assert "unlike the training data" not in results_table(results)


def test_a_detector_without_measured_figures_is_a_note_not_a_crash(tmp_path):
    folder = _bundle(tmp_path)
    save_unfamiliarity(_detector([1.0, 2.0, 3.0, 4.0], {}), folder / "unfamiliarity.npz", header={})
    results = load_model_results(folder, bench=None)
    assert results.unfamiliarity is None
    assert any("holds no measured figures" in note and "python -m ser unfamiliarity" in note for note in results.notes)
    (folder / "unfamiliarity.npz").write_bytes(b"not a zip")
    assert any("not a readable unfamiliarity detector" in note for note in load_model_results(folder, bench=None).notes)
    assert SECTION not in render(results)


def test_the_results_are_frozen():
    figures = load_unfamiliarity_results(ROOT / "models" / "unfamiliarity.npz")
    for value in (figures, figures.checks[0], figures.audio[0]):
        assert dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen
