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
