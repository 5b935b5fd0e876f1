"""``python -m ser batch``: sources, writers, resume after a kill, Ray vs ``predict``, Ray optional.

The Ray tests start a local two-CPU Ray in a subprocess (as a user runs it) and are marked
slow; ``make test`` runs them. Timings are never asserted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from ser.batch.results import FileResult, Layout
from ser.batch.runner import BatchSettings, run_batch
from ser.batch.sources import expand_sources
from ser.batch.writers import open_writer, timeline_path
from ser.errors import SERError
from ser.testing import synthetic_voice

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "models"
EXAMPLES = ROOT / "assets" / "examples"
RATE = 16000
needs_bundle = pytest.mark.skipif(not (BUNDLE / "model.keras").is_file(), reason="no model bundle in models/")


def run_cli(*args: str, prelude: str = "", timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m ser ARGS`` in a new process; ``prelude`` runs first (e.g. to hide Ray)."""
    code = f"import sys\n{prelude}\nfrom ser.__main__ import main\nsys.exit(main(sys.argv[1:]))"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=environment)


HIDE_RAY = "sys.modules['ray'] = None  # `import ray` raises ImportError, as when Ray is not installed"


# ---------------------------------------------------------------- sources


def test_sources_walk_folders_globs_and_manifests(tmp_path):
    (tmp_path / "a" / "deep").mkdir(parents=True)
    for name in ("a/one.wav", "a/deep/two.FLAC", "a/notes.md", "a/deep/cover.jpg", "three.mp3"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# header comment\n\nthree.mp3\n/elsewhere/four.wav\n")
    (tmp_path / "list.csv").write_text("speaker,path\n7,a/one.wav\n8,missing.ogg\n")
    found = expand_sources([str(tmp_path / "a"), str(tmp_path / "**" / "*.mp3"), str(tmp_path / "list.txt"),
                            str(tmp_path / "list.csv")])
    assert found.paths == [str(tmp_path / "a" / "one.wav"), str(tmp_path / "a" / "deep" / "two.FLAC"),
                           str(tmp_path / "three.mp3"), "/elsewhere/four.wav", str(tmp_path / "missing.ogg")]
    assert found.warnings == []
    assert all(os.path.isabs(path) for path in found.paths)


def test_sources_that_match_nothing_warn_and_named_files_are_kept(tmp_path):
    (tmp_path / "empty").mkdir()
    found = expand_sources([str(tmp_path / "empty"), str(tmp_path / "*.wav"), str(tmp_path / "gone.wav")])
    assert found.paths == [str(tmp_path / "gone.wav")]  # scored as an error row, not dropped silently
    assert len(found.warnings) == 2


@pytest.mark.parametrize("content, message", [("name\nx.wav\n", "no 'path' column"), ("path\n\n", None),
                                              ("path\n,\n", "empty 'path'")])
def test_bad_csv_manifests_say_what_is_wrong(tmp_path, content, message):
    manifest = tmp_path / "files.csv"
    manifest.write_text(content)
    if message is None:
        assert expand_sources([str(manifest)]).warnings  # an empty manifest is a warning
        return
    with pytest.raises(SERError, match=message):
        expand_sources([str(manifest)])


def test_a_missing_manifest_is_an_error(tmp_path):
    with pytest.raises(SERError, match="no such manifest"):
        expand_sources([str(tmp_path / "files.csv")])


# ---------------------------------------------------------------- writers

LAYOUT = Layout(emotions=("calm", "angry"), heads=("gender",))


def rows_for(paths: list[str]) -> list[dict]:
    rows = []
    for index, path in enumerate(paths):
        row = dict.fromkeys(LAYOUT.columns)
        if index % 3 == 2:
            row.update(path=path, error="bad, \"quoted\"\nline", error_kind="unreadable")
        else:
            row.update(path=path, emotion="calm", confidence=0.75, sure=True, probability_calm=0.75,
                       probability_angry=0.25, gender="female", gender_confidence=0.5 + index / 100,
                       speech_seconds=1.25, duration_seconds=3.5 + 1 / 3)
        rows.append(row)
    return rows


def writer_for(path: Path):
    return open_writer(path, columns=LAYOUT.columns, types=LAYOUT.column_types())


def read_table(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    return pd.read_parquet(path)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_writers_append_batches_and_read_their_paths_back(tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    paths = [f"/data/{name}, odd \"name\".wav" for name in "abcde"]
    writer = writer_for(out)
    assert writer.completed() == set()
    writer.write(rows_for(paths[:2]))
    writer.write([])
    writer.close()
    writer = writer_for(out)  # a second run appends
    assert writer.completed() == set(paths[:2])
    writer.write(rows_for(paths[2:]))
    writer.close()
    table = read_table(out)
    assert list(table.columns) == LAYOUT.columns and len(table) == len(paths)
    assert set(table["path"]) == set(paths)
    scored = table[table["error"].isna()]
    assert np.allclose(scored["duration_seconds"].to_numpy(dtype=float), 3.5 + 1 / 3, rtol=0, atol=0)
    assert table["error"].dropna().tolist() == ["bad, \"quoted\"\nline"]


@pytest.mark.parametrize("suffix, torn", [(".jsonl", '{"path": "/data/x.wav", "emo'),
                                          (".csv", '/data/x.wav,calm,0.5'),
                                          (".csv", '/data/x.wav,,,,,,,,,,,"half an error\nmessage')])
def test_a_row_torn_by_a_kill_is_cut_off(tmp_path, suffix, torn):
    out = tmp_path / f"results{suffix}"
    writer = writer_for(out)
    writer.write(rows_for(["/data/a.wav", "/data/b.wav"]))
    writer.close()
    with open(out, "a") as handle:
        handle.write(torn)
    writer = writer_for(out)
    assert writer.completed() == {"/data/a.wav", "/data/b.wav"} and writer.repaired
    writer.write(rows_for(["/data/x.wav"]))
    writer.close()
    assert read_table(out)["path"].tolist() == ["/data/a.wav", "/data/b.wav", "/data/x.wav"]


def test_a_csv_killed_while_writing_its_header_starts_again(tmp_path):
    out = tmp_path / "results.csv"
    out.write_text("path,emot")
    writer = writer_for(out)
    assert writer.completed() == set()
    writer.write(rows_for(["/data/a.wav"]))
    writer.close()
    assert read_table(out)["path"].tolist() == ["/data/a.wav"]


def test_a_parquet_part_left_unrenamed_by_a_kill_is_ignored(tmp_path):
    out = tmp_path / "results.parquet"
    writer = writer_for(out)
    writer.write(rows_for(["/data/a.wav"]))
    (out / ".part-x.parquet.tmp").write_bytes(b"PAR1 half a file")
    assert writer_for(out).completed() == {"/data/a.wav"}
    assert not list(out.glob(".*.tmp"))
    assert pd.read_parquet(out)["path"].tolist() == ["/data/a.wav"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_keep_only_drops_the_rows_of_files_to_score_again(tmp_path, suffix):
    out = tmp_path / f"results.timeline{suffix}"
    writer = writer_for(out)
    writer.write(rows_for(["/data/a.wav", "/data/b.wav"]))
    writer.write(rows_for(["/data/c.wav"]))
    writer.close()
    writer = writer_for(out)
    writer.completed()
    assert writer.keep_only({"/data/a.wav", "/data/c.wav"}) == 1
    assert writer.keep_only({"/data/a.wav", "/data/c.wav"}) == 0
    assert sorted(read_table(out)["path"]) == ["/data/a.wav", "/data/c.wav"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_results_of_another_model_are_not_appended_to(tmp_path, suffix):
    out = tmp_path / f"results{suffix}"
    writer = open_writer(out, columns=["path", "emotion"], types={})
    writer.write([{"path": "/data/a.wav", "emotion": "calm"}])
    writer.close()
    with pytest.raises(SERError, match="choose a new --out"):
        writer_for(out).completed()


def test_unknown_extensions_and_a_parquet_file_are_refused(tmp_path):
    with pytest.raises(SERError, match="--out must end in"):
        writer_for(tmp_path / "results.xlsx")
    (tmp_path / "single.parquet").write_bytes(b"PAR1")
    with pytest.raises(SERError, match="folder of parts"):
        writer_for(tmp_path / "single.parquet").completed()
    assert timeline_path(tmp_path / "r.csv") == tmp_path / "r.timeline.csv"


def test_layout_of_a_failed_file_has_no_answer():
    row = LAYOUT.row(FileResult(path="/x.wav", error="no speech", error_kind="no_speech", duration_seconds=2.0))
    assert row["path"] == "/x.wav" and row["emotion"] is None and row["probability_calm"] is None
    assert list(row) == LAYOUT.columns and LAYOUT.timeline_rows(FileResult(path="/x.wav")) == []


# ---------------------------------------------------------------- scoring in one process


def write_clip(path: Path, waveform: np.ndarray, *, rate: int = RATE, **options) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, waveform, rate, **options)
    return str(path)


@pytest.fixture(scope="module")
def bundle():
    from ser.serving.bundle import load_bundle

    if not (BUNDLE / "model.keras").is_file():
        pytest.skip("no model bundle in models/")
    return load_bundle(BUNDLE)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory) -> Path:
    """Three voices (one 8 s, longer than a window), a silent file and a text file named .wav."""
    folder = tmp_path_factory.mktemp("mixed")
    for index, seconds in enumerate((2.5, 2.9, 8.0)):
        write_clip(folder / f"voice-{index}.flac", synthetic_voice(seconds=seconds, pitch=120 + 40 * index, seed=index))
    write_clip(folder / "silence.wav", np.zeros(RATE * 2, dtype=np.float32))
    (folder / "notes.wav").write_text("not audio")
    return folder


@needs_bundle
def test_one_process_run_scores_every_file_and_a_rerun_skips_them(tmp_path, bundle, mixed_folder):
    out = tmp_path / "results.jsonl"
    settings = BatchSettings(out=out, model=BUNDLE, engine="process", batch_size=2, timeline=True, progress=False)
    report = run_batch([str(mixed_folder)], settings=settings, bundle=bundle, log=lambda message: None)
    assert (report.found, report.skipped, report.scored + report.failed) == (5, 0, 5)
    assert report.failures == {"no_speech": 1, "unreadable": 1} and sum(report.emotions.values()) == report.scored
    table = read_table(out)
    assert sorted(table["path"]) == sorted(str(path) for path in mixed_folder.iterdir())
    failed = table.set_index("path").loc[str(mixed_folder / "notes.wav")]
    assert failed["error_kind"] == "unreadable" and "not a readable audio file" in failed["error"]
    assert not failed["error"].startswith(str(mixed_folder))  # the path has its own column
    scored = table[table["error"].isna()]
    probabilities = scored[[column for column in table.columns if column.startswith("probability_")]]
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert (scored["confidence"] == probabilities.max(axis=1)).all()
    # Only the recording longer than one window has a timeline, one row per window.
    windows = read_table(timeline_path(out))
    assert set(windows["path"]) == {str(mixed_folder / "voice-2.flac")} and len(windows) >= 5
    assert (windows["end_seconds"] > windows["start_seconds"]).all()
    assert "resuming" not in "".join(report.summary())
    again = run_batch([str(mixed_folder)], settings=settings, bundle=bundle, log=lambda message: None)
    assert (again.skipped, again.scored, again.failed) == (5, 0, 0)
    assert len(read_table(out)) == 5 and len(read_table(timeline_path(out))) == len(windows)


@needs_bundle
def test_a_calibrated_run_gives_the_answers_of_predict_reference(tmp_path, bundle, mixed_folder):
    from ser.batch.results import SpeakerReference
    from ser.serving.audio import decode_audio
    from ser.serving.segments import score_recording
    from ser.serving.speaker import calibrate_bundle

    reference_path = EXAMPLES / "03-01-01-01-01-01-12.flac"
    reference = SpeakerReference.from_files([reference_path])
    out = tmp_path / "calibrated.csv"
    notes = []
    settings = BatchSettings(out=out, model=BUNDLE, engine="process", progress=False, reference=reference)
    report = run_batch([str(mixed_folder)], settings=settings, bundle=bundle, log=notes.append)
    assert report.scored == 3 and any("calibrated to the speaker" in note for note in notes)
    # one sentence (under 2 s of speech) is a short reference: said as predict --reference says it
    warnings = [note for note in notes if note.startswith("--reference: warning: ")]
    assert len(warnings) == 1 and "It is short" in warnings[0] and "does not sound like" not in warnings[0]
    table = read_table(out).set_index("path")
    adaptation = calibrate_bundle(bundle, references=[str(reference_path)])
    for name in ("voice-0.flac", "voice-2.flac"):
        path = mixed_folder / name
        recording = bundle.recording(decode_audio(path, sample_rate=RATE), sample_rate=RATE)
        expected = score_recording(recording, bundle=bundle, adaptation=adaptation)
        row = table.loc[str(path)]
        assert row["emotion"] == expected.overall.emotion
        assert row["confidence"] == pytest.approx(expected.overall.confidence, abs=1e-6)
        assert row["unadapted_emotion"] == expected.unadapted.emotion
        assert row["unadapted_confidence"] == pytest.approx(expected.unadapted.confidence, abs=1e-6)


def test_a_reference_without_speech_stops_the_run_before_scoring(tmp_path):
    from ser.batch.results import SpeakerReference
    from ser.serving.analysis import waveform_to_wav

    silent = SpeakerReference(names=("me.wav",), contents=(waveform_to_wav(np.zeros(RATE * 3), sample_rate=RATE),))
    with pytest.raises(SERError, match="me.wav"):
        run_batch([str(EXAMPLES)], settings=BatchSettings(out=tmp_path / "r.csv", reference=silent))
    assert not (tmp_path / "r.csv").exists()


# ---------------------------------------------------------------- as a user runs it


@needs_bundle
def test_without_ray_it_scores_in_one_process_and_says_how_to_scale_out(tmp_path):
    out = tmp_path / "results.csv"
    clips = [str(path) for path in sorted(EXAMPLES.glob("*.flac"))[:3]]
    result = run_cli("batch", *clips, "--out", str(out), "--no-progress", prelude=HIDE_RAY)
    assert result.returncode == 0, result.stderr
    assert "Ray is not installed" in result.stderr and "requirements-batch.txt" in result.stderr
    assert "engine: process" in result.stdout and "scored 3" in result.stdout
    assert sorted(read_table(out)["path"]) == clips
    asked = run_cli("batch", *clips, "--out", str(tmp_path / "again.csv"), "--engine", "ray", prelude=HIDE_RAY)
    assert asked.returncode == 2 and "requirements-batch.txt" in asked.stderr
    assert not (tmp_path / "again.csv").exists()


def test_bad_options_are_one_line_and_exit_2(tmp_path):
    for args, message in (([str(EXAMPLES), "--out", str(tmp_path / "r.xlsx")], "--out must end in"),
                          ([str(tmp_path / "*.wav"), "--out", str(tmp_path / "r.csv")], "name no audio files"),
                          ([str(EXAMPLES), "--out", str(tmp_path / "r.csv"), "--batch-size", "0"], "--batch-size")):
        result = run_cli("batch", *args, "--no-progress")
        assert result.returncode == 2 and message in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith("error: ")


@needs_bundle
def test_predict_and_the_app_do_not_import_ray():
    code = """
import contextlib, importlib, io, json, pkgutil, sys
import ser.serving, ser.batch, ser.batch.cli
for module in pkgutil.iter_modules(ser.serving.__path__):
    importlib.import_module(f"ser.serving.{module.name}")
from ser.__main__ import main
with contextlib.redirect_stdout(io.StringIO()):
    main(["predict", "--json", "assets/examples/03-01-05-02-01-01-12.flac"])
print(json.dumps(sorted(name for name in sys.modules if name == "ray" or name.startswith("ray."))))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    import ast

    for source in [ROOT / "app.py", ROOT / "app_ui.py", *sorted((ROOT / "pages").glob("*.py"))]:
        for node in ast.walk(ast.parse(source.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "ray" or name.startswith("ser.batch") for name in names), source


def complete_rows(out: Path) -> int:
    """Rows a reader would see now (what a resumed run must skip)."""
    if out.suffix == ".jsonl":
        return out.read_bytes().count(b"\n") if out.exists() else 0
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(part).num_rows for part in out.glob("part-*.parquet")) if out.exists() else 0


@pytest.fixture(scope="module")
def long_voices(tmp_path_factory) -> list[str]:
    folder = tmp_path_factory.mktemp("voices")
    return [write_clip(folder / f"voice-{index:02d}.flac",
                       synthetic_voice(seconds=4.5, pitch=100 + 5 * index, seed=index)) for index in range(14)]


@needs_bundle
@pytest.mark.slow
def test_a_killed_run_resumes_and_scores_no_file_twice(tmp_path, long_voices):
    # Parquet: the folder-of-parts writer (a torn JSON line or CSV row is tested above).
    out = tmp_path / "results.parquet"
    manifest = tmp_path / "files.txt"
    manifest.write_text("\n".join(long_voices) + "\n")
    args = ["batch", str(manifest), "--out", str(out), "--engine", "process", "--batch-size", "1", "--timeline",
            "--no-progress"]
    process = subprocess.Popen([sys.executable, "-m", "ser", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 300
    try:
        while complete_rows(out) < 2:
            assert process.poll() is None, f"the run ended before it was killed: {process.stderr.read()}"
            assert time.monotonic() < deadline, "no rows written in 5 minutes"
            time.sleep(0.02)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        process.stderr.close()
    written = complete_rows(out)
    assert 2 <= written < len(long_voices), "the run was not stopped part-way"
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"skipped {written} files already in {out}" in lines  # none scored twice ...
    assert f"scored {len(long_voices) - written}" in lines  # ... and the rest scored once
    table = read_table(out)
    assert sorted(table["path"]) == sorted(long_voices) and table["error"].isna().all()
    windows = read_table(timeline_path(out))
    assert not windows.duplicated(["path", "start_seconds"]).any()
    per_file = windows.groupby("path").size()
    assert sorted(per_file.index) == sorted(long_voices) and per_file.nunique() == 1  # same length, same windows


@pytest.fixture(scope="module")
def equality_clips(tmp_path_factory) -> list[str]:
    """The 16 examples, 16 re-encoded/padded variants, a 14 s recording and three bad files."""
    import shutil

    from ser.serving.audio import resample

    folder = tmp_path_factory.mktemp("equality")
    examples = sorted(EXAMPLES.glob("*.flac"))
    paths = [shutil.copy(path, folder / path.name) for path in examples]
    for index, path in enumerate(examples[:8]):
        waveform, rate = soundfile.read(path, dtype="float32")
        if index % 2:
            paths.append(write_clip(folder / "variants" / f"{path.stem}-quiet.ogg", 0.3 * waveform, rate=rate,
                                    format="OGG", subtype="VORBIS"))
        else:
            paths.append(write_clip(folder / "variants" / f"{path.stem}-48k.wav",
                                    resample(waveform, orig_sample_rate=rate, target_sample_rate=48000), rate=48000,
                                    subtype="PCM_16"))
        silence = np.zeros(rate, dtype=np.float32)
        paths.append(write_clip(folder / "variants" / f"{path.stem}-padded.flac",
                                np.concatenate([silence, waveform, silence]), rate=rate))
    recording = np.concatenate([soundfile.read(path, dtype="float32")[0] for path in examples[::4]])
    paths.append(write_clip(folder / "recording.flac", recording))
    paths.append(write_clip(folder / "silent.wav", np.zeros(2 * RATE, dtype=np.float32)))
    (folder / "notes.wav").write_text("not audio")
    (folder / "empty.flac").write_bytes(b"")
    return sorted([str(path) for path in paths] + [str(folder / "notes.wav"), str(folder / "empty.flac")])


@needs_bundle
@pytest.mark.slow
def test_ray_with_two_workers_answers_as_predict_does(tmp_path, equality_clips):
    predicted = run_cli("predict", "--json", *equality_clips)
    answers = {record["path"]: record for record in map(json.loads, predicted.stdout.splitlines())}
    errors = {}
    for line in predicted.stderr.splitlines():
        path = next(path for path in equality_clips if line.startswith(f"error: {path}: "))
        errors[path] = line[len(f"error: {path}: "):]
    assert sorted([*answers, *errors]) == equality_clips and len(errors) == 3

    # Half the files in one process first: the Ray run resumes from them.
    out = tmp_path / "results.parquet"
    manifest = tmp_path / "half.txt"
    manifest.write_text("\n".join(equality_clips[::2]))
    first = run_cli("batch", str(manifest), "--out", str(out), "--engine", "process", "--timeline", "--no-progress")
    assert first.returncode == 0, first.stderr
    folder = str(Path(equality_clips[0]).parent)
    second = run_cli("batch", folder, "--out", str(out), "--workers", "2", "--batch-size", "4", "--timeline",
                     "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "engine: ray, 2 workers" in second.stdout
    assert f"skipped {len(equality_clips[::2])} files already in {out}" in second.stdout.splitlines()

    table = pd.read_parquet(out).set_index("path")
    assert sorted(table.index) == equality_clips
    for path, record in answers.items():
        row = table.loc[path]
        assert pd.isna(row["error"]) and row["emotion"] == record["emotion"] and row["sure"] == record["sure"]
        assert row["unfamiliar"] == ";".join(record["unfamiliar"])  # the same checks, one column
        for emotion, probability in record["probabilities"].items():
            assert row[f"probability_{emotion}"] == pytest.approx(probability, abs=1e-6)
        assert row["confidence"] == pytest.approx(record["confidence"], abs=1e-6)
        for head in ("gender", "intensity"):
            assert row[head] == max(record[head], key=record[head].get)
            assert row[f"{head}_confidence"] == pytest.approx(max(record[head].values()), abs=1e-6)
        assert row["speech_seconds"] == pytest.approx(record["speech_seconds"], abs=1e-9)
    for path, message in errors.items():
        assert table.loc[path, "error"] == message and table.loc[path, "error_kind"] in ("unreadable", "no_speech")
    windows = pd.read_parquet(timeline_path(out))
    recording = [path for path in equality_clips if path.endswith("recording.flac")][0]
    assert (windows["path"] == recording).sum() >= 10 and not windows.duplicated(["path", "start_seconds"]).any()
    longer = table.index[table["duration_seconds"] > 3.0]
    assert set(windows["path"]) == set(longer) - set(errors)
