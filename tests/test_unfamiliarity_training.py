"""The unfamiliar-voice check may learn the ordinary voices as unlike RAVDESS's actors: fitted out of fold by
speaker like ASED, recorded in what it measured, and without it the ordinary voices are only scored."""

import numpy as np
import pytest

import ser.serving.functionals
from ser.serving.unfamiliarity import BAND_FUNCTIONAL, STEADINESS_FUNCTIONAL
from ser.training import unfamiliarity

WIDTH = 48


def _sets(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)

    def voices(speakers: int, shift: np.ndarray) -> np.ndarray:
        return (rng.normal(0, 1, (speakers * 6, WIDTH)) + shift).astype(np.float32)

    ased_shift, ordinary_shift = np.zeros(WIDTH), np.zeros(WIDTH)
    ased_shift[10:20], ordinary_shift[25:35] = 1.5, 1.5  # each unlike RAVDESS in its own way
    ravdess = voices(20, np.zeros(WIDTH))
    copies = rng.choice(len(ravdess), 40, replace=False)
    return {
        "ravdess": {"functionals": ravdess, "actor": np.repeat(np.arange(1, 21), 6)},
        "ased": {"functionals": voices(10, ased_shift), "speaker": np.repeat(np.arange(1, 11), 6)},
        "speechocean": {"functionals": voices(10, ordinary_shift), "speaker": np.repeat(np.arange(10), 6)},
        "phone_8k": {"functionals": ravdess[copies] + 0.1, "actor": np.repeat(np.arange(1, 21), 6)[copies]},
        "laptop_mic": {"functionals": ravdess[copies] - 0.1, "actor": np.repeat(np.arange(1, 21), 6)[copies]},
        "synthetic": {"functionals": voices(2, np.full(WIDTH, 3.0))},
        "music": {"functionals": voices(2, np.full(WIDTH, -3.0))},
    }


@pytest.fixture
def narrow(monkeypatch):
    names = [BAND_FUNCTIONAL, STEADINESS_FUNCTIONAL] + [f"f{k}" for k in range(WIDTH - 2)]
    monkeypatch.setattr(ser.serving.functionals, "functional_names", lambda config: names)


def test_the_check_learns_the_ordinary_voices_only_when_asked(narrow):
    sets = _sets()
    plain = unfamiliarity.build_detector(sets, target=0.05)
    taught = unfamiliarity.build_detector(sets, target=0.05, ordinary=True)
    assert plain.measured["unfamiliar_voices"] == ["ased"]
    assert taught.measured["unfamiliar_voices"] == ["ased", "speechocean"]
    assert "speechocean learnt as unfamiliar" in taught.measured["protocol"]
    flagged = {name: detector.measured["speechocean"]["flagged"]["unfamiliar_voice"]
               for name, detector in (("plain", plain), ("taught", taught))}
    assert flagged["taught"] > flagged["plain"] and flagged["taught"] > 0.5  # held-out readers, out of fold
    assert taught.measured["ased"]["flagged"]["unfamiliar_voice"] > 0.5
    assert taught.measured["ravdess"]["flagged_cross_fitted"]["unfamiliar_voice"] <= 0.1
    assert not np.allclose(plain.domain_weights, taught.domain_weights)
    assert "speechocean" in unfamiliarity.table(taught.measured)


def test_every_held_out_reader_is_scored_by_a_fold_that_never_saw_them(narrow, monkeypatch):
    sets = _sets(1)
    seen: list[np.ndarray] = []
    fit = unfamiliarity.fit_detector

    def spy(ravdess, others, **kwargs):
        seen.append(others)
        return fit(ravdess, others, **kwargs)

    monkeypatch.setattr(unfamiliarity, "fit_detector", spy)
    statistics = unfamiliarity.out_of_fold(sets, columns=(0, 1), ordinary=True)
    assert np.isfinite(statistics["speechocean"]).all()
    readers = np.unique(sets["speechocean"]["speaker"])
    for fold, others in enumerate(seen):
        held = np.isin(sets["speechocean"]["speaker"], readers[fold::unfamiliarity.FOLDS])
        trained_on = {row.tobytes() for row in others.astype(np.float32)}
        assert not any(row.tobytes() in trained_on for row in sets["speechocean"]["functionals"][held])
    without = {**sets}
    del without["speechocean"]
    with pytest.raises(Exception, match="ordinary voices"):
        unfamiliarity.out_of_fold(without, columns=(0, 1), ordinary=True)
