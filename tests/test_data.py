from pathlib import Path

import pytest

from ser.errors import DatasetError
from ser.training.data import EMOTIONS, index_dataset, parse_ravdess_name


def test_parse_full_example():
    item = parse_ravdess_name("03-01-05-02-01-02-12.wav")
    assert item.modality == 3
    assert item.vocal_channel == "speech"
    assert item.emotion == "angry"
    assert item.intensity == "strong"
    assert item.statement == 1
    assert item.repetition == 2
    assert item.actor == 12
    assert item.gender == "female"


@pytest.mark.parametrize("code,emotion", [(f"{i + 1:02d}", e) for i, e in enumerate(EMOTIONS)])
def test_every_emotion_code(code, emotion):
    assert parse_ravdess_name(f"03-02-{code}-01-02-01-07.flac").emotion == emotion


def test_song_and_male_from_odd_actor_with_folders():
    item = parse_ravdess_name(Path("some/dir/Actor_07/03-02-03-01-02-01-07.flac"))
    assert item.vocal_channel == "song"
    assert item.gender == "male"


@pytest.mark.parametrize(
    "name",
    ["readme.txt", "03-01-05-02-01-02.wav", "03-01-09-01-01-01-01.wav", "03-03-01-01-01-01-01.wav",
     "03-01-01-03-01-01-01.wav", "03-01-01-01-01-01-00.wav", "aa-01-01-01-01-01-01.wav", ""],
)
def test_malformed_names_name_the_file_and_pattern(name):
    with pytest.raises(DatasetError) as error:
        parse_ravdess_name(name)
    assert "expected" in str(error.value)
    assert "MM-VV-EE-II-SS-RR-AA" in str(error.value)


def test_index_any_depth_wav_and_flac(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "03-01-01-01-01-01-01.wav").write_bytes(b"x")
    (tmp_path / "a" / "03-02-04-02-01-02-02.FLAC").write_bytes(b"x")
    (tmp_path / "notes.md").write_text("ignored")
    table = index_dataset(tmp_path)
    assert len(table) == 2
    assert set(table["emotion"]) == {"neutral", "sad"}
    assert set(table["actor"]) == {1, 2}


def test_index_reports_malformed_file(tmp_path):
    (tmp_path / "03-01-01-01-01-01-01.wav").write_bytes(b"x")
    (tmp_path / "bad-name.wav").write_bytes(b"x")
    with pytest.raises(DatasetError, match="bad-name.wav"):
        index_dataset(tmp_path)


def test_index_missing_or_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match="no such folder"):
        index_dataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no .wav or .flac"):
        index_dataset(tmp_path)


def test_example_clips_parse():
    table = index_dataset(Path(__file__).resolve().parent.parent / "assets" / "examples")
    assert len(table) == 16
    assert sorted(set(table["emotion"])) == sorted(EMOTIONS)


# ---- ASED and the corpus table -------------------------------------------------------------

from ser.training.data import (  # noqa: E402
    ASED_COMMON_SENTENCES,
    TABLE_COLUMNS,
    index_ased,
    index_ravdess,
    name_format,
    parse_ased_name,
)

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_parse_ased_example_and_every_emotion():
    item = parse_ased_name("05Angry/a5-03-01-02-50.wav")
    assert (item.emotion, item.sentence, item.repetition, item.gender, item.speaker) == ("angry", 3, 1, "male", 50)
    assert not item.common_sentence
    for code, emotion in (("n1", "neutral"), ("f2", "fearful"), ("h3", "happy"), ("s4", "sad"), ("a5", "angry")):
        assert parse_ased_name(f"{code}-01-02-01-07.flac").emotion == emotion
    assert parse_ased_name("S4-04-02-01-29.flac").emotion == "sad"  # the one upper-case name at the source


@pytest.mark.parametrize("sentence", range(1, 8))
def test_ased_common_sentences_are_01_and_02(sentence):
    assert parse_ased_name(f"h3-{sentence:02d}-01-01-01.flac").common_sentence == (sentence in (1, 2))
    assert ASED_COMMON_SENTENCES == (1, 2)


@pytest.mark.parametrize(
    "name",
    ["x1-01-01-01-01.flac", "n2-01-01-01-01.flac", "n1-08-01-01-01.flac", "n1-00-01-01-01.flac",
     "n1-01-03-01-01.flac", "n1-01-01-03-01.flac", "n1-01-01-01-00.flac", "n1-01-01-01.flac", "notes.flac"],
)
def test_malformed_ased_names_name_the_file_and_pattern(name):
    with pytest.raises(DatasetError) as error:
        parse_ased_name(name)
    assert name in str(error.value) and "xn-yy-rr-gg-ss" in str(error.value)


def test_name_format_tells_the_corpora_apart():
    assert name_format("03-01-05-02-01-02-12.flac") == "ravdess"
    assert name_format("a5-03-01-02-50.flac") == "ased"
    assert name_format("my_clip.wav") is None


def test_index_ased_majority_gender_unique_speakers_and_columns(tmp_path):
    # Speaker 9: three files coded female, one slip coded male -> female throughout.
    _touch(
        tmp_path,
        "01Neutral/n1-03-01-01-09.flac", "01Neutral/n1-04-01-01-09.flac", "03Happy/h3-01-01-01-09.flac",
        "05Angry/a5-02-02-02-09.flac", "05Angry/a5-03-01-02-10.flac",
    )
    table = index_ased(tmp_path)
    assert tuple(table.columns) == TABLE_COLUMNS
    assert set(table["corpus"]) == {"ased"}
    assert set(table.loc[table["speaker"] == "ased-09", "gender"]) == {"female"}
    assert set(table.loc[table["speaker"] == "ased-10", "gender"]) == {"male"}
    common = table.set_index("path")["common_sentence"]
    assert common[str(tmp_path / "03Happy/h3-01-01-01-09.flac")]
    assert not common[str(tmp_path / "01Neutral/n1-03-01-01-09.flac")]
    # The same words share a text id across emotions only for the common sentences.
    texts = dict(zip(table["path"].map(lambda p: Path(p).stem), table["text"], strict=True))
    assert texts["h3-01-01-01-09"] == "ased-common-1" and texts["a5-02-02-02-09"] == "ased-common-2"
    assert texts["n1-03-01-01-09"] == "ased-neutral-3" != texts["a5-03-01-02-10"]
    assert table["intensity"].isna().all() and set(table["vocal_channel"]) == {"speech"}


def test_index_ased_refuses_duplicates_and_bad_names(tmp_path):
    _touch(tmp_path, "n1-03-01-01-09.flac", "n1-03-01-01-09.wav")
    with pytest.raises(DatasetError, match="same recording"):
        index_ased(tmp_path)
    (tmp_path / "n1-03-01-01-09.wav").unlink()
    _touch(tmp_path, "n1-09-01-01-09.flac")
    with pytest.raises(DatasetError, match="n1-09-01-01-09"):
        index_ased(tmp_path)


def test_index_ravdess_table_and_speakers_unique_across_corpora(tmp_path):
    _touch(tmp_path / "rav", "03-01-01-01-01-01-01.wav", "03-02-04-02-02-02-02.wav")
    _touch(tmp_path / "ased", "n1-03-01-01-01.flac")
    ravdess, ased = index_ravdess(tmp_path / "rav"), index_ased(tmp_path / "ased")
    assert tuple(ravdess.columns) == TABLE_COLUMNS
    assert set(ravdess["speaker"]) == {"ravdess-01", "ravdess-02"}
    assert set(ravdess["speaker"]).isdisjoint(ased["speaker"])  # actor 1 and ASED speaker 1 differ
    assert ravdess["common_sentence"].all()  # both statements are spoken in every emotion
    assert list(ravdess["vocal_channel"]) == ["speech", "song"]
    assert list(ravdess["intensity"]) == ["normal", "strong"]


def test_index_dataset_unchanged_for_current_callers(tmp_path):
    _touch(tmp_path, "03-01-05-02-01-02-12.wav")
    table = index_dataset(tmp_path)
    assert list(table.columns) == [
        "path", "modality", "vocal_channel", "emotion", "intensity", "statement", "repetition", "actor", "gender",
    ]


@pytest.mark.skipif(not (SHARED / "ased").is_dir(), reason="the shared ASED copy is not on this machine")
def test_real_ased_counts_and_common_sentence_structure():
    table = index_ased(SHARED / "ased")
    assert len(table) == 2470 and table["speaker"].nunique() == 65
    counts = table.groupby("emotion").size().to_dict()
    assert counts == {"neutral": 521, "fearful": 510, "happy": 485, "sad": 469, "angry": 485}
    genders = table.groupby("speaker")["gender"].first().value_counts().to_dict()
    assert genders == {"male": 40, "female": 25}
    assert (table.groupby("speaker")["gender"].nunique() == 1).all()
    # Emotion-specific sentences (03-07) were recorded as one set: the same speakers in every
    # emotion; the common ones (01, 02) were kept per emotion by the judges: different sets.
    speakers = table.groupby(["emotion", "sentence"])["speaker"].agg(frozenset)
    specific = {speakers[(emotion, sentence)] for emotion in counts for sentence in range(3, 8)}
    common = {speakers[(emotion, sentence)] for emotion in counts for sentence in (1, 2)}
    assert len(specific) == 1 and len(common) > 1


@pytest.mark.skipif(not (SHARED / "ravdess").is_dir(), reason="the shared RAVDESS copy is not on this machine")
def test_real_ravdess_table():
    table = index_ravdess(SHARED / "ravdess")
    speech = table[table["vocal_channel"] == "speech"]
    assert len(speech) == 1200 and speech["speaker"].nunique() == 20
