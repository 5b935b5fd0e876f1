from pathlib import Path

import numpy as np
import pytest

from ser.errors import DatasetError
from ser.training.corpora import corpus_emotions, index_corpora, index_corpus, read_manifest
from ser.training.data import EMOTIONS, TABLE_COLUMNS


def _manifest(folder: Path, text: str, *, name: str = "mine.csv", files: tuple[str, ...] = ("a.wav", "b.wav")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).parent.mkdir(parents=True, exist_ok=True)
        (folder / file).write_bytes(b"x")
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_paths_relative_to_it_and_optional_gender(tmp_path):
    path = _manifest(tmp_path / "corpus", "path,emotion,speaker,gender\na.wav,Happy,p1,female\nsub/b.wav,sad,p2,\n",
                     files=("a.wav", "sub/b.wav"))
    table = read_manifest(path)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["path"].tolist() == [str((tmp_path / "corpus" / "a.wav").resolve()),
                                      str((tmp_path / "corpus" / "sub" / "b.wav").resolve())]
    assert table["emotion"].tolist() == ["happy", "sad"]
    assert table["speaker"].tolist() == ["mine-p1", "mine-p2"] and set(table["corpus"]) == {"mine"}
    assert table["gender"].tolist() == ["female", None]
    assert table["sentence"].isna().all() and table["common_sentence"].isna().all()


def test_manifest_without_gender_column_and_bom(tmp_path):
    path = tmp_path / "m.csv"
    (tmp_path / "a.wav").write_bytes(b"x")
    path.write_bytes("\ufeffpath,emotion,speaker\na.wav,angry,s\n".encode())
    assert read_manifest(path, corpus="lab")["speaker"].tolist() == ["lab-s"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("path,emotion\na.wav,happy\n", "missing column(s) ['speaker']"),
        ("path,emotion,speaker,age\na.wav,happy,p,3\n", "unknown column(s) ['age']"),
        ("path,emotion,speaker,speaker\na.wav,happy,p,p\n", "repeated column(s)"),
        ("", "the manifest is empty"),
        ("path,emotion,speaker\n", "lists no clips"),
    ],
)
def test_bad_manifest_header_or_no_rows(tmp_path, text, expected):
    with pytest.raises(DatasetError) as error:
        read_manifest(_manifest(tmp_path, text))
    assert expected in str(error.value) and "mine.csv" in str(error.value)


@pytest.mark.parametrize(
    "row,expected",
    [
        ("a.wav,anger,p1", "line 3: unknown emotion 'anger' (did you mean 'angry'?)"),
        ("a.wav,bored,p1", "line 3: unknown emotion 'bored'; use one of neutral"),
        ("missing.wav,happy,p1", "line 3: no such file 'missing.wav'"),
        ("a.wav,happy,", "line 3: empty speaker"),
        (",happy,p1", "line 3: empty path"),
        ("a.wav,happy,p1,female", "line 3: 4 field(s), expected 3"),
        ("b.wav,happy,p1\na.wav,sad,p1", "line 4: 'a.wav' is listed again (first on line 2)"),
    ],
)
def test_bad_manifest_rows_name_the_line_and_the_problem(tmp_path, row, expected):
    with pytest.raises(DatasetError) as error:
        read_manifest(_manifest(tmp_path, f"path,emotion,speaker\na.wav,happy,p0\n{row}\n"))
    assert expected in str(error.value)


def test_bad_gender_and_every_problem_reported_at_once(tmp_path):
    path = _manifest(tmp_path, "path,emotion,speaker,gender\na.wav,happy,p,x\nb.wav,joy,,female\n")
    with pytest.raises(DatasetError) as error:
        read_manifest(path)
    message = str(error.value)
    assert "3 problem(s)" in message and "line 2: unknown gender 'x'" in message
    assert "line 3: unknown emotion 'joy'" in message and "line 3: empty speaker" in message


def test_missing_or_non_utf8_manifest(tmp_path):
    with pytest.raises(DatasetError, match="no such manifest"):
        read_manifest(tmp_path / "nope.csv")
    path = tmp_path / "latin.csv"
    path.write_bytes("path,emotion,speaker\ncaf\xe9.wav,happy,p\n".encode("latin-1"))
    with pytest.raises(DatasetError, match="not UTF-8"):
        read_manifest(path)


def test_index_corpora_joins_folders_and_manifests(tmp_path):
    for name in ("03-01-01-01-01-01-01.wav", "03-01-05-01-01-01-02.wav"):
        (tmp_path / "rav").mkdir(exist_ok=True)
        (tmp_path / "rav" / name).write_bytes(b"x")
    (tmp_path / "ased").mkdir()
    (tmp_path / "ased" / "a5-03-01-02-01.flac").write_bytes(b"x")
    manifest = _manifest(tmp_path / "own", "path,emotion,speaker\na.wav,surprised,01\n", files=("a.wav",))
    table = index_corpora([tmp_path / "rav", tmp_path / "ased", manifest])
    assert sorted(set(table["corpus"])) == ["ased", "mine", "ravdess"]
    assert table.groupby("speaker")["corpus"].nunique().max() == 1  # a speaker id never spans corpora
    assert {"ravdess-01", "ased-01", "mine-01"} <= set(table["speaker"])
    emotions = corpus_emotions(table)
    assert emotions == {"ased": ("angry",), "mine": ("surprised",), "ravdess": ("neutral", "angry")}
    assert all(set(values) <= set(EMOTIONS) for values in emotions.values())


def test_index_corpora_refuses_repeats_and_unknown_folders(tmp_path):
    manifest = _manifest(tmp_path, "path,emotion,speaker\na.wav,happy,p\n")
    with pytest.raises(DatasetError, match="both corpus"):
        index_corpora([manifest, manifest])
    other = _manifest(tmp_path, "path,emotion,speaker\na.wav,sad,q\n", name="other.csv")
    with pytest.raises(DatasetError, match="two corpora"):
        index_corpora([manifest, other])
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "my_clip.wav").write_bytes(b"x")
    with pytest.raises(DatasetError, match="CSV manifest"):
        index_corpus(tmp_path / "clips")
    with pytest.raises(DatasetError, match="no corpus"):
        index_corpora([])


def test_manifest_table_is_typed_like_the_others(tmp_path):
    table = read_manifest(_manifest(tmp_path, "path,emotion,speaker\na.wav,happy,p\n"))
    assert str(table["sentence"].dtype) == "Int64" and str(table["common_sentence"].dtype) == "boolean"
    assert np.array_equal(table["vocal_channel"].to_numpy(), np.array(["speech"], dtype=object))


# ---- protocol helpers: class masks, speaker folds, reference clips ---------------------------

import pandas as pd  # noqa: E402

from ser.training.corpora import emotion_mask, fold_speakers, reference_clips, speaker_folds  # noqa: E402
from ser.training.data import table_from_rows  # noqa: E402
from ser.training.splits import actor_folds  # noqa: E402


def _table(rows):
    return table_from_rows([
        {"path": f"/x/{i}", "corpus": corpus, "speaker": speaker, "gender": gender, "emotion": emotion,
         "sentence": sentence, "text": text, "common_sentence": common, "repetition": repetition,
         "vocal_channel": "speech", "intensity": None}
        for i, (corpus, speaker, gender, emotion, sentence, text, common, repetition) in enumerate(rows)
    ])


def _ravdess_like(actors=range(1, 21)):
    return _table([("ravdess", f"ravdess-{a:02d}", "male" if a % 2 else "female", "neutral", 1, "s1", True, 1)
                   for a in actors])


def test_speaker_folds_reproduce_the_headline_actor_folds():
    folds = speaker_folds(_ravdess_like(), n_folds=5, seed=0)
    expected = actor_folds(list(range(1, 21)), n_folds=5, seed=0)
    assert folds == [[f"ravdess-{a:02d}" for a in fold] for fold in expected]


def test_joint_folds_are_disjoint_cover_everyone_and_keep_each_corpus_split():
    other = _table([("ased", f"ased-{s:02d}", ["male", "female", None][s % 3], "sad", 3, "t", False, 1)
                    for s in range(1, 31)])
    table = pd.concat([_ravdess_like(), other], ignore_index=True)
    for fold in range(5):
        train, validation, test = fold_speakers(table, n_folds=5, fold=fold, seed=0)
        assert not (set(train) & set(validation)) and not (set(train) & set(test)) and not (set(validation) & set(test))
        assert set(train) | set(validation) | set(test) == set(table["speaker"])
        assert {s.split("-")[0] for s in test} == {"ravdess", "ased"}
    ravdess_only = speaker_folds(_ravdess_like(), n_folds=5, seed=0)
    joint = speaker_folds(table, n_folds=5, seed=0)
    assert [[s for s in fold if s.startswith("ravdess")] for fold in joint] == ravdess_only
    with pytest.raises(ValueError, match="n_folds"):
        speaker_folds(_ravdess_like(range(1, 4)), n_folds=5, seed=0)


def test_emotion_mask_follows_each_rows_corpus():
    table = _table([("a", "a-1", "male", "happy", None, None, None, None),
                    ("a", "a-1", "male", "sad", None, None, None, None),
                    ("b", "b-1", "male", "calm", None, None, None, None)])
    mask = emotion_mask(table)
    assert mask.shape == (3, len(EMOTIONS)) and mask.dtype == bool
    assert [EMOTIONS[i] for i in np.flatnonzero(mask[0])] == ["happy", "sad"]
    assert [EMOTIONS[i] for i in np.flatnonzero(mask[2])] == ["calm"]
    with pytest.raises(ValueError, match="no emotions known"):
        emotion_mask(table, emotions={"a": ("happy",)})


def test_reference_clips_two_neutral_per_speaker_distinct_words_specific_sentences_first():
    table = _table([
        ("ased", "ased-01", "male", "neutral", 1, "common-1", True, 1),
        ("ased", "ased-01", "male", "neutral", 3, "neutral-3", False, 2),
        ("ased", "ased-01", "male", "neutral", 3, "neutral-3", False, 1),
        ("ased", "ased-01", "male", "neutral", 4, "neutral-4", False, 1),
        ("ased", "ased-01", "male", "angry", 1, "common-1", True, 1),
        ("ased", "ased-02", "female", "neutral", 1, "common-1", True, 1),  # one neutral clip: no reference
        ("ased", "ased-03", "female", "neutral", 1, "common-1", True, 1),
        ("ased", "ased-03", "female", "neutral", 1, "common-1", True, 2),
    ])
    chosen = reference_clips(table)
    assert chosen.tolist() == [False, False, True, True, False, False, True, True]
    assert not chosen[table["emotion"] != "neutral"].any()


def _speechocean(folder: Path, lines: list[str], *, files: tuple[str, ...] = ("0001_1.flac", "0002_1.flac")) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for file in files:
        (folder / file).write_bytes(b"x")
    (folder / "speakers.csv").write_text("file,speaker,gender,age,text\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_speechocean_clips_carry_the_partial_label_and_teach_all_eight(tmp_path):
    from ser.training.corpora import NEUTRAL_OR_CALM, index_speechocean, target_mask

    folder = _speechocean(tmp_path / "so", ["0001_1.flac,0001,m,6,WE CALL IT BEAR", "0002_1.flac,0002,f,30,ZERO"])
    table = index_speechocean(folder)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert table["speaker"].tolist() == ["speechocean-0001", "speechocean-0002"]
    assert table["gender"].tolist() == ["male", "female"] and set(table["emotion"]) == {NEUTRAL_OR_CALM}
    assert corpus_emotions(table) == {"speechocean": EMOTIONS}
    assert emotion_mask(table).all()
    targets = target_mask(table)
    assert [EMOTIONS[i] for i in np.flatnonzero(targets[0])] == ["neutral", "calm"]
    # Single labels keep their one target, and corpora without partial labels teach what they have.
    mixed = _table([("a", "a-1", "male", "happy", None, None, None, None)])
    assert target_mask(mixed).sum() == 1 and target_mask(mixed)[0, EMOTIONS.index("happy")]
    assert corpus_emotions(mixed) == {"a": ("happy",)}


def test_speechocean_listing_problems_are_named(tmp_path):
    from ser.training.corpora import index_speechocean, target_mask

    with pytest.raises(DatasetError, match="speakers.csv: no such file"):
        index_speechocean(tmp_path)
    folder = _speechocean(tmp_path / "so", ["0001_1.flac,0001,x,6,A", "0003_1.flac,0003,m,7,B"])
    with pytest.raises(DatasetError, match=r"(?s)line 2: gender 'x'.*line 3: no such file '0003_1.flac'"):
        index_speechocean(folder)
    with pytest.raises(DatasetError, match="unknown label"):
        target_mask(_table([("a", "a-1", "male", "bored", None, None, None, None)]))


def test_index_corpora_recognises_a_speechocean_folder_by_its_listing(tmp_path):
    from ser.training.corpora import NEUTRAL_OR_CALM

    (tmp_path / "rav").mkdir()
    (tmp_path / "rav" / "03-01-01-01-01-01-01.wav").write_bytes(b"x")
    # speechocean's file names follow no corpus's pattern: its speakers.csv is what says which corpus it is.
    folder = _speechocean(tmp_path / "so", ["0001_1.flac,0001,m,6,A", "0002_1.flac,0002,f,30,B"])
    table = index_corpora([tmp_path / "rav", folder])
    assert table["corpus"].tolist() == ["ravdess", "speechocean", "speechocean"]
    assert table["emotion"].tolist()[1:] == [NEUTRAL_OR_CALM] * 2
    assert index_corpus(folder, corpus="ocean")["speaker"].tolist() == ["ocean-0001", "ocean-0002"]
    (folder / "speakers.csv").unlink()
    with pytest.raises(DatasetError, match="no speechocean speakers.csv"):
        index_corpus(folder)
