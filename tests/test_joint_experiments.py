"""The experiments of joint training: ASED's common-sentence manifest and a one-fold bundle's test sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser.errors import SERError
from ser.training.corpora import read_manifest
from ser.training.data import index_ased


def _ased_folder(root):
    """Speaker 07 (female, one file mis-coded male), speaker 12 (male): common and specific sentences."""
    folders = {"n": "01Neutral", "a": "05Angry"}
    for letter, folder in folders.items():
        (root / folder).mkdir(parents=True)
        number = "1" if letter == "n" else "5"
        for sentence in (1, 2, 3):
            for speaker, gender in ((7, 1), (12, 2)):
                coded = 2 if (speaker, sentence, letter) == (7, 3, "a") else gender
                name = f"{letter}{number}-{sentence:02d}-01-{coded:02d}-{speaker:02d}.wav"
                soundfile.write(root / folder / name, np.zeros(1600, dtype=np.float32), 16000)
    return root


def test_the_manifest_holds_only_the_common_sentences_and_reads_back_as_its_own_corpus(tmp_path):
    from experiments.ased_common_manifest import write_manifest

    ased = _ased_folder(tmp_path / "ased")
    out = tmp_path / "runs" / "ased_common.csv"
    assert write_manifest(ased=ased, out=out) == 8
    table = read_manifest(out)
    assert set(table["corpus"]) == {"ased_common"}
    assert sorted(set(table["speaker"])) == ["ased_common-07", "ased_common-12"]
    assert set(table.groupby("speaker")["gender"].first().to_dict().items()) == {
        ("ased_common-07", "female"), ("ased_common-12", "male")}
    full = index_ased(ased)
    common = full[full["common_sentence"].astype(bool)]
    assert sorted(table["path"]) == sorted(str(path.resolve()) for path in map(type(out), common["path"]))
    assert not out.read_text().count(str(tmp_path))  # paths relative to the manifest


def test_test_sets_leave_out_every_speaker_the_bundle_heard():
    from experiments.bundle_transfer import test_sets

    table = pd.DataFrame({
        "corpus": "ased", "speaker": ["ased-01", "ased-01", "ased-02", "ased-02", "ased-03"],
        "emotion": ["neutral", "angry", "neutral", "angry", "sad"],
        "common_sentence": pd.array([True, False, True, False, True], dtype="boolean"),
        "vocal_channel": "speech",
    })
    across = test_sets(table, corpus="ased", trained_on={"ravdess": ["neutral", "angry", "sad", "calm"]},
                       heard={"ravdess-01"}, tested={"ravdess-02"})
    assert [(protocol, sentences) for protocol, sentences, _, _ in across] == [
        ("across corpora", "all"), ("across corpora", "common")]
    assert across[0][2] == ["neutral", "sad", "angry"] and across[0][3].all()
    np.testing.assert_array_equal(across[1][3], table["common_sentence"].to_numpy(bool))
    within = test_sets(table, corpus="ased", trained_on={"ased": ["neutral", "angry"]}, heard={"ased-01"},
                       tested={"ased-02"})  # ased-03: neither heard nor tested (e.g. absent from a manifest)
    assert within[0][0] == "within corpus" and within[0][2] == ["neutral", "angry"]
    np.testing.assert_array_equal(within[0][3], [False, False, True, True, False])
    np.testing.assert_array_equal(within[1][3], [False, False, True, False, False])


def test_a_manifest_corpus_of_ased_clips_counts_its_speakers_as_heard(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import experiments.bundle_transfer as module

    fold = SimpleNamespace(fold=0, train=["ased_common-07", "ravdess-01"], validation=["ased_common-12"],
                           test=["ased_common-20", "ravdess-02"])
    scores = [SimpleNamespace(corpus="ased_common", emotions=["neutral"]),
              SimpleNamespace(corpus="ravdess", emotions=["neutral", "calm"])]
    training = SimpleNamespace(corpora=SimpleNamespace(folds=[fold], corpora=scores))
    monkeypatch.setattr(module, "load_training", lambda path: training)
    taught, heard, tested = module.heard_speakers(tmp_path, aliases={"ased_common": "ased"})
    assert taught == {"ased": ["neutral"], "ravdess": ["neutral", "calm"]}
    assert heard == {"ased-07", "ased-12", "ravdess-01"} and tested == {"ased-20", "ravdess-02"}
    monkeypatch.setattr(module, "load_training", lambda path: SimpleNamespace(
        corpora=SimpleNamespace(folds=[fold, fold], corpora=scores)))
    with pytest.raises(SERError, match="--folds 1"):
        module.heard_speakers(tmp_path, aliases={})
