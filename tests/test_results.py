"""The result files: typed loaders, one writer per file, and the model card rendered from them."""

from __future__ import annotations

import ast
import dataclasses
import json
import re
from pathlib import Path

import pytest

from ser.config import read_json, write_json
from ser.reporting import results as r
from ser.reporting.bench_results import BenchResults, load_bench
from ser.reporting.model_card import README_END, render, results_table, update_readme
from ser.reporting.model_results import load_model_results
from ser.reporting.schema import ResultsError, to_json, write_results
from tests.conftest import ROOT

SHA = "a" * 64
LABELS = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]
FEATURES = {"sample_rate": 16000, "n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64, "fmin": 50.0,
            "fmax": 8000.0, "window_seconds": 3.0, "window_hop_seconds": 1.0, "trim_top_db": 40.0,
            "min_speech_seconds": 0.3, "functionals": "ComParE_2016", "functionals_rms": 0.05}


def _common(cls: type, **fields):
    return cls(schema=r.SCHEMAS[cls], model_sha256=SHA, measured="2030-01-02 03:04 UTC", command=r.FILES[cls][1],
               versions={"python": "3.11"}, **fields)


def training_fixture() -> r.TrainingResults:
    """Synthetic but complete train results: 8 emotions, 2 folds of 4 actors."""
    per_class = {label: r.ClassScores(precision=0.5, recall=0.25 + 0.05 * k, f1=0.4, support=10)
                 for k, label in enumerate(LABELS)}
    counts = [[10 if row == col else (3 if col == (row + 1) % 8 else 0) for col in range(8)] for row in range(8)]
    views = {name: r.ViewScores(accuracy=acc, uar=acc + 0.01, macro_f1=acc - 0.01)
             for name, acc in (("log_mel_cnn", 0.41), ("functionals", 0.52), ("voicing", 0.33), ("fused", 0.6123),
                               ("averaged", 0.58))}
    reliability = r.Reliability(confidence=[0.1, 0.5, 0.9], accuracy=[0.0, 0.5, 0.8], count=[0, 5, 5])
    cv = r.CrossValidationSummary(
        n=80, accuracy=0.6123, uar=0.6012, macro_f1=0.59, per_class=per_class,
        confusion_matrix=r.ConfusionMatrix(labels=LABELS, counts=counts), views=views,
        functional_c=[r.ChosenC(fold=0, chosen=0.01, validation_accuracy={"0.01": 0.5})],
        voicing_c=[r.ChosenC(fold=0, chosen=0.1, validation_accuracy={"0.1": 0.4})],
        protocol="grouped by actor (fixture)", gender_accuracy=0.97, intensity_accuracy=0.71,
        per_actor=[r.ActorScore(actor=a, gender="male" if a % 2 else "female", n=10, accuracy=0.3 + 0.05 * a)
                   for a in range(1, 9)],
        per_actor_spread=r.Spread(min=0.35, max=0.7, std=0.11),
        per_fold=[r.FoldScore(fold=k, train=[1, 2, 3] if k == 0 else [5, 6, 7], validation=[4] if k == 0 else [8],
                              test=[5, 6, 7, 8] if k == 0 else [1, 2, 3, 4], accuracy=0.6, uar=0.6, epochs=12,
                              refit_epochs=9, seconds=33.3) for k in range(2)],
        curves=[r.LearningCurve(fold=k, history={"loss": [2.0, 1.5], "val_loss": [2.1, 1.9]}) for k in range(2)],
        calibration=r.Calibration(
            method="temperature", temperature=1.23, ece_15_bins_before=0.081, ece_15_bins_after=0.022,
            confidence_threshold=0.41, threshold_rule="right half of the time", coverage_above_threshold=0.77,
            accuracy_above_threshold=0.72, reliability_before=reliability, reliability_after=reliability),
    )
    recipe = r.Recipe(speed_factors=[0.9, 1.0, 1.1], window_snr_db=[5.0, 30.0], room_snr_db=[5.0, 30.0],
                      room_rt60_seconds=[0.2, 0.8], standardize_limit=8.0, cnn_conv_blocks=4, embedding_units=128,
                      n_functionals=6373, n_voicing_functionals=473)
    return _common(
        r.TrainingResults, labels=LABELS,
        headline=r.Headline(accuracy=0.6123, uar=0.6012, macro_f1=0.59, protocol="grouped (fixture)"),
        cross_validation=cv,
        data=r.DataCounts(actors=list(range(1, 9)), song_clips=40, song_per_emotion=dict.fromkeys(LABELS, 5),
                          speech_clips=80, speech_per_emotion=dict.fromkeys(LABELS, 10), intensity_labels=["normal",
                                                                                                       "strong"]),
        training=r.TrainingRun(settings={"n_folds": 2, "seed": 0}, wall_seconds=600.0, machine="2 CPU cores",
                               shipped_model="fixture fusion", bundle_bytes=5_000_000, recipe=recipe),
    )


def side_fixtures() -> dict[type, object]:
    return {
        r.EvaluationResults: _common(
            r.EvaluationResults,
            leaky_random_split=r.LeakySplit(protocol="LEAKY fixture", accuracy=0.83, uar=0.82, macro_f1=0.8, n_test=16,
                                            epochs=5, refit_epochs=4, seconds=9.0, view_accuracy={"log_mel_cnn": 0.5}),
            baselines=[r.BaselineScores(name="(z) fixture baseline", description="d", accuracy=0.31, uar=0.29,
                                        macro_f1=0.28, leaky_accuracy=0.64, leaky_uar=0.63, seconds=1.0)],
        ),
        r.RobustnessResults: _common(
            r.RobustnessResults, protocol="p", clips=80, minutes=3.0,
            conditions={"clean": r.ConditionScores(accuracy=0.61, uar=0.6, refused=1, same_answer_as_clean=79,
                                                   seen_in_training=True),
                        "phone_8k": r.ConditionScores(accuracy=0.44, uar=0.43, refused=6, same_answer_as_clean=50,
                                                      seen_in_training=False)}),
        r.SeedCheckResults: _common(r.SeedCheckResults, what="seeds fold + 7", offset=7, cnn_accuracy=0.4,
                                    fused_accuracy=0.5987, fused_uar=0.5876),
        r.LevelCheckResults: _common(r.LevelCheckResults, every=10, gain_db=12.0, clips=8, answered=8,
                                     refused_quieter=3, refused_louder=0, compared=13, changed=5),
    }


def bench_fixture(path: Path, *, sha: str | None = None) -> Path:
    data = {"generated": "2030-01-02 05:06 UTC", "machine": {"cores": 6, "load_average_at_start": [0.5, 0.4, 0.3]},
            "targets": {"clip_median_ms": 70.0}, "results": {"clip": {"seconds": 4.0, "median_ms": 44.4,
                                                                       "min_ms": 41.2}},
            "bundle": {"parameters": 1} | ({"model_sha256": sha} if sha else {})}
    write_json(path, data)
    return path


@pytest.fixture
def bundle_folder(tmp_path) -> Path:
    """A bundle folder with every result file (no model.keras: metrics.json's hash is the model's)."""
    folder = tmp_path / "models"
    write_results(folder / "metrics.json", training_fixture())
    for cls, results in side_fixtures().items():
        write_results(folder / r.FILES[cls][0], results)
    write_json(folder / "config.json", {"features": FEATURES})
    bench_fixture(tmp_path / "bench.json")
    return folder


LOADERS = {r.TrainingResults: r.load_training, r.EvaluationResults: r.load_evaluation,
           r.RobustnessResults: r.load_robustness, r.SeedCheckResults: r.load_seed_check,
           r.LevelCheckResults: r.load_level_check, r.CorpusCheckResults: r.load_corpus_check,
           r.RoutingResults: r.load_routing, r.ProfileResults: r.load_profile, r.LocoResults: r.load_loco}


def test_every_loader_round_trips_its_dataclass(bundle_folder, tmp_path):
    fixtures = {r.TrainingResults: training_fixture(), **side_fixtures()}
    for cls, loader in LOADERS.items():
        if cls not in fixtures:  # corpus_check.json: tests/test_corpus_check.py
            continue
        loaded = loader(bundle_folder / r.FILES[cls][0])
        assert loaded == fixtures[cls]
        write_results(tmp_path / "again.json", loaded)
        assert read_json(tmp_path / "again.json") == read_json(bundle_folder / r.FILES[cls][0])


def test_the_shipped_files_load_and_round_trip_unchanged(tmp_path):
    assert set(LOADERS) == set(r.FILES)
    for cls, (name, _) in r.FILES.items():
        path = ROOT / "models" / name
        assert to_json(LOADERS[cls](path)) == read_json(path), name
    bench = load_bench(ROOT / "bench" / "results.json")
    assert bench.clip_median_ms > 0 and bench.cores >= 1


def test_no_machine_path_in_the_shipped_results():
    for path in (ROOT / "models").glob("*.json"):
        text = path.read_text()
        assert not re.search(r'"/(work|home|tmp|root|Users)/', text), path.name


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["cross_validation"]["calibration"].pop("temperature"),
         r"cross_validation\.calibration: missing key\(s\) \['temperature'\]"),
        (lambda d: d["cross_validation"].update(budget=1), r"cross_validation: unknown key\(s\) \['budget'\]"),
        (lambda d: d["headline"].update(accuracy="high"), r"headline\.accuracy: expected a number"),
        (lambda d: d["cross_validation"]["per_fold"][1].update(epochs=1.5), r"per_fold\[1\]\.epochs: expected int"),
    ],
)
def test_a_file_off_its_schema_says_which_key_and_what_to_run(bundle_folder, edit, message):
    path = bundle_folder / "metrics.json"
    data = read_json(path)
    edit(data)
    write_json(path, data)
    with pytest.raises(ResultsError, match=message) as error:
        r.load_training(path)
    assert "rerun `python -m ser train" in str(error.value)


def test_a_missing_file_or_another_format_says_what_to_run(bundle_folder):
    with pytest.raises(ResultsError, match=r"is missing; `python -m ser robustness .*` writes it"):
        r.load_robustness(bundle_folder / "nothing.json")
    path = bundle_folder / "seed_check.json"
    write_json(path, read_json(path) | {"schema": "seed-check/0"})
    with pytest.raises(ResultsError, match=r"format 'seed-check/0'.*rerun `python -m ser seed-check"):
        r.load_seed_check(path)
    with pytest.raises(ResultsError, match="make bench"):
        load_bench(bundle_folder / "missing.json")
    broken = bundle_folder / "broken_bench.json"
    write_json(broken, {"generated": "x"})
    with pytest.raises(ResultsError, match="rerun `make bench`"):
        load_bench(broken)


def test_the_card_shows_the_numbers_of_the_files(bundle_folder, tmp_path):
    card = render(load_model_results(bundle_folder, bench=tmp_path / "bench.json"))
    shipped = sum(path.stat().st_size for path in bundle_folder.iterdir()) / 1e6  # the result files, no model here
    assert (f"as it ships (both models, the detector, every result file; not this card) {shipped:.2f} MB, "
            "of which the main model's files 5.0 MB") in card
    for text in ("| accuracy (8 emotions) | 61.2% |", "| UAR (macro recall) | 60.1% |", "T = 1.23",
                 "(6373 statistics", "only the 473 ComParE", "| ours | 61.2% / 60.1% | 83.0% / 82.0% |",
                 "| (z) fixture baseline | 31.0% / 29.0% | 64.0% / 63.0% |", "Budget (this 6-core machine)",
                 "Full retrain (`python -m ser train`): 10.0 min", "median 44 ms, fastest 41 ms",
                 "(target <= 70 ms median)", "| telephone band (8 kHz, 300-3400 Hz) | no | 44.0% | 43.0% | 6 |",
                 "all views fused 59.9% (UAR 58.8%) instead of 61.2%", "moves the fused accuracy by 1.4 points",
                 "every 10th RAVDESS speech clip played 12 dB quieter", "5 of 13 answers changed",
                 "(3 of 8 clips played 12 dB quieter)", "Actors 9-24 were not available", "actors 1-8",
                 "Trained on 8 North American actors", "ECE (3 bins)", "holds 4 actors' clips instead of 3",
                 "a third more steps", "Random clip-level 80/20 splits",
                 "costs the most: telephone band (8 kHz, 300-3400 Hz) 44.0%, against 61.0% for the studio clips"):
        assert text in card, text


def test_the_readme_block_shares_the_cards_seed_and_robustness_text(bundle_folder, tmp_path):
    results = load_model_results(bundle_folder, bench=tmp_path / "bench.json")
    card, block = render(results), results_table(results)
    for text in ("Seed check: seeds fold + 7: CNN alone 40.0%",
                 "| studio clip as recorded | yes | 61.0% | 60.0% | 1 | 79 of 80 |",
                 "Reproduce: `python -m ser robustness --data ../shared/data/ravdess --out models/` (3 min here)."):
        assert text in card and text in block, text
    assert "| (z) fixture baseline | 31.0% | 29.0% | 64.0% | 63.0% |" in block
    assert "log-mel CNN 41.0% (UAR 42.0%), openSMILE functionals + logistic regression 52.0%" in block


@pytest.mark.parametrize(
    ("filename", "edit", "expected"),
    [
        ("metrics.json", lambda d: d["cross_validation"].update(accuracy=0.4321), "| accuracy (8 emotions) | 43.2% |"),
        ("metrics.json", lambda d: d["training"]["recipe"].update(n_functionals=1234), "(1234 statistics"),
        ("metrics.json", lambda d: d["training"]["recipe"].update(n_voicing_functionals=99), "only the 99 ComParE"),
        ("metrics.json", lambda d: d["training"]["recipe"].update(embedding_units=64), "a 64-unit embedding"),
        ("metrics.json", lambda d: d["training"]["recipe"].update(room_snr_db=[3.0, 25.0]), "noise at 3-25 dB SNR"),
        ("level_check.json", lambda d: d.update(changed=7, compared=200), "7 of 200 answers changed"),
        ("level_check.json", lambda d: d.update(every=3, gain_db=6.0), "every 3rd RAVDESS speech clip played 6 dB"),
        ("robustness.json", lambda d: d["conditions"]["phone_8k"].update(accuracy=0.123), "| no | 12.3% |"),
        ("evaluation.json", lambda d: d["leaky_random_split"].update(accuracy=0.999), "| 99.9% / 82.0% |"),
    ],
)
def test_a_number_changed_in_a_file_changes_in_the_card(bundle_folder, tmp_path, filename, edit, expected):
    before = render(load_model_results(bundle_folder, bench=tmp_path / "bench.json"))
    path = bundle_folder / filename
    data = read_json(path)
    edit(data)
    write_json(path, data)
    after = render(load_model_results(bundle_folder, bench=tmp_path / "bench.json"))
    assert expected not in before and expected in after


def test_files_measured_on_another_model_are_left_out_with_a_note(bundle_folder, tmp_path):
    for name in ("robustness.json", "level_check.json"):
        path = bundle_folder / name
        write_json(path, read_json(path) | {"model_sha256": "b" * 64})
    bench = bench_fixture(tmp_path / "old_bench.json", sha="c" * 64)
    results = load_model_results(bundle_folder, bench=bench)
    assert results.robustness is None and results.level_check is None and results.bench is None
    assert results.seed_check is not None and results.evaluation is not None
    card = render(results)
    assert "## Off the studio" not in card and "answers changed" not in card and "median 44 ms" not in card
    assert "robustness.json was measured on another model.keras and is not shown; rerun " \
           "`python -m ser robustness --data ../shared/data/ravdess --out models/`." in card
    assert "level_check.json was measured on another model.keras" in card
    assert "Not shown: robustness.json was measured on another model.keras" in results_table(results)


def test_the_card_renders_with_only_metrics_json(bundle_folder):
    for cls in side_fixtures():
        (bundle_folder / r.FILES[cls][0]).unlink()
    card = render(load_model_results(bundle_folder, bench=None))
    assert "| accuracy (8 emotions) | 61.2% |" in card and "not measured yet (`make bench`)" in card
    assert "leaky random split" not in card and "Seed check" not in card
    assert "then `python -m ser evaluate --data ../shared/data/ravdess --out models/ --baselines`" in card


def test_readme_block_is_replaced_between_the_markers(bundle_folder, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start (any note) -->\nold table\n" + README_END + "\noutro\n")
    results = load_model_results(bundle_folder, bench=None)
    update_readme(readme, results)
    text = readme.read_text()
    assert text.startswith("intro\n<!-- results:start (any note) -->\nProtocol: grouped by actor (fixture)\n")
    assert "old table" not in text and text.endswith(README_END + "\noutro\n")
    assert "| **ours** (shipped recipe) | **61.2%** | **60.1%** | 83.0% | 82.0% |" in text


def test_templates_type_no_numbers():
    """Every number in the card and README block comes from a result file or config: outside the
    template expressions only labels (View 1, L2, F0, 1D) and the datasets' citations have digits.
    (The Markdown templates; the HTML report's has style sizes and reads every result from its analysis.)"""
    allowed = re.compile(r"^(\d,|1D|L2\S*|\(RT60|\(F0\),|macro-F1|F1|4\.0|\(2018\)|13\(5\):|e0196391\.|https://\S+"
                         r"|\(2023\)|22\(1\)\.|wgwangang/ASED_V1\.|speechocean762:?|\(2021\)|2021\.)$")
    for template in (ROOT / "ser" / "reporting" / "templates").glob("*.md.j2"):
        text = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", template.read_text(), flags=re.S)
        typed = [word for word in re.findall(r"\S*\d\S*", text) if not allowed.match(word)]
        assert not typed, f"{template.name} types {typed}"


def test_the_shipped_card_is_rendered_from_the_shipped_files():
    """models/MODEL_CARD.md is current: `python -m ser.reporting.model_card models/` rewrites it."""
    expected = render(load_model_results(ROOT / "models"))
    assert (ROOT / "models" / "MODEL_CARD.md").read_text(encoding="utf-8") == expected


def test_the_readme_results_block_is_rendered_from_the_shipped_files(tmp_path):
    """README.md's block is current: `python -m ser.reporting.model_card models/ README.md` rewrites it."""
    readme = tmp_path / "README.md"
    shipped = (ROOT / "README.md").read_text(encoding="utf-8")
    readme.write_text(shipped, encoding="utf-8")
    update_readme(readme, load_model_results(ROOT / "models"))
    assert readme.read_text(encoding="utf-8") == shipped


WRITERS = {
    ("ser/__main__.py", "command_train"): "TrainingResults",
    ("ser/__main__.py", "command_evaluate"): "EvaluationResults",
    ("ser/checks_cli.py", "command_robustness"): "RobustnessResults",
    ("ser/checks_cli.py", "command_seed_check"): "SeedCheckResults",
    ("ser/checks_cli.py", "command_level_check"): "LevelCheckResults",
    ("ser/corpus_check_cli.py", "command_corpus_check"): "CorpusCheckResults",
    ("ser/joint_views_cli.py", "command_routing"): "RoutingResults",
    ("ser/profile_check_cli.py", "command_profile_check"): "ProfileResults",
    ("ser/loco_cli.py", "command_loco"): "LocoResults",
}


def test_one_writer_per_result_file():
    """Each producer writes exactly its own file with write_results, and nothing writes JSON into a
    result file any other way."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in [*(ROOT / "ser").rglob("*.py"), *(ROOT / "experiments").glob("*.py"), *(ROOT / "bench").glob("*.py")]:
        relative = path.relative_to(ROOT).as_posix()
        source = path.read_text()
        tree = ast.parse(source)
        for function in (node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)):
            for call in (node for node in ast.walk(function) if isinstance(node, ast.Call)):
                name = getattr(call.func, "id", getattr(call.func, "attr", ""))
                if name == "write_results" and relative != "ser/reporting/schema.py":
                    target = ast.get_source_segment(source, call.args[0])
                    written = re.findall(r"FILES\[(\w+)\]", target)
                    assert written, f"{relative}:{function.name} writes {target}, not a FILES entry"
                    found.setdefault((relative, function.name), []).extend(written)
                if name == "write_json" and relative != "ser/reporting/schema.py":
                    target = ast.get_source_segment(source, call.args[0]) if call.args else ""
                    assert not any(file in target for file, _ in r.FILES.values()), f"{relative} writes {target}"
    assert found == {key: [value] for key, value in WRITERS.items()}


def test_evaluate_writes_only_evaluation_json(tmp_path, monkeypatch):
    """`python -m ser evaluate` leaves metrics.json (train's) and the other files untouched."""
    import ser.__main__ as cli
    import ser.training.evaluate as evaluate

    folder = tmp_path / "models"
    for name in ("model.keras", "labels.json", "config.json"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).symlink_to(ROOT / "models" / name)
    for name in ("metrics.json", "robustness.json", "seed_check.json", "level_check.json"):
        (folder / name).write_bytes((ROOT / "models" / name).read_bytes())
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    leaky = side_fixtures()[r.EvaluationResults].leaky_random_split
    monkeypatch.setattr(cli, "_load_dataset", lambda data, cache, words=False: (None, None, None, None))
    monkeypatch.setattr(evaluate, "leaky_random_split", lambda *args, **kwargs: leaky)
    assert cli.main(["evaluate", "--data", str(tmp_path), "--out", str(folder)]) == 0
    after = {path.name: path.read_bytes() for path in folder.iterdir()}
    changed = {name for name in after if before.get(name) != after[name]}
    assert changed == {"evaluation.json", "MODEL_CARD.md"}
    written = r.load_evaluation(folder / "evaluation.json")
    assert written.leaky_random_split == leaky and written.baselines == []
    assert written.command == "python -m ser evaluate --data ../shared/data/ravdess --out models/"
    assert "| ours | 66.6% / 67.0% | 83.0% / 82.0% |" in (folder / "MODEL_CARD.md").read_text()
    assert json.loads((folder / "metrics.json").read_text()) == read_json(ROOT / "models" / "metrics.json")


def test_train_settings_round_trip_and_refuse_retired_switches():
    from ser.training.settings import TrainSettings

    settings = TrainSettings(seed=3, functional_c_grid=(0.5,))
    assert TrainSettings.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    shipped = r.load_training(ROOT / "models" / "metrics.json").training.settings
    assert TrainSettings.from_dict(shipped) == TrainSettings()  # the shipped model used the defaults
    with pytest.raises(ValueError, match=r"\['refit_cnn'\] are not settings"):
        TrainSettings.from_dict({**shipped, "refit_cnn": True})


def test_result_dataclasses_are_frozen():
    for cls in [*r.FILES, BenchResults]:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen


@pytest.mark.slow
def test_train_writes_the_bundle_metrics_json_and_the_card_only(tmp_path, monkeypatch):
    """`python -m ser train` on tiny synthetic clips (one fold, one epoch): it writes the bundle,
    metrics.json and the card, nothing else; the card then leaves out the old model's robustness."""
    import numpy as np
    import pandas as pd

    import ser.__main__ as cli
    from ser.config import FeatureConfig
    from ser.reporting.provenance import model_sha256
    from ser.training.data import EMOTIONS, GENDERS, INTENSITIES
    from tests.test_model_train import _synthetic_clips

    config = FeatureConfig(window_seconds=0.5, n_mels=32)
    clips = _synthetic_clips(80, config=config, seed=7)
    clips.actor = np.repeat(np.arange(1, 11), 8)
    rng = np.random.default_rng(8)
    values = rng.standard_normal((80, 20)).astype(np.float32) + 0.5 * clips.emotion[:, None]
    clips.functionals = {speed: values for speed in (1.0, 0.9, 1.1)}
    clips.functional_names = [f"F0final_sma_{k}" if k < 5 else f"mfcc_sma_{k}" for k in range(20)]
    index = pd.DataFrame({"path": [f"clips/{k:03d}.wav" for k in range(80)], "actor": clips.actor,
                          "vocal_channel": "speech",
                          "emotion": [EMOTIONS[k] for k in clips.emotion], "gender": [GENDERS[k] for k in clips.gender],
                          "intensity": [INTENSITIES[k] for k in clips.intensity]})
    monkeypatch.setattr(cli, "_load_dataset",
                        lambda data, cache, words=False: (config, index, clips, np.ones(80, dtype=bool)))
    folder = tmp_path / "models"
    folder.mkdir()
    old = (ROOT / "models" / "robustness.json").read_bytes()
    (folder / "robustness.json").write_bytes(old)
    answers = tmp_path / "answers.npz"
    assert cli.main(["train", "--data", str(tmp_path), "--out", str(folder), "--epochs", "1", "--folds", "1",
                     "--save-fold-answers", str(answers)]) == 0
    with np.load(answers, allow_pickle=False) as saved:  # one RAVDESS folder: actors named as the corpus table does
        speakers = {part: set(saved["speaker"][saved[f"fold0/{part}/positions"]]) for part in ("validation", "test")}
        assert saved["file_name"][0] == "000.wav" and set(saved["corpus"]) == {"ravdess"}
    assert all(name.startswith("ravdess-") for name in speakers["test"])
    assert not speakers["test"] & speakers["validation"]
    assert {path.name for path in folder.iterdir()} == {"model.keras", "labels.json", "config.json", "metrics.json",
                                                        "MODEL_CARD.md", "robustness.json", "out_of_fold.npz"}
    assert (folder / "robustness.json").read_bytes() == old
    from ser.training.fold_answers import read_out_of_fold

    oof = read_out_of_fold(folder)  # the test speakers' answers, tempered as the bundle's calibration says
    with np.load(answers, allow_pickle=False) as saved:
        assert oof.file_name.tolist() == saved["file_name"][saved["fold0/test/positions"]].tolist()
    assert oof.probabilities.shape == oof.raw.shape == (len(oof.file_name), len(EMOTIONS))
    np.testing.assert_allclose(oof.probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert oof.temperature == json.loads((folder / "config.json").read_text())["calibration"]["temperature"]
    np.testing.assert_array_equal(oof.probabilities.argmax(axis=1), oof.raw.argmax(axis=1))
    written = r.load_training(folder / "metrics.json")
    assert written.model_sha256 == model_sha256(folder / "model.keras")
    assert written.command == r.TRAIN_COMMAND + " --epochs 1 --folds 1"  # the answers file is not the bundle's
    recipe = written.training.recipe
    assert (recipe.cnn_conv_blocks, recipe.embedding_units, recipe.n_functionals, recipe.n_voicing_functionals) == \
        (4, 128, 20, 5)
    assert [fold.fold for fold in written.cross_validation.per_fold] == [0]
    assert set(written.cross_validation.views) == {"log_mel_cnn", "functionals", "voicing", "fused", "averaged"}
    card = (folder / "MODEL_CARD.md").read_text()
    assert "robustness.json was measured on another model.keras and is not shown" in card
    assert "## Off the studio" not in card
